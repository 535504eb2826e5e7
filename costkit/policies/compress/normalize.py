"""Lossless normalization: white space and exact duplicates, which a model reads the same way.

* white space: runs of spaces and tabs inside a line become one space, trailing spaces go, three or
  more line breaks become two. Leading indentation and fenced code blocks (```) are left exactly
  as they are (indentation can be meaning).
* duplicates: a block (a paragraph, separated by a blank line) that appeared earlier in the same
  section is dropped; a message whose whole text appeared earlier is dropped.
"""

from __future__ import annotations

import re

_INNER_SPACE = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_TRAILING = re.compile(r"[ \t]+(?=\n|$)")
_BLANKS = re.compile(r"\n{3,}")
_FENCE = re.compile(r"(```.*?```)", re.DOTALL)


def normalize_space(text: str) -> str:
    """``text`` with redundant white space removed (code fences and indentation untouched)."""
    parts = _FENCE.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside code fences
        p = _INNER_SPACE.sub(" ", parts[i])
        p = _TRAILING.sub("", p)
        parts[i] = _BLANKS.sub("\n\n", p)
    return "".join(parts).strip() if len(parts) == 1 else "".join(parts)


def _key(block: str) -> str:
    return " ".join(block.split())


def drop_duplicate_blocks(text: str, seen: set[str]) -> str:
    """``text`` without the paragraphs already in ``seen`` (which it then adds its own to)."""
    blocks = re.split(r"(\n\s*\n)", text)
    out: list[str] = []
    for i in range(0, len(blocks), 2):
        block = blocks[i]
        key = _key(block)
        if key and key in seen:
            continue
        if key:
            seen.add(key)
        if out and i > 0:
            out.append(blocks[i - 1])
        out.append(block)
    return "".join(out).strip() if out else ""


__all__ = ["drop_duplicate_blocks", "normalize_space"]
