"""Read pytest's JUnit XML into ``{test id: Outcome}``: the one format every run here writes.

Used by the compat sessions to list failures, and by ``sdk_suites`` to diff a raw run against a
wrapped one. Standard library only: it runs in any nox virtualenv and in the system interpreter.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

FAILED = ("failed", "error")


@dataclass(frozen=True)
class Outcome:
    """One test's result: ``passed``, ``failed``, ``error``, ``skipped``; ``key`` is the line that says why."""

    outcome: str
    key: str = ""


def test_id(case: ET.Element) -> str:
    """``tests/x/test_y.py::Class::test_z[param]`` from JUnit's dotted classname and the test name."""
    classname = case.get("classname", "")
    name = case.get("name", "")
    parts = classname.split(".")
    # the module is the longest dotted prefix that is a file path; the rest are classes
    file = case.get("file")
    if file:
        module_parts = Path(file).with_suffix("").parts
        classes = parts[len(module_parts) :]
        return "::".join([Path(file).as_posix(), *classes, name])
    for cut in range(len(parts), 0, -1):
        if parts[cut - 1].startswith("test"):
            path = "/".join(parts[:cut]) + ".py"
            return "::".join([path, *parts[cut:], name])
    return "::".join([*parts, name])


_E_LINE = re.compile(r"^E\s+(.*\S)", re.MULTILINE)
_EXCEPTION = re.compile(r"^[\w.]+(Error|Exception|Warning|Exit|Failed)\b")


def key_line(element: ET.Element) -> str:
    """The line that says why a test failed: the raised exception's line, or an assert's first line."""
    lines: list[str] = _E_LINE.findall(element.text or "")
    if not lines:
        return (element.get("message") or "").strip().split("\n")[0][:300]
    if lines[0].startswith("assert ") or lines[0].startswith("AssertionError"):
        return lines[0][:300]  # pytest's explanation of an assert follows; its first line names it
    # the first exception raised: in a chain ("During handling of the above exception...") the cause
    raised = [line for line in lines if _EXCEPTION.match(line)]
    return (raised[0] if raised else lines[0])[:300]


_RANK = {"failed": 3, "error": 2, "skipped": 1, "passed": 0}


def read(*paths: Path) -> dict[str, Outcome]:
    """Every test case in the given JUnit files, by id.

    pytest writes a second ``<testcase>`` for a teardown error after a failed call; the worse
    outcome is kept, and of two equally bad the first (the call's failure names the cause).
    """
    results: dict[str, Outcome] = {}
    for path in paths:
        if not Path(path).exists():
            continue
        root = ET.parse(path).getroot()
        for case in root.iter("testcase"):
            tid = test_id(case)
            failure, error, skipped = case.find("failure"), case.find("error"), case.find("skipped")
            if failure is not None:
                outcome = Outcome("failed", key_line(failure))
            elif error is not None:
                outcome = Outcome("error", key_line(error))
            elif skipped is not None:
                outcome = Outcome("skipped", (skipped.get("message") or "")[:300])
            else:
                outcome = Outcome("passed")
            seen = results.get(tid)
            if seen is None or _RANK[outcome.outcome] > _RANK[seen.outcome]:
                results[tid] = outcome
    return results


def counts(results: dict[str, Outcome]) -> dict[str, int]:
    out: dict[str, int] = {}
    for outcome in results.values():
        out[outcome.outcome] = out.get(outcome.outcome, 0) + 1
    return dict(sorted(out.items()))


def installed(names: tuple[str, ...] = ("openai", "anthropic", "litellm")) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    """``python scripts/compat/junit.py RUN.xml [--json OUT]``: the SDK versions, counts and failures of a run."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description="Summarize a pytest JUnit XML run for the compat sessions.")
    ap.add_argument("xml", type=Path)
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = ap.parse_args(argv)
    results = read(args.xml)
    failures = {tid: o.key for tid, o in sorted(results.items()) if o.outcome in FAILED}
    versions = installed()
    summary = {"versions": versions, "counts": counts(results), "failures": failures}
    print("versions:", " ".join(f"{k}=={v}" for k, v in versions.items()))
    print("counts:", summary["counts"])
    for tid, key in failures.items():
        print(f"  FAILED {tid}\n         {key}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
