"""``costkit batch``: see and run batch jobs from the shell.

    costkit batch status jobs.db                 # every job in the state file, one line each
    costkit batch status jobs.db bj_3f2a...      # one job: items by status, chunks, spend
    costkit batch run requests.jsonl --method chat.completions.create --state jobs.db --sink costs.db

``run`` reads one request (the method's keyword arguments) per line, runs them as one job with
no policies, records to ``--sink`` and writes the answers, one JSON object per line, to
``--out``. Run the same command again after a crash: it resumes the job.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from ..errors import ConfigError
from .errors import BatchError
from .methods import METHODS
from .state import ITEM_STATUSES, JobStore


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="costkit batch", description="Batch jobs: status, and running a JSONL file.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    st = sub.add_parser("status", help="what the jobs in a state file are doing (no provider request)")
    st.add_argument("state", help="the batch state file (SQLite)")
    st.add_argument("job", nargs="?", help="one job id (default: every job)")
    st.add_argument("--json", action="store_true", help="JSON instead of a table")
    rn = sub.add_parser("run", help="run a JSONL file of requests as one batch job (resumes if it exists)")
    rn.add_argument("requests", help="JSONL: one request (the method's keyword arguments) per line")
    rn.add_argument("--method", required=True, choices=sorted(METHODS), help="the wrapped method each line calls")
    rn.add_argument("--state", default="costkit-batch.db", help="the batch state file (default: costkit-batch.db)")
    rn.add_argument("--sink", default=None, help="cost records: a .db (SQLite) or .jsonl file (default: none)")
    rn.add_argument("--out", default=None, help="write the answers here, one JSON object per line")
    rn.add_argument("--base-url", default=None, help="the provider's base URL (default: the SDK's)")
    rn.add_argument("--max-requests", type=int, default=None, help="at most this many requests per provider batch")
    rn.add_argument("--poll-initial", type=float, default=5.0, help="seconds before the first poll (default 5)")
    rn.add_argument("--poll-max", type=float, default=300.0, help="longest wait between polls (default 300)")
    rn.add_argument("--reconcile-after", type=float, default=30.0, help="seconds before a chunk in doubt is checked")
    rn.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _status_lines(store: JobStore, job_id: str | None) -> list[dict[str, Any]]:
    jobs = [j for j in store.jobs() if job_id is None or j.id == job_id]
    if job_id is not None and not jobs:
        raise BatchError(f"no batch job {job_id!r} in {store.path}")
    out = []
    for j in jobs:
        cost, interactive = store.spend(j.id)
        chunks = store.chunks(j.id)
        doc: dict[str, Any] = {
            "job": j.id,
            "provider": j.provider,
            "method": j.method,
            "status": j.status,
            "items": j.n_items,
            "counts": store.counts(j.id),
            "chunks_open": sum(1 for c in chunks if c.status != "ended"),
            "chunks_ended": sum(1 for c in chunks if c.status == "ended"),
            "cost_usd": cost,
            "interactive_usd": interactive,
            "saved_usd": interactive - cost,
        }
        if job_id is not None:
            doc["chunks"] = [
                {
                    "seq": c.seq,
                    "status": c.status,
                    "provider_batch": c.provider_batch,
                    "provider_status": c.provider_status,
                    "items": c.n_items,
                    "bytes": c.n_bytes,
                }
                for c in chunks
            ]
        out.append(doc)
    return out


def run_status(args: argparse.Namespace, out: TextIO) -> int:
    if not Path(args.state).exists():
        raise FileNotFoundError(f"no such state file: {args.state}")
    docs = _status_lines(JobStore(args.state), args.job)
    if args.json:
        out.write(json.dumps(docs, indent=2) + "\n")
        return 0
    if not docs:
        out.write(f"no batch jobs in {args.state}\n")
        return 0
    shown = [s for s in ITEM_STATUSES if any(d["counts"].get(s) for d in docs)]
    head = ["job", "method", "items", *shown, "batch $", "interactive $", "saved $"]
    rows = [
        [d["job"], d["method"], str(d["items"]), *(str(d["counts"].get(s, 0)) for s in shown),
         f"{d['cost_usd']:.6f}", f"{d['interactive_usd']:.6f}", f"{d['saved_usd']:.6f}"]
        for d in docs
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")
    for d in docs:
        for c in d.get("chunks", ()):
            out.write(
                f"  chunk {c['seq']}: {c['items']} items, {c['bytes']} bytes, {c['status']}"
                f" ({c['provider_batch'] or 'not confirmed'}: {c['provider_status'] or '-'})\n"
            )
    return 0


def run_job(args: argparse.Namespace, out: TextIO) -> int:
    import costkit

    from .job import run
    from .poll import Backoff
    from .split import ANTHROPIC_LIMITS, OPENAI_LIMITS

    method = METHODS[args.method]
    requests = [
        json.loads(line) for line in Path(args.requests).read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    kwargs = {"base_url": args.base_url} if args.base_url else {}
    if method.provider == "anthropic":
        import anthropic

        sdk: Any = anthropic.Anthropic(**kwargs)
    else:
        import openai

        sdk = openai.OpenAI(**kwargs)
    sink: Any = None
    if args.sink:
        from ..sinks import JSONLSink, SQLiteSink

        sink = JSONLSink(args.sink) if args.sink.endswith(".jsonl") else SQLiteSink(args.sink)
    client = costkit.wrap(sdk, sink=sink)
    limits = None
    if args.max_requests is not None:
        base = ANTHROPIC_LIMITS if method.provider == "anthropic" else OPENAI_LIMITS
        limits = attrs.evolve(base, max_requests=args.max_requests)
    answers = run(
        client,
        args.method,
        requests,
        state=args.state,
        progress=not args.no_progress,
        limits=limits,
        backoff=Backoff(initial_s=args.poll_initial, max_s=max(args.poll_max, args.poll_initial)),
        reconcile_after_s=args.reconcile_after,
    )
    if sink is not None:
        sink.close()
    lines = [json.dumps(_answer_doc(a)) for a in answers]
    if args.out:
        Path(args.out).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    failed = sum(1 for a in answers if not hasattr(a, "model_dump"))
    out.write(f"{len(answers)} answers, {failed} without one\n")
    return 0


def _answer_doc(answer: Any) -> dict[str, Any]:
    dump = getattr(answer, "model_dump", None)
    if callable(dump):
        return dict(dump(mode="json"))
    return {"error": {"kind": answer.kind, "message": answer.message, "status_code": answer.status_code}}


def main(argv: Sequence[str] | None = None) -> int:
    """``costkit batch ...``; returns the exit status (0 ok, 2 usage or input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.command == "status":
            return run_status(args, sys.stdout)
        return run_job(args, sys.stdout)
    except (FileNotFoundError, ConfigError, BatchError) as exc:
        print(f"costkit batch: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, sqlite3.Error) as exc:
        print(f"costkit batch: error: {exc}", file=sys.stderr)
        return 2


__all__ = ["build_parser", "main"]
