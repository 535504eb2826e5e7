"""The batch lane: what the same job costs interactively and through the batch APIs, and how a
job killed with SIGKILL mid-way finishes when run again.

    python benchmarks/batch.py                 # 4,208 MMLU prompts per provider; 10,000-item restart
    python benchmarks/batch.py --n 500 --restart-n 2000

Everything runs against costkit's fake provider over HTTP with the real SDKs: token counts are
the fake's (costkit's tokenizer), prices are LiteLLM's map (interactive rates for the wrapped
calls, the map's batch rates for the batch records). Costs are the sums of the cost records.

Restart: ``costkit batch run`` (a child process) submits the job in chunks of 2,000; the third
batch's creation is answered late and the child is killed (SIGKILL) meanwhile; the same command
is run again and must finish with every item submitted exactly once. The baseline is the same
job run once, uninterrupted, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import costkit  # noqa: E402
from costkit.batch import Backoff, run  # noqa: E402
from costkit.sinks import MemorySink  # noqa: E402
from costkit.testing import FakeProvider, serve  # noqa: E402

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}


def prompts(n: int) -> list[str]:
    lines = (HERE / "data" / "mmlu_routing_dev.jsonl").read_text().splitlines()
    return [json.loads(line)["prompt"] for line in lines[:n]]


def requests(provider: str, texts: list[str]) -> list[dict]:
    model = MODELS[provider]
    out = []
    for text in texts:
        r = {"model": model, "messages": [{"role": "user", "content": text}], "temperature": 0}
        if provider == "anthropic":
            r = {"model": model, "max_tokens": 256, "messages": r["messages"]}
        out.append(r)
    return out


def client_for(server, provider: str, sink) -> object:
    sdk = server.anthropic_client() if provider == "anthropic" else server.openai_client()
    return costkit.wrap(sdk, sink=sink)


def compare(provider: str, texts: list[str]) -> None:
    reqs = requests(provider, texts)
    with serve(FakeProvider()) as server:
        sink = MemorySink()
        client = client_for(server, provider, sink)
        create = client.messages.create if provider == "anthropic" else client.chat.completions.create
        t0 = time.perf_counter()
        for r in reqs:
            create(**r)
        interactive_s = time.perf_counter() - t0
        interactive = sum(r.cost_usd for r in sink.records)

        sink = MemorySink()
        client = client_for(server, provider, sink)
        method = "messages.create" if provider == "anthropic" else "chat.completions.create"
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            answers = run(client, method, reqs, state=os.path.join(tmp, "jobs.db"), progress=False,
                          backoff=Backoff(initial_s=0.05, max_s=0.2))  # fmt: skip
            batch_s = time.perf_counter() - t0
        batch = sum(r.cost_usd for r in sink.records)
        saved = sum(r.savings.get("batch", 0.0) for r in sink.records)
    assert len(answers) == len(reqs) and all(hasattr(a, "model_dump") for a in answers)
    n = len(reqs)
    print(
        f"{provider:9} {MODELS[provider]:17} {n:6} items  interactive ${interactive:.6f}  batch ${batch:.6f}  "
        f"ratio {batch / interactive:.3f}  batch saving ${saved:.6f}  "
        f"wall: interactive {interactive_s / n * 1e3:.2f} ms/item, batch lane {batch_s / n * 1e3:.2f} ms/item"
    )


def _command(base_url: str, tmp: Path) -> list[str]:
    return [
        sys.executable, "-m", "costkit.report.cli", "batch", "run", str(tmp / "requests.jsonl"),
        "--method", "chat.completions.create", "--base-url", base_url, "--state", str(tmp / "jobs.db"),
        "--sink", str(tmp / "costs.jsonl"), "--max-requests", "2000", "--poll-initial", "0.05",
        "--poll-max", "0.2", "--reconcile-after", "0", "--no-progress",
    ]  # fmt: skip


def restart(n: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-costkit-fake"}
    lines = [
        json.dumps({"model": MODELS["openai"], "messages": [{"role": "user", "content": f"summarise record {i}"}]})
        for i in range(n)
    ]
    chunks = -(-n // 2000)

    with tempfile.TemporaryDirectory() as base, serve(FakeProvider()) as server:
        tmp = Path(base)
        (tmp / "requests.jsonl").write_text("\n".join(lines) + "\n")
        t0 = time.perf_counter()
        subprocess.run(_command(server.base_url, tmp), env=env, check=True, capture_output=True)
        once_s = time.perf_counter() - t0

    fake = FakeProvider()
    api = fake.batch_api
    api.set_timing(in_progress_s=3600.0)
    kill_after = min(2, chunks - 1)
    api.delay_next_create(60.0, after=kill_after)
    with tempfile.TemporaryDirectory() as base, serve(fake) as server:
        tmp = Path(base)
        (tmp / "requests.jsonl").write_text("\n".join(lines) + "\n")
        t0 = time.perf_counter()
        child = subprocess.Popen(_command(server.base_url, tmp), env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
        while len(api.submissions) < kill_after + 1 and child.poll() is None:
            time.sleep(0.02)
        time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed_at = time.perf_counter() - t0
        api.set_timing(in_progress_s=0.0)
        t1 = time.perf_counter()
        subprocess.run(_command(server.base_url, tmp), env=env, check=True, capture_output=True)
        restart_s = time.perf_counter() - t1
        records = (tmp / "costs.jsonl").read_text().splitlines()
    sent = Counter(int(c.rsplit("-", 1)[1]) for s in api.submissions for c in s.custom_ids)
    twice = sum(1 for v in sent.values() if v > 1)
    print(
        f"restart   {n} items in {chunks} batches: killed (SIGKILL) {killed_at:.1f} s in, after {kill_after + 1} "
        f"batches were created; the rerun finished in {restart_s:.1f} s (uninterrupted run: {once_s:.1f} s); "
        f"items submitted: {len(sent)}, twice: {twice}; records: {len(records)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4208, help="MMLU prompts per provider for the cost comparison")
    ap.add_argument("--restart-n", type=int, default=10_000, help="items in the kill -9 restart job")
    args = ap.parse_args()
    texts = prompts(args.n)
    print(f"costkit {costkit.__version__}, fake provider over HTTP, prices from LiteLLM's map")
    for provider in ("openai", "anthropic"):
        compare(provider, texts)
    restart(args.restart_n)


if __name__ == "__main__":
    main()
