"""costkit: make LLM applications cheaper without making them worse.

Wrap the client you already have::

    client = costkit.wrap(openai.OpenAI(), policies=[costkit.ExactCache()], sink=costkit.sinks.SQLiteSink("costs.db"))

Heavy modules (openai, anthropic, litellm, faiss, numpy) are imported only when first used:
``import costkit`` stays fast. Every public name is listed in ``__all__`` and resolved lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._call import Call, Result, Tags, Usage
from ._env import Env
from ._lazy import lazy_exports
from ._pipeline import Flow, FlowPolicy, Io, Policy, Sleep, Wait
from .errors import (
    BudgetExceeded,
    CircuitOpen,
    ConfigError,
    CostkitError,
    CostkitWarning,
    GuardrailViolation,
    RedisUnavailable,
    RetryBudgetExhausted,
    StateUnavailable,
)
from .records import CostRecord

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "wrap": "costkit._wrap",
    "tags": "costkit._context",
    "propagate": "costkit._context",
    "current_tags": "costkit._context",
    "budgeted": "costkit._budgeted",
    "Guardrails": "costkit.policies.guardrails",
    "Budget": "costkit.policies.budget",
    "BudgetLimit": "costkit.policies.budget",
    "BudgetAlert": "costkit.policies.budget",
    "Dedup": "costkit.policies.dedup",
    "ExactCache": "costkit.policies.cache.exact",
    "SemanticCache": "costkit.policies.cache.semantic",
    "ContextBudget": "costkit.policies.context_budget",
    "PromptCompressor": "costkit.policies.compress",
    "TextCompressor": "costkit.policies.compress",
    "PromptCache": "costkit.policies.prompt_cache",
    "Router": "costkit.policies.router",
    "RetryBudget": "costkit.policies.retry",
    "CircuitBreaker": "costkit.policies.circuit",
    "outcome": "costkit.outcomes",
    "Outcome": "costkit.outcomes",
    "Experiment": "costkit.policies.experiment",
    "Arm": "costkit.policies.experiment",
    "Shadow": "costkit.policies.shadow",
}
_SUBMODULES = {"sinks", "testing", "pricing", "tokens", "gates", "backends", "classify", "report", "batch"}
_SUBMODULES |= {"embedders", "alerts", "dashboard"}

__all__ = [
    "Arm",
    "Budget",
    "BudgetAlert",
    "BudgetExceeded",
    "BudgetLimit",
    "Call",
    "CircuitBreaker",
    "CircuitOpen",
    "ConfigError",
    "ContextBudget",
    "CostRecord",
    "CostkitError",
    "CostkitWarning",
    "Dedup",
    "Env",
    "ExactCache",
    "Experiment",
    "Flow",
    "FlowPolicy",
    "GuardrailViolation",
    "Guardrails",
    "Io",
    "Outcome",
    "Policy",
    "PromptCache",
    "PromptCompressor",
    "RedisUnavailable",
    "Result",
    "RetryBudget",
    "RetryBudgetExhausted",
    "Router",
    "SemanticCache",
    "Shadow",
    "Sleep",
    "StateUnavailable",
    "Tags",
    "TextCompressor",
    "Usage",
    "Wait",
    "alerts",
    "backends",
    "batch",
    "budgeted",
    "classify",
    "current_tags",
    "dashboard",
    "embedders",
    "gates",
    "outcome",
    "pricing",
    "propagate",
    "report",
    "sinks",
    "tags",
    "testing",
    "tokens",
    "wrap",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), submodules=_SUBMODULES)


if TYPE_CHECKING:  # pragma: no cover
    from . import (
        alerts,
        backends,
        batch,
        classify,
        dashboard,
        embedders,
        gates,
        pricing,
        report,
        sinks,
        testing,
        tokens,
    )
    from ._budgeted import budgeted
    from ._context import current_tags, propagate, tags
    from ._wrap import wrap
    from .outcomes import Outcome, outcome
    from .policies.budget import Budget, BudgetAlert, BudgetLimit
    from .policies.cache.exact import ExactCache
    from .policies.cache.semantic import SemanticCache
    from .policies.circuit import CircuitBreaker
    from .policies.compress import PromptCompressor, TextCompressor
    from .policies.context_budget import ContextBudget
    from .policies.dedup import Dedup
    from .policies.experiment import Arm, Experiment
    from .policies.guardrails import Guardrails
    from .policies.prompt_cache import PromptCache
    from .policies.retry import RetryBudget
    from .policies.router import Router
    from .policies.shadow import Shadow
