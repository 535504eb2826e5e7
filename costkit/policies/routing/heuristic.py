"""The complexity score of the practitioners' cost guides, as a transparent, tunable baseline.

Five signals, each in [0, 1], read from the text of the request (the last user message):

* ``length``: ``1 - exp(-tokens / length_scale)``, tokens estimated as characters / 4;
* ``reasoning``: reasoning keywords ("prove", "step by step", "trade-off" ...), saturating at 3;
* ``questions``: several questions or numbered asks in one request, saturating at 4;
* ``code``: code signals (fences, ``def``/``class``/``import``, braces and semicolons, SQL, tracebacks);
* ``math``: LaTeX, equations, arithmetic.

The score is their weighted mean (weights are yours to set); thresholds cut it into tiers. Every
signal is reported in the call's ``route_scores`` so a wrong route can be explained and tuned.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ..._call import Call
from ...errors import ConfigError
from .decision import Decision, as_ladder, text_of

DEFAULT_KEYWORDS = (
    "prove",
    "proof",
    "derive",
    "step by step",
    "step-by-step",
    "analyze",
    "analyse",
    "explain why",
    "compare",
    "trade-off",
    "tradeoff",
    "optimize",
    "optimise",
    "design",
    "architecture",
    "debug",
    "refactor",
    "algorithm",
    "complexity",
    "evaluate",
    "critique",
    "justify",
    "strategy",
    "implications",
    "pros and cons",
    "root cause",
    "in depth",
    "in-depth",
    "reason about",
    "theorem",
)

_CODE = (
    re.compile(r"```"),
    re.compile(r"^\s*(def|class|import|from|fn|func|public|private|#include)\b", re.MULTILINE),
    re.compile(r"[{};]\s*$", re.MULTILINE),
    re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b[\s\S]*?\b(FROM|INTO|SET|WHERE)\b"),
    re.compile(r"Traceback \(most recent call last\)|Exception in thread|at [\w.$]+\([\w.]+:\d+\)"),
    re.compile(r"\b\w+\([^()\n]*\)\s*(=>|->|\{)"),
)
_MATH = (
    re.compile(r"\\(frac|sum|int|sqrt|lim|prod|partial|begin\{)"),
    re.compile(r"\$[^$\n]+\$"),
    re.compile(r"\b\d+(\.\d+)?\s*[-+*/^\u00d7\u00f7]\s*\d+"),
    re.compile(r"\b[a-z]\s*[=<>\u2264\u2265]\s*[-\d(a-z]", re.IGNORECASE),
    re.compile(r"\b(integral|derivative|equation|matrix|eigen\w*|probability|polynomial)\b", re.IGNORECASE),
)
_NUMBERED = re.compile(r"^\s*(\d+[.)]|[-*•])\s+\S", re.MULTILINE)

DEFAULT_WEIGHTS: Mapping[str, float] = {"length": 0.3, "reasoning": 0.25, "questions": 0.15, "code": 0.2, "math": 0.1}
SIGNALS = tuple(DEFAULT_WEIGHTS)


@attrs.frozen(slots=True)
class Complexity:
    """A score in [0, 1] and the signals it was made of."""

    score: float
    signals: Mapping[str, float]


class ComplexityScorer:
    """Scores a request's complexity from its text; every knob is a constructor argument."""

    def __init__(
        self,
        *,
        weights: Mapping[str, float] | None = None,
        keywords: Sequence[str] = DEFAULT_KEYWORDS,
        length_scale: float = 500.0,
    ) -> None:
        w = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = sorted(set(w) - set(SIGNALS))
        if unknown:
            raise ConfigError(f"weights.{unknown[0]}", f"unknown signal; signals are {', '.join(SIGNALS)}")
        for k, v in w.items():
            if not isinstance(v, int | float) or v < 0 or math.isnan(v):
                raise ConfigError(f"weights.{k}", f"must be a number >= 0, got {v!r}")
        if sum(w.values()) <= 0:
            raise ConfigError("weights", "at least one weight must be > 0")
        if isinstance(keywords, str) or not all(isinstance(k, str) and k for k in keywords):
            raise ConfigError("keywords", "must be a sequence of non-empty strings")
        if not isinstance(length_scale, int | float) or length_scale <= 0:
            raise ConfigError("length_scale", f"must be a number > 0 (tokens), got {length_scale!r}")
        self.weights = {k: float(w.get(k, 0.0)) for k in SIGNALS}
        self._total = sum(self.weights.values())
        self.keywords = tuple(k.lower() for k in keywords)
        self._keyword_re = re.compile("|".join(r"\b" + re.escape(k) for k in self.keywords)) if self.keywords else None
        self.length_scale = float(length_scale)

    def signals(self, text: str) -> dict[str, float]:
        lower = text.lower()
        tokens = len(text) / 4.0
        keywords = len(set(self._keyword_re.findall(lower))) if self._keyword_re is not None else 0
        asks = text.count("?") + len(_NUMBERED.findall(text))
        code = sum(1 for p in _CODE if p.search(text))
        maths = sum(1 for p in _MATH if p.search(text))
        return {
            "length": 1.0 - math.exp(-tokens / self.length_scale),
            "reasoning": min(1.0, keywords / 3.0),
            "questions": min(1.0, max(0, asks - 1) / 3.0),
            "code": min(1.0, code / 2.0),
            "math": min(1.0, maths / 2.0),
        }

    def __call__(self, text: str) -> Complexity:
        signals = self.signals(text)
        score = sum(self.weights[k] * v for k, v in signals.items()) / self._total
        return Complexity(score=score, signals=signals)

    def __repr__(self) -> str:
        return f"ComplexityScorer(weights={self.weights}, length_scale={self.length_scale})"


def default_thresholds(n_tiers: int) -> tuple[float, ...]:
    """Evenly spaced cuts over [0, 0.6]: most everyday requests score under 0.3."""
    return tuple(round(0.6 * i / n_tiers, 6) for i in range(1, n_tiers))


class Heuristic:
    """Tier ``i`` serves scores in ``[thresholds[i-1], thresholds[i])``; stronger tiers are the fallbacks."""

    def __init__(
        self,
        models: Sequence[Any],
        *,
        thresholds: Sequence[float] | None = None,
        scorer: ComplexityScorer | Callable[[str], Complexity] | None = None,
        text: Callable[[Call], str] = text_of,
    ) -> None:
        self.ladder = as_ladder(models)
        if len(self.ladder) < 2:
            raise ConfigError("models", "a heuristic router needs at least two tiers (cheap first)")
        cuts = default_thresholds(len(self.ladder)) if thresholds is None else tuple(thresholds)
        if len(cuts) != len(self.ladder) - 1:
            raise ConfigError("thresholds", f"needs {len(self.ladder) - 1} values for {len(self.ladder)} tiers")
        if any(not isinstance(t, int | float) or not 0.0 <= t <= 1.0 for t in cuts):
            raise ConfigError("thresholds", f"must be numbers in [0, 1], got {cuts!r}")
        if any(b <= a for a, b in itertools.pairwise(cuts)):
            raise ConfigError("thresholds", f"must be strictly increasing, got {cuts!r}")
        if scorer is not None and not callable(scorer):
            raise ConfigError("scorer", "must be callable text -> Complexity")
        if not callable(text):
            raise ConfigError("text", "must be callable call -> str")
        self.thresholds = tuple(float(t) for t in cuts)
        self.scorer = scorer if scorer is not None else ComplexityScorer()
        self.text = text

    def model_fields(self) -> dict[str, tuple[str, ...]]:
        """The models it may send to, by the constructor field that named them."""
        return {f"models[{i}]": tier for i, tier in enumerate(self.ladder)}

    def tier_of(self, score: float) -> int:
        return sum(1 for t in self.thresholds if score >= t)

    def decide(self, call: Call) -> Decision:
        c = self.scorer(self.text(call))
        tier = self.tier_of(c.score)
        scores = {"complexity": round(c.score, 4), **{k: round(v, 4) for k, v in c.signals.items()}}
        return Decision(
            tiers=self.ladder[tier:],
            reason=f"complexity {c.score:.3f} -> tier {tier}",
            scores=scores,
        )

    def __repr__(self) -> str:
        return f"Heuristic({[list(t) for t in self.ladder]}, thresholds={list(self.thresholds)})"


__all__ = ["DEFAULT_KEYWORDS", "DEFAULT_WEIGHTS", "Complexity", "ComplexityScorer", "Heuristic", "default_thresholds"]
