"""Per-entry thresholds from stored verdicts: refutations block, confirmations lower, junk is ignored."""

from __future__ import annotations

import math

from costkit.policies.cache.adaptation import NO, YES, entry_threshold, refuted_at_or_above, verdicts


def test_no_verdicts_keep_the_calibrated_threshold() -> None:
    assert entry_threshold(0.9, 0.5, {}, 3) == 0.9


def test_a_refutation_raises_the_threshold_above_its_score() -> None:
    t = entry_threshold(0.9, 0.5, {NO: [0.95]}, 3)
    assert t == math.nextafter(0.95, math.inf)
    assert refuted_at_or_above({NO: [0.95]}, 0.95) and not refuted_at_or_above({NO: [0.95]}, 0.96)


def test_enough_confirmations_lower_it_but_never_below_the_floor() -> None:
    assert entry_threshold(0.9, 0.5, {YES: [0.8, 0.7]}, 3) == 0.9
    assert entry_threshold(0.9, 0.5, {YES: [0.8, 0.7, 0.75]}, 3) == 0.7
    assert entry_threshold(0.9, 0.75, {YES: [0.8, 0.7, 0.75]}, 3) == 0.75
    assert entry_threshold(0.9, 0.5, {YES: [0.8, 0.7, 0.75], NO: [0.6]}, 3) == 0.9


def test_stored_junk_counts_as_no_verdict() -> None:
    assert verdicts({YES: "0.1"}, YES) == [] and verdicts({YES: [True, "x", float("nan"), 0.5]}, YES) == [0.5]
    assert verdicts({YES: [0.1] * 1000}, YES) == []
