"""The providers' batch endpoints used directly through a wrapped client: warned and recorded."""

from __future__ import annotations

import json

import pytest

import costkit
from costkit._warn import CostkitWarning
from costkit.testing import FakeAnthropic, FakeOpenAI


def test_openai_batches_create_warns_and_records_what_was_submitted(sink):
    client = costkit.wrap(FakeOpenAI(), sink=sink)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    data = "".join(
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
        for i in range(3)
    ).encode()
    with pytest.warns(CostkitWarning, match=r"client\.files\.create"):
        upload = client.files.create(file=("in.jsonl", data), purpose="batch")
    with pytest.warns(CostkitWarning, match=r"client\.batches\.create"):
        batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    (record,) = sink.records
    assert (record.kind, record.cost_usd, record.priced, record.model) == ("batch", None, False, "gpt-4o-mini")
    assert record.notes["provider_batch"] == batch.id and record.notes["requests"] == 3
    assert client.batches.retrieve(batch.id).status == "completed"  # everything else passes through


def test_anthropic_message_batches_create_is_recorded(sink):
    client = costkit.wrap(FakeAnthropic(), sink=sink)
    params = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    with pytest.warns(CostkitWarning, match=r"client\.messages\.batches\.create"):
        client.messages.batches.create(requests=[{"custom_id": "a", "params": params}] * 1)
    (record,) = sink.records
    assert record.notes["direct_batch"] == "messages.batches.create" and record.notes["requests"] == 1


def test_direct_batch_record_carries_every_record_tag_of_the_context(sink):
    client = costkit.wrap(FakeAnthropic(), sink=sink)
    params = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    with costkit.tags(tenant="acme", feature="faq", task="t-1", namespace="ns"), pytest.warns(CostkitWarning):
        client.messages.batches.create(requests=[{"custom_id": "a", "params": params}])
    (record,) = sink.records
    assert (record.tenant, record.feature, record.task, record.user) == ("acme", "faq", "t-1", None)
