"""When a cached answer may serve *other* users: the cache-poisoning defence both caches share.

Within one tenant a shared cache serves one user's answer to every other user, so a user who can
shape prompts can plant answers that others receive (semantic-cache poisoning: a crafted question
near a common one, whose answer then reaches everyone who asks the common one). With
``min_distinct_users=N`` an entry answers only the user who wrote it until ``N`` distinct users
have asked it; then it answers everyone. Users are ``tags.user`` (what the application
authenticated); a call without a user is never counted and is served only by entries already
shared. The semantic cache can instead let a verifier vouch for an entry before it is shared.

The distinct askers are kept *in the entry* (``users``: salted hashes, capped at ``N``), so the
count holds across processes sharing a store (disk, Redis, Postgres). A lost update between two
processes asking at the same moment undercounts, which only delays sharing. Stored data is not
trusted: a ``users`` value that is not a list of short strings counts as nobody.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import attrs

from ..._call import Call
from ...errors import ConfigError

USERS = "users"  # the entry field holding the distinct askers
_SALT = b"costkit-cache-user\x00"


@attrs.frozen(slots=True)
class Admission:
    """Whether an entry may answer this call, and the askers to write back (None: unchanged)."""

    serve: bool
    users: tuple[str, ...] | None = None


SERVE = Admission(serve=True)


@attrs.frozen(slots=True)
class Sharing:
    """``min_distinct_users`` (1: every entry is shared at once, the default)."""

    min_distinct_users: int = 1

    @classmethod
    def checked(cls, value: Any) -> Sharing:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError("min_distinct_users", f"must be an int >= 1 (1 shares entries at once), got {value!r}")
        return cls(value)

    @property
    def enabled(self) -> bool:
        return self.min_distinct_users > 1

    @staticmethod
    def user_mark(call: Call) -> str | None:
        """A salted hash of the call's tenant and user (user ids are not stored in clear), or None."""
        user = call.tags.user
        if not user:
            return None
        digest = hashlib.sha256(_SALT + f"{call.tags.tenant}\x00{user}".encode()).hexdigest()
        return digest[:24]

    def stamp(self, call: Call) -> dict[str, list[str]]:
        """The fields a new entry starts with: its writer as the first asker."""
        if not self.enabled:
            return {}
        mark = self.user_mark(call)
        return {USERS: [mark] if mark else []}

    def askers(self, entry: Mapping[str, Any]) -> list[str]:
        users = entry.get(USERS)
        if not isinstance(users, list) or len(users) > 4 * self.min_distinct_users + 16:
            return []
        return [u for u in users if isinstance(u, str) and len(u) <= 64]

    def shared(self, entry: Mapping[str, Any]) -> bool:
        return not self.enabled or len(set(self.askers(entry))) >= self.min_distinct_users

    def admit(self, entry: Mapping[str, Any], call: Call) -> Admission:
        """May ``entry`` answer ``call``? Its writer always; others once it is shared. A new asker is
        counted (the returned ``users`` go back into the entry) even though it is not served yet."""
        if not self.enabled:
            return SERVE
        users = self.askers(entry)
        if len(set(users)) >= self.min_distinct_users:
            return SERVE
        mark = self.user_mark(call)
        if mark is None:
            return Admission(serve=False)
        if users and users[0] == mark:
            return SERVE
        if mark in users:
            return Admission(serve=False)
        return Admission(serve=False, users=(*users, mark))


__all__ = ["SERVE", "USERS", "Admission", "Sharing"]
