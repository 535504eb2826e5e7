"""CacheHealth: a cache that stopped hitting, started answering wrongly, or serves stale entries.

Per subject (each feature by default) and UTC hour:

* **hit rate under a floor** (``min_hit_rate``): cache hits / lookups, where lookups are the
  requests that reached the cache: for ``cache="any"`` every request (first provider calls and
  cache hits); for one cache, the requests not answered by a cache placed before it in the
  documented order (dedup, exact, semantic). Needs ``min_lookups`` in the hour.
* **live false-hit estimate over delta** (``max_false_hit_rate``, default: the delta the semantic
  cache notes on its hits): the semantic cache verifies a sample of its direct hits and notes
  ``notes["cache_verified"]`` (True on a served hit the verifier confirmed, False on the provider
  call that replaced a refuted one; anything else is ignored). The wrong share of sampled hits,
  times the share of lookups the cache would have answered directly, estimates wrong hits per
  lookup: the rate delta promises. Needs ``min_sampled`` verdicts in the hour.
* **entries older than their TTL still served** (``stale=True``): a cache hit whose notes say
  when its entry was stored (``cached_at``, epoch seconds) and whose age passes its TTL: the
  ``ttl_s`` noted on the hit, else this rule's ``ttl_s`` (one number, or per feature). Fires at the
  first such hit of the hour.

Hit rate and false hits are judged when the hour is over (live: when a later record arrives or
``Monitor.check()`` runs); the stale check fires at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ConfigError
from ..records import CostRecord
from .alert import Alert, hour_label, iso, who

if TYPE_CHECKING:
    from ..report.store import Store

CACHE_ORDER = ("dedup", "exact", "semantic")  # the documented chain order of the layers that answer
CACHES = ("any", *CACHE_ORDER)
#: what a request's records share (its tags): hit rates per value of one of these
WATCHABLE = ("feature", "tenant", "route", "prompt_version", "experiment", "arm")


def _rate(field: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1):
        raise ConfigError(field, f"expected a share between 0 and 1, got {value!r}")


def _ttl(value: Any) -> float | dict[str, float] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    return float(value)


@attrs.define
class HourCounts:
    """What one subject's records said in one hour."""

    calls: int = 0
    hits: dict[str, int] = attrs.field(factory=dict)
    verified_ok: int = 0
    verified_wrong: int = 0
    delta: float | None = None
    stale: int = 0
    oldest_age_s: float = 0.0


@attrs.frozen(kw_only=True)
class CacheHealth:
    """Watch cache hit rate, the live false-hit estimate and stale entries (see the module docstring)."""

    min_hit_rate: float | None = None
    cache: str = "any"
    min_lookups: int = 50
    max_false_hit_rate: float | None = None
    min_sampled: int = 10
    ttl_s: float | dict[str, float] | None = attrs.field(default=None, converter=_ttl)
    stale: bool = True
    by: str | None = "feature"
    name: str = "cache"

    def __attrs_post_init__(self) -> None:
        _rate("min_hit_rate", self.min_hit_rate)
        _rate("max_false_hit_rate", self.max_false_hit_rate)
        if self.cache not in CACHES:
            raise ConfigError("cache", f"one of {', '.join(CACHES)}, got {self.cache!r}")
        for field in ("min_lookups", "min_sampled"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(field, f"expected a whole number >= 1, got {v!r}")
        if self.by is not None and self.by not in WATCHABLE:
            raise ConfigError("by", f"one of {', '.join(WATCHABLE)} (or None for all traffic), got {self.by!r}")
        ttls = self.ttl_s.values() if isinstance(self.ttl_s, dict) else [] if self.ttl_s is None else [self.ttl_s]
        if any(t <= 0 for t in ttls):
            raise ConfigError("ttl_s", "TTLs are seconds > 0")

    # -- the checks, shared by both modes --------------------------------------------------------

    def _subject(self, value: str | None) -> dict[str, str | None]:
        return {} if self.by is None else {self.by: value}

    def hit_rate(self, c: HourCounts) -> tuple[float, int]:
        """(hit rate, lookups) of the watched cache."""
        if self.cache == "any":
            hits = sum(c.hits.values())
            return (hits / (c.calls + hits) if c.calls + hits else 0.0), c.calls + hits
        later = CACHE_ORDER[CACHE_ORDER.index(self.cache) :]
        lookups = c.calls + sum(c.hits.get(x, 0) for x in later)
        return (c.hits.get(self.cache, 0) / lookups if lookups else 0.0), lookups

    def false_hits(self, c: HourCounts) -> tuple[float, int] | None:
        """(estimated wrong hits per lookup, verdicts) of the semantic cache, or None without enough verdicts."""
        sampled = c.verified_ok + c.verified_wrong
        if sampled < self.min_sampled:
            return None
        semantic = c.hits.get("semantic", 0)
        lookups = c.calls + semantic
        if not lookups:
            return None
        wrong_share = c.verified_wrong / sampled
        return wrong_share * (semantic + c.verified_wrong) / lookups, sampled

    def judge_hour(self, value: str | None, hour: int, c: HourCounts, at: float) -> list[Alert]:
        out = []
        if self.min_hit_rate is not None:
            rate, lookups = self.hit_rate(c)
            if lookups >= self.min_lookups and rate < self.min_hit_rate:
                which = "cache" if self.cache == "any" else f"{self.cache} cache"
                finding = (
                    f"{which} hit rate {rate:.1%} in {hour_label(hour)}, under the "
                    f"{self.min_hit_rate:.1%} floor ({lookups:,} lookups)"
                )
                details = {"lookups": lookups, "cache": self.cache}
                out.append(self._alert("hit_rate", value, hour, at, rate, self.min_hit_rate, finding, details))
        delta = self.max_false_hit_rate if self.max_false_hit_rate is not None else c.delta
        estimate = self.false_hits(c) if delta is not None else None
        if estimate is not None and delta is not None and estimate[0] > delta:
            rate, sampled = estimate
            finding = (
                f"live false-hit estimate {rate:.2%} in {hour_label(hour)}, over "
                f"delta {delta:.2%} ({c.verified_wrong} of {sampled} sampled hits wrong)"
            )
            details = {"sampled": sampled, "wrong": c.verified_wrong}
            out.append(self._alert("false_hits", value, hour, at, rate, delta, finding, details))
        return out

    def ttl_for(self, feature: str | None, noted: float | None) -> float | None:
        if noted is not None:
            return noted
        if isinstance(self.ttl_s, dict):
            return self.ttl_s.get(feature) if feature is not None else None
        return self.ttl_s

    def _stale_alert(self, value: str | None, hour: int, age: float, ttl: float, at: float) -> Alert:
        finding = f"a cache hit at {iso(at)} served an entry {age:,.0f} s old, past its {ttl:,.0f} s TTL"
        return self._alert("stale", value, hour, at, age, ttl, finding, {"age_s": age, "ttl_s": ttl})

    def _alert(
        self,
        check: str,
        value: str | None,
        hour: int,
        at: float,
        measured: float,
        threshold: float,
        finding: str,
        details: dict[str, Any],
    ) -> Alert:
        """One of this rule's checks fired for a subject's hour; ``finding`` follows the subject in the message."""
        subject = self._subject(value)
        return Alert.in_hour(
            hour,
            rule=f"{self.name}_{check}",
            subject=subject,
            at=at,
            value=measured,
            threshold=threshold,
            message=f"{who(subject)}: {finding}",
            details=details,
        )

    # -- live ------------------------------------------------------------------------------------

    def new_state(self) -> dict[str, Any]:
        return {"hours": {}, "latest": None, "stale_fired": set()}

    def observe(self, state: dict[str, Any], record: CostRecord) -> list[Alert]:
        hour = int(record.timestamp // 3600)
        value = getattr(record, self.by) if self.by is not None else None
        c = state["hours"].setdefault((hour, value), HourCounts())
        out: list[Alert] = []
        if record.kind == "call":
            c.calls += 1
        elif record.kind == "cache_hit":
            c.hits[record.cache] = c.hits.get(record.cache, 0) + 1
        notes = record.notes
        verdict = notes.get("cache_verified")
        if verdict is True:
            c.verified_ok += 1
        elif verdict is False:
            c.verified_wrong += 1
        noted = _number(notes.get("max_false_hit_rate"))
        if record.cache == "semantic" and noted is not None:
            c.delta = noted if c.delta is None else min(c.delta, noted)
        cached_at = _number(notes.get("cached_at"))
        if self.stale and record.kind == "cache_hit" and cached_at is not None:
            ttl = self.ttl_for(record.feature, _number(notes.get("ttl_s")))
            age = record.timestamp - cached_at
            if ttl is not None and age > ttl and (hour, value) not in state["stale_fired"]:
                state["stale_fired"].add((hour, value))
                out.append(self._stale_alert(value, hour, age, ttl, record.timestamp))
        if state["latest"] is None or hour > state["latest"]:
            if state["latest"] is not None:
                out += self._close(state, hour)
            state["latest"] = hour
        return out

    def _close(self, state: dict[str, Any], before_hour: int) -> list[Alert]:
        """Judge every hour before ``before_hour`` still held, and forget it."""
        out = []
        for hour, value in sorted((k for k in state["hours"] if k[0] < before_hour), key=lambda k: (k[0], str(k[1]))):
            out += self.judge_hour(value, hour, state["hours"].pop((hour, value)), (hour + 1) * 3600.0)
        state["stale_fired"] = {k for k in state["stale_fired"] if k[0] >= before_hour}
        return out

    def tick(self, state: dict[str, Any], now: float) -> list[Alert]:
        return self._close(state, int(now // 3600))

    # -- stored ----------------------------------------------------------------------------------

    def stored(self, store: Store, since: float, until: float, history_start: float) -> list[Alert]:
        since_h, end_h = int(since // 3600), int(until // 3600)  # hours before end_h are complete
        counts: dict[tuple[int, str | None], HourCounts] = {}

        def at(hour: int, value: str | None) -> HourCounts:
            return counts.setdefault((hour, value), HourCounts())

        dims = ["kind", "cache"] if self.by is None else ["kind", "cache", self.by]
        for row in store.hourly(dims, ["records"], since_hour=since_h, until_hour=end_h):
            hour, kind, cache, n = row[0], row[1], row[2], int(row[-1])
            value = row[3] if self.by is not None else None
            if kind == "call":
                at(hour, value).calls += n
            elif kind == "cache_hit" and cache is not None:
                c = at(hour, value)
                c.hits[cache] = c.hits.get(cache, 0) + n
        bounds = {"since": since_h * 3600.0, "until": end_h * 3600.0}
        for hour, value, ok, bad in store.verified(self.by, **bounds):
            at(hour, value).verified_ok += ok
            at(hour, value).verified_wrong += bad
        for hour, value, delta in store.noted_delta(self.by, **bounds):
            at(hour, value).delta = delta
        out = []
        for (hour, value), c in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            out += self.judge_hour(value, hour, c, (hour + 1) * 3600.0)
        if self.stale:
            fired: set[tuple[int, str | None]] = set()
            for ts, value, feature, cached_at, noted_ttl in store.aged_hits(
                self.by, since=since_h * 3600.0, until=until
            ):
                ttl = self.ttl_for(feature, noted_ttl)
                hour = int(ts // 3600)
                if ttl is not None and ts - cached_at > ttl and (hour, value) not in fired:
                    fired.add((hour, value))
                    out.append(self._stale_alert(value, hour, ts - cached_at, ttl, ts))
        return out


def _number(value: Any) -> float | None:
    """A note's number, or None for anything else (notes are not trusted)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


__all__ = ["CACHES", "CACHE_ORDER", "CacheHealth", "HourCounts"]
