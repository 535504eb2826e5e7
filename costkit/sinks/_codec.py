"""CostRecord <-> JSON-safe dicts, shared by the JSONL and SQLite sinks.

``notes`` may hold anything a layer put there; values JSON cannot carry are written as their
``str`` (tuples and sets as lists) rather than failing the write.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import attrs

from ..outcomes import Outcome
from ..records import CostRecord

_NAMES = frozenset(a.name for a in attrs.fields(CostRecord))
# fields that cannot be None: a missing value (a column added after the row was written) takes the default
_NOT_OPTIONAL = frozenset(
    a.name for a in attrs.fields(CostRecord) if a.default is not attrs.NOTHING and a.default is not None
) - {"cost_usd"}


def jsonable(value: Any) -> Any:
    """``json.dumps`` fallback: never fails, loses only types JSON has no word for."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return value.item()
        except Exception:
            pass
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=jsonable)


def record_to_json(record: CostRecord) -> str:
    """One line of JSON (no newline) holding every field of ``record``."""
    return dumps(record.to_dict())


def record_from_mapping(data: Mapping[str, Any]) -> CostRecord:
    """Build a record from a decoded row, tolerating fields this version does not know."""
    d = {k: v for k, v in data.items() if k in _NAMES and (v is not None or k not in _NOT_OPTIONAL)}
    cost = d.get("cost_usd")
    if isinstance(cost, float) and math.isnan(cost):
        d["cost_usd"] = None
    return CostRecord(**d)


def loads_mapping(text: str | None) -> dict[str, Any]:
    """A JSON object column (``savings``, ``notes``); ``{}`` and NULL skip the parser."""
    if text is None or text == "{}":
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def record_from_json(line: str) -> CostRecord:
    return record_from_mapping(json.loads(line))


OUTCOME_TYPE = "outcome"  # the ``type`` of an outcome line in a JSONL file (records carry no ``type``)


def outcome_to_json(outcome: Outcome) -> str:
    return dumps({"type": OUTCOME_TYPE, **outcome.to_dict()})


__all__ = [
    "OUTCOME_TYPE",
    "dumps",
    "jsonable",
    "loads_mapping",
    "outcome_to_json",
    "record_from_json",
    "record_from_mapping",
    "record_to_json",
]
