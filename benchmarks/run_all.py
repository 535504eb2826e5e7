"""Run every benchmark, one after another, each comparing against its own baseline in the same run.

    python benchmarks/run_all.py            # the figures quoted in docs/ (tens of minutes on 2 cores)
    python benchmarks/run_all.py --quick    # smaller sizes, a few minutes: a smoke run
    python benchmarks/run_all.py overhead routing   # only these

Benchmarks that need a server (Redis) get one started here if redis-server is installed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _timing import redis_for_run

HERE = Path(__file__).resolve().parent

# name -> (full arguments, quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "import_time": ([], ["--runs", "3"]),
    "overhead": ([], ["--rounds", "300"]),
    "cache_exact_hit": ([], ["--rounds", "500"]),
    "semantic_index": ([], ["--quick"]),
    "embedders": ([], ["--texts", "100", "--rounds", "1"]),
    "cache_qqp": ([], ["--seeds", "0", "--pairs", "6000"]),
    "cache_quality": (["--band", "0.5"], ["--band", "0.5", "--qqp-pairs", "2000"]),
    "routing": ([], ["--seeds", "2"]),
    "bench_resilience": ([], ["--n", "2000", "--repeat", "2"]),
    "bench_budget": ([], ["--n", "1000", "--repeat", "2"]),
    "bench_sinks": ([], ["--n", "5000", "--repeat", "2"]),
    "bench_fake_provider": ([], ["--n", "300", "--repeat", "2"]),
    "context": ([], ["--conversations", "4", "--rounds", "100", "--articles", "Normans"]),
    "report": ([], ["--n", "50000", "--loop-n", "20000"]),
    "forecast": ([], ["--months", "200"]),
    "alerts": ([], ["--trials", "5"]),
    "batch": ([], ["--n", "2000"]),
    "workload": ([], ["--quick"]),
}
NEEDS_REDIS = {"bench_resilience", "bench_budget"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], help="which to run (default: all)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    names = args.names or list(BENCHMARKS)
    failed = []
    with redis_for_run(None if NEEDS_REDIS & set(names) else "") as redis_url:
        for name in names:
            full, quick = BENCHMARKS[name]
            cmd = [sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)]
            if name in NEEDS_REDIS and redis_url:
                cmd += ["--redis-url", redis_url]
            print(f"\n===== {name}: {' '.join(cmd[1:])}", flush=True)
            t = time.perf_counter()
            code = subprocess.call(cmd, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
            print(f"===== {name}: exit {code} in {time.perf_counter() - t:.0f} s", flush=True)
            if code:
                failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
