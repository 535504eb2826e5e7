"""Tool results, trimmed with their structure kept: every key stays, long arrays keep their first
items, long strings their head, and each cut says what it cut.

A JSON tool result is first re-written compactly (no indentation: the same structure in fewer
tokens), then shrunk in rounds (arrays to 32, 16 ... 1 items; strings to 1,000, 400 ... 50
characters) until it fits its budget; a cut array ends with the string ``"… 37 more items"``, a
cut string with ``"… (1,234 chars cut)"``. Text that is not JSON keeps its first and last lines
with ``[… N lines cut …]`` between them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

ARRAY_STEPS = (32, 16, 8, 4, 2, 1)
STRING_STEPS = (1000, 400, 200, 100, 50)


def _shrink(value: Any, max_items: int, max_chars: int) -> Any:
    if isinstance(value, dict):
        return {k: _shrink(v, max_items, max_chars) for k, v in value.items()}
    if isinstance(value, list):
        head = [_shrink(v, max_items, max_chars) for v in value[:max_items]]
        if len(value) > max_items:
            head.append(f"… {len(value) - max_items} more items")
        return head
    if isinstance(value, str) and len(value) > max_chars:
        return f"{value[:max_chars]}… ({len(value) - max_chars:,} chars cut)"
    return value


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _cut_lines(text: str, budget: int, count: Callable[[str], int]) -> str:
    lines = text.splitlines()
    keep = len(lines)
    while keep > 1:
        keep = keep // 2
        head, tail = lines[: (keep + 1) // 2], lines[len(lines) - keep // 2 :] if keep // 2 else []
        cut = len(lines) - len(head) - len(tail)
        out = "\n".join([*head, f"[… {cut} lines cut …]", *tail])
        if count(out) <= budget:
            return out
    # one line left and still too long: its head, cut at a word
    words = text.split()
    while words and count(" ".join(words) + " […]") > budget:
        words = words[: len(words) * 3 // 4]
    return " ".join(words) + " […]" if words else ""


def trim_tool_result(text: str, budget_tokens: int, count: Callable[[str], int]) -> str:
    """``text`` (a tool's output) within ``budget_tokens``, structure kept (see the module docstring)."""
    if count(text) <= budget_tokens:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return _cut_lines(text, budget_tokens, count)
    if not isinstance(value, dict | list):
        return _cut_lines(text, budget_tokens, count)
    compact = _dump(value)
    if count(compact) <= budget_tokens:
        return compact
    out = compact
    for items in ARRAY_STEPS:
        for chars in STRING_STEPS:
            out = _dump(_shrink(value, items, chars))
            if count(out) <= budget_tokens:
                return out
    return out  # every key kept, nothing shorter keeps the structure: over budget, but honest


__all__ = ["trim_tool_result"]
