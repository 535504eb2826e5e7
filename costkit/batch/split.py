"""Splitting a job into provider batches that respect the providers' limits.

OpenAI: one input file holds up to 50,000 requests and 200 MB, to a single model, and an
embeddings batch up to 50,000 inputs. Anthropic: one Message Batch holds up to 100,000 requests
or 256 MB of request body, models mixed. Items keep their order inside a chunk; an item too large
for any batch on its own is reported, never sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from ..errors import ConfigError


@attrs.frozen(kw_only=True)
class Limits:
    """What one provider batch may hold. Lower them to submit smaller chunks (e.g. to see
    results sooner, or to test splitting)."""

    max_requests: int
    max_bytes: int
    one_model: bool = False
    max_inputs: int | None = None  # embedding inputs per batch (OpenAI)

    def __attrs_post_init__(self) -> None:
        for name in ("max_requests", "max_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, f"must be a positive int, got {value!r}")


OPENAI_LIMITS = Limits(max_requests=50_000, max_bytes=200 * 1024 * 1024, one_model=True, max_inputs=50_000)
ANTHROPIC_LIMITS = Limits(max_requests=100_000, max_bytes=256 * 1024 * 1024)
#: bytes of the Message Batches request envelope ({"requests":[...]}) and per-request separators
ENVELOPE_BYTES = 64


@attrs.frozen
class Sized:
    """One item as the splitter sees it."""

    index: int
    model: str
    size_bytes: int
    inputs: int = 1


def split(items: Iterable[Sized], limits: Limits) -> tuple[list[list[int]], list[int]]:
    """(chunks of item indexes, indexes too large for any batch). Greedy, in input order per model."""
    groups: dict[str, list[Sized]] = {}
    for item in items:
        groups.setdefault(item.model if limits.one_model else "", []).append(item)
    chunks: list[list[int]] = []
    too_large: list[int] = []
    budget = limits.max_bytes - ENVELOPE_BYTES
    for members in groups.values():
        current: list[int] = []
        size = inputs = 0
        for item in members:
            if item.size_bytes > budget or (limits.max_inputs is not None and item.inputs > limits.max_inputs):
                too_large.append(item.index)
                continue
            full = (
                len(current) >= limits.max_requests
                or size + item.size_bytes > budget
                or (limits.max_inputs is not None and inputs + item.inputs > limits.max_inputs)
            )
            if current and full:
                chunks.append(current)
                current, size, inputs = [], 0, 0
            current.append(item.index)
            size += item.size_bytes
            inputs += item.inputs
        if current:
            chunks.append(current)
    return chunks, too_large


def chunk_sizes(chunks: Sequence[Sequence[int]]) -> list[int]:
    return [len(c) for c in chunks]


__all__ = ["ANTHROPIC_LIMITS", "OPENAI_LIMITS", "Limits", "Sized", "split"]
