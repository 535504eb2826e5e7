"""The ledger the dashboard tests read: tests/dashboard/workload.py written once to SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import workload

from costkit.sinks import SQLiteSink
from costkit.sinks.sqlite import iter_sqlite, iter_sqlite_outcomes


@pytest.fixture(scope="session")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = Path(tmp_path_factory.mktemp("dashboard")) / "costs.db"
    with SQLiteSink(path) as sink:
        facts = workload.write(sink)
    return {**facts, "path": path, "records": list(iter_sqlite(path)), "outcomes": list(iter_sqlite_outcomes(path))}
