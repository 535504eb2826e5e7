"""Burst: a tenant spending fast over a short window, the signature of an agent stuck in a loop.

The window (``window_s``, default 60 s) is cut into ``steps`` equal buckets and slides one bucket
at a time. Its spend (and number of records) is compared with

* absolute limits: ``max_usd`` (and ``max_calls``), one for every subject; and/or
* a limit relative to the subject's own recent rate: ``factor`` x its average spend per window
  over the ``baseline_s`` (default an hour) before the window, and at least ``min_usd``. One
  absolute limit has to sit above the heaviest tenant's normal rate, so it misses a loop in a
  small tenant; the relative one does not (``benchmarks/alerts.py`` measures both).

One alert per episode: a subject alerts again only after a whole window in which its rate stayed
under the limits. Live, the alert fires at the record that crosses a limit; over stored records
the same buckets are summed in SQL and replayed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError
from ..records import FIELDS, CostRecord
from .alert import Alert, iso, who

if TYPE_CHECKING:
    from ..report.store import Store


@attrs.frozen(kw_only=True)
class Burst:
    """Alert when one subject's spend over ``window_s`` passes ``max_usd`` (or its records ``max_calls``)."""

    max_usd: float | None = None
    max_calls: int | None = None
    factor: float | None = None
    min_usd: float = 0.0
    baseline_s: float = 3600.0
    window_s: float = 60.0
    steps: int = 6
    by: str = "tenant"
    name: str = "burst"

    def __attrs_post_init__(self) -> None:
        if self.max_usd is None and self.max_calls is None and self.factor is None:
            raise ConfigError(
                "max_usd",
                "give a spend limit per window (max_usd=), a call limit (max_calls=), a factor over the "
                "subject's own recent rate (factor=), or several",
            )
        if isinstance(self.min_usd, bool) or not isinstance(self.min_usd, int | float) or self.min_usd < 0:
            raise ConfigError("min_usd", f"expected a number >= 0, got {self.min_usd!r}")
        for field in ("max_usd", "max_calls", "factor"):
            v = getattr(self, field)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v <= 0):
                raise ConfigError(field, f"expected a number > 0, got {v!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError("steps", f"expected a whole number >= 1, got {self.steps!r}")
        step = self.window_s / self.steps if isinstance(self.window_s, int | float) else 0
        if step < 1 or step != int(step):
            raise ConfigError(
                "window_s", f"window_s / steps must be a whole number of seconds >= 1, got {self.window_s!r}"
            )
        if self.by not in FIELDS:
            raise ConfigError("by", f"watch a record field such as tenant, user or feature, got {self.by!r}")
        span = self.baseline_s / self.step_s if isinstance(self.baseline_s, int | float) else 0
        if span < self.steps or span != int(span):
            raise ConfigError("baseline_s", f"a whole number of steps ({self.step_s} s), at least one window")

    @property
    def step_s(self) -> int:
        return int(self.window_s // self.steps)

    @property
    def baseline_steps(self) -> int:
        return int(self.baseline_s // self.step_s) if self.factor is not None else 0

    # -- the check, shared by both modes ---------------------------------------------------------

    def _over(self, usd: float, calls: int, baseline: float | None) -> bool:
        if self.max_usd is not None and usd > self.max_usd:
            return True
        if self.max_calls is not None and calls > self.max_calls:
            return True
        return baseline is not None and usd > max(self.factor or 0.0, 0.0) * baseline and usd > self.min_usd

    def _baseline(self, state: dict[str, Any], bucket: int) -> float | None:
        """The subject's average spend per window over the ``baseline_s`` before the window ending at
        ``bucket``; None without a relative limit, or before the subject has that much history (a
        tenant's first hour is not judged against an empty past)."""
        if not self.baseline_steps:
            return None
        first = bucket - self.steps - self.baseline_steps + 1
        if state["first"] is None or state["first"] > first:
            return None
        buckets = state["buckets"]
        usd = sum(buckets[b][0] for b in range(first, bucket - self.steps + 1) if b in buckets)
        return usd * self.steps / self.baseline_steps

    def _window(self, buckets: dict[int, list[float]], bucket: int) -> tuple[float, int]:
        usd = calls = 0.0
        for b in range(bucket - self.steps + 1, bucket + 1):
            got = buckets.get(b)
            if got is not None:
                usd += got[0]
                calls += got[1]
        return usd, int(calls)

    def _alert(
        self, value: str | None, bucket: int, usd: float, calls: int, baseline: float | None, at: float
    ) -> Alert:
        subject = {self.by: value}
        end = (bucket + 1) * self.step_s
        start = end - self.steps * self.step_s
        limits = []
        if self.max_usd is not None:
            limits.append(f"${self.max_usd:,.4f}")
        if self.max_calls is not None:
            limits.append(f"{self.max_calls:,} calls")
        if baseline is not None and self.factor is not None:
            limits.append(f"{self.factor:g} x its usual ${baseline:,.4f}")
        return Alert(
            rule=self.name,
            subject=subject,
            at=at,
            window_start_s=float(start),
            window_end_s=float(end),
            value=usd,
            threshold=float(self.max_usd if self.max_usd is not None else self.max_calls or 0)
            if self.factor is None or baseline is None
            else max(self.factor * baseline, self.min_usd),
            message=(
                f"{who(subject)} spent ${usd:,.4f} over {calls:,} records in the {self.window_s:g} s to "
                f"{iso(min(at, end))} (limit {' / '.join(limits)}): a loop?"
            ),
            details={"records": calls, "window_s": self.window_s, "baseline_usd": baseline},
        )

    def _step(self, state: dict[str, Any], value: str | None, bucket: int, at: float) -> Alert | None:
        """Evaluate the window ending at ``bucket`` (the subject's buckets are up to date)."""
        usd, calls = self._window(state["buckets"], bucket)
        baseline = self._baseline(state, bucket)
        if not self._over(usd, calls, baseline):
            return None
        last = state["last_over"]
        state["last_over"] = bucket
        if last is not None and last >= bucket - self.steps:
            return None  # the same episode
        return self._alert(value, bucket, usd, calls, baseline, at)

    # -- live ------------------------------------------------------------------------------------

    def new_state(self) -> dict[Any, Any]:
        return {}

    def observe(self, state: dict[Any, Any], record: CostRecord) -> list[Alert]:
        value = getattr(record, self.by)
        mine = state.get(value)
        if mine is None:
            mine = state[value] = {"buckets": {}, "last_over": None, "latest": None, "first": None}
        bucket = int(record.timestamp // self.step_s)
        if mine["first"] is None or bucket < mine["first"]:
            mine["first"] = bucket
        got = mine["buckets"].setdefault(bucket, [0.0, 0])
        got[0] += record.cost_usd or 0.0
        got[1] += 1
        if mine["latest"] is None or bucket > mine["latest"]:
            mine["latest"] = bucket
            for b in [b for b in mine["buckets"] if b <= bucket - self.steps - self.baseline_steps]:
                del mine["buckets"][b]
        alert = self._step(mine, value, mine["latest"], record.timestamp)
        if len(state) > 100_000:  # bound the memory of idle subjects: forget the quietest
            horizon = bucket - self.steps - self.baseline_steps
            for key in [k for k, v in state.items() if v["latest"] is not None and v["latest"] < horizon][:50_000]:
                del state[key]
        return [alert] if alert is not None else []

    def tick(self, state: dict[Any, Any], now: float) -> list[Alert]:
        return []

    # -- stored ----------------------------------------------------------------------------------

    def stored(self, store: Store, since: float, until: float, history_start: float) -> list[Alert]:
        rows = store.bucketed(self.by, self.step_s, since=since - self.window_s - self.baseline_s, until=until)
        per: dict[str | None, list[tuple[int, float, int]]] = {}
        for bucket, value, usd, n in rows:
            per.setdefault(value, []).append((bucket, usd, n))
        seen = store.first_seen(self.by) if self.baseline_steps else {}
        out = []
        first = int(since // self.step_s)
        for value, buckets in per.items():
            since_bucket = int(seen[value] // self.step_s) if value in seen else None
            out += self._replay(value, sorted(buckets), first, until, since_bucket)
        return out

    def _replay(
        self,
        value: str | None,
        buckets: Iterable[tuple[int, float, int]],
        first: int,
        until: float,
        seen_from: int | None = None,
    ) -> list[Alert]:
        """Run the live check over stored buckets; ``seen_from``: the subject's first bucket ever."""
        state: dict[str, Any] = {"buckets": {}, "last_over": None, "first": seen_from}
        out = []
        for bucket, usd, n in buckets:
            if state["first"] is None:
                state["first"] = bucket
            state["buckets"][bucket] = [usd, n]
            alert = self._step(state, value, bucket, min((bucket + 1) * self.step_s, until))
            if alert is not None and bucket >= first:
                out.append(alert)
        return out


__all__ = ["Burst"]
