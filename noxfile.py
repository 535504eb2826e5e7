"""Developer sessions: tests, lint (ruff), typecheck (mypy), bench, and the SDK compatibility runs.

``compat`` and ``sdk_suites`` are not in the default list and CI does not run them (CI runs the
README's ``bash scripts/test``); scripts/compat/README.md says what they check and how long they take.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

COMPAT = Path("scripts/compat")
# costkit's tests that go through the SDKs: the drop-in and adapter tests, the fake provider (real
# SDK clients over HTTP), the tokenizers read from litellm's wheel, and the policies over a wrapped
# client. Not tests/test_pricing.py: it checks the newest LiteLLM price map (its size, models of the
# last months) against litellm.completion_cost, data that an older litellm lacks by design.
COMPAT_TESTS = (
    "tests/test_dropin.py",
    "tests/test_wrap.py",
    "tests/test_stream.py",
    "tests/testing",
    "tests/test_recorder.py",
    "tests/test_budgeted.py",
    "tests/test_tokens.py",
    "tests/policies",
)
SDKS = ("openai", "anthropic", "litellm")
# the SDK suites' own test dependencies (their dev groups, less the type checkers and linters)
SUITE_DEPS = (
    "pip",  # sdk_suite.py downloads the sdists with it
    "pytest",
    "pytest-asyncio",
    "pytest-xdist",
    "pytest-timeout",
    "respx",
    "dirty-equals",
    "inline-snapshot",
    "time-machine",
    "rich",
    "griffe",
    "hypothesis",
    "nest-asyncio",
    "http-snapshot[httpx]",
    "opentelemetry-sdk",
    "numpy",
    "pillow",
    "trio",
)


def _sdk_requirements(sdks: str) -> list[str]:
    """``lowest``: the pins in scripts/compat/lowest.txt; ``newest``: the newest releases."""
    if sdks == "lowest":
        return ["-r", str(COMPAT / "lowest.txt")]
    return ["--upgrade", *SDKS]


def _install(session: nox.Session, *args: str) -> None:
    """Install, rebuilding costkit from this checkout every time (a reused venv keeps no stale copy)."""
    if session.venv_backend == "uv":
        session.install("--reinstall-package", "costkit", *args)
    else:
        session.install(*args)
        session.install("--force-reinstall", "--no-deps", ".")


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The test suite exactly as CI runs it (installs redis-server if missing)."""
    session.run("bash", "scripts/test", *session.posargs, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "costkit", "tests", "benchmarks", "examples")
    session.run("ruff", "format", "--check", "costkit")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy>=1.11")
    session.run("mypy", "costkit")


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Every benchmark, each comparing against its baseline in the same run."""
    session.run("python", "benchmarks/run_all.py", *session.posargs, external=True)


@nox.session(python="3.11", venv_backend="uv|virtualenv")
@nox.parametrize("sdks", ["lowest", "newest"])
def compat(session: nox.Session, sdks: str) -> None:
    """costkit's drop-in and adapter tests against the lowest supported or the newest SDK releases.

    ``nox -s "compat(sdks='lowest')"``; extra arguments go to pytest (``-- -x``, ``-- tests/test_wrap.py``).
    """
    _install(session, ".[test]", *_sdk_requirements(sdks))
    out = Path(".nox", "compat-out", f"compat-{sdks}")
    out.mkdir(parents=True, exist_ok=True)
    xml = out / "junit.xml"
    targets = session.posargs or COMPAT_TESTS
    try:
        # redis and postgres tests need servers and no SDK; the MiniLM embedder needs torch (skips)
        # the pytest script, not ``python -m pytest``: that would put this checkout first on sys.path
        # and test the source tree instead of the costkit installed in this virtualenv
        session.run(
            "pytest", "-q", "-p", "no:cacheprovider", "-m", "not redis and not postgres",
            "--continue-on-collection-errors", "-o", "junit_family=xunit1", f"--junitxml={xml}", *targets,
        )  # fmt: skip
    finally:
        session.run("python", str(COMPAT / "junit.py"), str(xml), "--json", str(out / "summary.json"))


@nox.session(python="3.11", venv_backend="uv|virtualenv")
@nox.parametrize("sdks", ["newest", "lowest"])
def sdk_suites(session: nox.Session, sdks: str) -> None:
    """The openai and anthropic SDKs' own tests, raw and with their client fixtures wrapped by costkit.

    Writes .nox/compat-out/sdk_suites-<sdks>/<sdk>-<version>/diff.json: the tests that fail only
    when wrapped, grouped by cause. ``-- openai`` runs one SDK; ``-- --no-alone`` skips rerunning
    each wrapped-only failure in a process of its own (the slowest step).
    """
    _install(session, ".", "openai[aiohttp,realtime]", "anthropic[aiohttp]", *SUITE_DEPS, *_sdk_requirements(sdks))
    out = Path(".nox", "compat-out", f"sdk_suites-{sdks}")
    options = [arg for arg in session.posargs if arg.startswith("-")]
    for sdk in [arg for arg in session.posargs if not arg.startswith("-")] or ["openai", "anthropic"]:
        version = session.run("python", "-c", f"import importlib.metadata as m; print(m.version('{sdk}'))", silent=True)
        assert isinstance(version, str)
        session.run(
            "python", str(COMPAT / "sdk_suite.py"), sdk, "--out", str(out / f"{sdk}-{version.strip()}"),
            "--sdists", str(Path(".nox", "compat-out", "sdists")), *options,
        )  # fmt: skip
    # what the suites do not reach: `with client`, "not given" sentinels, signatures, del, isinstance
    session.run("python", str(COMPAT / "probe.py"), "--json", str(out / "probe.json"))
