"""Sharing: when an entry may answer other users (the rule behind min_distinct_users)."""

from __future__ import annotations

import pytest
from _cache_helpers import chat_call

from costkit import Tags
from costkit.errors import ConfigError
from costkit.policies.cache.sharing import USERS, Sharing


def test_off_by_default_serves_everyone_and_stamps_nothing() -> None:
    s = Sharing()
    assert not s.enabled and s.stamp(chat_call(tags=Tags(user="u"))) == {}
    assert s.admit({}, chat_call()).serve


def test_writer_is_served_others_are_counted_until_shared() -> None:
    s = Sharing(2)
    writer, other = chat_call(tags=Tags(user="w")), chat_call(tags=Tags(user="o"))
    entry = s.stamp(writer)
    assert s.admit(entry, writer).serve
    first = s.admit(entry, other)
    assert not first.serve and first.users is not None and len(first.users) == 2
    entry = {USERS: list(first.users)}
    assert s.shared(entry) and s.admit(entry, chat_call()).serve


def test_users_are_hashed_per_tenant() -> None:
    a = Sharing.user_mark(chat_call(tags=Tags(tenant="t1", user="u")))
    b = Sharing.user_mark(chat_call(tags=Tags(tenant="t2", user="u")))
    assert a and b and a != b and "u" != a
    assert Sharing.user_mark(chat_call()) is None


@pytest.mark.parametrize("planted", ["x" * 10, ["a"] * 500, [1, 2, 3], None, [{"a": 1}, {"b": 2}]])
def test_a_planted_users_field_counts_as_nobody(planted: object) -> None:
    s = Sharing(2)
    assert not s.shared({USERS: planted})


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_checked(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        Sharing.checked(bad)
    assert err.value.field == "min_distinct_users"
