"""The pytest plugin, run the way users run it: a separate pytest process (pytester), so no module state leaks."""

from __future__ import annotations

import importlib.metadata

import pytest

pytest_plugins = ["pytester"]


def _entry_point_installed() -> bool:
    return any(
        ep.name == "costkit" and ep.value == "costkit.testing.pytest_plugin"
        for ep in importlib.metadata.entry_points(group="pytest11")
    )


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = ignore::DeprecationWarning\n"
    )
    pytester.makepyfile(source)
    extra = () if _entry_point_installed() else ("-p", "costkit.testing.pytest_plugin")
    return pytester.runpytest_subprocess("-q", *extra, *args)


def test_entry_point_is_declared_in_the_package_metadata():
    """Declared in pyproject.toml, and present in the installed distribution's metadata."""
    import pathlib

    import tomllib

    pyproject = tomllib.loads((pathlib.Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {"costkit": "costkit.testing.pytest_plugin"}
    importlib.metadata.distribution("costkit")  # installed (scripts/test installs it): its metadata must have it
    assert _entry_point_installed()


def test_default_locations_are_per_test_so_a_second_run_passes_too(pytester):
    """The reported trap: ExactCache() and the default sink persisted under the home directory, so a
    user's test passed once and failed on the second run."""
    source = """
        import os
        import costkit

        def test_first_call_reaches_the_provider(fake_openai):
            client = costkit.wrap(fake_openai, policies=[costkit.ExactCache()])  # default store, default sink
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                           temperature=0)
            assert fake_openai.fake.count() == 1
            assert os.environ["COSTKIT_DB"].startswith(os.environ["COSTKIT_CACHE_DIR"].rsplit("/", 1)[0])

        def test_again_in_the_same_run(fake_openai):
            test_first_call_reaches_the_provider(fake_openai)
        """
    for _ in range(2):
        run(pytester, source).assert_outcomes(passed=2)


def test_isolation_can_be_turned_off(pytester, monkeypatch):
    pytester.makeini("[pytest]\ncostkit_isolate = false\n")
    pytester.makepyfile(
        """
        import os

        def test_env_untouched():
            assert os.environ.get("COSTKIT_DB") == "/nowhere/costs.db"
        """
    )
    extra = () if _entry_point_installed() else ("-p", "costkit.testing.pytest_plugin")
    monkeypatch.setenv("COSTKIT_DB", "/nowhere/costs.db")
    pytester.runpytest_subprocess("-q", *extra).assert_outcomes(passed=1)


def test_sync_fixtures_share_one_provider_per_test(pytester):
    result = run(
        pytester,
        """
        import anthropic, openai

        def test_clients(fake_provider, fake_openai, fake_anthropic, fake_server):
            assert isinstance(fake_openai, openai.OpenAI) and isinstance(fake_anthropic, anthropic.Anthropic)
            assert fake_openai.fake is fake_provider is fake_anthropic.fake is fake_server.fake
            fake_provider.on("hi", "hello")
            r = fake_openai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            assert r.choices[0].message.content == "hello"
            hi = [{"role": "user", "content": "hi"}]
            m = fake_anthropic.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=hi)
            assert m.content[0].text == "hello"
            s = fake_server.openai_client().chat.completions.create(model="m", messages=hi)
            assert s.choices[0].message.content == "hello"
            assert fake_provider.count() == 3

        def test_isolated(fake_openai):
            assert fake_openai.fake.count() == 0
            r = fake_openai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            assert r.choices[0].message.content == "Fake answer to: hi"
        """,
    )
    result.assert_outcomes(passed=2)


def test_async_fixtures_work_in_strict_mode(pytester):
    result = run(
        pytester,
        """
        import pytest

        @pytest.mark.asyncio
        async def test_async(fake_async_openai, fake_async_anthropic):
            q = [{"role": "user", "content": "q"}]
            r = await fake_async_openai.chat.completions.create(model="gpt-4o-mini", messages=q)
            m = await fake_async_anthropic.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=q)
            assert r.choices[0].message.content == m.content[0].text == "Fake answer to: q"
            assert fake_async_openai.fake.count() == 2
        """,
        "-o",
        "asyncio_mode=strict",
    )
    result.assert_outcomes(passed=1)


def test_cost_records_and_fake_litellm(pytester):
    result = run(
        pytester,
        """
        import os
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import costkit

        def test_records(fake_openai, fake_litellm, cost_records):
            assert cost_records.records == []
            client = costkit.wrap(fake_openai, sink=cost_records)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}])
            r = fake_litellm.completion(model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}])
            assert r.choices[0].message.content == "Fake answer to: q"
            assert len(cost_records.records) == 1 and cost_records.records[0].model == "gpt-4o-mini"
            assert fake_litellm.fake is fake_openai.fake and fake_openai.fake.count() == 2
        """,
    )
    result.assert_outcomes(passed=1)


def test_fake_server_is_closed_after_the_test(pytester):
    result = run(
        pytester,
        """
        import socket, pytest
        ADDRESSES = []

        def test_one(fake_server):
            ADDRESSES.append((fake_server.host, fake_server.port))
            socket.create_connection(ADDRESSES[0]).close()

        def test_two():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(ADDRESSES[0])
        """,
    )
    result.assert_outcomes(passed=2)
