"""LiteLLM's own cache and router on the same trace, against the same fake provider over HTTP.

* ``litellm_cache``: ``litellm.cache = litellm.Cache(type="local")`` (its in-memory exact cache) and
  ``litellm.completion(..., caching=True)``.
* ``litellm_router``: ``litellm.Router`` with gpt-4o and gpt-4o-mini as two deployments of the model
  name the application asks for, ``routing_strategy="simple-shuffle"`` (its default), cooldowns off
  (:data:`COOLDOWN_NOTE`). LiteLLM's
  router balances load between deployments of one model name; it has no notion of which model
  knows an answer, so this is what "route some traffic to the cheap model" means with it.

Both use the SDK-equivalent retries (2) and the same read timeout as costkit's configurations. The
offline share runs interactively (LiteLLM has no batch lane). Their overhead is not measured: the
provider's time is not separable from LiteLLM's inside its own client.

Offline note: LiteLLM 1.110's cache-hit path (``caching_handler._should_defer_streaming_cache_hit_callbacks``)
imports ``litellm.proxy.pass_through_endpoints`` modules, which ``import soundfile`` (a dependency of
``litellm[proxy]``, not of ``litellm``). Without it the first cache hit raises ModuleNotFoundError;
the benchmark puts an empty ``soundfile`` module in ``sys.modules`` when the package is missing
(LiteLLM uses it only to log audio transcriptions). Nothing goes to the network:
``LITELLM_LOCAL_MODEL_COST_MAP=True`` is set before the import.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from collections.abc import Sequence
from typing import Any

from workload_configs import MAX_TOKENS, TraceClock
from workload_fake import CLIENT_TIMEOUT_S, WorkloadProvider
from workload_trace import STRONG, WEAK, Request

from costkit.testing import serve

SOUNDFILE_NOTE = (
    "litellm's cache-hit path imports soundfile (a litellm[proxy] dependency); "
    "not installed here, so an empty stand-in module is used (litellm uses it only for audio logging)"
)


COOLDOWN_NOTE = (
    "cooldowns off (with LiteLLM's defaults, a deployment that fails 3 times in a wall-clock minute rests 5 s; "
    "the replay runs about 10x faster than the trace, so both deployments rested often and 36% of the requests "
    "of a 300-row run failed with RouterRateLimitError)"
)


def import_litellm() -> tuple[Any, str]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    note = ""
    stand_in = sys.modules.get("soundfile")
    if stand_in is not None and getattr(stand_in, "__spec__", None) is None:
        note = SOUNDFILE_NOTE  # put there by an earlier configuration
    elif stand_in is None and importlib.util.find_spec("soundfile") is None:
        sys.modules["soundfile"] = types.ModuleType("soundfile")
        note = SOUNDFILE_NOTE
    import litellm

    return litellm, note


class LiteLLMConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name
        self.note = ""

    def open(self, fake: WorkloadProvider, clock: TraceClock) -> None:
        self.litellm, self.note = import_litellm()
        self.server = serve(fake)
        self.common = {"api_base": self.server.base_url, "api_key": "sk-fake", "timeout": CLIENT_TIMEOUT_S}
        if self.name == "litellm_cache":
            self.previous_cache = self.litellm.cache
            self.litellm.cache = self.litellm.Cache(type="local")
            self.note = "; ".join(x for x in ("litellm.Cache(type='local'), caching=True", self.note) if x)
            return
        deployments = [
            {"model_name": STRONG, "litellm_params": {"model": f"openai/{m}", **self.common}} for m in (STRONG, WEAK)
        ]
        self.router = self.litellm.Router(
            model_list=deployments, routing_strategy="simple-shuffle", num_retries=2, disable_cooldowns=True
        )
        self.note = "litellm.Router: gpt-4o and gpt-4o-mini as deployments of gpt-4o, simple-shuffle; " + COOLDOWN_NOTE

    def ask(self, request: Request, messages: list[dict[str, Any]]) -> str | None:
        kwargs = {"messages": messages, "temperature": 0, "max_tokens": MAX_TOKENS}
        if self.name == "litellm_cache":
            reply = self.litellm.completion(
                model=f"openai/{STRONG}", caching=True, max_retries=2, **self.common, **kwargs
            )
        else:
            reply = self.router.completion(model=STRONG, **kwargs)
        return reply.choices[0].message.content

    def offline(self, requests: Sequence[Request], messages: Sequence[list[dict[str, Any]]]) -> list[str | None] | None:
        return None

    def records(self) -> list[Any]:
        return []

    def inside_s(self) -> float | None:
        return None

    def close(self) -> None:
        if self.name == "litellm_cache":
            self.litellm.cache = self.previous_cache
        self.server.close()


def litellm_configurations() -> list[LiteLLMConfiguration]:
    return [LiteLLMConfiguration("litellm_cache"), LiteLLMConfiguration("litellm_router")]
