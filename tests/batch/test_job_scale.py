"""10,000 Anthropic items through the fake HTTP server with the real SDK, in one process: every
cost is the batch-rate cost of LiteLLM's map to 1e-9, and LiteLLM's own batch cost calculator
agrees on a sample."""

from __future__ import annotations

import os

import pytest

import costkit
from costkit.batch import Backoff, run
from costkit.sinks import MemorySink
from costkit.testing import FakeProvider, serve

from .conftest import CLAUDE, map_batch_cost

N = 10_000


@pytest.mark.slow
def test_ten_thousand_anthropic_items_cost_the_batch_rate(tmp_path):
    sink = MemorySink()
    with serve(FakeProvider()) as server:
        client = costkit.wrap(server.anthropic_client(), sink=sink)
        requests = [
            {"model": CLAUDE, "max_tokens": 64, "messages": [{"role": "user", "content": f"label ticket {i}"}]}
            for i in range(N)
        ]
        answers = run(client, "messages.create", requests, state=str(tmp_path / "jobs.db"), progress=False,
                      backoff=Backoff(initial_s=0.01, max_s=0.05))  # fmt: skip
    assert [a.content[0].text for a in answers[:2]] == [
        "Fake answer to: label ticket 0",
        "Fake answer to: label ticket 1",
    ]
    records = sink.records
    assert len(records) == N and {r.kind for r in records} == {"batch"}
    for r in records:
        assert abs(r.cost_usd - map_batch_cost(CLAUDE, r.input_tokens, r.output_tokens)) <= 1e-9

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from litellm.cost_calculator import batch_cost_calculator
    from litellm.types.utils import Usage

    for r in records[:: N // 100]:
        usage = Usage(prompt_tokens=r.input_tokens, completion_tokens=r.output_tokens,
                      total_tokens=r.input_tokens + r.output_tokens)  # fmt: skip
        prompt_cost, completion_cost = batch_cost_calculator(usage, CLAUDE, "anthropic")
        assert abs(r.cost_usd - (prompt_cost + completion_cost)) <= 1e-9
