"""Tiers: an explicit route -> model table, chosen by a tag or a rule."""

from __future__ import annotations

from typing import Any

import pytest

from costkit import Call, ConfigError, Result, Router, Tags, Usage
from costkit._pipeline import Pipeline


def send(router: Router, **call_kw: Any) -> Call:
    seen: list[Call] = []

    def terminal(call: Call) -> Result:
        seen.append(call)
        return Result(text="x", model=call.model, usage=Usage(input_tokens=5, output_tokens=1))

    base = {"provider": "openai", "api": "chat", "requested_model": "gpt-4o", "model": "gpt-4o",
            "messages": ({"role": "user", "content": "hello"},)}
    Pipeline([router], terminal).run(Call(**{**base, **call_kw}))
    return seen[0]


TABLE = {"faq": "gpt-4o-mini", "legal": "gpt-4o", "bulk": ["gpt-4o", "gpt-4o-mini"]}


def test_by_route_tag() -> None:
    sent = send(Router.tiers(TABLE), tags=Tags(route="faq"))
    assert sent.model == "gpt-4o-mini" and sent.notes["route_reason"] == "route=faq"
    assert sent.tags.route == "faq" and sent.notes["routed_from"] == "gpt-4o"


def test_by_feature_tag_and_a_list_tier_takes_the_cheapest() -> None:
    sent = send(Router.tiers(TABLE, by="feature"), tags=Tags(feature="bulk"))
    assert sent.model == "gpt-4o-mini" and sent.tags.route == "bulk"


def test_unknown_route_uses_default_or_passes_through() -> None:
    sent = send(Router.tiers(TABLE, default="faq"), tags=Tags(route="other"))
    assert sent.model == "gpt-4o-mini" and sent.notes["route_reason"] == "route=other has no tier: default"
    assert sent.tags.route == "other"  # the application's own route tag is kept
    sent = send(Router.tiers(TABLE), tags=Tags(route="other"))
    assert sent.model == "gpt-4o" and sent.notes == {}
    sent = send(Router.tiers(TABLE, default="faq"))
    assert sent.notes["route_reason"] == "no route: default" and sent.tags.route == "faq"


def test_by_a_rule() -> None:
    def rule(call: Call) -> str | None:
        return "legal" if "contract" in call.last_user_text else "faq"

    router = Router.tiers(TABLE, by=rule)
    assert send(router).model == "gpt-4o-mini"
    sent = send(router, messages=({"role": "user", "content": "review this contract"},), model="gpt-4o-mini")
    assert sent.model == "gpt-4o" and sent.notes["route_reason"] == "rule=legal"


@pytest.mark.parametrize(
    ("mapping", "kwargs", "field"),
    [
        ({}, {}, "mapping"),
        ({"a": ""}, {}, "mapping['a']"),
        ({"a": []}, {}, "mapping['a']"),
        ({"": "gpt-4o"}, {}, "mapping"),
        ({"a": "gpt-4o"}, {"by": "colour"}, "by"),
        ({"a": "gpt-4o"}, {"by": 3}, "by"),
        ({"a": "gpt-4o"}, {"default": "b"}, "default"),
    ],
)
def test_misconfigured_tables_fail_at_construction(mapping: Any, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router.tiers(mapping, **kwargs)
    assert info.value.field == field
