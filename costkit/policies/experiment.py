"""Experiment: run arms of a change (a prompt version, a cache threshold, a router target) side by side.

    costkit.Experiment(
        "support-prompt",
        arms={
            "control": {},                                          # tags only (none: as is)
            "v15": costkit.Arm(tags={"prompt_version": "support_v15"}),
            "strict-cache": costkit.Arm(policies=[costkit.SemanticCache(max_false_hit_rate=0.01)]),
        },
        split={"control": 0.5, "v15": 0.25, "strict-cache": 0.25},   # default: equal shares
        by="user",                                                   # tenant, user or task
    )

Assignment is a hash of (experiment name, the ``by`` tag), so it is deterministic and sticky: the
same user lands in the same arm in every process, every day. A call without that tag is not
enrolled and runs as is (counted in ``stats["not_enrolled"]``). An enrolled call carries
``experiment`` and ``arm`` tags, so every record it leaves (attempts, judges, embeddings, cache
hits of the arm's caches) names its arm; the arm's tag values override the call's; then the arm's
own policies run, in order, between this policy and the rest of the chain. ``costkit report
--arms`` compares the arms on success rate and cost per successful task.

Not a generator flow: an arm runs a chain of arbitrary policies (caches with their own async
I/O), so this policy builds that chain around ``next`` per call, in both drivers.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._call import TAG_FIELDS, Call, Result, Tags
from .._env import Env, bind_all
from .._pipeline import ANext, Next, check_policies
from ..errors import ConfigError

UNITS = ("tenant", "user", "task")


@attrs.frozen(kw_only=True)
class Arm:
    """One arm: tag values to set on its calls and policies to run for them."""

    tags: Mapping[str, str] = attrs.field(factory=dict)
    policies: Sequence[Any] = ()


def _as_arm(name: str, value: Any) -> Arm:
    if isinstance(value, Arm):
        arm = value
    elif isinstance(value, Mapping):
        arm = Arm(tags=dict(value))
    elif isinstance(value, list | tuple):
        arm = Arm(policies=tuple(value))
    else:
        raise ConfigError(f"arms[{name!r}]", "an arm is a costkit.Arm, a dict of tags or a list of policies")
    for tag in arm.tags:
        if tag not in TAG_FIELDS or tag in ("experiment", "arm", "task"):
            raise ConfigError(f"arms[{name!r}].tags.{tag}", "an arm sets call tags such as prompt_version or route")
    try:
        Tags(**arm.tags)
    except TypeError as exc:
        raise ConfigError(f"arms[{name!r}].tags", str(exc)) from None
    check_policies(arm.policies)
    return arm


class Experiment:
    """A policy assigning each call to an arm; see the module docstring."""

    def __init__(
        self,
        name: str,
        arms: Mapping[str, Any],
        split: Mapping[str, float] | None = None,
        *,
        by: str = "user",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("name", "an experiment needs a non-empty name (records carry it)")
        if not isinstance(arms, Mapping) or len(arms) < 2:
            raise ConfigError("arms", "an experiment needs at least two arms, e.g. {'control': {}, 'v2': {...}}")
        if by not in UNITS:
            raise ConfigError("by", f"assign by one of {', '.join(UNITS)}, got {by!r}")
        self.name = name
        self.by = by
        self.arms = {str(k): _as_arm(str(k), v) for k, v in arms.items()}
        weights = dict(split) if split is not None else {k: 1.0 for k in self.arms}
        if set(weights) != set(self.arms):
            raise ConfigError("split", f"give a share for each arm: {', '.join(self.arms)}")
        if any(isinstance(w, bool) or not isinstance(w, int | float) or w < 0 for w in weights.values()):
            raise ConfigError("split", "shares are numbers >= 0")
        total = float(sum(weights.values()))
        if total <= 0:
            raise ConfigError("split", "at least one arm needs a share above 0")
        self.split = {k: weights[k] / total for k in self.arms}
        self.stats: Counter[str] = Counter()

    def bind(self, env: Env) -> None:
        """The arms' policies get the wrapper's services too."""
        for arm in self.arms.values():
            bind_all(arm.policies, env)

    def assign(self, unit: str) -> str:
        """The arm of ``unit`` (a tenant, user or task id): a hash, the same everywhere, always."""
        digest = hashlib.blake2b(f"{self.name}\x00{unit}".encode(), digest_size=8).digest()
        point = int.from_bytes(digest, "big") / 2**64
        edge = 0.0
        chosen = next(iter(self.arms))
        for arm, share in self.split.items():
            edge += share
            if point < edge:
                return arm
            chosen = arm
        return chosen

    def _enroll(self, call: Call) -> tuple[Call, Arm | None, str | None]:
        unit = getattr(call.tags, self.by)
        if unit is None or call.tags.experiment is not None:  # nested experiments: the outer one wins
            self.stats["not_enrolled"] += 1
            return call, None, None
        name = self.assign(unit)
        arm = self.arms[name]
        self.stats[f"arm:{name}"] += 1
        tags = call.tags.merged(Tags(**arm.tags, experiment=self.name, arm=name))
        return call.evolve(tags=tags), arm, name

    def _mark(self, result: Result, name: str | None) -> Result:
        # an arm's cache hit is recorded from the request's own call: its notes carry the arm
        if name is None or result.source == "provider":
            return result
        return result.with_notes(experiment=self.name, arm=name)

    def handle(self, call: Call, next: Next) -> Result:
        call, arm, name = self._enroll(call)
        if arm is None or not arm.policies:
            return self._mark(next(call), name)
        run = next
        for policy in reversed(arm.policies):
            run = _bind_sync(policy, run)
        return self._mark(run(call), name)

    async def ahandle(self, call: Call, anext: ANext) -> Result:
        call, arm, name = self._enroll(call)
        if arm is None or not arm.policies:
            return self._mark(await anext(call), name)
        run = anext
        for policy in reversed(arm.policies):
            run = _bind_async(policy, run)
        return self._mark(await run(call), name)

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, arms={list(self.arms)}, by={self.by!r})"


def _bind_sync(policy: Any, nxt: Next) -> Next:
    return lambda call: policy.handle(call, nxt)


def _bind_async(policy: Any, nxt: ANext) -> ANext:
    async def step(call: Call) -> Result:
        return await policy.ahandle(call, nxt)

    return step


__all__ = ["UNITS", "Arm", "Experiment"]
