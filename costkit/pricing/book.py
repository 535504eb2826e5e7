"""PriceBook: overrides and self-hosted prices over the cost map; how a model name is looked up."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

import attrs

from .._call import Usage
from .._warn import warn_once
from ..errors import ConfigError
from ._common import (
    _DATE_SUFFIX,
    _LATEST_SUFFIX,
    _NEUTRAL_PROVIDERS,
    _PER_MILLION,
    _UNSEEN,
    _positive,
    _rate,
    _token_limit,
)
from .cost_map import CostMap, price_from_map_entry
from .model_price import ModelPrice


class _DefaultBase:
    def __repr__(self) -> str:
        return "<default pricebook>"


_DEFAULT_BASE: Final = _DefaultBase()


class PriceBook:
    """Looks prices up by the model names users pass, with overrides that win over the map.

    ``PriceBook()`` layers nothing over the process-wide default book (LiteLLM's map);
    ``PriceBook(overrides={...})`` adds your prices on top of it; ``PriceBook(base=None,
    cost_map=...)`` prices only from the given map. Construction is cheap: the map is parsed
    once per process, on first lookup, and shared.
    """

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice | Mapping[str, Any]] | Iterable[ModelPrice] | None = None,
        base: PriceBook | _DefaultBase | None = _DEFAULT_BASE,
        *,
        cost_map: CostMap | str | Mapping[str, Any] | None = None,
    ) -> None:
        if base is _DEFAULT_BASE:
            from . import default_pricebook  # the package builds the default book from this module

            base = None if cost_map is not None else default_pricebook()
        if base is not None and not isinstance(base, PriceBook):
            raise ConfigError("base", f"must be a PriceBook or None, got {type(base).__name__}")
        self._base: PriceBook | None = base
        self._map: CostMap | None = cost_map if isinstance(cost_map, CostMap) or cost_map is None else CostMap(cost_map)
        self._overrides: dict[tuple[str | None, str], ModelPrice] = {}
        self._memo: dict[tuple[str, str | None], object] = {}  # own answer (ModelPrice | None) per lookup
        self._lock = threading.Lock()
        if overrides is not None:
            self._add_overrides(overrides)

    def _add_overrides(self, overrides: Mapping[str, ModelPrice | Mapping[str, Any]] | Iterable[ModelPrice]) -> None:
        if isinstance(overrides, Mapping):
            for name, value in overrides.items():
                if not isinstance(name, str) or not name:
                    raise ConfigError("overrides", f"keys must be model names, got {name!r}")
                if isinstance(value, ModelPrice):
                    self._put(attrs.evolve(value, model=name))
                elif isinstance(value, Mapping):
                    self.register(name, **value)
                else:
                    raise ConfigError(f"overrides.{name}", "must be a ModelPrice or a dict of register() keywords")
        else:
            for value in overrides:
                if not isinstance(value, ModelPrice):
                    raise ConfigError("overrides", f"items must be ModelPrice, got {type(value).__name__}")
                self._put(value)

    # -- lookup
    def get(self, model: str, provider: str | None = None) -> ModelPrice | None:
        """The price of ``model`` (``gpt-4o``, ``openai/gpt-4o``, ``bedrock/anthropic.claude-...``), or None."""
        key = (model, provider)
        found = self._memo.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = self._resolve_own(model, provider)
            self._memo[key] = found
        if found is not None:
            return found  # type: ignore[return-value]
        # the base keeps its own memo, so its later register() calls are seen here too
        return None if self._base is None else self._base.get(model, provider)

    def cost(
        self,
        model: str,
        usage: Usage,
        *,
        provider: str | None = None,
        batch: bool = False,
        at: datetime | None = None,
        service_tier: str | None = None,
    ) -> float | None:
        """USD for ``usage`` on ``model``; None when the model has no known price.

        ``at`` matters for off-peak pricing (default now); ``service_tier`` is the tier served.
        """
        price = self.get(model, provider)
        return None if price is None else price.cost(usage, batch, at=at, service_tier=service_tier)

    def worst_case_cost(
        self,
        model: str,
        input_tokens: int,
        max_output_tokens: int | None = None,
        provider: str | None = None,
        *,
        service_tier: str | None = None,
        batch: bool = False,
    ) -> float | None:
        """Upper bound before the call: all input uncached, all ``max_output_tokens`` (or the model's max) used
        (at batch rates with ``batch=True``)."""
        price = self.get(model, provider)
        if price is None:
            return None
        return price.worst_case_cost(input_tokens, max_output_tokens, batch=batch, service_tier=service_tier)

    def warn_unknown(self, model: str) -> bool:
        """Warn once per model that it has no price (its cost records will say ``priced=False``)."""
        return warn_once(
            f"pricing:unknown:{model}",
            f"costkit: no price known for model {model!r}; its calls are recorded unpriced. Register one with "
            f'costkit.pricing.register("{model}", input_per_million=..., output_per_million=...)',
        )

    # -- overrides
    def register(
        self,
        model: str,
        *,
        input_per_million: float,
        output_per_million: float,
        cached_read_per_million: float | None = None,
        cache_write_per_million: float | None = None,
        batch_input_per_million: float | None = None,
        batch_output_per_million: float | None = None,
        provider: str | None = None,
        max_input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        supports_function_calling: bool = True,
        supports_vision: bool = False,
        supports_response_schema: bool = True,
        supports_prompt_caching: bool | None = None,
        mode: str = "chat",
    ) -> ModelPrice:
        """Set ``model``'s price in USD per million tokens; it wins over the map from now on."""
        if not isinstance(model, str) or not model:
            raise ConfigError("model", f"must be a non-empty str, got {model!r}")
        if provider is not None and (not isinstance(provider, str) or not provider):
            raise ConfigError("provider", f"must be a non-empty str or None, got {provider!r}")

        def per_token(field: str, value: Any, optional: bool = False) -> float | None:
            number = _rate(field, value, optional=optional)
            return None if number is None else number / _PER_MILLION

        cached_read = per_token("cached_read_per_million", cached_read_per_million, True)
        price = ModelPrice(
            model=model,
            provider=provider,
            input_per_token=per_token("input_per_million", input_per_million) or 0.0,
            output_per_token=per_token("output_per_million", output_per_million) or 0.0,
            cache_read_per_token=cached_read,
            cache_write_per_token=per_token("cache_write_per_million", cache_write_per_million, True),
            batch_input_per_token=per_token("batch_input_per_million", batch_input_per_million, True),
            batch_output_per_token=per_token("batch_output_per_million", batch_output_per_million, True),
            max_input_tokens=_token_limit("max_input_tokens", max_input_tokens),
            max_output_tokens=_token_limit("max_output_tokens", max_output_tokens),
            supports_function_calling=bool(supports_function_calling),
            supports_vision=bool(supports_vision),
            supports_response_schema=bool(supports_response_schema),
            supports_prompt_caching=(
                cached_read is not None if supports_prompt_caching is None else bool(supports_prompt_caching)
            ),
            mode=mode,
            source="override",
        )
        self._put(price)
        return price

    def register_self_hosted(
        self,
        model: str,
        *,
        usd_per_gpu_hour: float,
        tokens_per_second: float,
        gpus: int = 1,
        prefill_tokens_per_second: float | None = None,
        utilization: float = 1.0,
        provider: str | None = None,
        max_input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        supports_function_calling: bool = True,
        supports_vision: bool = False,
        supports_response_schema: bool = True,
    ) -> ModelPrice:
        """Price a model you serve yourself from what its GPUs cost.

        ``tokens_per_second`` is the deployment's aggregate decode throughput (all concurrent
        requests, all ``gpus``); ``prefill_tokens_per_second`` its prompt-processing throughput
        (default: 10x decode, since prefill is compute-bound and batched). ``utilization`` is the
        share of paid GPU time spent serving (idle time is paid too)::

            usd_per_second  = usd_per_gpu_hour * gpus / 3600
            output_per_token = usd_per_second / (tokens_per_second * utilization)
            input_per_token  = usd_per_second / (prefill_tokens_per_second * utilization)
        """
        hourly = _rate("usd_per_gpu_hour", usd_per_gpu_hour)
        decode = _positive("tokens_per_second", tokens_per_second)
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
            raise ConfigError("gpus", f"must be an integer >= 1, got {gpus!r}")
        prefill = (
            decode * 10
            if prefill_tokens_per_second is None
            else _positive("prefill_tokens_per_second", prefill_tokens_per_second)
        )
        share = _positive("utilization", utilization)
        if share > 1:
            raise ConfigError("utilization", f"must be in (0, 1], got {utilization!r}")
        assert hourly is not None
        usd_per_second = hourly * gpus / 3600.0
        per_million_out = usd_per_second / (decode * share) * _PER_MILLION
        per_million_in = usd_per_second / (prefill * share) * _PER_MILLION
        price = self.register(
            model,
            input_per_million=per_million_in,
            output_per_million=per_million_out,
            provider=provider,
            max_input_tokens=max_input_tokens,
            max_output_tokens=max_output_tokens,
            supports_function_calling=supports_function_calling,
            supports_vision=supports_vision,
            supports_response_schema=supports_response_schema,
            supports_prompt_caching=False,
        )
        price = attrs.evolve(price, source="self_hosted")
        self._put(price)
        return price

    def overrides(self) -> tuple[ModelPrice, ...]:
        """The prices registered on this book (not its base's)."""
        return tuple(self._overrides.values())

    @property
    def base(self) -> PriceBook | None:
        return self._base

    @property
    def cost_map(self) -> CostMap | None:
        return self._map

    # -- internals
    def _put(self, price: ModelPrice) -> None:
        with self._lock:
            self._overrides[(price.provider, price.model)] = price
            self._memo.clear()

    def _resolve_own(self, model: str, provider: str | None) -> ModelPrice | None:
        if not isinstance(model, str) or not model:
            return None
        hint = None if provider is None or provider.lower() in _NEUTRAL_PROVIDERS else provider.lower()
        found = self._from_overrides(model, hint)
        if found is not None:
            return found
        if self._map is not None:
            return self._from_map(model, hint)
        return None

    def _from_overrides(self, model: str, hint: str | None) -> ModelPrice | None:
        if not self._overrides:
            return None
        if hint is None and "/" in model:
            hint = model.split("/", 1)[0].lower()  # "groq/llama-3-8b" asks for groq's price first
        for name in _spellings(model, hint, None):
            if hint is not None and (hit := self._overrides.get((hint, name))) is not None:
                return hit
            if (hit := self._overrides.get((None, name))) is not None:
                return hit
            for (prov, key), value in self._overrides.items():
                if key == name and (hint is None or prov is None):
                    return value
        return None

    def _from_map(self, model: str, hint: str | None) -> ModelPrice | None:
        assert self._map is not None
        entries = self._map.entries
        providers = self._map.providers
        for name in _spellings(model, hint, providers):
            entry = entries.get(name)
            if entry is not None:
                return price_from_map_entry(name, entry)
        alias = _newest_dated(model, hint, entries, providers)
        if alias is not None:
            return price_from_map_entry(alias, entries[alias])
        return None


def _spellings(model: str, hint: str | None, providers: frozenset[str] | None) -> list[str]:
    """The keys a user's model name may be stored under, most specific first."""
    names: list[str] = []

    def add(name: str) -> None:
        if name and name not in names:
            names.append(name)

    bare = model
    prefix, sep, rest = model.partition("/")
    if sep and (providers is None or prefix.lower() in providers or prefix.lower() == hint):
        bare = rest
    if hint is not None:
        add(f"{hint}/{bare}")
    add(model)
    if bare != model:
        add(f"{prefix.lower()}/{bare}")
        add(bare)
    lowered = [n.lower() for n in names]
    for name in lowered:
        add(name)
    # a dated snapshot the map does not list yet: price it as its undated alias
    for name in list(names):
        match = _DATE_SUFFIX.match(name)
        if match:
            add(match.group(1))
    return names


def _newest_dated(model: str, hint: str | None, entries: Mapping[str, Any], providers: frozenset[str]) -> str | None:
    """An undated or ``-latest`` name the map lacks -> the newest dated snapshot of it the map has.

    ``claude-sonnet-4-5-latest`` -> ``claude-sonnet-4-5-20250929``. Claude models Anthropic no
    longer lists fall back to Bedrock's ``anthropic.claude-...`` snapshot, which AWS bills at
    Anthropic's list price.
    """
    stem_model = model[: -len(_LATEST_SUFFIX)] if model.endswith(_LATEST_SUFFIX) else model
    if _DATE_SUFFIX.match(stem_model):
        return None
    stems = _spellings(stem_model, hint, providers)
    bare = stems[-1].rsplit("/", 1)[-1]
    if bare.startswith("claude") and hint in (None, "anthropic", "bedrock"):
        stems.append(f"anthropic.{bare}")
    for stem in stems:
        best: tuple[str, str] | None = None
        prefix = stem + "-"
        for key in entries:
            if key.startswith(prefix) and (match := _DATE_SUFFIX.match(key)) and match.group(1) == stem:
                date = match.group(2).replace("-", "")
                if best is None or date > best[0]:
                    best = (date, key)
        if best is not None:
            return best[1]
    return None
