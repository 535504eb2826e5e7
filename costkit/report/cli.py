"""The ``costkit`` console script.

    costkit report costs.db --by feature --by tenant --since 2026-11-01 --format html -o report.html
    costkit report postgresql://host/db --tasks --arms --forecast --alerts --format json
    costkit report --rebuild-rollups old.db
    costkit dashboard costs.db --port 8050

``--by`` may be given several times (one table per grouping); ``--by tenant,feature`` groups by
the combination. ``--since`` / ``--until`` take a date (UTC day; ``--until`` includes that day) or
an ISO datetime. The input is a SQLite or JSONL file written by costkit's sinks, or a Postgres
ledger's URL.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigError
from ..sinks.postgres import is_postgres_url, redact
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
    rep.add_argument("path", nargs="?", help=_PATH_HELP)
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
    rep.add_argument("--forecast", action="store_true", help="also: month-end spend per feature with a 95%% interval")
    rep.add_argument(
        "--alerts", action="store_true", help="also: the alerts the records raise (anomalies, bursts, caches)"
    )
    rep.add_argument(
        "--quality",
        action="store_true",
        help="also: per feature, the share of routed calls the learned router found unfamiliar and the "
        "semantic cache's live false-hit rate from verified samples",
    )
    rep.add_argument(
        "--rebuild-rollups",
        action="store_true",
        help="first recompute the rollups of a SQLite file written before them (then the report is fast)",
    )
    _alert_options(rep)
    dash = sub.add_parser(
        "dashboard",
        help="serve a live dashboard of the records on 127.0.0.1",
        description="A local web page over the records (SQLite, JSONL or a postgresql:// URL), refreshing live.",
    )
    dash.add_argument("path", nargs="?", help=_PATH_HELP)
    dash.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)"
    )
    dash.add_argument("--port", type=int, default=8050, help="port (default 8050; 0: any free port)")
    dash.add_argument("--refresh-s", type=float, default=5.0, help="seconds between the page's refreshes (default 5)")
    dash.add_argument("--days", type=float, default=7.0, help="days shown, ending at the latest record (default 7)")
    _alert_options(dash)
    sub.add_parser("batch", help="batch jobs: status, run (costkit batch --help)", add_help=False)
    return parser


_PATH_HELP = (
    "a costkit SQLite (.db) or JSONL (.jsonl) file, or a postgresql:// URL; default: the file costkit.wrap() "
    "writes ($COSTKIT_DB, else ~/.local/share/costkit/costs.db)"
)


def _alert_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("alert rules (cost anomalies and cache false hits / stale entries always)")
    g.add_argument(
        "--anomaly-min-usd",
        type=float,
        default=1.0,
        help="a cost anomaly is at least this many USD above the hour's median (default 1.0)",
    )
    g.add_argument("--burst-usd", type=float, help="alert when a tenant spends more than this within --burst-window-s")
    g.add_argument(
        "--burst-factor",
        type=float,
        help="alert when a tenant spends this many times its own usual rate within --burst-window-s "
        "(and at least --burst-min-usd)",
    )
    g.add_argument("--burst-min-usd", type=float, default=0.01, help="with --burst-factor (default 0.01)")
    g.add_argument("--burst-window-s", type=float, default=60.0, help="the burst window (default 60 s)")
    g.add_argument("--min-hit-rate", type=float, help="alert when a feature's cache hit rate in an hour is under this")
    g.add_argument("--ttl-s", type=float, help="alert when a cache hit serves an entry older than this many seconds")


def alert_rules(args: argparse.Namespace) -> list[Any]:
    """The rules the CLI options ask for: cost anomalies and cache health always, bursts with --burst-usd."""
    from ..alerts import Burst, CacheHealth, CostAnomaly

    rules: list[Any] = [
        CostAnomaly(min_usd=args.anomaly_min_usd),
        CacheHealth(min_hit_rate=args.min_hit_rate, ttl_s=args.ttl_s),
    ]
    if args.burst_usd is not None or args.burst_factor is not None:
        rules.append(
            Burst(
                max_usd=args.burst_usd,
                factor=args.burst_factor,
                min_usd=args.burst_min_usd,
                window_s=args.burst_window_s,
            )
        )
    return rules


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
    if args.rebuild_rollups:
        _rebuild(args.path)
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
    name = "postgres" if is_postgres_url(args.path) else Path(args.path).name
    title = args.title or f"costkit report: {name}"
    source = redact(args.path) if is_postgres_url(args.path) else str(args.path)
    extra = _sections(args, groupings, since, until, equals)
    if args.format == "json":
        from .render import to_json

        text = to_json(reports, source=source, filters=filters, extra={k: v for k, v in extra.items() if v is not None})
    elif args.format == "csv":
        from .render import to_csv

        text = to_csv(reports, tasks=extra.get("tasks") or (), arms=extra.get("arms") or ())
    elif args.format == "html":
        text = _html(args.path, reports, title=title, since=since, until=until, args=args)
    else:
        from .render import describe_filters, to_table

        text = to_table(reports, title=f"{title}  (filters: {describe_filters(filters)})", top=args.top)
        text += _text_sections(extra)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({reports[0].total.records:,} records)", file=sys.stderr)
    else:
        out.write(text)
    return 0


def _rebuild(path: str) -> None:
    if is_postgres_url(path):
        raise ConfigError(
            "--rebuild-rollups", "a Postgres ledger's rollups are kept by PostgresSink; nothing to rebuild"
        )
    from ..sinks.sqlite import rebuild_rollups
    from .source import file_format

    if not Path(path).is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if file_format(path) != "sqlite":
        raise ConfigError("--rebuild-rollups", "only a SQLite file has rollups (a JSONL file is read whole)")
    n = rebuild_rollups(path)
    print(f"rebuilt the rollups of {path}: {n:,} records", file=sys.stderr)


def _sections(
    args: argparse.Namespace, groupings: list[tuple[str, ...]], since: Any, until: Any, equals: dict[str, Any]
) -> dict[str, Any]:
    """What --tasks, --arms, --forecast, --alerts and --quality add (None when not asked for)."""
    out: dict[str, Any] = {"tasks": None, "arms": None, "forecast": None, "alerts": None, "quality": None}
    if args.format == "html" or not (args.tasks or args.arms or args.forecast or args.alerts or args.quality):
        return out  # the HTML page has them all
    from .source import load_outcomes, load_records
    from .tasks import compare_arms, task_report

    if args.tasks or args.arms:
        outcomes = load_outcomes(args.path)
    if args.tasks:
        out["tasks"] = [
            task_report(load_records(args.path, since=since, until=until, **equals), outcomes, by=g) for g in groupings
        ]
    if args.arms:
        by_arm = task_report(
            load_records(args.path, since=since, until=until, **equals), outcomes, by=("experiment", "arm")
        )
        out["arms"] = compare_arms(by_arm)
    if args.forecast or args.alerts or args.quality:
        from .store import open_store

        with open_store(args.path) as store:
            if args.quality:
                from .render import QUALITY_NOTES, quality_signals

                out["quality"] = quality_signals(store.noted_flags("feature", QUALITY_NOTES, since=since, until=until))
            if args.forecast:
                from .forecast import forecast_store

                out["forecast"] = forecast_store(store, as_of=until)
            if args.alerts:
                from ..alerts import evaluate

                out["alerts"] = evaluate(store, alert_rules(args), since=since, until=until)
    return out


def _text_sections(extra: dict[str, Any]) -> str:
    from ..alerts import describe
    from .render import forecast_lines
    from .tasks import arms_table, tasks_table

    lines: list[str] = []
    for t in extra.get("tasks") or ():
        lines += ["", *tasks_table(t)]
    if extra.get("arms") is not None:
        lines += ["", *arms_table(extra["arms"])]
    if extra.get("forecast") is not None:
        lines += ["", *forecast_lines(extra["forecast"])]
    if extra.get("alerts") is not None:
        lines += ["", f"alerts ({len(extra['alerts'])})", *describe(extra["alerts"])]
    if extra.get("quality") is not None:
        from .render import quality_lines

        lines += ["", *quality_lines(extra["quality"])]
    return "\n".join(lines) + "\n" if lines else ""


def _html(path: str, reports: Any, *, title: str, since: Any, until: Any, args: argparse.Namespace) -> str:
    """The dashboard's page over the whole file (or --since/--until), with the groupings' charts and tables."""
    from ..dashboard import dashboard_data
    from .html import to_html
    from .store import open_store

    with open_store(path) as store:
        data = dashboard_data(store, since=since, until=until, days=36500, rules=alert_rules(args), title=title)
    equals = {k: getattr(args, k) for k in ("tenant", "feature", "model", "provider", "route", "prompt_version")}
    return to_html(reports, title=title, filters={k: v for k, v in equals.items() if v is not None}, data=data)


def run_dashboard(args: argparse.Namespace) -> int:
    from ..dashboard import serve

    path = args.path if args.path is not None else default_records_path()
    if not is_postgres_url(path) and not Path(path).is_file():
        raise FileNotFoundError(f"no such file: {path}")
    server = serve(
        path, host=args.host, port=args.port, refresh_s=args.refresh_s, days=args.days, rules=alert_rules(args)
    )
    print(
        f"costkit dashboard: {server.url}  (records: {redact(path) if is_postgres_url(path) else path}; Ctrl-C stops)"
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``costkit`` script; returns the exit status (0 ok, 2 usage or input error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["batch"]:  # its own parser: costkit/batch/cli.py
        from ..batch.cli import main as batch_main

        return batch_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("report", "dashboard"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return run_report(args, sys.stdout) if args.command == "report" else run_dashboard(args)
    except FileNotFoundError as exc:
        print(f"costkit: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"costkit: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, sqlite3.Error) as exc:
        where = redact(args.path) if is_postgres_url(args.path) else args.path
        print(f"costkit: error: cannot read {where}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a database driver's own errors (psycopg): one line, not a traceback
        if type(exc).__module__.split(".")[0] != "psycopg":
            raise
        print(f"costkit: error: cannot read {redact(str(args.path))}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
