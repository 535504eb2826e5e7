import asyncio
import json

import attrs
import pytest

import costkit
from costkit import FlowPolicy, Result
from costkit._stream import AsyncResultStream, ReplaySource, ResultStream
from costkit.sinks import MemorySink
from costkit.testing import FakeProvider, serve


class Collect:
    """Accumulator that hides chunks equal to 'hidden'."""

    def __init__(self):
        self.parts = []

    def add(self, chunk):
        if chunk == "hidden":
            return False
        self.parts.append(chunk)
        return True

    def result(self):
        return Result(text="".join(self.parts))


def test_sync_stream_hides_chunks_and_completes_once():
    finals = []
    s = ResultStream(["a", "hidden", "b"], Collect(), finalize=lambda r: r.evolve(cost_usd=1.5))
    s.on_complete(finals.append)
    assert list(s) == ["a", "b"]
    s.close()
    assert [(r.text, r.cost_usd, r.stream) for r in finals] == [("ab", 1.5, None)]
    late = []
    s.on_complete(late.append)  # registering after completion runs at once
    assert late[0].text == "ab"


def test_closed_early_is_marked_incomplete():
    finals = []
    s = ResultStream(iter(["a", "b", "c"]), Collect())
    s.on_complete(finals.append)
    assert next(s) == "a"
    s.close()
    assert finals[0].notes["stream_incomplete"] is True
    assert finals[0].text == "a"


def test_error_mid_stream_is_reraised_and_recorded():
    def source():
        yield "a"
        raise ConnectionError("cut")

    finals = []
    s = ResultStream(source(), Collect())
    s.on_complete(finals.append)
    with pytest.raises(ConnectionError):
        list(s)
    assert finals[0].notes["stream_error"] == "ConnectionError"


def test_failing_listener_never_breaks_the_stream():
    s = ResultStream(["a"], Collect())
    s.on_complete(lambda r: 1 / 0)
    with pytest.warns(UserWarning, match="completion hook failed"):
        assert list(s) == ["a"]


def test_async_twin_and_replay_source():
    finals = []

    async def main():
        s = AsyncResultStream(ReplaySource(["x", "hidden", "y"]), Collect())
        s.on_complete(finals.append)
        return [c async for c in s]

    assert asyncio.run(main()) == ["x", "y"]
    assert finals[0].text == "xy"


def test_attributes_pass_through_to_the_sdk_stream():
    class SDKStream(list):
        response = "the http response"

    assert ResultStream(SDKStream(["a"]), Collect()).response == "the http response"


# ------------------------------------------------ over HTTP: the real SDKs against costkit.testing.serve()

Q = [{"role": "user", "content": "Where is Paris?"}]


class Moderated(FakeProvider):
    """A chat deployment with moderation on: its streams carry a moderation report, and it always sends
    the usage chunk, which also says ``moderation``: chunks the server sends for its own reasons."""

    def handle(self, method, path, headers, body):
        doc = json.loads(body) if isinstance(body, bytes | bytearray | str) else dict(body)
        if not (doc.get("stream") and path.endswith("/chat/completions")):
            return super().handle(method, path, headers, body)
        answer = super().handle(method, path, headers, {**doc, "stream_options": {"include_usage": True}})
        *chunks, done = answer.frames
        *content, usage = [json.loads(frame.removeprefix(b"data: ")) for frame in chunks]
        report = {k: usage[k] for k in ("id", "object", "created", "model")}
        report.update(choices=[], moderation={"type": "moderation_results", "results": []})
        frames = [f"data: {json.dumps(c)}\n\n".encode() for c in (*content, report, {**usage, "moderation": None})]
        return attrs.evolve(answer, frames=(*frames, done))


@pytest.fixture(scope="module")
def server():
    with serve(FakeProvider().on("Paris", "Paris.")) as srv:
        yield srv


def chunks(client, **extra):
    """A chat stream's chunks as data, less what differs from call to call (id, time); ``sent``: the
    fields the server sent in each."""
    stream = client.chat.completions.create(model="gpt-4o", messages=Q, stream=True, **extra)
    return [{**c.model_dump(exclude={"id", "created"}), "sent": c.model_fields_set | set(c.model_extra or ())}
            for c in stream]


def test_only_the_usage_report_costkit_asked_for_is_hidden(server):
    asked = {"stream_options": {"include_usage": True}}
    with serve(Moderated().on("Paris", "Paris.")) as moderated:
        for srv in (server, moderated):
            for extra in ({}, asked):
                sink = MemorySink()
                raw = chunks(srv.openai_client(), **extra)
                got = chunks(costkit.wrap(srv.openai_client(), sink=sink), **extra)
                # the same chunks, field for field (costkit's ask adds only "usage": null to each)
                assert [{**c, "sent": c["sent"] - {"usage"}} for c in got] == [
                    {**c, "sent": c["sent"] - {"usage"}} for c in raw
                ]
                [rec] = sink.records  # costkit asked for usage in every case: the count is exact
                assert (rec.usage_estimated, rec.input_tokens, rec.output_tokens) == (False, 11, 2)
                assert srv.fake.last.body["stream_options"] == {"include_usage": True}
                seen = [(c["choices"] == [], c["usage"] is not None, "moderation" in c["sent"]) for c in raw]
                if srv is moderated:  # the report and the usage that says more: the caller's, asked or not
                    assert seen[-2:] == [(True, False, True), (True, True, True)]
                elif extra:  # the caller asked for usage: the report is the caller's
                    assert seen[-1] == (True, True, False)
                else:  # costkit asked: hidden, as the raw client never gets it
                    assert not any(usage for _, usage, _ in seen)


class KeepFinal(FlowPolicy):
    """Keeps each call's final result (a stream's, once it is read to the end)."""

    def __init__(self):
        self.finals = []

    def flow(self, call):
        result = yield call
        result.when_complete(self.finals.append)
        return result


def test_a_beta_stream_folds_into_the_betas_own_message(server):
    from anthropic.types import Message
    from anthropic.types.beta import BetaMessage

    kept = KeepFinal()
    client = costkit.wrap(server.anthropic_client(), [kept], sink=MemorySink())
    ask = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": Q, "stream": True}
    with client.beta.messages.create(**ask) as events:
        assert [e.type for e in events][-1] == "message_stop"
    with client.messages.create(**ask) as events:
        assert [e.type for e in events][-1] == "message_stop"
    beta, plain = kept.finals
    assert type(beta.raw) is BetaMessage and type(plain.raw) is Message
    assert beta.text == plain.text == "Paris." and beta.usage.output_tokens == plain.usage.output_tokens == 2


async def test_an_async_beta_stream_folds_into_the_betas_own_message(server):
    from anthropic.types.beta import BetaMessage

    kept = KeepFinal()
    client = costkit.wrap(server.async_anthropic_client(), [kept], sink=MemorySink())
    ask = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": Q, "stream": True}
    async with await client.beta.messages.create(**ask) as events:
        assert [e.type async for e in events][-1] == "message_stop"
    [beta] = kept.finals
    assert type(beta.raw) is BetaMessage and beta.text == "Paris."
