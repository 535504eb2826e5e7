"""Run an SDK's own tests twice, raw and with its client fixtures wrapped by costkit; diff the two.

    python scripts/compat/sdk_suite.py openai --out DIR [--sdists DIR] [-n 0]

Runs in a virtualenv that already holds costkit, the SDK (the version under test) and the SDK's
test dependencies (the ``sdk_suites`` nox session installs them). Steps:

1. ``pip download --no-binary :all: --no-deps SDK==<installed version>``: the sdist carries the
   tests (kept in ``--sdists`` so a second run does not download again), unpacked under ``DIR``.
2. The suites' mock server (Stainless' Prism/Steady, fed an OpenAPI spec that is not in the
   sdist) cannot run offline. ``costkit.testing.serve()`` stands in at ``TEST_API_BASE_URL``: it
   answers the create calls (chat completions, responses, messages), plain and streamed, with
   bodies the SDK validates strictly; other endpoints fail in both runs alike.
3. pytest runs the chosen test paths with ``-p costkit_compat_plugin``: ``--costkit-mode=raw``,
   then ``--costkit-mode=wrapped``; each writes JUnit XML.
4. Each test that failed only when wrapped runs again, wrapped, in a process of its own: one that
   passes alone failed only because an earlier test left something on the shared session client.
5. ``DIR/diff.json``: counts per run, and every test that fails only when wrapped (and only when
   raw), with the line that says why, grouped by that line (or as "passes alone").
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import junit  # noqa: E402  (this folder, put on the path just above)


@dataclass(frozen=True)
class Suite:
    """Which tests of an SDK's sdist run, and which fixtures hand them the client."""

    paths: tuple[str, ...]
    fixtures: tuple[str, ...]
    base_url_suffix: str  # what the SDK's tests expect after host:port ("/v1" for openai)


SUITES = {
    "openai": Suite(
        paths=(
            "tests/lib",
            "tests/api_resources/chat",
            "tests/api_resources/test_responses.py",
            "tests/api_resources/responses",
            "tests/test_client.py",
        ),
        fixtures=("client", "async_client"),
        base_url_suffix="/v1",
    ),
    "anthropic": Suite(
        paths=(
            "tests/lib",
            "tests/api_resources/test_messages.py",
            "tests/api_resources/messages",
            "tests/test_client.py",
        ),
        fixtures=("client", "async_client", "snapshot_client", "async_snapshot_client"),
        base_url_suffix="",
    ),
}


def sdist(sdk: str, version: str, cache: Path) -> Path:
    """The SDK's sdist, from the cache or downloaded once by pip (the ordinary client)."""
    cache.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{sdk}-{re.escape(version)}\.tar\.gz$")
    found = [p for p in cache.iterdir() if pattern.match(p.name)]
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
             f"{sdk}=={version}", "-d", str(cache)],
            check=True,
        )  # fmt: skip
        found = [p for p in cache.iterdir() if pattern.match(p.name)]
    if not found:
        raise SystemExit(f"pip download left no {sdk}-{version}.tar.gz in {cache}")
    return found[0]


def unpack(archive: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / archive.name.removesuffix(".tar.gz")


@contextmanager
def stand_in_server() -> Iterator[str]:
    """``python -m costkit.testing`` on a free port; yields ``http://127.0.0.1:PORT``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "costkit.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.search(r"Anthropic base_url:\s+(http://\S+)", line)
            if match:
                # keep reading what it prints, so a full pipe never blocks it
                threading.Thread(target=proc.stdout.read, daemon=True).start()
                yield match.group(1).rstrip("/")
                return
        raise SystemExit("python -m costkit.testing exited before printing its address")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def pytest_args(src: Path, suite: Suite, mode: str, xml: Path, workers: str, targets: Sequence[str]) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-p", "costkit_compat_plugin", f"--costkit-mode={mode}",
        f"--costkit-fixtures={','.join(suite.fixtures)}", "-p", "no:cacheprovider", "-q", "-n", workers,
        "--continue-on-collection-errors", "-o", "junit_family=xunit1", f"--junitxml={xml}", "--timeout=120",
        *targets,
    ]  # fmt: skip


def pytest_env(src: Path, suite: Suite, base_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(src)])
    env["TEST_API_BASE_URL"] = base_url + suite.base_url_suffix
    env["DEFER_PYDANTIC_BUILD"] = "false"
    return env


def run_pytest(src: Path, suite: Suite, mode: str, out: Path, base_url: str, workers: str) -> float:
    """One pytest run over the suite; returns its wall time in seconds."""
    paths = [p for p in suite.paths if (src / p).exists()]
    args = pytest_args(src, suite, mode, out / f"{mode}.xml", workers, paths)
    started = time.monotonic()
    with open(out / f"{mode}.log", "w") as log:
        env = pytest_env(src, suite, base_url)
        subprocess.run(args, cwd=src, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    return time.monotonic() - started


def rerun_alone(src: Path, suite: Suite, out: Path, base_url: str, test_ids: Sequence[str]) -> dict[str, str]:
    """Each test in a process of its own, wrapped: which failures need an earlier test's leftovers.

    The SDKs' client fixtures are session-scoped: a test that patches the client and cannot undo
    the patch through the wrapper (``del wrapped.attr``) leaves it for every later test. A test
    that passes alone failed in the full run only because of such a leftover.
    """
    alone = out / "alone"
    alone.mkdir(exist_ok=True)
    env = pytest_env(src, suite, base_url)

    def one(index_and_id: tuple[int, str]) -> tuple[str, str]:
        index, tid = index_and_id
        xml = alone / f"{index}.xml"
        args = pytest_args(src, suite, "wrapped", xml, "0", [tid])
        subprocess.run(args, cwd=src, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        outcome = junit.read(xml).get(tid, junit.Outcome("missing")).outcome
        return tid, outcome

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(pool.map(one, enumerate(test_ids)))


_ADDRESS = re.compile(r"0x[0-9a-f]+|\d+(\.\d+)?")


def cause(key: str) -> str:
    """A failure's key line without addresses and numbers, so one cause groups its tests."""
    return _ADDRESS.sub("N", key)


def diff(
    raw: dict[str, junit.Outcome], wrapped: dict[str, junit.Outcome], alone: dict[str, str] | None = None
) -> dict[str, object]:
    def only(first: dict[str, junit.Outcome], second: dict[str, junit.Outcome]) -> dict[str, str]:
        return {
            tid: o.key
            for tid, o in sorted(first.items())
            if o.outcome in junit.FAILED and second.get(tid, junit.Outcome("missing")).outcome in ("passed", "skipped")
        }

    wrapped_only = only(wrapped, raw)
    groups: dict[str, list[str]] = {}
    for tid, key in wrapped_only.items():
        if alone is not None and alone.get(tid) == "passed":
            key = "passes alone: fails after an earlier test's leftovers on the shared client"
        groups.setdefault(cause(key), []).append(tid)
    return {
        "raw": junit.counts(raw),
        "wrapped": junit.counts(wrapped),
        "wrapped_only": wrapped_only,
        "wrapped_only_by_cause": dict(sorted(groups.items(), key=lambda kv: -len(kv[1]))),
        "raw_only": only(raw, wrapped),
        "alone": alone or {},
    }


_RAW_CAUSES = (
    (re.compile(r"no such endpoint"), "the stand-in server does not serve this endpoint (404)"),
    (re.compile(r"model is required"), "a create overload without `model`: the stand-in answers 400"),
    (re.compile(r"StorageLookupError|<class 'ellipsis'>"), "its inline-snapshot external file is not in the sdist"),
)


def raw_causes(raw: dict[str, junit.Outcome]) -> dict[str, int]:
    """Why tests fail without costkit: the stand-in server, files the sdist lacks, the rest by key line."""
    out: dict[str, int] = {}
    for outcome in raw.values():
        if outcome.outcome not in junit.FAILED:
            continue
        name = next((why for pattern, why in _RAW_CAUSES if pattern.search(outcome.key)), cause(outcome.key)[:120])
        out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def markdown(result: dict[str, Any]) -> str:
    """The wrapped-only failures as the README lists them: by cause, each test id under it."""
    lines = [
        f"{result['sdk']} {result['version']}: raw {result['raw']}, wrapped {result['wrapped']}; "
        f"{len(result['wrapped_only'])} fail only when wrapped",
        "",
    ]
    for key, tests in result["wrapped_only_by_cause"].items():
        lines.append(f"- {len(tests)} x `{key}`")
        lines.extend(f"  - `{tid}`" for tid in tests)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sdk", choices=sorted(SUITES))
    ap.add_argument("--out", type=Path, required=True, help="folder for the sdist's tree, logs, XML and diff.json")
    ap.add_argument("--sdists", type=Path, default=None, help="where downloaded sdists are kept (default: OUT/..)")
    # one process by default: the SDKs' client fixtures are session-scoped, so what one test leaves on
    # the client (a patch that was not undone) reaches the tests after it; with xdist workers which
    # tests those are depends on scheduling, and the list would change from run to run
    ap.add_argument("-n", "--workers", default="0", help="pytest-xdist workers for each run (default 0: in order)")
    ap.add_argument("--no-alone", action="store_true", help="skip rerunning each wrapped-only failure alone")
    ap.add_argument("--rediff", action="store_true", help="run nothing: diff the XML an earlier run left in OUT")
    ap.add_argument("--markdown", action="store_true", help="also print the wrapped-only list as markdown")
    args = ap.parse_args(argv)

    version = importlib.metadata.version(args.sdk)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    suite = SUITES[args.sdk]
    timings: dict[str, float] = {}
    if args.rediff:
        previous = json.loads((out / "diff.json").read_text()) if (out / "diff.json").exists() else {}
        timings = previous.get("seconds", {})
        alone = {tid: o.outcome for tid, o in junit.read(*sorted((out / "alone").glob("*.xml"))).items()}
    else:
        src = unpack(sdist(args.sdk, version, (args.sdists or out.parent).resolve()), out / "src")
        with stand_in_server() as base_url:
            for mode in ("raw", "wrapped"):
                timings[mode] = round(run_pytest(src, suite, mode, out, base_url, args.workers), 1)
            first = diff(junit.read(out / "raw.xml"), junit.read(out / "wrapped.xml"))
            started = time.monotonic()
            failing = [] if args.no_alone else list(first["wrapped_only"])  # type: ignore[call-overload]
            alone = rerun_alone(src, suite, out, base_url, failing)
            timings["alone"] = round(time.monotonic() - started, 1)
    src_root = out / "src" / f"{args.sdk}-{version}"
    result = {
        "sdk": args.sdk,
        "version": version,
        "paths": [p for p in suite.paths if (src_root / p).exists()],
        "fixtures": list(suite.fixtures),
        "seconds": timings,
        **diff(junit.read(out / "raw.xml"), junit.read(out / "wrapped.xml"), alone or None),
        "raw_failures_by_cause": raw_causes(junit.read(out / "raw.xml")),
    }
    (out / "diff.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.sdk} {version}: raw {result['raw']}, wrapped {result['wrapped']} ({timings} s)")
    print(f"{len(result['wrapped_only'])} fail only when wrapped:")
    for key, tests in result["wrapped_only_by_cause"].items():
        print(f"  {len(tests):4d}  {key}")
    print(f"details: {out / 'diff.json'}")
    if args.markdown:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
