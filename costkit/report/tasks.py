"""Cost per successful task: records joined to outcomes by their ``task`` tag.

* A task's **cost** is the sum of its records' ``cost_usd`` (every attempt, retry, judge and
  embedding it took). A task whose records fall in two groups (two models) counts in both, with
  the cost of its records in each.
* Its **outcome** is the latest :class:`~costkit.outcomes.Outcome` for it; a task without one is
  **open** and stays out of the rates (its cost is shown apart).
* **success rate** = successful / tasks with an outcome; **cost per task** = cost of the tasks with
  an outcome / their number; **cost per successful task** = cost of the tasks with an outcome /
  successful ones (failures are paid for by the successes); **failed cost** = cost of the failed tasks.

:func:`compare_arms` compares an experiment's arms on success rate (Wilson interval) and cost per
successful task (delta-method interval of a ratio of means), each arm against the control, and
says "not yet significant" while the interval of the difference still contains 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..outcomes import Outcome
from ..records import CostRecord
from .aggregate import DIMENSIONS, GroupKey, check_dimensions

Z95 = 1.959963984540054


@attrs.frozen(kw_only=True, slots=True)
class TaskStats:
    """Tasks of one group and what they cost (see the module docstring)."""

    key: GroupKey
    tasks: int
    successes: int
    failures: int
    open: int
    cost_usd: float  # of the tasks with an outcome
    failed_cost_usd: float
    open_cost_usd: float
    value: float  # sum of the outcomes' values
    # sums over tasks with an outcome, for intervals: sum c^2 and sum c*s
    cost_sq: float = 0.0
    cost_success: float = 0.0

    @property
    def decided(self) -> int:
        return self.successes + self.failures

    @property
    def success_rate(self) -> float:
        return self.successes / self.decided if self.decided else 0.0

    @property
    def cost_per_task(self) -> float:
        return self.cost_usd / self.decided if self.decided else 0.0

    @property
    def cost_per_success(self) -> float | None:
        return self.cost_usd / self.successes if self.successes else None

    def to_dict(self, by: Sequence[str] = ()) -> dict[str, Any]:
        d: dict[str, Any] = dict(zip(by, self.key, strict=False))
        d.update(
            tasks=self.tasks,
            successes=self.successes,
            failures=self.failures,
            open=self.open,
            success_rate=self.success_rate,
            cost_usd=self.cost_usd,
            cost_per_task=self.cost_per_task,
            cost_per_success=self.cost_per_success,
            failed_cost_usd=self.failed_cost_usd,
            open_cost_usd=self.open_cost_usd,
            value=self.value,
        )
        return d


@attrs.frozen(kw_only=True, slots=True)
class TaskReport:
    by: tuple[str, ...]
    groups: tuple[TaskStats, ...]
    total: TaskStats

    def group(self, *key: Any) -> TaskStats:
        for g in self.groups:
            if g.key == key:
                return g
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        return {"by": list(self.by), "total": self.total.to_dict(), "groups": [g.to_dict(self.by) for g in self.groups]}


def latest_outcomes(outcomes: Iterable[Outcome]) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    for o in outcomes:
        prev = out.get(o.task)
        if prev is None or o.timestamp >= prev.timestamp:
            out[o.task] = o
    return out


def task_costs(records: Iterable[CostRecord], by: Sequence[str]) -> dict[tuple[GroupKey, str], float]:
    """(group key, task) -> cost of the task's records in that group (records without a task are left out)."""
    readers = [DIMENSIONS[d] for d in by]
    costs: dict[tuple[GroupKey, str], float] = {}
    for r in records:
        if r.task is None:
            continue
        k = (tuple(f(r) for f in readers), r.task)
        costs[k] = costs.get(k, 0.0) + (r.cost_usd or 0.0)
    return costs


def task_report_from_costs(
    costs: Mapping[tuple[GroupKey, str], float], outcomes: Iterable[Outcome], by: Sequence[str]
) -> TaskReport:
    latest = latest_outcomes(outcomes)
    accs: dict[GroupKey, dict[str, float]] = {}
    per_task_total: dict[str, float] = {}
    for (key, task), cost in costs.items():
        _add(accs.setdefault(key, {}), cost, latest.get(task))
        per_task_total[task] = per_task_total.get(task, 0.0) + cost
    total_acc: dict[str, float] = {}
    for task, cost in per_task_total.items():
        _add(total_acc, cost, latest.get(task))
    groups = sorted(
        (_freeze(k, a) for k, a in accs.items()), key=lambda g: (-g.cost_usd - g.open_cost_usd, repr(g.key))
    )
    return TaskReport(by=tuple(by), groups=tuple(groups), total=_freeze((), total_acc))


def task_report(
    records: Iterable[CostRecord], outcomes: Iterable[Outcome], by: str | Sequence[str] = ("feature",)
) -> TaskReport:
    """Tasks by ``by`` (feature, prompt_version, model, arm ...), joined to their outcomes."""
    dims = check_dimensions((by,) if isinstance(by, str) else tuple(by))
    return task_report_from_costs(task_costs(records, dims), outcomes, dims)


def _add(acc: dict[str, float], cost: float, outcome: Outcome | None) -> None:
    acc["tasks"] = acc.get("tasks", 0) + 1
    if outcome is None:
        acc["open"] = acc.get("open", 0) + 1
        acc["open_cost"] = acc.get("open_cost", 0.0) + cost
        return
    s = 1.0 if outcome.success else 0.0
    acc["successes" if outcome.success else "failures"] = acc.get("successes" if outcome.success else "failures", 0) + 1
    acc["cost"] = acc.get("cost", 0.0) + cost
    acc["cost_sq"] = acc.get("cost_sq", 0.0) + cost * cost
    acc["cost_success"] = acc.get("cost_success", 0.0) + cost * s
    if not outcome.success:
        acc["failed_cost"] = acc.get("failed_cost", 0.0) + cost
    acc["value"] = acc.get("value", 0.0) + (outcome.value or 0.0)


def _freeze(key: GroupKey, a: Mapping[str, float]) -> TaskStats:
    return TaskStats(
        key=key,
        tasks=int(a.get("tasks", 0)),
        successes=int(a.get("successes", 0)),
        failures=int(a.get("failures", 0)),
        open=int(a.get("open", 0)),
        cost_usd=a.get("cost", 0.0),
        failed_cost_usd=a.get("failed_cost", 0.0),
        open_cost_usd=a.get("open_cost", 0.0),
        value=a.get("value", 0.0),
        cost_sq=a.get("cost_sq", 0.0),
        cost_success=a.get("cost_success", 0.0),
    )


# -- intervals -----------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (stays inside [0, 1], sane at 0 and n)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def ratio_variance(g: TaskStats) -> float | None:
    """Delta-method variance of cost per success = mean(cost) / mean(success), over decided tasks."""
    n = g.decided
    if n < 2 or g.successes == 0:
        return None
    mc, ms = g.cost_usd / n, g.successes / n
    var_c = max(0.0, (g.cost_sq - n * mc * mc) / (n - 1))
    var_s = ms * (1 - ms) * n / (n - 1)
    cov = (g.cost_success - n * mc * ms) / (n - 1)
    r = mc / ms
    return max(0.0, (var_c - 2 * r * cov + r * r * var_s) / (ms * ms) / n)


@attrs.frozen(kw_only=True, slots=True)
class ArmComparison:
    """One arm against the control: each metric with its 95% interval, the difference's, and a verdict."""

    experiment: str | None
    arm: str
    control: str
    stats: TaskStats
    success_rate_ci: tuple[float, float]
    cost_per_success_ci: tuple[float, float] | None
    success_rate_diff: float
    success_rate_diff_ci: tuple[float, float]
    cost_per_success_diff: float | None
    cost_per_success_diff_ci: tuple[float, float] | None
    verdict: str  # "control", "significant: ...", "not yet significant", "no successes yet"

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "arm": self.arm,
            "control": self.control,
            **{k: v for k, v in self.stats.to_dict().items()},
            "success_rate_ci": list(self.success_rate_ci),
            "cost_per_success_ci": None if self.cost_per_success_ci is None else list(self.cost_per_success_ci),
            "success_rate_diff": self.success_rate_diff,
            "success_rate_diff_ci": list(self.success_rate_diff_ci),
            "cost_per_success_diff": self.cost_per_success_diff,
            "cost_per_success_diff_ci": None
            if self.cost_per_success_diff_ci is None
            else list(self.cost_per_success_diff_ci),
            "verdict": self.verdict,
        }


def compare_arms(report: TaskReport, control: str | None = None) -> list[ArmComparison]:
    """Compare the arms of a task report grouped by ``("experiment", "arm")`` (or ``("arm",)``).

    ``control`` names the reference arm (default: an arm named ``control``, else the first by name).
    """
    if report.by not in (("experiment", "arm"), ("arm",)):
        raise ValueError("compare_arms needs a task report by ('experiment', 'arm') or ('arm',)")
    out: list[ArmComparison] = []
    by_exp: dict[Any, list[TaskStats]] = {}
    for g in report.groups:
        if g.key[-1] is None:
            continue  # calls outside any arm
        by_exp.setdefault(g.key[0] if len(g.key) == 2 else None, []).append(g)
    for exp, groups in sorted(by_exp.items(), key=lambda kv: str(kv[0])):
        groups = sorted(groups, key=lambda g: str(g.key[-1]))
        names = [str(g.key[-1]) for g in groups]
        ref_name = control if control in names else ("control" if "control" in names else names[0])
        ref = groups[names.index(ref_name)]
        for g in groups:
            out.append(_compare(exp, g, ref))
    return out


def _interval(value: float, var: float | None) -> tuple[float, float] | None:
    if var is None:
        return None
    half = Z95 * math.sqrt(var)
    return (value - half, value + half)


def _compare(exp: Any, g: TaskStats, ref: TaskStats) -> ArmComparison:
    sr, ref_sr = g.success_rate, ref.success_rate
    lo1, hi1 = wilson(g.successes, g.decided)
    lo0, hi0 = wilson(ref.successes, ref.decided)
    diff = sr - ref_sr
    # Newcombe's hybrid score interval for a difference of proportions, from the two Wilson intervals
    diff_ci = (diff - math.hypot(sr - lo1, hi0 - ref_sr), diff + math.hypot(hi1 - sr, ref_sr - lo0))
    cps, ref_cps = g.cost_per_success, ref.cost_per_success
    var, ref_var = ratio_variance(g), ratio_variance(ref)
    cps_ci = _interval(cps, var) if cps is not None else None
    cps_diff = cps - ref_cps if cps is not None and ref_cps is not None else None
    cps_diff_ci = (
        _interval(cps_diff, var + ref_var) if cps_diff is not None and var is not None and ref_var is not None else None
    )
    if g is ref:
        verdict = "control"
    elif cps is None:
        verdict = "no successes yet"
    else:
        found = []
        if diff_ci[0] > 0 or diff_ci[1] < 0:
            found.append(f"success rate {'higher' if diff > 0 else 'lower'}")
        if cps_diff_ci is not None and (cps_diff_ci[0] > 0 or cps_diff_ci[1] < 0):
            found.append(f"cost per successful task {'higher' if (cps_diff or 0) > 0 else 'lower'}")
        verdict = "significant: " + ", ".join(found) if found else "not yet significant"
    return ArmComparison(
        experiment=exp,
        arm=str(g.key[-1]),
        control=str(ref.key[-1]),
        stats=g,
        success_rate_ci=(lo1, hi1),
        cost_per_success_ci=cps_ci,
        success_rate_diff=diff,
        success_rate_diff_ci=diff_ci,
        cost_per_success_diff=cps_diff,
        cost_per_success_diff_ci=cps_diff_ci,
        verdict=verdict,
    )


__all__ = [
    "ArmComparison",
    "TaskReport",
    "TaskStats",
    "compare_arms",
    "latest_outcomes",
    "ratio_variance",
    "task_costs",
    "task_report",
    "task_report_from_costs",
    "wilson",
]


def _pct(v: float) -> str:
    return f"{v * 100:.1f}%"


def tasks_table(report: TaskReport) -> list[str]:
    """Text lines: one row per group (cost per successful task, success rate, failed and open cost)."""
    from .render import _grid, key_label, usd, visible

    header = [
        *report.by,
        "tasks",
        "ok",
        "failed",
        "open",
        "success",
        "$/task",
        "$/successful task",
        "failed $",
        "open $",
    ]
    rows = [
        [
            *(visible(key_label(k)) for k in g.key),
            f"{g.tasks:,}",
            f"{g.successes:,}",
            f"{g.failures:,}",
            f"{g.open:,}",
            _pct(g.success_rate),
            usd(g.cost_per_task),
            "-" if g.cost_per_success is None else usd(g.cost_per_success),
            usd(g.failed_cost_usd),
            usd(g.open_cost_usd),
        ]
        for g in report.groups
    ]
    aligns = ["<"] * len(report.by) + [">"] * (len(header) - len(report.by))
    return [f"tasks by {' x '.join(report.by)}", *_grid(header, aligns, rows)]


def arms_table(comparisons: Sequence[ArmComparison]) -> list[str]:
    from .render import _grid, usd, visible

    def ci(pair: tuple[float, float] | None, fmt: Any) -> str:
        return "-" if pair is None else f"[{fmt(pair[0])}, {fmt(pair[1])}]"

    header = ["experiment", "arm", "tasks", "success (95% CI)", "$/successful task (95% CI)", "vs control", "verdict"]
    rows = []
    for c in comparisons:
        cps = c.stats.cost_per_success
        rows.append(
            [
                visible(str(c.experiment)),
                visible(c.arm),
                f"{c.stats.decided:,}",
                f"{_pct(c.stats.success_rate)} {ci(c.success_rate_ci, _pct)}",
                "-" if cps is None else f"{usd(cps)} {ci(c.cost_per_success_ci, usd)}",
                ""
                if c.arm == c.control
                else f"{c.success_rate_diff * 100:+.1f} pts {ci(c.success_rate_diff_ci, _pct)}",
                c.verdict,
            ]
        )
    return ["arms (each against its control)", *_grid(header, ["<", "<", ">", ">", ">", ">", "<"], rows)]


__all__ += ["arms_table", "tasks_table"]
