"""How often the month-end forecast's 95% interval holds, and how close its point forecast is.

    python benchmarks/forecast.py [--months 2000] [--seed 0]

Simulated months of daily spend (no real multi-month cost ledger is available here), each with
14 days of history before the 1st, under four kinds of traffic the method was not tuned on (its
one setting, 14 days of history, was fixed before this ran):

* ``steady``: independent days, lognormal noise (sd 30%);
* ``weekly``: the same, weekends at 40% of weekdays;
* ``growing``: the same as steady, growing 2% a day;
* ``step``: steady, then spend doubles on the 10th.

At days 7, 14 and 21 of a 30-day month, the forecast (:func:`costkit.report.forecast.forecast_series`)
is compared with the month's real total. Baseline in the same run: the run-rate forecast most
dashboards show (spent so far x 30 / days elapsed). Printed: the interval's coverage and the
median absolute percentage error of both point forecasts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costkit.report.forecast import forecast_series

MONTH = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp()  # November: 30 days
HISTORY = 14
DAYS = 30


def simulate(kind: str, rng: random.Random) -> list[float]:
    """Daily spend for the 14 history days and the 30 days of the month."""
    base = rng.uniform(5, 500)
    out = []
    for i in range(HISTORY + DAYS):
        day = i - HISTORY  # 0 = the 1st
        level = base
        if kind == "weekly" and dt.datetime.fromtimestamp(MONTH + day * 86400, dt.timezone.utc).weekday() >= 5:
            level *= 0.4
        if kind == "growing":
            level *= 1.02**i
        if kind == "step" and day >= 9:
            level *= 2
        out.append(level * rng.lognormvariate(-0.045, 0.3))
    return out


def one(kind: str, rng: random.Random, elapsed: int) -> tuple[bool, float, float]:
    daily = simulate(kind, rng)
    hours = {int((MONTH + (i - HISTORY) * 86400) // 3600) + 12: usd for i, usd in enumerate(daily)}
    as_of = MONTH + (elapsed - 1) * 86400 + 23 * 3600  # the last hour of day `elapsed`
    truth = sum(daily[HISTORY:])
    f = forecast_series(
        "x", {h: v for h, v in hours.items() if h * 3600 <= as_of}, as_of=as_of, history_start=MONTH - HISTORY * 86400
    )
    run_rate = sum(daily[HISTORY : HISTORY + elapsed]) * DAYS / elapsed
    covered = f.low_usd is not None and f.low_usd <= truth <= f.high_usd
    return covered, abs(f.forecast_usd - truth) / truth, abs(run_rate - truth) / truth


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--months", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(f"{args.months:,} simulated months per cell (seed {args.seed}); 95% interval, 14 days of history\n")
    print("| traffic | day of month | interval coverage | median abs. error: forecast | median abs. error: run rate |")
    print("|---|---:|---:|---:|---:|")
    for kind in ("steady", "weekly", "growing", "step"):
        for elapsed in (7, 14, 21):
            runs = [one(kind, rng, elapsed) for _ in range(args.months)]
            coverage = sum(c for c, _, _ in runs) / len(runs)
            ours = statistics.median(e for _, e, _ in runs)
            base = statistics.median(b for _, _, b in runs)
            print(f"| {kind} | {elapsed} | {coverage:.1%} | {ours:.1%} | {base:.1%} |")
    assert math.isfinite(coverage)


if __name__ == "__main__":
    main()
