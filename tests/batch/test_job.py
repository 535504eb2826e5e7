"""costkit.batch jobs end to end, with the real SDKs in process against the fake batch APIs."""

from __future__ import annotations

import os
import stat
from collections import Counter

import anthropic
import openai
import pytest
from anthropic.types import Message
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

import costkit
from costkit.batch import (
    BatchItemCancelled,
    BatchItemExpired,
    ItemError,
    JobBusy,
    JobNotFinished,
    Limits,
    resume,
    run,
    submit,
)
from costkit.batch.state import JobStore
from costkit.testing import Failure, FakeOpenAI

from .conftest import CLAUDE, FAST, MODEL, chat, claude, map_batch_cost, map_interactive_cost


def _index(custom_id: str) -> int:
    return int(custom_id.rsplit("-", 1)[1])


def test_run_returns_chat_completions_in_input_order_with_one_batch_record_each(openai_client, fake, sink, state):
    answers = run(openai_client, "chat.completions.create", [chat(i) for i in range(7)], state=state,
                  progress=False, backoff=FAST)  # fmt: skip
    assert [type(a) for a in answers] == [ChatCompletion] * 7
    assert [a.choices[0].message.content for a in answers] == [f"Fake answer to: question number {i}" for i in range(7)]
    assert len(fake.batch_api.submissions) == 1
    records = sink.records
    assert [r.kind for r in records] == ["batch"] * 7
    assert sorted(r.notes["batch_item"] for r in records) == list(range(7))
    for r in records:
        expected = map_batch_cost(MODEL, r.input_tokens, r.output_tokens)
        assert r.cost_usd == pytest.approx(expected, abs=1e-12)
        interactive = map_interactive_cost(MODEL, r.input_tokens, r.output_tokens)
        assert r.savings == {"batch": pytest.approx(interactive - expected, abs=1e-12)}
        assert r.notes["batch_job"].startswith("bj_") and r.notes["provider_batch"].startswith("batch_")
        assert r.notes["interactive_cost_usd"] == pytest.approx(interactive, abs=1e-12)


def test_responses_and_embeddings_come_back_as_their_sdk_types(openai_client, state):
    responses = run(openai_client, "responses.create", [{"model": MODEL, "input": f"q {i}"} for i in range(3)],
                    state=state, progress=False, backoff=FAST)  # fmt: skip
    assert [type(r) for r in responses] == [Response] * 3 and responses[2].output_text == "Fake answer to: q 2"
    vectors = run(openai_client, "embeddings.create", [{"model": "text-embedding-3-small", "input": ["a b", "c"]}],
                  state=state, progress=False, backoff=FAST)  # fmt: skip
    assert isinstance(vectors[0], CreateEmbeddingResponse) and len(vectors[0].data) == 2


def test_anthropic_messages_batch(anthropic_client, fake, sink, state):
    answers = run(anthropic_client, "messages.create", [claude(i) for i in range(4)], state=state, progress=False,
                  backoff=FAST)  # fmt: skip
    assert [type(a) for a in answers] == [Message] * 4
    assert answers[3].content[0].text == "Fake answer to: question number 3"
    assert len(fake.batch_api.submissions) == 1 and fake.batch_api.submissions[0].provider == "anthropic"
    for r in sink.records:
        assert r.kind == "batch" and r.provider == "anthropic"
        assert r.cost_usd == pytest.approx(map_batch_cost(CLAUDE, r.input_tokens, r.output_tokens), abs=1e-12)


def test_jobs_split_at_the_request_and_byte_limits_one_model_per_openai_file(openai_client, fake, state):
    requests = [chat(i) for i in range(10)] + [{**chat(i), "model": "gpt-4o"} for i in range(10, 13)]
    job = submit(openai_client, "chat.completions.create", requests, state=state, backoff=FAST,
                 limits=Limits(max_requests=4, max_bytes=10_000, one_model=True))  # fmt: skip
    job.wait()
    sizes = [len(s.custom_ids) for s in fake.batch_api.submissions]
    assert sizes == [4, 4, 2, 3]
    models = [{b["model"] for b in s.bodies} for s in fake.batch_api.submissions]
    assert models == [{MODEL}, {MODEL}, {MODEL}, {"gpt-4o"}]
    tight = submit(openai_client, "chat.completions.create", [chat(i, user="x" * 300) for i in range(6)],
                   state=state, backoff=FAST, limits=Limits(max_requests=100, max_bytes=1_100))  # fmt: skip
    tight.wait()
    assert [len(s.custom_ids) for s in fake.batch_api.submissions[4:]] == [2, 2, 2]  # ~440 bytes a line
    assert [a.choices[0].message.content for a in tight.results()][5] == "Fake answer to: question number 5"


def test_an_item_larger_than_any_batch_is_refused_not_sent(openai_client, fake, state):
    requests = [chat(0), chat(1, user="x" * 5_000)]
    job = submit(openai_client, "chat.completions.create", requests, state=state, backoff=FAST,
                 limits=Limits(max_requests=10, max_bytes=2_000))  # fmt: skip
    job.wait()
    first, second = job.results()
    assert isinstance(first, ChatCompletion)
    assert isinstance(second, ItemError) and second.kind == "refused"
    assert len(fake.batch_api.submissions[0].custom_ids) == 1


def test_per_item_provider_errors_are_the_sdks_own_exceptions(openai_client, fake, sink, state):
    fake.on("number 2$", Failure.server_error(500))
    fake.on("number 4$", Failure(kind="status", status=400, message="bad item"))
    answers = run(openai_client, "chat.completions.create", [chat(i) for i in range(6)], state=state,
                  progress=False, backoff=FAST)  # fmt: skip
    assert [type(a).__name__ for a in answers] == ["ChatCompletion"] * 2 + ["ItemError", "ChatCompletion"] * 2
    assert isinstance(answers[2].exception, openai.InternalServerError) and answers[2].status_code == 500
    assert isinstance(answers[4].exception, openai.BadRequestError) and "bad item" in str(answers[4].exception)
    with pytest.raises(openai.BadRequestError):
        answers[4].raise_()
    failed = [r for r in sink.records if not r.success]
    assert sorted(r.notes["batch_item"] for r in failed) == [2, 4]
    assert all(r.cost_usd == 0.0 and r.kind == "batch" for r in failed)
    assert {r.error_type for r in failed} == {"InternalServerError", "BadRequestError"}


def test_anthropic_errored_items_raise_anthropics_exceptions(anthropic_client, fake, state):
    fake.on("number 1$", Failure.rate_limit())
    answers = run(anthropic_client, "messages.create", [claude(i) for i in range(3)], state=state, progress=False,
                  backoff=FAST)  # fmt: skip
    assert isinstance(answers[1], ItemError) and isinstance(answers[1].exception, anthropic.RateLimitError)
    assert isinstance(answers[0], Message) and isinstance(answers[2], Message)


def test_partial_failure_resubmits_only_the_failed_items(openai_client, fake, sink, state):
    fake.on("number (3|7)$", Failure.server_error(500), times=2)
    job = submit(openai_client, "chat.completions.create", [chat(i) for i in range(10)], state=state, backoff=FAST)
    status = job.wait()
    assert status.counts == {"succeeded": 8, "failed": 2} and status.failed == 2
    assert job.resubmit_failed() == 2
    job.wait()
    second = fake.batch_api.submissions[1]
    assert sorted(_index(c) for c in second.custom_ids) == [3, 7]
    sent = Counter(_index(c) for s in fake.batch_api.submissions for c in s.custom_ids)
    assert sent == Counter({**dict.fromkeys(range(10), 1), 3: 2, 7: 2})
    answers = job.results()
    assert all(isinstance(a, ChatCompletion) for a in answers)
    retried = [r for r in sink.records if r.notes["batch_item"] == 3]
    assert [(r.attempt, r.success) for r in retried] == [(1, False), (2, True)]
    assert retried[0].request_id == retried[1].request_id


def test_expiry_reports_expired_items_and_resubmits_only_those(openai_client, fake, state):
    api = fake.batch_api
    api.expire_next(completed_share=0.4)
    job = submit(openai_client, "chat.completions.create", [chat(i) for i in range(10)], state=state, backoff=FAST)
    status = job.wait()
    assert status.counts == {"succeeded": 4, "expired": 6}
    answers = job.results()
    assert all(isinstance(a, ItemError) and isinstance(a.exception, BatchItemExpired) for a in answers[4:])
    assert job.resubmit_failed() == 6
    job.wait()
    assert sorted(_index(c) for c in api.submissions[1].custom_ids) == list(range(4, 10))
    assert all(isinstance(a, ChatCompletion) for a in job.results())


def test_anthropic_expiry_and_cancellation(anthropic_client, fake, state):
    api = fake.batch_api
    api.expire_next(completed_share=0.5)
    job = submit(anthropic_client, "messages.create", [claude(i) for i in range(4)], state=state, backoff=FAST)
    assert job.wait().counts == {"succeeded": 2, "expired": 2}
    clock = api.use_manual_clock()
    api.set_timing(in_progress_s=100.0, cancelling_s=5.0)
    other = submit(anthropic_client, "messages.create", [claude(i) for i in range(10, 20)], state=state, backoff=FAST)
    clock.advance(30)  # three of ten done
    other.cancel()
    assert other.poll().counts == {"submitted": 10}  # canceling
    clock.advance(5)
    assert other.wait().counts == {"succeeded": 3, "cancelled": 7}
    results = other.results()
    assert isinstance(results[9], ItemError) and isinstance(results[9].exception, BatchItemCancelled)


def test_openai_cancellation_keeps_what_ran(openai_client, fake, state):
    clock = fake.batch_api.use_manual_clock()
    fake.batch_api.set_timing(validating_s=10.0, in_progress_s=100.0)
    job = submit(openai_client, "chat.completions.create", [chat(i) for i in range(10)], state=state, backoff=FAST)
    assert job.poll().counts == {"submitted": 10}
    clock.advance(60)  # validating 10 s, then half of the 100 s
    job.cancel()
    status = job.wait()
    assert status.counts == {"succeeded": 5, "cancelled": 5}
    with pytest.raises(JobNotFinished):
        submit(openai_client, "chat.completions.create", [chat(99)], state=state, backoff=FAST).results()


def test_a_lost_create_answer_is_reconciled_not_resubmitted(openai_client, fake, state):
    fake.batch_api.drop_next_create_response()
    with pytest.warns(costkit._warn.CostkitWarning, match="submitting a chunk failed"):
        job = submit(openai_client, "chat.completions.create", [chat(i) for i in range(5)], state=state,
                     backoff=FAST, reconcile_after_s=0)  # fmt: skip
    assert job.status().counts == {"submitting": 5}
    job.wait()
    assert len(fake.batch_api.submissions) == 1
    assert all(isinstance(a, ChatCompletion) for a in job.results())


def test_anthropic_lost_create_is_found_by_its_custom_ids(anthropic_client, fake, state):
    fake.batch_api.drop_next_create_response()
    with pytest.warns(costkit._warn.CostkitWarning):
        job = submit(anthropic_client, "messages.create", [claude(i) for i in range(3)], state=state, backoff=FAST,
                     reconcile_after_s=0)  # fmt: skip
    job.wait()
    assert len(fake.batch_api.submissions) == 1
    assert all(isinstance(a, Message) for a in job.results())


def test_anthropic_waits_while_a_candidate_batch_still_runs(anthropic_client, fake, state):
    api = fake.batch_api
    clock = api.use_manual_clock()
    api.set_timing(in_progress_s=50.0)
    api.drop_next_create_response()
    with pytest.warns(costkit._warn.CostkitWarning):
        job = submit(anthropic_client, "messages.create", [claude(i) for i in range(3)], state=state, backoff=FAST,
                     reconcile_after_s=0)  # fmt: skip
    for _ in range(3):
        assert job.poll().counts == {"submitting": 3}  # a batch of 3 is running: it may be ours
    clock.advance(60)
    assert job.wait().counts == {"succeeded": 3}
    assert len(api.submissions) == 1


def test_a_refused_create_fails_its_items_with_the_sdk_error(openai_client, fake, state):
    fake.batch_api.fail_next_create(400)
    job = submit(openai_client, "chat.completions.create", [chat(i) for i in range(3)], state=state, backoff=FAST)
    assert job.wait().counts == {"failed": 3} and not fake.batch_api.submissions
    answers = job.results()
    assert all(isinstance(a.exception, openai.BadRequestError) for a in answers)
    assert job.resubmit_failed() == 3
    assert job.wait().counts == {"succeeded": 3}


def test_an_unavailable_provider_is_asked_again_after_reconciling(anthropic_client, fake, state):
    fake.batch_api.fail_next_create(503)
    with pytest.warns(costkit._warn.CostkitWarning, match="submitting a chunk failed"):
        job = submit(anthropic_client, "messages.create", [claude(i) for i in range(3)], state=state, backoff=FAST,
                     reconcile_after_s=0)  # fmt: skip
    assert job.wait().counts == {"succeeded": 3}
    assert len(fake.batch_api.submissions) == 1


def test_submitting_the_same_job_again_resumes_it(openai_client, fake, state):
    clock = fake.batch_api.use_manual_clock()
    fake.batch_api.set_timing(in_progress_s=10.0)
    requests = [chat(i) for i in range(4)]
    first = submit(openai_client, "chat.completions.create", requests, state=state, backoff=FAST)
    first.close()
    again = submit(openai_client, "chat.completions.create", requests, state=state, backoff=FAST)
    assert again.id == first.id and len(fake.batch_api.submissions) == 1
    clock.advance(11)
    again.wait()
    by_id = resume(openai_client, first.id, state=state)
    assert by_id.results()[0].choices[0].message.content == "Fake answer to: question number 0"


def test_a_live_owner_holds_the_job(openai_client, state, tmp_path):
    job = submit(openai_client, "chat.completions.create", [chat(1)], state=state, backoff=FAST)
    store = JobStore(state)
    host_pid = f"{os.uname().nodename}:{os.getppid()}:"
    with store._tx() as conn:
        conn.execute("UPDATE jobs SET owner = ? WHERE id = ?", (host_pid, job.id))
    with pytest.raises(JobBusy):
        job.poll()
    with store._tx() as conn:
        conn.execute("UPDATE jobs SET owner = ? WHERE id = ?", (f"{os.uname().nodename}:999999999:", job.id))
    assert job.wait().done  # that pid is dead: the lease is taken over


def test_the_state_file_is_private(openai_client, state):
    run(openai_client, "chat.completions.create", [chat(1)], state=state, progress=False, backoff=FAST)
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600


def test_bad_arguments_fail_at_submission(openai_client, anthropic_client, state):
    with pytest.raises(costkit.ConfigError, match="method"):
        submit(openai_client, "messages.create", [chat(1)], state=state)
    with pytest.raises(costkit.ConfigError, match="wrapped client"):
        submit(FakeOpenAI(), "chat.completions.create", [chat(1)], state=state)
    with pytest.raises(costkit.ConfigError, match=r"requests\[1\]"):
        submit(openai_client, "chat.completions.create", [chat(1), "nope"], state=state)
    with pytest.raises(costkit.ConfigError, match="requests"):
        submit(anthropic_client, "messages.create", [], state=state)


def test_streaming_items_are_refused_and_tags_reach_the_records(openai_client, sink, state):
    requests = [chat(0, stream=True), chat(1, costkit={"feature": "nightly"})]
    with costkit.tags(tenant="acme"):
        answers = run(openai_client, "chat.completions.create", requests, state=state, progress=False, backoff=FAST)
    assert isinstance(answers[0], ItemError) and "stream" in answers[0].message
    (record,) = sink.records
    assert (record.tenant, record.feature) == ("acme", "nightly")
