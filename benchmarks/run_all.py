"""Run every benchmark, one after another, each comparing against its own baseline in the same run.

    python benchmarks/run_all.py            # the figures quoted in docs/ (tens of minutes on 2 cores)
    python benchmarks/run_all.py --quick    # smaller sizes, a few minutes: a smoke run
    python benchmarks/run_all.py overhead routing   # only these

Benchmarks that need a server (Redis) get one started here if redis-server is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (full arguments, quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "import_time": ([], ["--runs", "3"]),
    "overhead": ([], ["--rounds", "300"]),
    "cache_exact_hit": ([], ["--rounds", "500"]),
    "semantic_index": ([], ["--quick"]),
    "cache_qqp": ([], ["--seeds", "0", "--pairs", "6000"]),
    "routing": ([], ["--seeds", "2"]),
    "bench_resilience": ([], ["--n", "2000", "--repeat", "2"]),
    "bench_budget": ([], ["--n", "1000", "--repeat", "2"]),
    "bench_sinks": ([], ["--n", "5000", "--repeat", "2"]),
    "bench_fake_provider": ([], ["--n", "300", "--repeat", "2"]),
}
NEEDS_REDIS = {"bench_resilience", "bench_budget"}


def start_redis() -> tuple[subprocess.Popen[bytes] | None, str | None]:
    exe = shutil.which("redis-server")
    if exe is None:
        return None, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", tempfile.mkdtemp()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    return None, None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], help="which to run (default: all)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    names = args.names or list(BENCHMARKS)
    redis_proc, redis_url = start_redis() if NEEDS_REDIS & set(names) else (None, None)
    failed = []
    try:
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
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
