from __future__ import annotations

from collections import Counter

import pytest

import costkit
from costkit.errors import ConfigError

Q = [{"role": "user", "content": "What is the refund window?"}]


def _exp(**kw):
    arms = kw.pop("arms", {"control": {}, "v2": costkit.Arm(tags={"prompt_version": "v2"})})
    return costkit.Experiment("prompt", arms=arms, **kw)


def test_assignment_is_a_sticky_hash_with_the_split() -> None:
    a, b = _exp(split={"control": 0.8, "v2": 0.2}), _exp(split={"control": 0.8, "v2": 0.2})
    users = [f"user-{i}" for i in range(4000)]
    assert [a.assign(u) for u in users] == [b.assign(u) for u in users]  # the same in every process
    shares = Counter(a.assign(u) for u in users)
    assert abs(shares["v2"] / 4000 - 0.2) < 0.03
    assert a.assign("user-17") == a.assign("user-17")


def test_every_record_names_its_arm_and_arm_tags_apply(fake_openai, cost_records) -> None:
    exp = _exp()
    client = costkit.wrap(fake_openai, policies=[exp], sink=cost_records)
    for i in range(20):
        with costkit.tags(user=f"u{i}", prompt_version="v1"):
            client.chat.completions.create(model="gpt-4o-mini", messages=Q, temperature=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=Q, temperature=0)  # no user: not enrolled
    by_arm = Counter((r.experiment, r.arm, r.prompt_version) for r in cost_records.records)
    expected = Counter(exp.assign(f"u{i}") for i in range(20))
    assert by_arm == {
        ("prompt", "control", "v1"): expected["control"],
        ("prompt", "v2", "v2"): expected["v2"],
        (None, None, None): 1,
    }
    assert exp.stats["not_enrolled"] == 1


def test_an_arms_policies_run_only_for_its_calls(fake_openai, cost_records) -> None:
    exp = _exp(arms={"control": {}, "cached": [costkit.ExactCache(store="memory")]}, by="tenant")
    client = costkit.wrap(fake_openai, policies=[exp], sink=cost_records)
    tenants = {exp.assign(t): t for t in (f"t{i}" for i in range(50))}
    for arm in ("control", "cached"):
        with costkit.tags(tenant=tenants[arm]):
            for _ in range(2):
                client.chat.completions.create(model="gpt-4o-mini", messages=Q, temperature=0)
    assert fake_openai.fake.count() == 3  # control twice, the cached arm once
    hit = [r for r in cost_records.records if r.kind == "cache_hit"]
    assert [(r.experiment, r.arm, r.tenant) for r in hit] == [("prompt", "cached", tenants["cached"])]


def test_bad_configuration_names_the_field() -> None:
    with pytest.raises(ConfigError) as e:
        costkit.Experiment("x", arms={"a": {}})
    assert e.value.field == "arms"
    with pytest.raises(ConfigError) as e:
        costkit.Experiment("x", arms={"a": {}, "b": {"colour": "red"}})
    assert e.value.field == "arms['b'].tags.colour"
    with pytest.raises(ConfigError) as e:
        costkit.Experiment("x", arms={"a": {}, "b": {}}, split={"a": 1})
    assert e.value.field == "split"
    with pytest.raises(ConfigError) as e:
        costkit.Experiment("x", arms={"a": {}, "b": {}}, by="colour")
    assert e.value.field == "by"
