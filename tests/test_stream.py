import asyncio

import pytest

from costkit import Result
from costkit._stream import AsyncResultStream, ReplaySource, ResultStream


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
