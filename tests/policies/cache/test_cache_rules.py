"""CacheRules: one value for what both caches may store, for how long, under which labels, shared how."""

from __future__ import annotations

import pytest
from _cache_helpers import chat_call

from costkit import Tags
from costkit.errors import ConfigError
from costkit.policies.cache.rules import CacheRules, request_skip_reason


def rules(**kw) -> CacheRules:
    base = {"namespace": "n", "ttl_s": None, "ttl_by_feature": None, "ttl_by_route": None,
            "cache_sampled": False, "cache_tool_calls": False}
    return CacheRules(**{**base, **kw})


def test_route_beats_feature_beats_default_and_zero_means_never() -> None:
    r = rules(ttl_s=60, ttl_by_feature={"news": 5, "live": 0}, ttl_by_route={"fast": 1})
    assert r.ttl_for(chat_call()) == 60
    assert r.ttl_for(chat_call(tags=Tags(feature="news"))) == 5
    assert r.ttl_for(chat_call(tags=Tags(feature="news", route="fast"))) == 1
    assert r.ttl_for(chat_call(tags=Tags(feature="live"))) == -1.0


def test_sampled_calls_are_not_cached_unless_asked() -> None:
    assert request_skip_reason(chat_call(temperature=0.7), cache_sampled=False) == "sampled"
    assert request_skip_reason(chat_call(temperature=0.7), cache_sampled=True) is None


def test_labels_and_sharing_live_in_the_one_value() -> None:
    r = rules(min_distinct_users=3)
    assert r.sharing.min_distinct_users == 3 and r.labels(chat_call(tags=Tags(tenant="t")))[:2] == ["n|*", "n|tenant=t"]
    with pytest.raises(ConfigError) as err:
        r.invalidation_labels({"colour": "red"})
    assert err.value.field == "colour"
    with pytest.raises(ConfigError):
        rules(namespace="")
