"""What a call costs: per-token prices from LiteLLM's bundled model cost map, plus user overrides.

The map (``litellm/model_prices_and_context_window_backup.json`` in LiteLLM's wheel) is read
*without importing litellm* (which takes seconds and may fetch the map from the network): the
package directory is located with ``importlib.util.find_spec`` and the JSON is parsed once, on
first use. Each entry becomes a frozen :class:`ModelPrice` only when it is first looked up, and
lookups are memoized, so pricing a call is a dict hit plus a few multiplications.

Billing follows LiteLLM's own rules so the numbers agree with ``litellm.completion_cost``:

* ``Usage.input_tokens`` includes cached tokens: the uncached remainder bills at the input rate,
  cache reads at the cache-read rate, cache writes at the cache-write rate (a missing cache rate
  means the provider bills those tokens as ordinary input);
* long-context tiers (``*_above_200k_tokens`` ...): once the prompt exceeds a threshold, every
  token of the request bills at that tier's rates (xAI bills from the threshold itself);
* range tables (``tiered_pricing``, e.g. Alibaba's Qwen): one tier is chosen by the prompt size
  and bills the whole request;
* off-peak (``off_peak_pricing``, e.g. DeepSeek V4): time-of-day rates replace the standard ones;
* service tiers (``flex``, ``priority`` ...): the map's ``*_flex`` / ``*_priority`` keys, each
  falling back to the standard key;
* batch: ``*_batches`` rates when the map has them, half the standard rates otherwise.

docs/pricing.md lists where costkit knowingly differs from litellm, and why.

The package, one job a module: :mod:`~costkit.pricing.rates` (rates, thresholds, range tables,
off-peak windows), :mod:`~costkit.pricing.model_price` (one model's sheet and what a usage costs
on it), :mod:`~costkit.pricing.cost_map` (the bundled map, read without importing litellm) and
:mod:`~costkit.pricing.book` (overrides and lookups); this module holds the process-wide book.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from .book import PriceBook
from .cost_map import CostMap, litellm_cost_map_path, price_from_map_entry
from .model_price import ModelPrice
from .rates import OffPeak, RangeTier, Rates, ThresholdTier

P = ParamSpec("P")
R = TypeVar("R")
_default_lock = threading.Lock()
_default_book: PriceBook | None = None


def default_pricebook() -> PriceBook:
    """The process-wide book: LiteLLM's bundled map (parsed on first lookup) plus ``register``-ed prices."""
    global _default_book
    book = _default_book
    if book is None:
        with _default_lock:
            if _default_book is None:
                _default_book = PriceBook(base=None, cost_map=CostMap())
            book = _default_book
    return book


def _on_default_book(method: Callable[Concatenate[PriceBook, P], R]) -> Callable[P, R]:
    """``method`` of :func:`default_pricebook` as a module function (same signature and docstring)."""

    @functools.wraps(method)
    def on_default(*args: P.args, **kwargs: P.kwargs) -> R:
        return method(default_pricebook(), *args, **kwargs)

    signature = inspect.signature(method)  # without ``self``, for help() and IDEs
    on_default.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
    return on_default


get = _on_default_book(PriceBook.get)
cost = _on_default_book(PriceBook.cost)
worst_case_cost = _on_default_book(PriceBook.worst_case_cost)
register = _on_default_book(PriceBook.register)
register_self_hosted = _on_default_book(PriceBook.register_self_hosted)
warn_unknown = _on_default_book(PriceBook.warn_unknown)


__all__ = [
    "CostMap",
    "ModelPrice",
    "OffPeak",
    "PriceBook",
    "RangeTier",
    "Rates",
    "ThresholdTier",
    "cost",
    "default_pricebook",
    "get",
    "litellm_cost_map_path",
    "price_from_map_entry",
    "register",
    "register_self_hosted",
    "warn_unknown",
    "worst_case_cost",
]
