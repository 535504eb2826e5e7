"""A batch job's state in SQLite: the job, its items and its chunks (one provider batch each).

Written so that a process killed at any point resumes without submitting an item twice:

* every item is stored, with the exact request body to send, before anything is submitted;
* a chunk is written as ``submitting`` (with its items) and committed *before* its file is
  uploaded or its batch created; the provider's batch id is written when the create returns.
  A restarted process finds a ``submitting`` chunk and asks the provider whether that batch
  exists (OpenAI: the batch's ``metadata``; Anthropic: the batches created since, and their
  custom ids) before it ever submits those items again;
* outcomes are written per chunk in one transaction.

The file holds prompts and answers, like the provider's own batch files: it is created with
mode 0600. WAL mode with ``synchronous=FULL`` (a commit survives a power cut, not only a crash).
One process drives a job at a time: :meth:`JobStore.claim` takes a lease that a live process
keeps (same host: while its pid lives; another host: while it heartbeats).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .errors import BatchError, JobBusy

SCHEMA_VERSION = 1
#: item statuses: waiting to be sent, in a chunk, and the ends (the last four are outcomes)
PENDING, SUBMITTING, SUBMITTED = "pending", "submitting", "submitted"
CACHED, REFUSED = "cached", "refused"
SUCCEEDED, FAILED, EXPIRED, CANCELLED = "succeeded", "failed", "expired", "cancelled"
OPEN_STATUSES = (PENDING, SUBMITTING, SUBMITTED)
FINISHED = (CACHED, REFUSED, SUCCEEDED, FAILED, EXPIRED, CANCELLED)
RESUBMITTABLE = (FAILED, EXPIRED, CANCELLED)
ITEM_STATUSES = (PENDING, SUBMITTING, SUBMITTED, CACHED, REFUSED, SUCCEEDED, FAILED, EXPIRED, CANCELLED)
#: chunk statuses
CHUNK_SUBMITTING, CHUNK_SUBMITTED, CHUNK_ENDED = "submitting", "submitted", "ended"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, provider TEXT NOT NULL, method TEXT NOT NULL, created_at REAL NOT NULL,
  n_items INTEGER NOT NULL, status TEXT NOT NULL, owner TEXT, owner_seen REAL, meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
  job_id TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL, attempt INTEGER NOT NULL,
  chunk INTEGER, custom_id TEXT, body TEXT NOT NULL, call TEXT NOT NULL, tickets TEXT,
  result TEXT, error TEXT, cost_usd REAL, interactive_usd REAL, finished_at REAL,
  recorded INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS items_chunk ON items (job_id, chunk);
CREATE INDEX IF NOT EXISTS items_status ON items (job_id, status);
CREATE TABLE IF NOT EXISTS chunks (
  job_id TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL, model TEXT,
  provider_batch TEXT, input_file TEXT, n_items INTEGER NOT NULL, n_bytes INTEGER NOT NULL,
  intent_at REAL NOT NULL, submitted_at REAL, ended_at REAL, provider_status TEXT,
  attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
  PRIMARY KEY (job_id, seq)
);
"""


@attrs.frozen(kw_only=True)
class JobRow:
    id: str
    provider: str
    method: str
    created_at: float
    n_items: int
    status: str  # open | done
    meta: Mapping[str, Any]
    owner: str | None = None
    owner_seen: float | None = None


@attrs.frozen(kw_only=True)
class ItemRow:
    """One item: ``body`` is the request exactly as submitted, ``call`` what its cost record needs."""

    job_id: str
    idx: int
    status: str
    attempt: int
    body: Mapping[str, Any]
    call: Mapping[str, Any]
    tickets: Mapping[str, Any] = attrs.field(factory=dict)
    chunk: int | None = None
    custom_id: str | None = None
    result: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None
    cost_usd: float | None = None
    interactive_usd: float | None = None
    finished_at: float | None = None


@attrs.frozen(kw_only=True)
class ChunkRow:
    job_id: str
    seq: int
    status: str
    model: str | None
    n_items: int
    n_bytes: int
    intent_at: float
    provider_batch: str | None = None
    input_file: str | None = None
    submitted_at: float | None = None
    ended_at: float | None = None
    provider_status: str | None = None
    attempts: int = 0
    last_error: str | None = None


@attrs.frozen(kw_only=True)
class Outcome:
    """What one item's batch said, ready to store: the status and its result or error."""

    idx: int
    status: str
    result: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None
    cost_usd: float | None = None
    interactive_usd: float | None = None


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _process_start(pid: int) -> str:
    """A process's start time (Linux /proc), so a reused pid is not mistaken for the owner."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def this_process() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def _owner_alive(owner: str, seen: float | None, lease_s: float, now: float) -> bool:
    host, _, rest = owner.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname():
        return seen is not None and now - seen < lease_s
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # alive, another user's
        return True
    return not started or _process_start(pid) in ("", started)


class JobStore:
    """The SQLite file of batch jobs (see the module docstring). Thread-safe."""

    def __init__(self, path: str | os.PathLike[str], *, lease_s: float = 900.0) -> None:
        self.path = Path(path)
        self.lease_s = float(lease_s)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.executescript(_SCHEMA)
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        for suffix in ("-wal", "-shm"):  # SQLite creates these with the umask's mode
            side = Path(str(self.path) + suffix)
            if side.exists():
                os.chmod(side, 0o600)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._conn.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # ---------------------------------------------------------------- jobs

    def create_job(self, job: JobRow, items: Iterable[ItemRow]) -> None:
        """Store a new job and all its items in one transaction."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO jobs (id, provider, method, created_at, n_items, status, owner, owner_seen, meta) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.id, job.provider, job.method, job.created_at, job.n_items, job.status, job.owner,
                 job.owner_seen, _dumps(dict(job.meta))),
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO items (job_id, idx, status, attempt, chunk, custom_id, body, call, tickets, result, "
                "error, cost_usd, interactive_usd, finished_at, recorded) "
                f"VALUES ({', '.join('?' * 15)})",
                (
                    (i.job_id, i.idx, i.status, i.attempt, i.chunk, i.custom_id, _dumps(dict(i.body)),
                     _dumps(dict(i.call)), _dumps(dict(i.tickets)), _dumps(i.result), _dumps(i.error),
                     i.cost_usd, i.interactive_usd, time.time() if i.status in FINISHED else None,
                     int(i.status == REFUSED))
                    for i in items
                ),
            )  # fmt: skip

    def job(self, job_id: str) -> JobRow | None:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def jobs(self) -> list[JobRow]:
        return [_job(r) for r in self._rows("SELECT * FROM jobs ORDER BY created_at")]

    def set_job_status(self, job_id: str, status: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE jobs SET status = ? WHERE id = ?", (status, job_id))

    def claim(self, job_id: str, owner: str) -> None:
        """Take (or renew) the job's lease; :class:`JobBusy` if another live process holds it."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute("SELECT owner, owner_seen FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise BatchError(f"no batch job {job_id!r} in {self.path}")
            held, seen = row
            if held and held != owner and _owner_alive(held, seen, self.lease_s, now):
                raise JobBusy(f"batch job {job_id} is being driven by {held}; wait for it, or stop that process")
            conn.execute("UPDATE jobs SET owner = ?, owner_seen = ? WHERE id = ?", (owner, now, job_id))

    def release(self, job_id: str, owner: str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE jobs SET owner = NULL WHERE id = ? AND owner = ?", (job_id, owner))

    # ---------------------------------------------------------------- items

    def items(self, job_id: str, statuses: Sequence[str] | None = None, chunk: int | None = None) -> list[ItemRow]:
        sql = "SELECT * FROM items WHERE job_id = ?"
        args: list[Any] = [job_id]
        if statuses is not None:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        if chunk is not None:
            sql += " AND chunk = ?"
            args.append(chunk)
        return [_item(r) for r in self._rows(sql + " ORDER BY idx", args)]

    def custom_ids(self, job_id: str, chunk: int, statuses: Sequence[str]) -> dict[str, int]:
        """custom id -> item index of a chunk's items in these statuses (without loading their bodies)."""
        rows = self._rows(
            f"SELECT custom_id, idx FROM items WHERE job_id = ? AND chunk = ? "
            f"AND status IN ({','.join('?' * len(statuses))})",
            (job_id, chunk, *statuses),
        )
        return {str(r["custom_id"]): int(r["idx"]) for r in rows}

    def counts(self, job_id: str) -> dict[str, int]:
        rows = self._rows("SELECT status, COUNT(*) AS n FROM items WHERE job_id = ? GROUP BY status", (job_id,))
        return {r["status"]: int(r["n"]) for r in rows}

    def spend(self, job_id: str) -> tuple[float, float]:
        """(batch USD, the same answers at interactive prices) of the job's answered items."""
        rows = self._rows(
            "SELECT COALESCE(SUM(cost_usd), 0) AS c, COALESCE(SUM(interactive_usd), 0) AS i "
            "FROM items WHERE job_id = ?",
            (job_id,),
        )
        return float(rows[0]["c"]), float(rows[0]["i"])

    def requeue(self, job_id: str, statuses: Sequence[str], tickets: Mapping[int, Mapping[str, Any]]) -> int:
        """Put items with these outcomes back to ``pending`` for their next attempt (with the
        policies' new ``tickets``); returns how many."""
        with self._tx() as conn:
            cur = conn.executemany(
                "UPDATE items SET status = ?, attempt = attempt + 1, chunk = NULL, custom_id = NULL, error = NULL, "
                f"tickets = ?, recorded = 0, finished_at = NULL WHERE job_id = ? AND idx = ? "
                f"AND status IN ({','.join('?' * len(statuses))})",
                ((PENDING, _dumps(dict(t)), job_id, idx, *statuses) for idx, t in tickets.items()),
            )
            if cur.rowcount:
                conn.execute("UPDATE jobs SET status = 'open' WHERE id = ?", (job_id,))
            return int(cur.rowcount)

    def unrecorded(self, job_id: str) -> list[ItemRow]:
        """Items with an outcome whose record, cache store and budget settlement are still to do."""
        rows = self._rows(
            f"SELECT * FROM items WHERE job_id = ? AND recorded = 0 AND status IN ({','.join('?' * 5)}) ORDER BY idx",
            (job_id, CACHED, SUCCEEDED, FAILED, EXPIRED, CANCELLED),
        )
        return [_item(r) for r in rows]

    def mark_recorded(self, job_id: str, done: Sequence[tuple[int, float | None, float | None]]) -> None:
        """(idx, batch USD, interactive USD) per item whose side effects ran."""
        with self._tx() as conn:
            conn.executemany(
                "UPDATE items SET recorded = 1, cost_usd = COALESCE(?, cost_usd), "
                "interactive_usd = COALESCE(?, interactive_usd) WHERE job_id = ? AND idx = ?",
                ((cost, interactive, job_id, idx) for idx, cost, interactive in done),
            )

    def mark(self, job_id: str, idxs: Sequence[int], status: str, error: Mapping[str, Any] | None = None) -> None:
        with self._tx() as conn:
            conn.executemany(
                "UPDATE items SET status = ?, error = ?, finished_at = ? WHERE job_id = ? AND idx = ?",
                ((status, _dumps(error), time.time(), job_id, i) for i in idxs),
            )

    # ---------------------------------------------------------------- chunks

    def next_seq(self, job_id: str) -> int:
        rows = self._rows("SELECT COALESCE(MAX(seq), 0) AS s FROM chunks WHERE job_id = ?", (job_id,))
        return int(rows[0]["s"]) + 1

    def add_chunk(self, chunk: ChunkRow, custom_ids: Mapping[int, str]) -> None:
        """The intent: this chunk, with these items, is about to be submitted (committed first)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO chunks (job_id, seq, status, model, n_items, n_bytes, intent_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (chunk.job_id, chunk.seq, CHUNK_SUBMITTING, chunk.model, chunk.n_items, chunk.n_bytes, chunk.intent_at),
            )
            conn.executemany(
                "UPDATE items SET status = ?, chunk = ?, custom_id = ? WHERE job_id = ? AND idx = ? AND status = ?",
                ((SUBMITTING, chunk.seq, cid, chunk.job_id, idx, PENDING) for idx, cid in custom_ids.items()),
            )

    def chunk_attempt(self, job_id: str, seq: int, error: str | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE chunks SET attempts = attempts + 1, last_error = ?, intent_at = ? WHERE job_id = ? AND seq = ?",
                (error, time.time(), job_id, seq),
            )

    def chunk_submitted(self, job_id: str, seq: int, batch_id: str, input_file: str | None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE chunks SET status = ?, provider_batch = ?, input_file = ?, submitted_at = ?, last_error = NULL "
                "WHERE job_id = ? AND seq = ?",
                (CHUNK_SUBMITTED, batch_id, input_file, time.time(), job_id, seq),
            )
            conn.execute(
                "UPDATE items SET status = ? WHERE job_id = ? AND chunk = ? AND status = ?",
                (SUBMITTED, job_id, seq, SUBMITTING),
            )

    def chunk_status(self, job_id: str, seq: int, provider_status: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE chunks SET provider_status = ? WHERE job_id = ? AND seq = ?", (provider_status, job_id, seq)
            )

    def chunks(self, job_id: str, statuses: Sequence[str] | None = None) -> list[ChunkRow]:
        sql = "SELECT * FROM chunks WHERE job_id = ?"
        args: list[Any] = [job_id]
        if statuses is not None:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        return [_chunk(r) for r in self._rows(sql + " ORDER BY seq", args)]

    def claimed_batches(self, provider: str) -> set[str]:
        """Every provider batch id any job in this file already owns (reconciliation skips them)."""
        rows = self._rows(
            "SELECT c.provider_batch AS b FROM chunks c JOIN jobs j ON j.id = c.job_id "
            "WHERE j.provider = ? AND c.provider_batch IS NOT NULL",
            (provider,),
        )
        return {str(r["b"]) for r in rows}

    def finish_chunk(self, job_id: str, seq: int, provider_status: str, outcomes: Iterable[Outcome]) -> None:
        """Store every item's outcome and end the chunk, in one transaction."""
        now = time.time()
        with self._tx() as conn:
            conn.executemany(
                "UPDATE items SET status = ?, result = ?, error = ?, cost_usd = ?, interactive_usd = ?, "
                "finished_at = ? WHERE job_id = ? AND idx = ? AND chunk = ?",
                (
                    (o.status, _dumps(o.result), _dumps(o.error), o.cost_usd, o.interactive_usd, now, job_id,
                     o.idx, seq)
                    for o in outcomes
                ),
            )  # fmt: skip
            conn.execute(
                "UPDATE chunks SET status = ?, provider_status = ?, ended_at = ? WHERE job_id = ? AND seq = ?",
                (CHUNK_ENDED, provider_status, now, job_id, seq),
            )


_Row = TypeVar("_Row", JobRow, ItemRow, ChunkRow)


def _from_row(
    cls: type[_Row], r: Mapping[str, Any], *, json_maps: tuple[str, ...] = (), json_values: tuple[str, ...] = ()
) -> _Row:
    """A table row as its value: each field is the column of its name; ``json_maps`` columns hold
    JSON objects (NULL reads as ``{}``), ``json_values`` columns any JSON (NULL reads as None)."""
    values = {f.name: r[f.name] for f in attrs.fields(cls)}
    for name in json_maps:
        values[name] = _loads(values[name]) or {}
    for name in json_values:
        values[name] = _loads(values[name])
    return cls(**values)


def _job(r: Mapping[str, Any]) -> JobRow:
    return _from_row(JobRow, r, json_maps=("meta",))


def _item(r: Mapping[str, Any]) -> ItemRow:
    return _from_row(ItemRow, r, json_maps=("body", "call", "tickets"), json_values=("result", "error"))


def _chunk(r: Mapping[str, Any]) -> ChunkRow:
    return _from_row(ChunkRow, r)


__all__ = [
    "CANCELLED",
    "EXPIRED",
    "FAILED",
    "FINISHED",
    "ITEM_STATUSES",
    "OPEN_STATUSES",
    "PENDING",
    "RESUBMITTABLE",
    "SUBMITTED",
    "SUBMITTING",
    "SUCCEEDED",
    "ChunkRow",
    "ItemRow",
    "JobRow",
    "JobStore",
    "Outcome",
    "this_process",
]
