"""JSONLSink: one JSON object per line, appended by a background thread.

The simplest durable format: ``tail -f``, ``jq``, any log shipper and pandas read it. Every
CostRecord field is written under its own name. Each batch is one ``write`` to a file opened in
append mode, so several processes may append to the same file (lines stay whole on local
filesystems as long as a batch is written in one ``write`` call). When the file is moved or
deleted (logrotate), the next batch goes to a new file at the same path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from .._files import PRIVATE_FILE_MODE
from .._warn import warn_once
from ..outcomes import Outcome
from ..records import CostRecord
from ._codec import OUTCOME_TYPE, outcome_to_json, record_from_mapping, record_to_json
from .background import BackgroundSink, usable_path


class _JSONLWriter:
    """Appends batches of records to ``path``; opened lazily in the writer thread."""

    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.fsync = fsync
        self._file: IO[str] | None = None

    def write_batch(self, records: Sequence[CostRecord]) -> None:
        self._append("".join(record_to_json(r) + "\n" for r in records))

    def write_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Outcomes are lines too, told apart by ``"type": "outcome"`` (records have no ``type``)."""
        self._append("".join(outcome_to_json(o) + "\n" for o in outcomes))

    def _append(self, data: str) -> None:
        if self._file is not None and self._rotated(self._file):
            self.close()
        if self._file is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)  # a new file: 0600
            self._file = open(fd, "a", encoding="utf-8")  # noqa: SIM115 - kept open across batches
        self._file.write(data)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def _rotated(self, f: IO[str]) -> bool:
        """True when the path no longer names the open file (logrotate moved or deleted it)."""
        try:
            return os.stat(self.path).st_ino != os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _appendable(path: Path) -> None:
    with open(path, "a", encoding="utf-8"):
        pass


class JSONLSink(BackgroundSink):
    """Append records as JSON lines to ``path``; ``emit`` only enqueues.

    ``fsync=True`` makes every batch durable against power loss (slower). Queue options are
    those of :class:`BackgroundSink`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = False,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        close_timeout_s: float = 5.0,
        block_when_full: bool = False,
    ) -> None:
        self.path = usable_path(path, _appendable, f"cannot append to {str(path)!r}")
        super().__init__(
            _JSONLWriter(self.path, fsync),
            max_queue=max_queue,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            close_timeout_s=close_timeout_s,
            name=f"JSONLSink({self.path.name})",
            block_when_full=block_when_full,
        )

    @property
    def ledger_key(self) -> tuple[str, str]:
        return ("jsonl", str(self.path.resolve()))

    def outcomes(self) -> list[Outcome]:
        """Flush, then read back the outcomes in the file."""
        self.flush()
        return list(iter_jsonl_outcomes(self.path))

    def records(self) -> list[CostRecord]:
        """Flush, then read back everything in the file (including other writers' lines)."""
        self.flush()
        return self.read(self.path)

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[CostRecord]:
        """All records in a JSONL file (a torn last line, e.g. after a crash, is skipped)."""
        return list(iter_jsonl(path))

    def __repr__(self) -> str:
        return f"JSONLSink({str(self.path)!r}, written={self.written}, dropped={self.dropped})"


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[CostRecord]:
    """Stream records from a JSONL file; outcome lines are passed over, lines that do not parse are
    skipped and warned about once."""
    for lineno, doc in _documents(path):
        if doc.get("type") == OUTCOME_TYPE:
            continue
        try:
            yield record_from_mapping(doc)
        except (ValueError, TypeError) as exc:
            warn_once(
                f"jsonl-bad-line-{path}", f"costkit: {path}:{lineno}: skipped a line that is not a record ({exc})"
            )


def iter_jsonl_outcomes(path: str | os.PathLike[str]) -> Iterator[Outcome]:
    """Stream the outcomes of a JSONL file (lines with ``"type": "outcome"``)."""
    for lineno, doc in _documents(path):
        if doc.get("type") != OUTCOME_TYPE:
            continue
        try:
            yield Outcome.from_dict(doc)
        except (KeyError, ValueError, TypeError) as exc:
            warn_once(f"jsonl-bad-outcome-{path}", f"costkit: {path}:{lineno}: skipped a malformed outcome ({exc})")


def _documents(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError as exc:
                warn_once(
                    f"jsonl-bad-line-{path}", f"costkit: {path}:{lineno}: skipped a line that is not JSON ({exc})"
                )
                continue
            if isinstance(doc, dict):
                yield lineno, doc


__all__ = ["JSONLSink", "iter_jsonl", "iter_jsonl_outcomes"]
