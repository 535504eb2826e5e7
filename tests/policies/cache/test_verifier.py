"""Verifier: one object, checked at construction; LiveQuality reports the sampled false-hit share."""

from __future__ import annotations

import math

import pytest

from costkit.errors import ConfigError
from costkit.policies.cache.verifier import LiveQuality, Verifier


def test_a_bare_callable_becomes_a_verifier_with_defaults() -> None:
    v = Verifier.of(lambda q, c, a: True)
    assert v is not None and (v.band, v.sample, v.verify_all, v.min_confirmations) == (0.25, 0.0, False, 3)
    assert Verifier.of(None) is None and Verifier.of(v) is v
    assert not v.is_async


def test_async_checks_are_recognized() -> None:
    async def check(q, c, a):
        return True

    class Judge:
        async def __call__(self, q, c, a):
            return True

    assert Verifier(check=check).is_async and Verifier(check=Judge()).is_async


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"band": 0}, "verifier.band"),
        ({"sample": 1.5}, "verifier.sample"),
        ({"min_confirmations": 0}, "verifier.min_confirmations"),
        ({"accuracy": 0.3}, "verifier.accuracy"),
        ({"check": 3}, "verifier"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        Verifier(**{"check": bool, **kwargs})
    assert err.value.field == field
    with pytest.raises(ConfigError):
        Verifier.of("yes")


def test_live_quality() -> None:
    q = LiveQuality(sampled=200, refuted=2)
    assert q.wrong_share_of_hits == 0.01 and 0.01 < q.wrong_share_upper_bound < 0.04
    empty = LiveQuality(sampled=0, refuted=0)
    assert math.isnan(empty.wrong_share_of_hits) and empty.wrong_share_upper_bound == 1.0
