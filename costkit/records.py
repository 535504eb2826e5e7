"""CostRecord: one row per provider attempt and per cache hit.

Records of one logical request share ``request_id``; ``attempt`` counts provider attempts
(1, 2, ...) and ``kind`` says why the attempt happened. No prompt or completion text is kept
unless the wrapper was built with ``record_text=True``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

KINDS = ("call", "retry", "escalation", "cache_hit", "batch", "embedding", "judge")
CACHES = ("none", "exact", "semantic", "dedup")


@attrs.frozen(kw_only=True, slots=True)
class CostRecord:
    """What one provider attempt (or one cache hit) cost, who it was for, and what layers saved."""

    request_id: str
    attempt: int
    kind: str
    timestamp: float  # seconds since the epoch, UTC
    provider: str  # who served the model (anthropic for a Claude model called through litellm)
    requested_model: str
    model: str
    client: str | None = None  # the SDK that made the call: openai, anthropic, litellm
    tenant: str | None = None
    user: str | None = None
    feature: str | None = None
    route: str | None = None
    prompt_version: str | None = None
    task: str | None = None  # the unit of work (tag ``task``) whose outcome says whether the spend paid off
    experiment: str | None = None  # set by costkit.Experiment
    arm: str | None = None  # the experiment arm this call ran in
    input_tokens: int = 0
    output_tokens: int = 0
    cached_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = 0.0
    priced: bool = True
    saved_usd: float = 0.0
    savings: Mapping[str, float] = attrs.field(factory=dict)  # layer -> USD, sums to saved_usd
    cache: str = "none"
    success: bool = True
    error_type: str | None = None
    latency_ms: float = 0.0
    usage_estimated: bool = False
    notes: Mapping[str, Any] = attrs.field(factory=dict)
    prompt_text: str | None = None
    completion_text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self, recurse=False)
        d["savings"] = dict(self.savings)
        d["notes"] = dict(self.notes)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostRecord:
        names = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(CostRecord))


class RecordDraft:
    """A CostRecord priced now and built later: what the recorder hands on, so that building the
    full record (tags, notes, savings) happens where it is read, not on the caller's thread.

    The fields the hot path reads (``request_id``, ``attempt``, ``kind``, ``cost_usd`` and the token
    counts) are set at once; any other attribute builds the record (once) and reads it there, so a
    draft can be used wherever a CostRecord is read. Sinks that know drafts (the background queue,
    the memory sink) build them off the caller's path; every other sink gets the built record.
    """

    __slots__ = ("_build", "_record", "attempt", "cost_usd", "input_tokens", "kind", "output_tokens", "request_id")

    def __init__(
        self,
        build: Callable[[], CostRecord],
        *,
        request_id: str,
        attempt: int,
        kind: str,
        cost_usd: float | None,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        self._build: Callable[[], CostRecord] | None = build
        self._record: CostRecord | None = None
        self.request_id = request_id
        self.attempt = attempt
        self.kind = kind
        self.cost_usd = cost_usd
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens

    def build(self) -> CostRecord:
        record = self._record
        if record is None:
            build = self._build
            if build is None:  # another thread built it meanwhile
                return self._record  # type: ignore[return-value]
            record = self._record = build()
            self._build = None  # let go of the call and the SDK object
        return record

    def __getattr__(self, name: str) -> Any:
        return getattr(self.build(), name)

    def __repr__(self) -> str:
        return f"RecordDraft({self.build()!r})"


def as_record(record: CostRecord | RecordDraft) -> CostRecord:
    """The built CostRecord of a draft (a CostRecord as it is)."""
    return record.build() if type(record) is RecordDraft else record  # type: ignore[return-value]


# -- the clock records and outcomes are stamped with ---------------------------------------------

_clock: Callable[[], float] = time.time


def now() -> float:
    """Seconds since the epoch as records and outcomes are stamped (``time.time`` unless a test set a clock)."""
    return _clock()


def set_clock(clock: Callable[[], float] | None) -> Callable[[], float]:
    """Stamp records with ``clock()`` from now on (None: the wall clock); returns the previous clock.

    Process-wide on purpose: a simulated clock (``costkit.testing.SimClock``) must also stamp
    records finished on other threads (streams, sinks' workers).
    """
    global _clock
    previous = _clock
    _clock = time.time if clock is None else clock
    return previous


__all__ = ["CACHES", "FIELDS", "KINDS", "CostRecord", "RecordDraft", "as_record", "now", "set_clock"]
