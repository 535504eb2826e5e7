"""CostAnomaly: an hour that costs far more than the same hour of day usually does.

For each subject (each feature, each tenant ...) the spend of the current UTC hour is compared
with the spend of the same hour of day on each of the previous ``days`` days (zero when nothing
was spent, counted only for days after the ledger's first record): the **median** of those, and a
robust **spread** (1.4826 x the median absolute deviation, the MAD scaled to a standard deviation
for normal data; at least ``rel_spread`` x the median, so a perfectly steady baseline still has
some room). The hour is anomalous when its spend passes

    median + max(k x spread, min_usd)

which needs ``min_days`` days of baseline. Comparing an hour with the same hour on other days
keeps the daily cycle (quiet nights, busy mornings) from looking like an anomaly. Live, the alert
fires at the record that crosses the line (the hour-to-date spend), once per subject and hour.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError
from ..records import CostRecord
from ..sinks._rollup import CELL_DIMS
from .alert import Alert, hour_label, who

if TYPE_CHECKING:
    from ..report.store import Store

MAD_TO_SD = 1.4826  # MAD x this estimates the standard deviation of normal data


def robust_line(
    baseline: Iterable[float], *, k: float, min_usd: float, rel_spread: float
) -> tuple[float, float, float]:
    """(median, spread, line) of a baseline, as in the module docstring."""
    values = list(baseline)
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    spread = max(MAD_TO_SD * mad, rel_spread * median)
    return median, spread, median + max(k * spread, min_usd)


def _positive(field: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(value, int if integer else int | float) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(
            field, f"expected a {'whole ' if integer else ''}number > {'=' if allow_zero else ''}0, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class CostAnomaly:
    """Alert when a subject's hourly spend passes its hour-of-day baseline (see the module docstring).

    ``by``: the dimensions whose values are watched separately (feature, tenant, model ...).
    """

    by: tuple[str, ...] = attrs.field(default=("feature", "tenant"), converter=tuple)
    days: int = 7
    k: float = 4.0
    min_usd: float = 1.0
    rel_spread: float = 0.1
    min_days: int = 3
    name: str = "cost_anomaly"

    def __attrs_post_init__(self) -> None:
        if not self.by or any(d not in CELL_DIMS for d in self.by):
            raise ConfigError("by", f"watch one or more of {', '.join(CELL_DIMS)}, got {self.by!r}")
        _positive("days", self.days, integer=True)
        _positive("k", self.k)
        _positive("min_usd", self.min_usd, allow_zero=True)
        _positive("rel_spread", self.rel_spread, allow_zero=True)
        _positive("min_days", self.min_days, integer=True)
        if self.min_days > self.days:
            raise ConfigError("min_days", f"cannot exceed days ({self.days})")

    # -- the check, shared by both modes ---------------------------------------------------------

    def line(self, hours: dict[int, float], hour: int, first_hour: int) -> tuple[float, float, float, int] | None:
        """(median, spread, line, baseline days) for ``hour``, or None without ``min_days`` of baseline."""
        baseline = [hours.get(hour - 24 * d, 0.0) for d in range(1, self.days + 1) if hour - 24 * d >= first_hour]
        if len(baseline) < self.min_days:
            return None
        return (*robust_line(baseline, k=self.k, min_usd=self.min_usd, rel_spread=self.rel_spread), len(baseline))

    def _alert(
        self, dim: str, value: str | None, hour: int, spent: float, line: tuple[float, float, float, int], at: float
    ) -> Alert:
        median, spread, threshold, n = line
        subject = {dim: value}
        return Alert.in_hour(
            hour,
            rule=self.name,
            subject=subject,
            at=at,
            value=spent,
            threshold=threshold,
            message=(
                f"{who(subject)} spent ${spent:,.4f} in {hour_label(hour)}, above ${threshold:,.4f} "
                f"(median ${median:,.4f} + {self.k:g} x spread ${spread:,.4f} over {n} days at this hour)"
            ),
            details={"median_usd": median, "spread_usd": spread, "baseline_days": n},
        )

    # -- live ------------------------------------------------------------------------------------

    def new_state(self) -> dict[str, Any]:
        return {"hours": {}, "first_hour": None, "fired": set(), "lines": {}, "pruned_at": None}

    def observe(self, state: dict[str, Any], record: CostRecord) -> list[Alert]:
        hour = int(record.timestamp // 3600)
        if state["first_hour"] is None or hour < state["first_hour"]:
            state["first_hour"] = hour
        if state["pruned_at"] != hour:
            self._prune(state, hour)
        cost = record.cost_usd or 0.0
        out = []
        for dim in self.by:
            value = getattr(record, dim) if dim != "success" else ("ok" if record.success else "error")
            hours = state["hours"].setdefault((dim, value), {})
            spent = hours[hour] = hours.get(hour, 0.0) + cost
            if cost <= 0 or (dim, value, hour) in state["fired"]:
                continue
            key = (dim, value, hour)
            if key not in state["lines"]:
                state["lines"][key] = self.line(hours, hour, state["first_hour"])
            line = state["lines"][key]
            if line is not None and spent > line[2]:
                state["fired"].add(key)
                out.append(self._alert(dim, value, hour, spent, line, record.timestamp))
        return out

    def _prune(self, state: dict[str, Any], hour: int) -> None:
        oldest = hour - 24 * self.days - 1
        for hours in state["hours"].values():
            for h in [h for h in hours if h < oldest]:
                del hours[h]
        state["fired"] = {k for k in state["fired"] if k[2] >= hour - 1}
        state["lines"] = {k: v for k, v in state["lines"].items() if k[2] >= hour - 1}
        state["pruned_at"] = hour

    def tick(self, state: dict[str, Any], now: float) -> list[Alert]:
        return []

    # -- stored ----------------------------------------------------------------------------------

    def stored(self, store: Store, since: float, until: float, history_start: float) -> list[Alert]:
        first_hour = int(history_start // 3600)
        since_h, until_h = int(since // 3600), int(until // 3600) + 1
        out = []
        for dim in self.by:
            series: dict[str | None, dict[int, float]] = {}
            for hour, value, cost in store.hourly(
                [dim], ["cost_usd"], since_hour=since_h - 24 * self.days, until_hour=until_h
            ):
                series.setdefault(value, {})[hour] = float(cost or 0.0)
            for value, hours in series.items():
                for hour, spent in sorted(hours.items()):
                    if hour < since_h or spent <= 0:
                        continue
                    line = self.line(hours, hour, first_hour)
                    if line is not None and spent > line[2]:
                        out.append(self._alert(dim, value, hour, spent, line, min((hour + 1) * 3600.0, until)))
        return out


__all__ = ["MAD_TO_SD", "CostAnomaly", "robust_line"]
