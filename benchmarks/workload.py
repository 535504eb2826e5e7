"""What the stack saves and what it costs in wrong answers, on a replay of real-shaped traffic.

    python benchmarks/workload.py                      # the table (development split, 2,000 trace rows)
    python benchmarks/workload.py --json               # one JSON object: a key per configuration ("full": the stack)
    python benchmarks/workload.py --split heldout      # the held-out split (nothing was tuned on it)
    python benchmarks/workload.py --quick              # a smoke run (1,000 rows)
    python benchmarks/workload.py --qqp my.jsonl --mmlu my.jsonl --squad my.json --trace my.csv   # other data

The workload (benchmarks/workload_trace.py) is built from the files given (defaults: the copies in
benchmarks/data, see their PROVENANCE notes): Quora question pairs give questions with true
duplicate structure (paraphrases and near misses), MMLU routing labels say which model knows
which answer, SQuAD articles give retrieved context, the Azure LLM conversation trace gives arrival
times and prompt and answer sizes. Every configuration (benchmarks/workload_configs.py,
benchmarks/workload_litellm.py) replays the same trace in this process against a fake provider that
answers from the data (benchmarks/workload_fake.py); benchmarks/workload_score.py says how cost,
wrong answers, the oracle and overhead are counted. ``--save-trace`` writes the trace as JSON and
``--load-trace`` replays one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import attrs

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only contend
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from workload_configs import StackSettings, costkit_configurations, train_router  # noqa: E402
from workload_data import Paths, load  # noqa: E402
from workload_litellm import litellm_configurations  # noqa: E402
from workload_replay import replay  # noqa: E402
from workload_score import oracle_by_prompt, oracle_usd, score  # noqa: E402
from workload_trace import Spec, Workload, generate, load_workload, save, summary  # noqa: E402

GOAL = {"oracle_ratio": 1.5, "saving": 0.80, "wrong_rate": 0.02}


def build(args: argparse.Namespace) -> Workload:
    if args.load_trace:
        return load_workload(Path(args.load_trace))
    paths = Paths(qqp=Path(args.qqp), mmlu=Path(args.mmlu), squad=Path(args.squad), trace=Path(args.trace))
    spec = Spec(requests=args.requests, seed=args.seed, fault_rate=args.fault_rate)
    workload = generate(load(paths, args.split), spec)
    if args.save_trace:
        save(workload, Path(args.save_trace))
    return workload


def run(
    workload: Workload, names: list[str] | None, log: Any, settings: StackSettings = StackSettings()
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    oracle = oracle_usd(workload)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        router = train_router(workload.router_examples, Path(tmp) / "router.npz")
        router["train_s"] = round(time.perf_counter() - t0, 1)
        configs = [*costkit_configurations(Path(tmp) / "router.npz", settings), *litellm_configurations()]
        if names:
            configs = [c for c in configs if c.name in names or c.name == "baseline"]
        baseline_usd = None
        for config in configs:
            log(f"replaying {config.name} ...")
            try:
                result = replay(workload, config, seed=workload.spec.seed)
            except Exception as exc:  # a configuration that cannot run says why, the others go on
                out[config.name] = {"error": f"{type(exc).__name__}: {exc}"}
                log(f"  {config.name} failed: {exc!r}")
                continue
            figures = score(workload, result, baseline_usd, oracle)
            if config.name == "baseline":
                baseline_usd = figures["cost_usd"]
                figures["saving"] = 0.0
            out[config.name] = figures
            log(
                f"  {config.name}: ${figures['cost_usd']:.4f}, wrong {figures['wrong_rate']:.2%}, {result.wall_s:.0f} s"
            )
    out["workload"] = {
        "split": workload.split,
        "spec": attrs.asdict(workload.spec),
        **summary(workload),
        "oracle_usd": round(oracle, 6),
        "oracle_by_prompt": {k: round(v, 6) for k, v in oracle_by_prompt(workload).items()},
        "router": router,
        "stack_settings": attrs.asdict(settings),
        "goal": GOAL,
    }
    return out


def goal_checks(full: dict[str, Any]) -> list[str]:
    """Each goal with the full stack's figure and whether it was met."""
    ratio, saving, wrong = full["oracle_ratio"], full["saving"], full["wrong_rate"]
    return [
        f"cost <= {GOAL['oracle_ratio']}x oracle: {ratio:.2f}x ({_met(ratio <= GOAL['oracle_ratio'])})",
        f"saving >= {GOAL['saving']:.0%}: {saving:.1%} ({_met(saving >= GOAL['saving'])})",
        f"wrong <= {GOAL['wrong_rate']:.0%}: {wrong:.2%} ({_met(wrong <= GOAL['wrong_rate'])}; "
        f"95% upper bound, clustered by question: {full['wrong_rate_upper']:.2%})",
    ]


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def table(result: dict[str, Any]) -> str:
    meta = result["workload"]
    lines = [
        f"workload: {meta['split']} split, {meta['requests']} requests ({meta['by_feature']}), "
        f"{meta['distinct_questions']} distinct questions, {meta['exact_repeats']} exact repeats, "
        f"{meta['paraphrased_repeats']} paraphrased, {meta['near_miss_pairs_asked']} near-miss pairs asked, "
        f"{meta['in_flight_duplicates']} in-flight duplicates, {meta['client_retries']} client retries, "
        f"{meta['offline']} offline; oracle ${meta['oracle_usd']:.4f}",
        "",
        f"{'configuration':22s} {'cost $':>10s} {'saving':>8s} {'wrong':>7s} {'wrong abs':>9s} {'failed':>7s} "
        f"{'x oracle':>8s} {'p50 us':>8s} {'p99 us':>8s} {'provider':>8s}",
    ]
    for name, f in result.items():
        if name == "workload":
            continue
        if "error" in f:
            lines.append(f"{name:22s} could not run: {f['error']}")
            continue

        def us(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}"

        lines.append(
            f"{name:22s} {f['cost_usd']:10.4f} {f['saving']:8.1%} {f['wrong_rate']:7.2%} {f['wrong_rate_abs']:9.2%} "
            f"{f['failed_rate']:7.2%} {f['oracle_ratio']:8.2f} {us(f['overhead_us_p50']):>8s} "
            f"{us(f['overhead_us_p99']):>8s} {f['provider_calls']:8d}"
        )
    full = result.get("full")
    if full and "error" not in full:
        lines += ["", "full stack against the goal: " + "; ".join(goal_checks(full))]
    notes = [f"  {name}: {f['note']}" for name, f in result.items() if name != "workload" and f.get("note")]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 1,000 trace rows")
    ap.add_argument("--split", choices=("dev", "heldout"), default="dev")
    ap.add_argument("--requests", type=int, default=None, help="trace rows to use (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fault-rate", type=float, default=Spec().fault_rate)
    ap.add_argument("--configs", nargs="*", help="only these configurations (the baseline always runs)")
    ap.add_argument("--qqp", default=str(getattr(Paths(), "qqp")))
    ap.add_argument("--mmlu", default=str(getattr(Paths(), "mmlu")))
    ap.add_argument("--squad", default=str(getattr(Paths(), "squad")))
    ap.add_argument("--trace", default=str(getattr(Paths(), "trace")))
    ap.add_argument("--router-target", type=float, default=StackSettings().router_target_quality,
                    help="the learned router's target_quality (router alone and in the full stack)")  # fmt: skip
    ap.add_argument("--compress-retrieved", type=float, default=StackSettings().compress_retrieved,
                    help="PromptCompressor(retrieved=...) (compressor alone and in the full stack)")  # fmt: skip
    ap.add_argument("--json-out", help="also write the JSON object to this file")
    ap.add_argument("--save-trace", help="write the generated trace as JSON")
    ap.add_argument("--load-trace", help="replay a trace written by --save-trace")
    args = ap.parse_args(argv)
    if args.requests is None:
        args.requests = 1000 if args.quick else Spec().requests
    warnings.simplefilter("ignore")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    workload = build(args)
    settings = StackSettings(router_target_quality=args.router_target, compress_retrieved=args.compress_retrieved)
    result = run(workload, args.configs, log, settings)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
