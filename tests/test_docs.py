"""The docs are a site that builds, and their code runs as written.

* The mkdocs site builds with ``--strict``: a broken link or anchor, or a page left out of the nav,
  fails it (``mkdocs.yml``'s ``validation``); a nav entry for a page still being written on
  another branch (``scripts/mkdocs_hooks.py``) appears once its file exists.
* Every ```python block of README.md and of every page in docs/ runs, each page in a fresh
  interpreter, its blocks in order in one namespace (as a reader runs them, top to bottom), in an
  empty working directory that sees the repository's ``benchmarks/`` and ``examples/`` (a reader
  runs the pages from the repository root). The environment is the one docs/index.md describes: ``OPENAI_BASE_URL`` /
  ``ANTHROPIC_BASE_URL`` (with dummy keys) point at costkit's fake provider over HTTP, so a block that
  builds ``openai.OpenAI()`` runs offline; ``REDIS_URL`` is a real redis-server and ``DATABASE_URL`` a
  real Postgres with pgvector, started only for the pages that read them.
* A page whose blocks define ``test_`` functions (docs/testing.md) is run by pytest as one test
  module, with costkit's pytest plugin: its tests run, fixtures and all, and none may be skipped.
* A block may be left out only for an external server, with ``<!-- not run: REASON; covered by
  tests/PATH.py::TEST -->`` on the line above it; the named test must exist.
* Shell commands the pages show name files that exist (``python benchmarks/x.py``) and ``costkit``
  subcommands and options that exist.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_NOT_RUN = re.compile(r"<!-- not run: [^;>]+; covered by (tests/[\w/]+\.py)::(test_\w+) -->\s*$")
_DEFINES_TESTS = re.compile(r"^(?:async )?def test_", re.M)
_SHELL = {"bash", "sh", "shell", "console", "text", ""}

# Runs one page's blocks in order in one namespace. Each block is compiled with its page's name and
# padded to its line, so a traceback points at the line in the Markdown file.
_RUNNER = """
import json, sys
page, blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
for line, code in blocks:
    exec(compile("\\n" * (line - 1) + code, page, "exec"), namespace)
"""


def _as_module(blocks: list[tuple[int, str]]) -> str:
    """A page's blocks as one module, each at its line in the page (tracebacks point at the page)."""
    lines: list[str] = []
    for line, code in blocks:
        lines += [""] * (line - 1 - len(lines))
        lines += code.splitlines()
    return "\n".join(lines) + "\n"


def _fences(page: str) -> list[tuple[str, int, str, str]]:
    """(language, first code line, code, the line above the fence) of every fenced block of a page."""
    text = (ROOT / page).read_text()
    out = []
    for m in _FENCE.finditer(text):
        start = text.count("\n", 0, m.start())  # the fence's own line, 0-based
        above = text.splitlines()[start - 1] if start else ""
        out.append((m.group(1), start + 2, m.group(2), above))
    return out


def python_blocks(page: str) -> list[tuple[int, str]]:
    """(first line, code) of the page's python blocks, without those marked ``not run``."""
    fences = _fences(page)
    return [(line, code) for lang, line, code, above in fences if lang == "python" and not _NOT_RUN.search(above)]


@pytest.fixture(scope="module")
def fake_provider_url() -> Iterator[tuple[str, str]]:
    from costkit.testing import serve

    with serve() as server:
        yield server.base_url, server.anthropic_base_url


def test_every_page_is_covered() -> None:
    assert "docs/index.md" in PAGES and "README.md" in PAGES and len(PAGES) > 15


@pytest.mark.parametrize("page", [page for page in PAGES if python_blocks(page)])
def test_python_blocks_run_as_written(
    page: str, fake_provider_url: tuple[str, str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    blocks = python_blocks(page)
    source = "\n".join(code for _, code in blocks)
    openai_url, anthropic_url = fake_provider_url
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OPENAI_API_KEY": "sk-docs",
        "OPENAI_BASE_URL": openai_url,
        "ANTHROPIC_API_KEY": "sk-ant-docs",
        "ANTHROPIC_BASE_URL": anthropic_url,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "COSTKIT_DB": str(tmp_path / "default-costs.db"),  # wrap()'s default sink, not the user's
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # the default disk cache
    }
    if "REDIS_URL" in source:
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    if "DATABASE_URL" in source:
        env["DATABASE_URL"] = request.getfixturevalue("pg_uri")
    for shipped in ("benchmarks", "examples"):  # read as from the repository root; writes stay in tmp_path
        (tmp_path / shipped).symlink_to(ROOT / shipped)
    if _DEFINES_TESTS.search(source):
        # A page that shows pytest tests (costkit's fixtures) is one test module: pytest runs its
        # module-level code and then every test it defines, fixtures and all.
        module = tmp_path / f"test_{Path(page).stem}.py"
        module.write_text(_as_module(blocks))
        argv = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", module.name]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
        assert done.returncode == 0 and " skipped" not in done.stdout, f"{page}:\n{done.stdout[-6000:]}"
        return
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps([page, blocks]),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, f"{page}:\n{done.stderr[-6000:]}"


def test_blocks_left_out_name_a_test_that_exists() -> None:
    """A block marked ``not run`` (an external server) names the test that runs the same code path."""
    marked = [m for page in PAGES for *_, above in _fences(page) if (m := _NOT_RUN.search(above))]
    for m in marked:
        path = ROOT / m.group(1)
        assert path.is_file(), m.group(0)
        assert re.search(rf"^(?:async )?def {m.group(2)}\b", path.read_text(), re.M), m.group(0)


def _build_site(root: Path, site: Path) -> None:
    """``mkdocs build --strict`` of the project at ``root`` (offline: the theme fetches no fonts)."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    """``mkdocs build --strict``: broken links and anchors, and pages missing from the nav, fail."""
    _build_site(ROOT, tmp_path / "site")
    for page in ("index.html", "deployment/index.html", "benchmarks/index.html", "examples/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    assert "fonts.googleapis.com" not in (tmp_path / "site" / "index.html").read_text()


def test_a_page_still_being_written_joins_the_nav_once_its_file_exists(tmp_path: Path) -> None:
    """workload.md (another branch) has a nav entry; the hook drops it only while the file is missing."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "mkdocs_hooks.py", tmp_path / "scripts")
    page = tmp_path / "docs" / "workload.md"
    if not page.is_file():
        page.write_text("# The workload replay\n")
    _build_site(tmp_path, tmp_path / "site")
    assert (tmp_path / "site" / "workload" / "index.html").is_file()
    assert 'href="workload/"' in (tmp_path / "site" / "index.html").read_text()


def _commands() -> list[tuple[str, str]]:
    """(page, command) for every shell line and inline code span that runs ``python``, ``costkit`` or ``bash``."""
    out = []
    for page in PAGES:
        text = (ROOT / page).read_text()
        for lang, _, code, _ in _fences(page):
            if lang in _SHELL:
                out += [(page, line.strip().removeprefix("$ ")) for line in code.splitlines()]
        prose = _FENCE.sub("", text)
        out += [(page, " ".join(span.split())) for span in re.findall(r"`([^`]+)`", prose)]
    return [(p, c) for p, c in out if re.match(r"(python3? |costkit [a-z]|bash )", c)]


def _runnable(module: str) -> bool:
    """``python -m module`` would run: the module exists, and a package has a ``__main__``."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.submodule_search_locations is None:
        return spec is not None
    return importlib.util.find_spec(f"{module}.__main__") is not None


def test_the_python_files_the_pages_run_exist() -> None:
    missing = []
    for page, command in _commands():
        for path in re.findall(r"(?<![\w/.])((?:benchmarks|examples|tests|scripts)/[\w/.-]+\.py)", command):
            if not (ROOT / path).is_file():
                missing.append(f"{page}: {command}")
        script = re.match(r"bash ([\w/.-]+)", command)
        if script and not (ROOT / script.group(1)).is_file():
            missing.append(f"{page}: {command}")
        module = re.match(r"python3? -m ([\w.]+)", command)
        if module and module.group(1).startswith("costkit") and not _runnable(module.group(1)):
            missing.append(f"{page}: {command}")
    assert not missing, "\n".join(missing)


def _options(parser) -> tuple[dict[str, object], set[str]]:
    """A parser's subcommands (name -> parser) and option strings."""
    import argparse

    subs: dict[str, object] = {}
    options: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subs.update(action.choices)
        options.update(action.option_strings)
    return subs, options


def test_the_costkit_commands_the_pages_show_exist() -> None:
    """Every ``costkit SUBCOMMAND ...`` shown names a subcommand the CLI has, and only its options."""
    from costkit.batch.cli import build_parser as batch_parser
    from costkit.report.cli import build_parser

    wrong = []
    commands = [(p, c) for p, c in _commands() if c.startswith("costkit ")]
    for page, command in commands:
        words = shlex.split(command.split(" #")[0], comments=False)
        if words[1].endswith(":"):
            continue  # output the command printed (`costkit report: costs.db ...`)
        parser = batch_parser() if words[1] == "batch" else build_parser()
        rest = words[2:] if words[1] == "batch" else words[1:]
        subs, _ = _options(parser)
        if not rest or rest[0] not in subs:
            wrong.append(f"{page}: {command} (no such subcommand)")
            continue
        _, options = _options(subs[rest[0]])
        unknown = [w.split("=")[0] for w in rest[1:] if w.startswith("-") and w.split("=")[0] not in options]
        if unknown:
            wrong.append(f"{page}: {command} (unknown options {unknown})")
    assert len(commands) > 10 and not wrong, "\n".join(wrong)


def test_every_test_the_security_page_names_exists() -> None:
    """docs/security.md states each guarantee with the tests that hold it: those tests must exist."""
    text = (ROOT / "docs" / "security.md").read_text()
    named = set(re.findall(r"\btest_[a-z0-9_]+(?!\.py)\b", re.sub(r"tests/[\w/]+\.py", "", text)))
    defined = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        defined |= set(re.findall(r"^(?:async )?def (test_[a-z0-9_]+)", path.read_text(), re.M))
    assert named and named <= defined, sorted(named - defined)


def test_the_sql_the_pages_show_runs_on_a_sqlite_ledger(tmp_path: Path) -> None:
    """The ad-hoc SQL shown (docs/sinks.md) runs on the file a ``SQLiteSink`` writes."""
    import sqlite3

    import costkit
    from costkit.sinks import SQLiteSink
    from costkit.testing import FakeOpenAI

    path = tmp_path / "costs.db"
    sink = SQLiteSink(str(path))
    with costkit.tags(feature="faq"):
        costkit.wrap(FakeOpenAI(), sink=sink).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )
    sink.close()
    queries = [code for page in PAGES for lang, _, code, _ in _fences(page) if lang == "sql"]
    assert queries
    with sqlite3.connect(path) as db:
        for query in queries:
            assert db.execute(query).fetchall(), query  # the record just written matches
