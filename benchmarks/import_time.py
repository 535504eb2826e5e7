"""`import costkit` beside `import litellm`, each in a fresh interpreter, in one run.

Reports the median wall time of N fresh imports (python -X importtime's cumulative figure for the
top-level package) and checks that costkit pulls in none of openai, anthropic, litellm, faiss, numpy.

    python benchmarks/import_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("openai", "anthropic", "litellm", "faiss", "numpy")


def import_us(module: str) -> int:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                         text=True, env=env, check=True).stderr
    for line in out.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$", line.rstrip())
        if m and m.group(2) == module:
            return int(m.group(1))
    raise RuntimeError(f"no importtime line for {module}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    runs = ap.parse_args().runs
    probe = f"import sys, costkit; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                            check=True).stdout.strip()
    results = {m: [import_us(m) / 1000 for _ in range(runs)] for m in ("costkit", "litellm")}
    print(f"fresh-interpreter imports, median of {runs} (python -X importtime, cumulative ms)")
    for m, vals in results.items():
        print(f"  import {m:<8} {statistics.median(vals):8.1f} ms   (min {min(vals):.1f}, max {max(vals):.1f})")
    ratio = statistics.median(results["litellm"]) / statistics.median(results["costkit"])
    print(f"  litellm / costkit: {ratio:.1f}x")
    print(f"  heavy modules imported by `import costkit`: {loaded or 'none'}")


if __name__ == "__main__":
    main()
