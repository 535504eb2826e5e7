"""LocalSemanticStore: verdicts and askers appended to an entry, kept on disk, capped; Candidate views."""

from __future__ import annotations

import numpy as np

from costkit.policies.cache.semantic_store import Candidate, LocalSemanticStore


def test_append_keeps_the_last_items_and_survives_a_reopen(tmp_path) -> None:
    store = LocalSemanticStore(tmp_path)
    entry = store.add("p", np.array([1.0, 0.0], dtype=np.float32), {"q": "x", "verified_no": "junk"})
    for i in range(5):
        assert store.append(entry, "verified_no", [float(i)], cap=3)
    assert store.get(entry)["verified_no"] == [2.0, 3.0, 4.0]
    store.close()
    assert LocalSemanticStore(tmp_path).get(entry)["verified_no"] == [2.0, 3.0, 4.0]
    assert not store.append(999, "users", ["a"])


def test_candidate_reads_its_payload_defensively() -> None:
    c = Candidate(0.9, 1, {"q": "How?", "result": {"text": "So."}})
    assert (c.question, c.answer_text) == ("How?", "So.")
    junk = Candidate(0.9, 2, {"q": 3, "result": "x"})
    assert (junk.question, junk.answer_text) == ("", None)
