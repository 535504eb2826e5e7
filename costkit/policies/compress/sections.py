"""Which part of the prompt a message belongs to: ``system``, ``history``, ``retrieved``, ``tools``
or the ``question`` (the last user turn, which no layer ever cuts).

Which messages are "retrieved" is decided by ``classify(message) -> section | None``; by default
a message whose ``name`` is ``context``, ``retrieved`` or ``documents``. Everything else goes by
its role: system/developer messages are ``system``, tool results ``tools``, the rest ``history``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import ConfigError

SECTIONS = ("system", "history", "retrieved", "tools")
RETRIEVED_NAMES = frozenset({"context", "retrieved", "documents"})

Message = Mapping[str, Any]
Classifier = Callable[[Message], "str | None"]


def default_classify(message: Message) -> str | None:
    """Section of a message, or None to let its role decide."""
    if message.get("name") in RETRIEVED_NAMES:
        return "retrieved"
    return None


def is_tool_result(message: Message) -> bool:
    """A tool's output: an OpenAI ``tool``/``function`` message or an Anthropic ``tool_result`` turn."""
    if message.get("role") in ("tool", "function"):
        return True
    content = message.get("content")
    return (
        message.get("role") == "user"
        and isinstance(content, list)
        and bool(content)
        and all(isinstance(p, Mapping) and p.get("type") == "tool_result" for p in content)
    )


def last_user_index(messages: Sequence[Message]) -> int:
    """Index of the question: the last user message that is not a tool result."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user" and not is_tool_result(messages[i]):
            return i
    return len(messages) - 1


def check_classifier(classify: Any) -> Classifier:
    if classify is None:
        return default_classify
    if not callable(classify):
        raise ConfigError("classify", "must be a callable(message) -> section name or None")
    return classify


def sections_of(messages: Sequence[Message], classify: Classifier) -> list[str]:
    """The section of every message (``question`` for the last user turn)."""
    last = last_user_index(messages)
    out = []
    for i, m in enumerate(messages):
        if i == last:
            out.append("question")
            continue
        chosen = classify(m)
        if chosen is not None:
            if chosen not in SECTIONS:
                raise ConfigError("classify", f"returned {chosen!r}; sections are {', '.join(SECTIONS)}")
            out.append(chosen)
        elif m.get("role") in ("system", "developer"):
            out.append("system")
        elif is_tool_result(m):
            out.append("tools")
        else:
            out.append("history")
    return out


__all__ = [
    "RETRIEVED_NAMES",
    "SECTIONS",
    "Classifier",
    "Message",
    "check_classifier",
    "default_classify",
    "is_tool_result",
    "last_user_index",
    "sections_of",
]
