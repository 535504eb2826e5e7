"""Developer sessions: tests, lint (ruff), typecheck (mypy), bench, mutate (mutation testing of the money
paths), and the SDK compatibility runs.

``compat``, ``sdk_suites`` and ``mutate`` are not in the default list and CI does not run them (CI runs
the README's ``bash scripts/test``); scripts/compat/README.md and docs/testing.md say what they check and
how long they take.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

COMPAT = Path("scripts/compat")
# costkit's tests that go through the SDKs: the drop-in and adapter tests (every spending method over
# HTTP, the "not given" sentinels, SDK objects stored and rebuilt), the fake provider (real SDK clients
# over HTTP), the tokenizers read from litellm's wheel, the classification of the SDKs' exception
# classes, the batch lane, and the policies over a wrapped client. Not tests/test_pricing.py: it checks the
# newest LiteLLM price map (its size, models of the last months) against litellm.completion_cost,
# data that an older litellm lacks by design.
COMPAT_TESTS = (
    "tests/test_dropin.py",
    "tests/test_wrap.py",
    "tests/test_intercept.py",
    "tests/test_serialize.py",
    "tests/test_estimate.py",
    "tests/test_stream.py",
    "tests/testing",
    "tests/test_recorder.py",
    "tests/test_budgeted.py",
    "tests/test_tokens.py",
    "tests/test_classify.py",
    "tests/batch",
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


# ------------------------------------------------------------------------------------------ mutate
# Mutation testing of the money paths (docs/testing.md, "Mutation testing"). Not in CI's time budget.
# Each module's functions that decide a dollar (or a token) are mutated; mutmut runs, for each
# mutant, only the tests that called the mutated function. Globs are mutmut's mutant names:
# ``x_<function>`` for a module function, ``xǁ<Class>ǁ<method>`` for a method.
MUTMUT = "mutmut==3.8.1"
MONEY_PATHS: dict[str, tuple[str, ...]] = {
    "costkit/pricing/rates.py": (
        "xǁRatesǁcost",
        "x__minutes",
        "x__parse_windows",
        "x__in_windows",
        "x__calendar",
        "xǁOffPeakǁis_open",
        "xǁOffPeakǁapply",
    ),
    "costkit/pricing/model_price.py": ("xǁModelPriceǁ*",),
    "costkit/pricing/book.py": ("xǁPriceBookǁcost", "xǁPriceBookǁworst_case_cost"),
    "costkit/_ledger.py": (
        "x_usd_to_nano",
        "x_nano_to_usd",
        "x_window_of",
        "x__window_of",
        "xǁ_Counterǁ*",
        "xǁInProcessBudgetBackendǁ_counter",
        "xǁInProcessBudgetBackendǁ_sweep",
        "xǁInProcessBudgetBackendǁforget",
        "xǁInProcessBudgetBackendǁreserve",
        "xǁInProcessBudgetBackendǁsettle",
        "xǁInProcessBudgetBackendǁrelease",
        "xǁInProcessBudgetBackendǁusage",
        "x_thresholds_crossed",
        "xǁRequestSpendǁ*",
    ),
    "costkit/_estimate.py": ("xǁWorstCaseǁtokens", "xǁWorstCaseEstimatorǁestimate"),
    "costkit/policies/budget.py": (
        "xǁBudgetLimitǁbucket",
        "x_bucket_part",
        "xǁBudgetǁ_targets",
        "xǁBudgetǁplan",
        "xǁBudgetǁrefusal",
        "xǁBudgetǁ_amounts",
        "xǁBudgetǁ_alerts",
        "xǁBudgetǁ_settle",
        "xǁBudgetǁ_after",
        "xǁBudgetǁ_reserve_io",
        "xǁBudgetǁ_settle_io",
        "xǁBudgetǁ_release_io",
        "xǁBudgetǁflow",
    ),
    "costkit/_budgeted.py": (
        "xǁBudgetedScopeǁholds",
        "xǁInvocationǁadd_spent",
        "x_charge",
        "xǁ_Heldǁ*",
        "xǁScopeCheckǁenter",
        "xǁScopeCheckǁflow",
        "x__refusal",
    ),
    # the arguments the Redis backend sends its scripts and reads back; the Lua is tested against a real Redis
    "costkit/policies/budget_backends.py": (
        "xǁRedisBudgetBackendǁ_expire_at",
        "xǁRedisBudgetBackendǁ_reserve",
        "xǁRedisBudgetBackendǁsettle",
        "xǁRedisBudgetBackendǁrelease",
    ),
    # the record's cost fields: an attempt's price, a cache hit's and each layer's saving, the router's net saving
    "costkit/_recorder.py": (
        "xǁRecorderǁprice",
        "xǁRecorderǁ_input_rate",
        "xǁRecorderǁ_priced_compression",
        "xǁRecorderǁ_savings",
        "xǁRecorderǁattempt",
        "xǁRecorderǁattempt_cost",
        "xǁRecorderǁcache_hit",
        "x__strategy_saving",
        "x__settle_router_saving",
        "x_estimate_input_usage",
        "x__service_tier",
    ),
}
# the tests that exercise those functions (mutmut picks, per mutant, the ones that called it)
MONEY_TESTS = (
    "tests/test_pricing.py",
    "tests/pricing",
    "tests/test_ledger.py",
    "tests/test_estimate.py",
    "tests/test_budgeted.py",
    "tests/policies/test_budget.py",
    "tests/policies/test_budget_backends.py",
    "tests/test_recorder.py",
    "tests/test_wrap.py",
    "tests/policies/test_router.py",
    "tests/policies/test_context_budget.py",
    "tests/policies/compress/test_policy.py",
)
# mutmut's exit codes: 1 and 3 = a test failed (killed), timeouts count as killed (as its own score does)
_KILLED = {1, 3, 36, -24, 24, 152, 255}
_TIMEOUT = {36, -24, 24, 152, 255}
_SKIPPED = {34}


def _mutmut_config() -> str:
    def toml_list(items: Iterable[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    tests = [t for t in MONEY_TESTS if Path(t).exists()]
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["costkit"]\n'
        f"only_mutate = {toml_list(MONEY_PATHS)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        # the slow-marked tests (every model of the cost map against litellm, four processes against one
        # Redis) take 10-30 s a mutant; the fast tests check the same money paths exactly
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-W", "ignore", "-m", "not slow"]\n'
    )


def _equivalent_mutants(listing: Path) -> dict[str, str]:
    """Mutant name -> why it is equivalent, from the first table in docs/mutation.md (name first, reason
    last); the page's later sections (survivors left) are not read."""
    found: dict[str, str] = {}
    if not listing.exists():
        return found
    for line in listing.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`costkit.") and "__mutmut_" in cells[0]:
            found[cells[0].strip("`")] = cells[-1]
    return found


def _score_report(workdir: Path, selected: list[str], listing: Path) -> tuple[list[str], list[str]]:
    """Print the score per module; return (survivors not listed as equivalent, listed ones not surviving).

    "killed" counts timeouts too (mutmut's own score does: a mutant that hangs is noticed); they are
    also shown on their own. "of non-equiv." is killed over the mutants not listed as equivalent.
    """
    equivalent = _equivalent_mutants(listing)
    unlisted: list[str] = []
    seen_equivalent: set[str] = set()
    rows = []
    for path, patterns in MONEY_PATHS.items():
        meta = json.loads((workdir / "mutants" / (path + ".meta")).read_text())
        module = path[: -len(".py")].replace("/", ".")
        counts = [0, 0, 0, 0, 0]  # mutants, killed, of them timeouts, equivalent, survived
        for name, code in sorted(meta["exit_code_by_key"].items()):
            func = name[len(module) + 1 :].partition("__mutmut_")[0]
            if code in _SKIPPED or not any(fnmatch.fnmatchcase(func, p) for p in patterns):
                continue
            if not any(fnmatch.fnmatchcase(name, s) for s in selected):
                continue
            counts[0] += 1
            if code in _KILLED:
                counts[1] += 1
                counts[2] += code in _TIMEOUT
            elif name in equivalent:
                counts[3] += 1
                seen_equivalent.add(name)
            else:
                counts[4] += 1
                unlisted.append(f"{name} ({_STATUS.get(code, code)})")
        rows.append((path, counts))
    rows.append(("all money paths", [sum(c[i] for _, c in rows) for i in range(5)]))
    print(
        f"\n{'file':<38} {'mutants':>7} {'killed':>7} {'timeout':>7} {'equiv.':>7} {'left':>5} "
        f"{'score':>7} {'+equiv.':>8} {'of non-equiv.':>14}"
    )
    for path, (total, killed, timeout, equiv, survived) in rows:
        print(
            f"{path:<38} {total:>7} {killed:>7} {timeout:>7} {equiv:>7} {survived:>5} "
            f"{killed / max(total, 1):>7.1%} {(killed + equiv) / max(total, 1):>8.1%} "
            f"{killed / max(total - equiv, 1):>14.1%}"
        )
    stale = sorted(set(equivalent) - seen_equivalent)
    return unlisted, stale


def _not_killed(workdir: Path, selected: list[str]) -> list[str]:
    """The mutants matching ``selected`` that the last run in ``workdir`` did not kill."""
    names = []
    for path in MONEY_PATHS:
        meta = json.loads((workdir / "mutants" / (path + ".meta")).read_text())
        for name, code in meta["exit_code_by_key"].items():
            if code not in _KILLED and code not in _SKIPPED and any(fnmatch.fnmatchcase(name, s) for s in selected):
                names.append(name)
    return sorted(names)


_STATUS = {0: "survived", 33: "no tests", 5: "no tests", None: "not checked", -11: "segfault", -9: "segfault"}


@nox.session
def mutate(session: nox.Session) -> None:
    """Mutation testing of the money paths (mutmut); ``-- <mutant glob>...`` runs only those mutants.

    ``-- --again`` reruns, with the tests as they are now, only the mutants the last run did not
    kill (after adding tests; the code must be the one that run mutated: a killed mutant stays killed
    when tests are only added).
    """
    session.install(".[test]", MUTMUT)
    root = Path.cwd()
    workdir = Path(session.create_tmp()).resolve() / "mutate"
    again = session.posargs[:1] == ["--again"]
    every = [
        f"{path[: -len('.py')].replace('/', '.')}.{pattern}__mutmut_*"
        for path, patterns in MONEY_PATHS.items()
        for pattern in patterns
    ]
    if again:
        shutil.rmtree(workdir / "tests")
        shutil.copytree(root / "tests", workdir / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        selected = _not_killed(workdir, every)
    else:
        if workdir.exists():  # a fresh run: mutmut keeps earlier verdicts of mutants it is not asked to rerun
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        shutil.copytree(root / "costkit", workdir / "costkit", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(root / "tests", workdir / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        (workdir / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + _mutmut_config())
        selected = session.posargs or every
    with session.chdir(workdir):
        session.run("mutmut", "run", *selected)
        unlisted, stale = _score_report(workdir, every if again else selected, root / "docs" / "mutation.md")
    if unlisted:
        print("\nsurvivors not listed as equivalent in docs/mutation.md (see one: cd", workdir, "&& mutmut show NAME):")
        print("\n".join(f"  {name}" for name in unlisted))
    if stale:
        print("\nlisted as equivalent in docs/mutation.md but not surviving (killed now, or renumbered):")
        print("\n".join(f"  {name}" for name in stale))
