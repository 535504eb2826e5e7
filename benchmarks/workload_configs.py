"""The configurations the workload is replayed through, all in one process, each on a fresh fake provider.

A configuration turns one request of the trace into one call of the application (``ask``) and,
when it has a batch lane, sends the offline share as one batch job (``offline``). costkit's own
configurations wrap a real ``openai.OpenAI`` client (``costkit.testing.FakeOpenAI``, the SDK's
default two retries, a short read timeout) with the policies listed in :data:`COSTKIT`; the
application always asks for the frontier model (gpt-4o) at temperature 0 with ``max_tokens=1024``.
LiteLLM's own cache and router are in benchmarks/workload_litellm.py.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs
from workload_fake import CLIENT_TIMEOUT_S, WorkloadProvider
from workload_gptcache import FixedThresholdCache
from workload_trace import STRONG, WEAK, Request

import costkit
from costkit.sinks import MemorySink
from costkit.testing import FakeOpenAI

MAX_TOKENS = 1024


@attrs.frozen
class StackSettings:
    """The full stack's settings that were tuned, on the development split only (docs/workload.md has the grid
    and what each point gave); the router and compressor configurations alone use the same ones."""

    # Router.learned's target (the share of the strong model's quality kept): the cheapest of 0.95 / 0.96 / 0.97 whose
    # full-stack wrong rate on the development split has a 95% upper bound (clustered by question) <= 2%
    router_target_quality: float = 0.97
    compress_retrieved: float | None = 0.2  # PromptCompressor(retrieved=...): the share of retrieved tokens kept


class TraceClock:
    """The trace's time (seconds since its first request), set by the replay before each request:
    what Dedup's TTL and RetryBudget's window read (their ``clock=``), so they mean trace seconds."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class Configuration(Protocol):
    name: str
    note: str

    def open(self, fake: WorkloadProvider, clock: TraceClock) -> None: ...

    def ask(self, request: Request, messages: list[dict[str, Any]]) -> str | None: ...

    def offline(self, requests: Sequence[Request], messages: Sequence[list[dict[str, Any]]]) -> list[str | None] | None:
        """The offline share as a batch job (answers in order), or None to run it interactively."""
        ...

    def records(self) -> list[costkit.CostRecord]: ...

    def inside_s(self) -> float | None:
        """Seconds the last call of this thread spent inside costkit (None: not measured)."""
        ...

    def close(self) -> None: ...


class InsideTimer:
    """Times the wrapped client's ``request``, where costkit takes over from the SDK (costkit.wrap replaces
    it; see costkit/_intercept.py): the SDK's own work before it (building the request from ``create``'s
    arguments) is not costkit's, so overhead is counted from here. Per thread."""

    def __init__(self, client: Any) -> None:
        self.local = threading.local()
        inner = client.request

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.local.seconds = getattr(self.local, "seconds", 0.0) + time.perf_counter() - t0

        client.request = timed
        self.restore = lambda: setattr(client, "request", inner)  # costkit.batch checks for its interceptor

    def take(self) -> float:
        value = float(getattr(self.local, "seconds", 0.0))
        self.local.seconds = 0.0
        return value


def costkit_tags(request: Request) -> dict[str, str]:
    return {"tenant": request.tenant, "feature": request.feature, "task": f"r{request.index}"}


class CostkitConfiguration:
    """``costkit.wrap(FakeOpenAI(...), policies=make())``; with ``batch``, the offline share goes through
    ``costkit.batch.run`` on the same wrapped client."""

    def __init__(
        self, name: str, make: Callable[[TraceClock], list[Any]], *, batch: bool = False, note: str = ""
    ) -> None:
        self.name, self.make, self.batch, self.note = name, make, batch, note
        self.policies: list[Any] = []

    def open(self, fake: WorkloadProvider, clock: TraceClock) -> None:
        self.sink = MemorySink()
        self.policies = self.make(clock)
        sdk = FakeOpenAI(fake, max_retries=2, timeout=CLIENT_TIMEOUT_S)
        self.client = costkit.wrap(sdk, policies=self.policies, sink=self.sink)
        self.inside = InsideTimer(self.client)

    def inside_s(self) -> float | None:
        return self.inside.take()

    def ask(self, request: Request, messages: list[dict[str, Any]]) -> str | None:
        reply = self.client.chat.completions.create(
            model=STRONG, messages=messages, temperature=0, max_tokens=MAX_TOKENS, costkit=costkit_tags(request)
        )
        return reply.choices[0].message.content

    def offline(self, requests: Sequence[Request], messages: Sequence[list[dict[str, Any]]]) -> list[str | None] | None:
        if not self.batch:
            return None
        from costkit.batch import Backoff, ItemError

        self.inside.restore()
        bodies = [
            {"model": STRONG, "messages": m, "temperature": 0, "max_tokens": MAX_TOKENS, "costkit": costkit_tags(r)}
            for r, m in zip(requests, messages, strict=True)
        ]
        with tempfile.TemporaryDirectory() as tmp:
            answers = costkit.batch.run(
                self.client, "chat.completions.create", bodies, state=os.path.join(tmp, "jobs.db"),
                progress=False, resubmit=1, backoff=Backoff(initial_s=0.01, max_s=0.05),
            )  # fmt: skip
        return [None if isinstance(a, ItemError) else a.choices[0].message.content for a in answers]

    def records(self) -> list[costkit.CostRecord]:
        return list(self.sink.records)

    def close(self) -> None:
        for policy in self.policies:
            close = getattr(policy, "close", None)
            if callable(close):
                close()


def train_router(examples: Sequence[dict[str, Any]], path: Path) -> dict[str, Any]:
    """Train the learned router on the MMLU training part once; configurations load copies."""
    router = costkit.Router.learned(list(examples), models=[WEAK, STRONG])
    router.save(path)
    cal = router.learned_model.calibration
    return {"examples": len(examples), "strong_share": cal.shares.get(STRONG), "bound": cal.quality_ratio_lower_bound}


def costkit_configurations(router_path: Path, settings: StackSettings = StackSettings()) -> list[CostkitConfiguration]:
    """Baseline, each layer alone, the full default stack, and the fixed-threshold comparison."""

    def router() -> Any:
        return costkit.Router.load(router_path, target_quality=settings.router_target_quality)

    def compressor() -> Any:
        return costkit.PromptCompressor(retrieved=settings.compress_retrieved)

    return [
        CostkitConfiguration(
            "baseline", lambda clock: [], note="gpt-4o for everything, no policies (the SDK's own retries)"
        ),
        CostkitConfiguration("exact_cache", lambda clock: [costkit.ExactCache("memory")]),
        CostkitConfiguration(
            "semantic_cache", lambda clock: [costkit.SemanticCache()], note="defaults: max_false_hit_rate=0.02"
        ),
        CostkitConfiguration(
            "router",
            lambda clock: [router()],
            note=f"Router.learned on the MMLU training part, target_quality={settings.router_target_quality}",
        ),
        CostkitConfiguration(
            "compressor",
            lambda clock: [compressor()],
            note=f"PromptCompressor(retrieved={settings.compress_retrieved})",
        ),
        CostkitConfiguration(
            "dedup_retry",
            lambda clock: [costkit.Dedup(clock=clock), costkit.RetryBudget(clock=clock)],
            note="Dedup() and RetryBudget() on the trace's clock",
        ),
        CostkitConfiguration("batch", lambda clock: [], batch=True, note="the offline share through costkit.batch.run"),
        CostkitConfiguration(
            "full",
            lambda clock: [
                costkit.Guardrails(max_output_tokens=MAX_TOKENS, max_cost_usd=0.05),
                costkit.Dedup(clock=clock),
                costkit.ExactCache("memory"),
                costkit.SemanticCache(),
                compressor(),
                router(),
                costkit.RetryBudget(clock=clock),
            ],
            batch=True,
            note="guardrails -> dedup -> exact -> semantic -> compressor -> router -> retry budget; batch lane",
        ),
        CostkitConfiguration(
            "fixed_threshold_0.8",
            lambda clock: [FixedThresholdCache(0.8)],
            note="GPTCache's default rule (cosine >= 0.8) on the same embedder; a benchmark-only policy",
        ),
    ]
