"""The ``costkit`` console script.

    costkit report costs.db --by feature --by tenant --since 2026-11-01 --format html -o report.html

``--by`` may be given several times (one table per grouping); ``--by tenant,feature`` groups by
the combination. ``--since`` / ``--until`` take a date (UTC day; ``--until`` includes that day) or
an ISO datetime. The input is a SQLite or JSONL file written by costkit's sinks.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigError
from .aggregate import DIMENSIONS, check_dimensions, parse_time

FORMATS = ("table", "json", "csv", "html")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="costkit", description="costkit: what your LLM calls cost, and why.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    rep = sub.add_parser(
        "report",
        help="aggregate a cost-record file (SQLite or JSONL) by feature, tenant, model, day ...",
        description="Which feature (tenant, model, route, day ...) spent the money. Groups are sorted by cost.",
    )
    rep.add_argument(
        "path",
        nargs="?",
        help="a costkit SQLite (.db) or JSONL (.jsonl) file; default: the file costkit.wrap() writes "
        "($COSTKIT_DB, else ~/.local/share/costkit/costs.db)",
    )
    rep.add_argument(
        "--by",
        action="append",
        metavar="DIM[,DIM]",
        help=f"group by (repeatable; comma = combined): {', '.join(DIMENSIONS)}. Default: feature",
    )
    rep.add_argument("--since", help="from this UTC date (YYYY-MM-DD) or ISO datetime, inclusive")
    rep.add_argument("--until", help="to this UTC date (inclusive) or ISO datetime (exclusive)")
    for tag in ("tenant", "feature", "model", "provider", "route", "prompt_version"):
        rep.add_argument(f"--{tag.replace('_', '-')}", dest=tag, help=f"only records whose {tag} is this")
    rep.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    rep.add_argument("-o", "--output", help="write here instead of standard output")
    rep.add_argument("--top", type=int, help="table format: show at most this many groups per grouping")
    rep.add_argument("--title", default=None, help="report title (html, table)")
    rep.add_argument(
        "--tasks",
        action="store_true",
        help="also: cost per successful task, success rate and failed cost per grouping (needs task tags "
        "and costkit.outcome)",
    )
    rep.add_argument(
        "--arms",
        action="store_true",
        help="also: compare experiment arms on success rate and cost per successful task, with 95%% intervals",
    )
    sub.add_parser("batch", help="batch jobs: status, run (costkit batch --help)", add_help=False)
    return parser


def _groupings(values: Sequence[str] | None) -> list[tuple[str, ...]]:
    raw = values or ["feature"]
    return [check_dimensions([d.strip() for d in v.split(",") if d.strip()], field="--by") for v in raw]


def default_records_path() -> str:
    """The file ``costkit.wrap()`` writes when given no sink."""
    from .._wrap import default_db_path

    return str(default_db_path())


def run_report(args: argparse.Namespace, out: TextIO) -> int:
    from .source import load_reports

    if args.path is None:
        args.path = default_records_path()
    groupings = _groupings(args.by)
    since = parse_time(args.since, field="--since") if args.since else None
    until = parse_time(args.until, end=True, field="--until") if args.until else None
    equals: dict[str, Any] = {
        k: getattr(args, k)
        for k in ("tenant", "feature", "model", "provider", "route", "prompt_version")
        if getattr(args, k) is not None
    }
    if args.top is not None and args.top < 1:
        raise ConfigError("--top", "expected a positive number")
    reports = load_reports(args.path, groupings, since=since, until=until, **equals)
    filters = {"since": args.since, "until": args.until, **equals}
    title = args.title or f"costkit report: {Path(args.path).name}"
    if args.format == "json":
        from .render import to_json

        text = to_json(reports, source=str(args.path), filters=filters)
    elif args.format == "csv":
        from .render import to_csv

        text = to_csv(reports)
    elif args.format == "html":
        from .html import to_html

        text = to_html(reports, title=title, source=str(args.path), filters=filters)
    else:
        from .render import describe_filters, to_table

        text = to_table(reports, title=f"{title}  (filters: {describe_filters(filters)})", top=args.top)
    if args.tasks or args.arms:
        text += _task_sections(args, groupings, since, until, equals)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({reports[0].total.records:,} records)", file=sys.stderr)
    else:
        out.write(text)
    return 0


def _task_sections(
    args: argparse.Namespace, groupings: list[tuple[str, ...]], since: Any, until: Any, equals: dict[str, Any]
) -> str:
    """The tasks and arms tables (text), or their JSON, appended to the report."""
    import json

    from .source import load_outcomes, load_records
    from .tasks import arms_table, compare_arms, task_report, tasks_table

    outcomes = load_outcomes(args.path)
    tables = (
        [task_report(load_records(args.path, since=since, until=until, **equals), outcomes, by=g) for g in groupings]
        if args.tasks
        else []
    )
    arms = (
        compare_arms(
            task_report(load_records(args.path, since=since, until=until, **equals), outcomes, by=("experiment", "arm"))
        )
        if args.arms
        else []
    )
    if args.format == "json":
        return (
            json.dumps({"tasks": [t.to_dict() for t in tables], "arms": [a.to_dict() for a in arms]}, indent=2) + "\n"
        )
    lines: list[str] = []
    for t in tables:
        lines += ["", *tasks_table(t)]
    if args.arms:
        lines += ["", *arms_table(arms)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``costkit`` script; returns the exit status (0 ok, 2 usage or input error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["batch"]:  # its own parser: costkit/batch/cli.py
        from ..batch.cli import main as batch_main

        return batch_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "report":
        parser.print_help(sys.stderr)
        return 2
    try:
        return run_report(args, sys.stdout)
    except FileNotFoundError as exc:
        print(f"costkit: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"costkit: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, sqlite3.Error) as exc:
        print(f"costkit: error: cannot read {args.path}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
