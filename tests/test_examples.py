"""The README's main example runs offline and shows what it claims."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_and_saves_money():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert "answer: Refunds are processed within 5 business days." in out
    assert "provider calls made: 7   cost records: 9" in out  # 3 FAQ asks -> 1 call; one 429 retried
    assert out.count("cache_hit") == 2
    assert "ticket_triage   gpt-4o-mini" in out  # classification routed to the cheap model
    total = next(line for line in out.splitlines() if line.strip().startswith("total"))
    saved = float(total.split("saved=$")[1].split()[0])
    assert saved > 0
