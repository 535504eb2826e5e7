from __future__ import annotations

import subprocess
import sys

import costkit.sinks


def test_every_public_name_resolves() -> None:
    for name in costkit.sinks.__all__:
        assert getattr(costkit.sinks, name) is not None
    assert costkit.sinks.SQLiteSink.__module__ == "costkit.sinks.sqlite"


def test_importing_sinks_loads_no_optional_library() -> None:
    code = (
        "import sys, costkit, costkit.sinks, costkit.report; "
        "heavy = [m for m in ('opentelemetry', 'prometheus_client', 'openai', 'anthropic', 'litellm', 'numpy', 'faiss')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
