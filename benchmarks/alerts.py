"""The burst alert on real traffic: false alerts on normal traffic, and how fast it catches a loop.

    python benchmarks/alerts.py [--trials 40] [--seed 0]

Traffic: one hour of a production LLM conversation service (Azure LLM inference trace,
benchmarks/data/azure_llm_trace_conv.csv: real arrival times and token counts), spread over 40
tenants with Zipf weights (seeded), priced at gpt-4o-mini list prices ($0.15 / $0.60 per million
input / output tokens). The first 30 minutes tune the limit: 1.5 x the largest spend any tenant
had in one window there (one limit for all tenants, as a user would set it). The last 28 minutes
are held out: the rule runs over them as they are (every alert there is a false alert), then with
a loop injected (a random tenant calls once every ``gap`` seconds for 5 minutes, each call the
trace's median size: 1,020 prompt and 129 output tokens) at a random time, ``--trials`` times.

Compared in the same run: the absolute limit over the default 60-second window, the same over a
15-minute window (tuned the same way), and the relative limit (``factor=5`` x the tenant's own
average per window over the hour before, at least $0.01; fixed before this ran, not tuned). The
trace lasts one hour, so a tenant never has the default hour of history in the held-out half: the
relative rule is also run with ``baseline_s=900`` (the last 15 minutes).
Printed: the limit, false alerts, the share of loops caught within their 5 minutes and the median
time from the loop's start to the alert.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costkit.alerts import Burst, evaluate
from costkit.records import CostRecord

DATA = Path(__file__).resolve().parent / "data" / "azure_llm_trace_conv.csv"
IN_USD, OUT_USD = 0.15e-6, 0.60e-6  # gpt-4o-mini, per token
TENANTS = 40
TUNE_S = 1800
LOOP_S = 300
LOOP_TOKENS = (1020, 129)  # the trace's median prompt and output tokens


def load(seed: int) -> list[CostRecord]:
    rng = random.Random(seed)
    weights = [1 / (k + 1) ** 1.1 for k in range(TENANTS)]
    out = []
    with DATA.open() as f:
        for i, row in enumerate(csv.DictReader(f)):
            ts = dt.datetime.fromisoformat(row["TIMESTAMP"][:26]).replace(tzinfo=dt.timezone.utc).timestamp()
            tin, tout = int(row["ContextTokens"]), int(row["GeneratedTokens"])
            tenant = f"t{rng.choices(range(TENANTS), weights)[0]:02d}"
            out.append(_record(f"r{i}", ts, tenant, tin, tout))
    return out


def _record(rid: str, ts: float, tenant: str, tin: int, tout: int) -> CostRecord:
    return CostRecord(
        request_id=rid,
        attempt=1,
        kind="call",
        timestamp=ts,
        provider="openai",
        requested_model="gpt-4o-mini",
        model="gpt-4o-mini",
        tenant=tenant,
        input_tokens=tin,
        output_tokens=tout,
        cost_usd=tin * IN_USD + tout * OUT_USD,
    )


def largest_window(records: list[CostRecord], window_s: int, steps: int) -> float:
    """The most any tenant spent in one of the rule's windows (sums of ``steps`` buckets)."""
    step = window_s // steps
    buckets: dict[tuple[str, int], float] = {}
    for r in records:
        key = (r.tenant or "", int(r.timestamp // step))
        buckets[key] = buckets.get(key, 0.0) + (r.cost_usd or 0.0)
    best = 0.0
    for (tenant, b), _ in buckets.items():
        best = max(best, sum(buckets.get((tenant, b - k), 0.0) for k in range(steps)))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    records = load(args.seed)
    start = records[0].timestamp
    tune = [r for r in records if r.timestamp < start + TUNE_S]
    held = [r for r in records if r.timestamp >= start + TUNE_S]
    end = held[-1].timestamp
    print(
        f"{len(records):,} requests over {(end - start) / 60:.0f} min, {TENANTS} tenants; "
        f"tuning on the first {TUNE_S // 60} min ({len(tune):,}), held out: the rest ({len(held):,})\n"
    )
    print(
        "| window and limit | false alerts, held-out traffic | loop every 1 s: caught, median delay "
        "| loop every 0.25 s: caught, median delay |"
    )
    print("|---|---:|---:|---:|")
    rng = random.Random(args.seed + 1)
    trials = [(f"t{rng.randrange(TENANTS):02d}", rng.uniform(start + TUNE_S, end - LOOP_S)) for _ in range(args.trials)]
    rules = []
    for window_s, steps in ((60, 6), (900, 15)):
        limit = 1.5 * largest_window(tune, window_s, steps)
        rules.append((f"{window_s} s, absolute ${limit:.4f}", Burst(max_usd=limit, window_s=window_s, steps=steps)))
    rules.append(("60 s, relative: 5 x own last hour, >= $0.01", Burst(factor=5.0, min_usd=0.01)))
    # the trace is one hour long: with the default hour of history no tenant is judged in the held-out half
    rules.append(("60 s, relative: 5 x own last 15 min, >= $0.01", Burst(factor=5.0, min_usd=0.01, baseline_s=900)))
    for label, rule in rules:
        # the relative rule reads the hour before: it sees the tuning half too (no alert there counts)
        false = [a for a in evaluate(records, [rule]) if a.at >= start + TUNE_S]
        cells = []
        for gap in (1.0, 0.25):
            delays = []
            for k, (tenant, t0) in enumerate(trials):
                loop = [_record(f"loop{k}-{i}", t0 + i * gap, tenant, *LOOP_TOKENS) for i in range(int(LOOP_S / gap))]
                found = evaluate(sorted(records + loop, key=lambda r: r.timestamp), [rule], since=start + TUNE_S)
                hits = [a.at - t0 for a in found if a.subject["tenant"] == tenant and t0 <= a.at <= t0 + LOOP_S]
                if hits:
                    delays.append(min(hits))
            caught = len(delays) / len(trials)
            median = f"{statistics.median(delays):.0f} s" if delays else "-"
            cells.append(f"{caught:.0%}, {median}")
        print(f"| {label} | {len(false)} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
