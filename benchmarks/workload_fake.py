"""The fake provider of the workload: answers each question from the data, fails as providers do.

:class:`WorkloadProvider` is a ``costkit.testing.FakeProvider`` whose default reply looks the request
up (its system prompt and last user message name one question of one tenant) and answers
``ANSWER-<qid>`` when the model that was called knows the answer (the MMLU label of the question:
``weak_correct`` for gpt-4o-mini, ``strong_correct`` for gpt-4o) and ``WRONG-<qid>`` when it does
not, followed by filler up to the answer's size. A docs question is answered wrong when the
sentence holding its answer did not reach the model (compressed away). A request whose system
prompt or question the data does not know (a prompt a layer rewrote) gets ``UNKNOWN``.

Faults: ``fault_rate`` of provider requests fail, drawn with the provider's seed: 429s and 5xx with a
short ``Retry-After`` (the wait costs replay time, not money) and read timeouts (the provider answers
after 30 s, the client's timeout is shorter; the provider bills the answer it generated).

Prompts are looked up with their white space collapsed: a run of spaces does not change a question
for a model, and the compressor's normalize step collapses such runs (some QQP and SQuAD questions
have two spaces after a full stop).

Concurrent groups: while the replay runs requests that arrive together (in-flight duplicates and
client retries), the first of them to reach the provider is held until every other member has either
reached the provider too or had ``grace_s`` to get past the layers before it, so a cache cannot
answer a duplicate from an answer that, in the trace, had not come back yet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from workload_trace import Question, Workload

from costkit.testing import Failure, FakeProvider, FakeRequest, FakeResponse

CLIENT_TIMEOUT_S = 0.25  # the application's SDK read timeout in the replay
# drawn uniformly: of the failed requests, 60% are 429s, 17% 500s, 20% 503s and 3% read timeouts
FAULTS = (
    *[Failure.rate_limit(retry_after=0.01)] * 18,
    *[Failure(kind="status", status=500, retry_after=0.01)] * 5,
    *[Failure(kind="status", status=503, retry_after=0.01)] * 6,
    Failure(kind="timeout", delay_s=30.0),
)


def answer_id(text: str | None) -> str | None:
    """The id at the head of a reply (what the application checks)."""
    if not text:
        return None
    return text.split(" ", 1)[0]


def norm(text: str) -> str:
    return " ".join(text.split())


class Hold:
    """One group of identical requests running at once (see the module docstring)."""

    def __init__(self, key: tuple[str, str], members: int, grace_s: float) -> None:
        self.key, self.members, self.grace_s = key, members, grace_s
        self.started = self.arrived = 0
        self.all_started_at: float | None = None
        self.cond = threading.Condition()

    def start(self) -> None:
        with self.cond:
            self.started += 1
            if self.started == self.members:
                self.all_started_at = time.perf_counter()
            self.cond.notify_all()

    def arrive(self, limit_s: float = 2.0) -> None:
        with self.cond:
            self.arrived += 1
            self.cond.notify_all()
            if self.arrived > 1:
                return
            deadline = time.perf_counter() + limit_s
            while time.perf_counter() < deadline and self.arrived < self.members:
                if self.all_started_at is not None and time.perf_counter() > self.all_started_at + self.grace_s:
                    return
                self.cond.wait(0.002)


class WorkloadProvider(FakeProvider):
    def __init__(self, workload: Workload, *, fault_rate: float, seed: int = 0) -> None:
        super().__init__(default=self.reply, failure_rate=fault_rate, failure_kinds=FAULTS, seed=seed)
        self.workload = workload
        self.system_ids = {norm(text): sid for sid, text in workload.systems.items()}
        self.book: dict[tuple[str, str], Question] = {}
        for q in workload.questions.values():
            for p in q.phrasings:
                self.book[(q.system_id, norm(p))] = q
        self.hold: Hold | None = None
        self._local = threading.local()

    # ---- what the model answers

    def question_of(self, request: FakeRequest) -> Question | None:
        sid = self.system_ids.get(norm(request.system_text))
        return None if sid is None else self.book.get((sid, norm(request.last_user_text)))

    def reply(self, request: FakeRequest) -> str:
        q = self.question_of(request)
        self._local.key = None if q is None else (q.system_id, norm(request.last_user_text))
        if q is None:
            return "UNKNOWN the request names no question of the workload"
        right = q.right_for(request.model)
        if right is None:
            return f"UNKNOWN-MODEL {request.model}"
        if q.answer_sentence and not self.answer_arrived(q, request):
            right = False
        return q.answer(right)

    @staticmethod
    def answer_arrived(q: Question, request: FakeRequest) -> bool:
        sent = " ".join(str(m.get("content") or "") for m in request.messages if m.get("name") == "context")
        return norm(q.answer_sentence) in norm(sent)

    # ---- holding a group's first answer

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | Mapping[str, Any]
    ) -> FakeResponse:
        self._local.key = None
        response = super().handle(method, path, headers, body)
        hold = self.hold
        if hold is not None and self._local.key == hold.key:
            hold.arrive()
        return response
