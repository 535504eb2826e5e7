"""Developer sessions: tests, lint (ruff), typecheck (mypy), bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


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
