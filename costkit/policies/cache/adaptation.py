"""Per-entry thresholds from verifier verdicts (vCache-style), kept in the entry itself.

The calibrated threshold is one number for a whole partition; verdicts tell about one entry. A
refutation at score ``s`` means this entry is wrong for questions that close: direct hits on it at
or below ``s`` are blocked. After ``min_confirmations`` confirmations and no refutation the entry
answers directly down to its lowest confirmed score (never below the verifier's band). The verdict
scores are lists in the entry's payload (``verified_yes`` / ``verified_no``), appended through the
store, so every process sharing the store adapts from every process's verdicts. Stored data is not
trusted: anything but a short list of finite numbers counts as no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

YES = "verified_yes"
NO = "verified_no"
KEEP = 16  # verdicts kept per entry and kind (the most recent)


def verdicts(payload: Mapping[str, Any], field: str) -> list[float]:
    values = payload.get(field)
    if not isinstance(values, list) or len(values) > 4 * KEEP:
        return []
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]


def entry_threshold(threshold: float, floor: float, payload: Mapping[str, Any], min_confirmations: int) -> float:
    """The calibrated ``threshold`` moved by this entry's verdicts; never below ``floor`` (the band)."""
    yes, no = verdicts(payload, YES), verdicts(payload, NO)
    t = threshold
    if len(yes) >= min_confirmations and not no:
        t = min(t, max(min(yes), floor))
    if no:
        t = max(t, math.nextafter(max(no), math.inf))
    return t


def refuted_at_or_above(payload: Mapping[str, Any], score: float) -> bool:
    """A refutation at a score >= ``score``: the verifier need not be asked again this low."""
    no = verdicts(payload, NO)
    return bool(no) and score <= max(no)


__all__ = ["KEEP", "NO", "YES", "entry_threshold", "refuted_at_or_above", "verdicts"]
