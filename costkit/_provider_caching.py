"""Providers' prompt-caching rules, in one place: the PromptCache policy follows them and the fake
provider bills by them.

Sources: Anthropic's prompt-caching docs (minimum cacheable prompt length per model, at most 4
``cache_control`` breakpoints, a 20-block lookback, 5-minute or 1-hour lifetimes, writes at 1.25x
input and reads at 0.1x); OpenAI's prompt-caching guide (automatic for prompts of 1,024 tokens or
more, hits in 128-token steps, ``prompt_cache_key`` joins the routing hash). Checked in 2026.
"""

from __future__ import annotations

ANTHROPIC_MAX_BREAKPOINTS = 4
ANTHROPIC_LOOKBACK_BLOCKS = 20
ANTHROPIC_DEFAULT_MIN_TOKENS = 1024
#: (model name fragment, minimum cacheable tokens); first match wins; other Claude models: 1,024
#: (Sonnet 4.5, Sonnet 4, Opus 4 / 4.1, Sonnet 3.7)
ANTHROPIC_MIN_TOKENS: tuple[tuple[str, int], ...] = (
    ("opus-4-6", 4096),
    ("opus-4-5", 4096),
    ("haiku-4-5", 4096),
    ("sonnet-4-6", 2048),
    ("3-5-haiku", 2048),
    ("3-haiku", 2048),
    ("haiku-3", 2048),
)
ANTHROPIC_TTLS_S = {"5m": 300.0, "1h": 3600.0}
OPENAI_MIN_TOKENS = 1024
OPENAI_STEP_TOKENS = 128
OPENAI_RETENTION_S = {"in_memory": 300.0, "24h": 86400.0}


def anthropic_min_tokens(model: str) -> int:
    """The shortest prefix an Anthropic model caches."""
    bare = model.rsplit("/", 1)[-1].lower()
    for fragment, tokens in ANTHROPIC_MIN_TOKENS:
        if fragment in bare:
            return tokens
    return ANTHROPIC_DEFAULT_MIN_TOKENS


__all__ = [
    "ANTHROPIC_DEFAULT_MIN_TOKENS",
    "ANTHROPIC_LOOKBACK_BLOCKS",
    "ANTHROPIC_MAX_BREAKPOINTS",
    "ANTHROPIC_MIN_TOKENS",
    "ANTHROPIC_TTLS_S",
    "OPENAI_MIN_TOKENS",
    "OPENAI_RETENTION_S",
    "OPENAI_STEP_TOKENS",
    "anthropic_min_tokens",
]
