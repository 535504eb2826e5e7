"""A fixed-threshold semantic cache, as GPTCache configures one by default, for comparison only.

GPTCache's default answers from the most similar cached question when their similarity clears a
fixed threshold (0.8). This policy does the same on costkit's bundled embedder (wordllama, the
one ``costkit.SemanticCache`` uses), inside the same partitions (tenant, model and every message
but the last user turn must be equal), so the comparison isolates one thing: a fixed cosine
threshold against a calibrated false-hit rate with a meaning-flip veto. It is not part of costkit.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np

from costkit import Call, FlowPolicy, Result


class FixedThresholdCache(FlowPolicy):
    def __init__(self, threshold: float = 0.8, embedder: Any = None) -> None:
        from costkit.embedders import default_embedder

        self.threshold = threshold
        self.embed = embedder or default_embedder()
        self.partitions: dict[str, tuple[list[np.ndarray], list[Result]]] = {}
        self.lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0, "stored": 0}

    @staticmethod
    def partition(call: Call) -> str:
        earlier = list(call.messages[:-1])
        return json.dumps([call.tags.tenant, call.requested_model, earlier], sort_keys=True, default=str)

    def flow(self, call: Call):  # type: ignore[no-untyped-def]
        key = self.partition(call)
        vec = np.asarray(self.embed([call.last_user_text]), dtype=np.float32)[0]
        with self.lock:
            vecs, results = self.partitions.get(key, ([], []))
            if vecs:
                sims = np.stack(vecs) @ vec
                best = int(np.argmax(sims))
                if sims[best] >= self.threshold:
                    self.stats["hits"] += 1
                    return results[best].evolve(source="semantic")
            self.stats["misses"] += 1
        result = yield call
        if result.source == "provider" and result.finish_reason == "stop" and result.raw is not None:
            with self.lock:
                vecs, results = self.partitions.setdefault(key, ([], []))
                vecs.append(vec)
                results.append(result)
                self.stats["stored"] += 1
        return result
