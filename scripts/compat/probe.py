"""Drop-in probes the SDK suites do not reach: each one runs on the raw and on the wrapped client.

    python scripts/compat/probe.py [--json OUT]

Every probe is a few lines of ordinary application code (enter the client with ``with``, pass
the SDK's "not given" sentinel, compare a signature, undo a ``mock.patch.object``...) run against
``costkit.testing.serve()`` with the installed SDKs. A probe that passes raw and fails wrapped is a
drop-in break; the output names it with the wrapped error. Exit status 0 either way: this lists.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.metadata
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

Q = [{"role": "user", "content": "hi"}]


def _sentinels(module: Any) -> dict[str, Any]:
    """The SDK's "not given" values that exist in this version (``omit`` is newer than ``NOT_GIVEN``)."""
    return {name: getattr(module, name) for name in ("NOT_GIVEN", "omit") if hasattr(module, name)}


def openai_probes(base_url: str) -> dict[str, Callable[[Callable[[Any], Any]], Any]]:
    import openai

    def sync_client() -> openai.OpenAI:
        return openai.OpenAI(base_url=base_url, api_key="sk-probe", max_retries=0)

    def async_client() -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=base_url, api_key="sk-probe", max_retries=0)

    probes: dict[str, Callable[[Callable[[Any], Any]], Any]] = {
        "isinstance(client, openai.OpenAI)": lambda w: _true(isinstance(w(sync_client()), openai.OpenAI)),
        "isinstance(client, openai.AsyncOpenAI)": lambda w: _true(isinstance(w(async_client()), openai.AsyncOpenAI)),
        "with client as c: c.chat.completions.create(...)": lambda w: _with(w(sync_client())),
        "async with client as c: await c.chat.completions.create(...)": lambda w: asyncio.run(
            _async_with(w(async_client()))
        ),
        "signature(chat.completions.create)": lambda w: _same_signature(
            w(sync_client()).chat.completions.create, sync_client().chat.completions.create
        ),
        "signature(responses.create)": lambda w: _same_signature(
            w(sync_client()).responses.create, sync_client().responses.create
        ),
        "signature(client.copy)": lambda w: _same_signature(w(sync_client()).copy, sync_client().copy),
        "signature(client.with_options)": lambda w: _same_signature(
            w(sync_client()).with_options, sync_client().with_options
        ),
        "del client.attr (after setting it)": lambda w: _delete(w(sync_client())),
        "mock.patch.object(client, '_prepare_options') is undone": lambda w: _patch_undone(w(sync_client())),
        "chat stream: the caller sees the raw SDK's chunks": lambda w: _chunks(w(sync_client())),
    }

    def chat(w: Callable[[Any], Any], **kwargs: Any) -> Any:
        return w(sync_client()).chat.completions.create(model="gpt-4o-mini", messages=Q, **kwargs)

    def responses(w: Callable[[Any], Any], **kwargs: Any) -> Any:
        return w(sync_client()).responses.create(model="gpt-4o-mini", input="hi", **kwargs)

    for name, value in _sentinels(openai).items():
        for kw in ("max_tokens", "max_completion_tokens", "temperature"):
            probes[f"chat.completions.create({kw}=openai.{name})"] = functools.partial(chat, **{kw: value})
        probes[f"responses.create(max_output_tokens=openai.{name})"] = functools.partial(
            responses, max_output_tokens=value
        )
    return probes


def anthropic_probes(base_url: str) -> dict[str, Callable[[Callable[[Any], Any]], Any]]:
    import anthropic

    def sync_client() -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=base_url, api_key="sk-ant-probe", max_retries=0)

    def async_client() -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url=base_url, api_key="sk-ant-probe", max_retries=0)

    def create(client: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("max_tokens", 20)
        return client.messages.create(model="claude-haiku-4-5", messages=Q, **kwargs)

    def create_with(w: Callable[[Any], Any], **kwargs: Any) -> Any:
        return create(w(sync_client()), **kwargs)

    probes: dict[str, Callable[[Callable[[Any], Any]], Any]] = {
        "isinstance(client, anthropic.Anthropic)": lambda w: _true(isinstance(w(sync_client()), anthropic.Anthropic)),
        "isinstance(client, anthropic.AsyncAnthropic)": lambda w: _true(
            isinstance(w(async_client()), anthropic.AsyncAnthropic)
        ),
        "with client as c: c.messages.create(...)": lambda w: _with_anthropic(w(sync_client()), create),
        "signature(messages.create)": lambda w: _same_signature(
            w(sync_client()).messages.create, sync_client().messages.create
        ),
        "signature(client.copy)": lambda w: _same_signature(w(sync_client()).copy, sync_client().copy),
        "del client.attr (after setting it)": lambda w: _delete(w(sync_client())),
    }
    for name, value in _sentinels(anthropic).items():
        for kw in ("max_tokens", "temperature", "system", "stop_sequences"):
            probes[f"messages.create({kw}=anthropic.{name})"] = functools.partial(create_with, **{kw: value})
    return probes


def _true(ok: bool) -> None:
    if not ok:
        raise AssertionError("False")


def _with(client: Any) -> None:
    with client as c:
        c.chat.completions.create(model="gpt-4o-mini", messages=Q)


async def _async_with(client: Any) -> None:
    async with client as c:
        await c.chat.completions.create(model="gpt-4o-mini", messages=Q)


def _with_anthropic(client: Any, create: Callable[..., Any]) -> None:
    with client as c:
        create(c)


def _same_signature(wrapped: Any, raw: Any) -> None:
    got, want = inspect.signature(wrapped), inspect.signature(raw)
    if str(got) != str(want):
        raise AssertionError(f"signature is {str(got)[:80]}")


def _delete(client: Any) -> None:
    client.costkit_probe_attr = 1
    del client.costkit_probe_attr
    if hasattr(client, "costkit_probe_attr"):
        raise AssertionError("still set after del")


def _patch_undone(client: Any) -> None:
    inner = getattr(client, "unwrapped", client)
    try:
        with mock.patch.object(client, "_prepare_options"):
            pass
    finally:
        leaked = "_prepare_options" in vars(inner)
        if leaked:
            del inner._prepare_options
    if leaked:
        raise AssertionError("the mock stayed on the client")


def _chunks(client: Any) -> int:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=Q, stream=True)
    return len(list(stream))


def run(probes: dict[str, Callable[[Callable[[Any], Any]], Any]]) -> dict[str, dict[str, str]]:
    import warnings

    import costkit

    def wrap(client: Any) -> Any:
        return costkit.wrap(client, sink=None)

    out: dict[str, dict[str, str]] = {}
    for name, probe in probes.items():
        row = {}
        for mode, how in (("raw", lambda c: c), ("wrapped", wrap)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    value = probe(how)
                    row[mode] = "ok" if value is None or not isinstance(value, int) else f"ok ({value})"
                except Exception as exc:
                    row[mode] = f"{type(exc).__module__}.{type(exc).__qualname__}: {str(exc)[:160]}"
        # a probe whose raw result counts something (chunks) must count the same when wrapped
        if row["raw"].startswith("ok") and row["wrapped"].startswith("ok") and row["raw"] != row["wrapped"]:
            row["wrapped"] = f"differs: raw {row['raw']}, wrapped {row['wrapped']}"
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from costkit.testing import serve

    result: dict[str, Any] = {}
    with serve() as server:
        for sdk, probes in (("openai", openai_probes(server.url + "/v1")), ("anthropic", anthropic_probes(server.url))):
            rows = run(probes)
            broken = {
                k: v["wrapped"]
                for k, v in rows.items()
                if v["raw"].startswith("ok") and not v["wrapped"].startswith("ok")
            }
            result[sdk] = {"version": importlib.metadata.version(sdk), "probes": rows, "wrapped_only": broken}
            print(f"{sdk} {result[sdk]['version']}: {len(broken)} of {len(rows)} probes fail only when wrapped")
            for name, row in rows.items():
                mark = "BREAKS" if name in broken else ("  both" if not row["raw"].startswith("ok") else "    ok")
                print(f"  {mark}  {name}" + (f"\n          {row['wrapped']}" if name in broken else ""))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
