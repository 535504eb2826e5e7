"""The verifier: a second opinion on a candidate, and what its verdicts are used for.

A :class:`Verifier` is one object: the check itself (any callable ``(query, cached_question,
cached_answer) -> bool``, sync or async, e.g. :class:`LLMJudge`) and how the cache uses it:

* ``band``: candidates scoring between the threshold calibrated for this looser false-hit rate and
  the cache's own threshold are asked about; confirmed ones are served;
* ``sample``: that share of *direct* hits (above the threshold) is verified too, which gives a live,
  unbiased estimate of the false-hit rate among hits (``cache.live_quality``, and
  ``notes["cache_verified"]`` in the records: True on the served hit, False on the provider call
  that replaced a refuted one);
* ``verify_all``: verify every hit (the band and the direct hits);
* ``min_confirmations``: how many confirmations let an entry answer directly down to its lowest
  confirmed score (per-entry thresholds, vCache-style; :mod:`.adaptation`);
* ``accuracy``: how often the check is right, if you know it; the cache then chooses its direct
  threshold and the band's start together so the false-hit bound holds *with* the verifier's
  mistakes (:meth:`~.calibration.Calibration.thresholds_with_verifier`), instead of ``band``.

Verdicts are stored in the entry itself, so every process sharing the store adapts together.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import attrs

from ..._warn import warn_once
from ...errors import ConfigError
from .calibration import check_rate, upper_bound


class LLMJudge:
    """A verifier that asks a cheap model whether two questions ask the same thing.

    ``client`` is an openai-shaped client (wrap it with costkit so the judge's calls are recorded
    and priced). It answers False on any error: a failing judge makes misses, never wrong hits.
    """

    PROMPT = (
        "Do these two questions ask for the same information, so that one answer serves both? "
        "Answer only yes or no.\nQuestion 1: {a}\nQuestion 2: {b}"
    )

    def __init__(self, client: Any, model: str = "gpt-4o-mini") -> None:
        if not hasattr(getattr(getattr(client, "chat", None), "completions", None), "create"):
            raise ConfigError("client", "needs an openai-shaped client with client.chat.completions.create")
        self.client = client
        self.model = model
        self.errors = 0

    def __call__(self, query: str, cached_question: str, cached_answer: str | None = None) -> bool:
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": self.PROMPT.format(a=query, b=cached_question)}],
                temperature=0,
                max_tokens=2,
            )
            text = (response.choices[0].message.content or "").strip().lower()
        except Exception as exc:
            self.errors += 1
            warn_once(
                f"llm-judge:{type(exc).__name__}", f"costkit: the cache's LLM judge failed ({exc!r}); treating as no"
            )
            return False
        return text.startswith("yes")


def _check_fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ConfigError(name, f"must be a share in [0, 1], got {value!r}")
    return float(value)


@attrs.frozen(kw_only=True)
class Verifier:
    """A check and how the cache uses it (see the module docstring)."""

    check: Callable[..., Any]
    band: float = attrs.field(default=0.25, converter=lambda v: check_rate(v, "verifier.band"))
    sample: float = attrs.field(default=0.0, converter=lambda v: _check_fraction(v, "verifier.sample"))
    verify_all: bool = False
    min_confirmations: int = 3
    accuracy: float | None = None  # stated: the cache then sets its threshold and band so δ holds with it

    def __attrs_post_init__(self) -> None:
        if not callable(self.check):
            raise ConfigError("verifier", "must be a callable (query, cached_question, cached_answer) -> bool")
        a = self.accuracy
        if a is not None and (isinstance(a, bool) or not isinstance(a, int | float) or not 0.5 < a <= 1):
            raise ConfigError("verifier.accuracy", f"must be None or in (0.5, 1], got {a!r}")
        if not isinstance(self.min_confirmations, int) or self.min_confirmations < 1:
            raise ConfigError("verifier.min_confirmations", f"must be an int >= 1, got {self.min_confirmations!r}")

    @property
    def is_async(self) -> bool:
        call = type(self.check).__call__ if not inspect.isroutine(self.check) else None
        return inspect.iscoroutinefunction(self.check) or inspect.iscoroutinefunction(call)

    @classmethod
    def of(cls, value: Any) -> Verifier | None:
        """None, a Verifier, or a bare callable (a Verifier with the defaults)."""
        if value is None or isinstance(value, Verifier):
            return value
        if callable(value):
            return cls(check=value)
        raise ConfigError(
            "verifier", "must be a callable (query, cached_question, cached_answer) -> bool, or a Verifier"
        )


@attrs.frozen(kw_only=True)
class LiveQuality:
    """What the sampled verification of direct hits says: the false-hit rate among hits, live.

    ``refuted / sampled`` estimates the share of served hits that were wrong; the upper bound is
    the one-sided Clopper-Pearson bound at ``confidence``. Multiply by the hit rate for the
    false-hit rate per lookup (the figure ``max_false_hit_rate`` promises).
    """

    sampled: int
    refuted: int
    confidence: float = 0.95

    @property
    def wrong_share_of_hits(self) -> float:
        return self.refuted / self.sampled if self.sampled else math.nan

    @property
    def wrong_share_upper_bound(self) -> float:
        return upper_bound(self.refuted, self.sampled, self.confidence) if self.sampled else 1.0


__all__ = ["LLMJudge", "LiveQuality", "Verifier"]
