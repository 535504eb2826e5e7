"""pytest plugin: an SDK's own test suite, run with its client fixtures wrapped by costkit.

Loaded into the openai / anthropic sdist's tests as ``-p costkit_compat_plugin`` (this folder on
``PYTHONPATH``). ``--costkit-fixtures=client,async_client`` names the fixtures that hand a test
its client. With ``--costkit-mode=wrapped`` each value the SDK's own conftest yields for them is
replaced by ``costkit.wrap(value, sink=None)`` (the fixture's setup and teardown stay the SDK's);
with ``--costkit-mode=raw`` nothing is replaced, so the two runs differ only in the wrapper.
Both modes deselect the tests that use none of the fixtures: those cannot tell the runs apart.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pluggy
import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("costkit-compat")
    group.addoption(
        "--costkit-mode", choices=("raw", "wrapped"), default="raw", help="hand tests the raw or the wrapped client"
    )
    group.addoption(
        "--costkit-fixtures",
        default="client,async_client",
        help="comma-separated fixtures whose value is the client under test",
    )


def _fixtures(config: pytest.Config) -> frozenset[str]:
    return frozenset(name.strip() for name in config.getoption("--costkit-fixtures").split(",") if name.strip())


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--costkit-mode") == "wrapped":
        # The SDK suites turn every warning into an error. costkit's own warnings (an unpriced test
        # model such as "gpt-6-astra") are what it should say there, not a break of the SDK's
        # behaviour; they all start with "costkit", so they are ignored in the wrapped run.
        config.addinivalue_line("filterwarnings", "ignore:costkit:UserWarning")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = _fixtures(config)
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (keep if wanted.intersection(getattr(item, "fixturenames", ())) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, pluggy.Result[Any], None]:
    outcome = yield
    if request.config.getoption("--costkit-mode") != "wrapped" or fixturedef.argname not in _fixtures(request.config):
        return
    if outcome.exception is not None:
        return
    import costkit

    value = outcome.get_result()
    if type(value).__module__.split(".")[0] == "costkit":
        # a test module's own `client(client)` fixture derived it from the conftest's, already wrapped
        return
    if type(value).__module__.split(".")[0] not in ("openai", "anthropic"):
        return  # a test's own parameter that happens to be named like the fixture (openai's vertex tests: a bool)
    wrapped = costkit.wrap(value, sink=None)
    # pytest serves later requests of a session fixture from cached_result: cache the wrapper there too
    cached = fixturedef.cached_result
    if cached is not None:
        fixturedef.cached_result = (wrapped, cached[1], None)
    outcome.force_result(wrapped)
