"""The fake batch APIs, driven by the real SDKs: files, job states over a clock, failures."""

from __future__ import annotations

import json

import openai
import pytest

from costkit.testing import Failure, FakeAnthropic, FakeOpenAI, FakeProvider, serve
from costkit.testing.batch_api import parse_multipart

LINE = {"method": "POST", "url": "/v1/chat/completions"}


def _file(n: int, model: str = "gpt-4o-mini", **extra) -> bytes:
    lines = [
        {"custom_id": f"r{i}", **LINE, "body": {"model": model, "messages": [{"role": "user", "content": f"q{i}"}]}}
        for i in range(n)
    ]
    return "".join(json.dumps({**line, **extra}) + "\n" for line in lines).encode()


def _batch(client, data: bytes, **kwargs):
    upload = client.files.create(file=("in.jsonl", data), purpose="batch")
    return client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h",
                                 **kwargs)  # fmt: skip


def test_openai_states_follow_the_clock_and_files_hold_the_answers():
    client = FakeOpenAI()
    api = client.fake.batch_api
    clock = api.use_manual_clock()
    api.set_timing(validating_s=5, in_progress_s=10, finalizing_s=2)
    batch = _batch(client, _file(4), metadata={"costkit_job": "j"})
    assert batch.status == "validating" and batch.metadata == {"costkit_job": "j"}
    seen = []
    for step in (0, 5, 5, 5, 2):
        clock.advance(step)
        b = client.batches.retrieve(batch.id)
        seen.append((b.status, b.request_counts.completed))
    assert seen == [("validating", 0), ("in_progress", 0), ("in_progress", 2), ("finalizing", 4), ("completed", 4)]
    done = client.batches.retrieve(batch.id)
    assert done.output_file_id and done.error_file_id is None and done.usage.input_tokens > 0
    lines = [json.loads(x) for x in client.files.content(done.output_file_id).read().splitlines()]
    assert [x["custom_id"] for x in lines] == ["r0", "r1", "r2", "r3"]
    assert lines[1]["response"]["status_code"] == 200
    assert lines[1]["response"]["body"]["choices"][0]["message"]["content"] == "Fake answer to: q1"
    assert client.fake.count(api="chat") == 4  # each item answered by the fake, as a call would be


def test_openai_item_errors_expiry_and_cancellation():
    fake = FakeProvider().on("q1$", Failure.server_error(503), times=1)
    client = FakeOpenAI(fake)
    done = client.batches.retrieve(_batch(client, _file(3)).id)
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).read().splitlines()]
    assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [("r1", 503)]
    fake.batch_api.expire_next(completed_share=0.5)
    expired = client.batches.retrieve(_batch(client, _file(4)).id)
    assert expired.status == "expired" and expired.request_counts.completed == 2
    lines = [json.loads(x) for x in client.files.content(expired.error_file_id).read().splitlines()]
    assert {x["error"]["code"] for x in lines} == {"batch_expired"} and len(lines) == 2
    clock = fake.batch_api.use_manual_clock()
    fake.batch_api.set_timing(in_progress_s=10, cancelling_s=3)
    running = _batch(client, _file(10))
    clock.advance(4)
    assert client.batches.cancel(running.id).status == "cancelling"
    clock.advance(3)
    cancelled = client.batches.retrieve(running.id)
    assert cancelled.status == "cancelled" and cancelled.request_counts.completed == 4


def test_openai_invalid_files_fail_the_batch():
    client = FakeOpenAI()
    mixed = _file(2) + _file(1, model="gpt-4o").replace(b'"r0"', b'"r9"')
    assert client.batches.retrieve(_batch(client, mixed).id).status == "failed"
    failed = client.batches.retrieve(_batch(client, _file(2) + _file(1)).id)  # r0 twice
    assert failed.status == "failed" and failed.errors.data[0].code == "duplicate_custom_id"
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id="file-x", endpoint="/v1/nope", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")


def test_list_pages_newest_first_over_http():
    with serve() as server:
        client = server.openai_client()
        ids = [_batch(client, _file(1)).id for _ in range(5)]
        page = client.batches.list(limit=2)
        assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
        assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]  # the SDK follows `after`
        assert client.files.retrieve(client.batches.retrieve(ids[0]).input_file_id).purpose == "batch"


def test_anthropic_message_batches_over_http():
    fake = FakeProvider().on("q1$", Failure.rate_limit())
    with serve(fake) as server:
        client = server.anthropic_client()
        params = [{"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": f"q{i}"}]}
                  for i in range(3)]  # fmt: skip
        batch = client.messages.batches.create(requests=[{"custom_id": f"c{i}", "params": p} for i, p in
                                                         enumerate(params)])  # fmt: skip
        assert batch.processing_status == "in_progress" and batch.request_counts.processing == 3
        ended = client.messages.batches.retrieve(batch.id)
        assert ended.processing_status == "ended" and ended.results_url.startswith(server.url)
        results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
        assert results["c0"].type == "succeeded" and results["c0"].message.content[0].text == "Fake answer to: q0"
        assert results["c1"].type == "errored" and results["c1"].error.error.type == "rate_limit_error"
        assert [b.id for b in client.messages.batches.list()] == [batch.id]


def test_anthropic_rejects_bad_custom_ids_and_streams():
    client = FakeAnthropic()
    p = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    import anthropic

    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[{"custom_id": "a b", "params": p}])
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[{"custom_id": "a", "params": {**p, "stream": True}}])


def test_scripted_create_failures_and_the_submission_log():
    client = FakeOpenAI()
    api = client.fake.batch_api
    api.fail_next_create(429)
    with pytest.raises(openai.RateLimitError):
        _batch(client, _file(1))
    api.drop_next_create_response()
    with pytest.raises(openai.APIConnectionError):
        _batch(client, _file(2))
    assert api.submitted() == {"r0": 1, "r1": 1}  # the dropped one was made


def test_multipart_parsing():
    body = (b'--xyz\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n'
            b"Content-Type: application/jsonl\r\n\r\n{}\n\r\n--xyz--\r\n")  # fmt: skip
    assert parse_multipart('multipart/form-data; boundary="xyz"', body) == {
        "purpose": (None, b"batch"),
        "file": ("a.jsonl", b"{}\n"),
    }
