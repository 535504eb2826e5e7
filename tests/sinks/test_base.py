from __future__ import annotations

import warnings

import pytest

from costkit._warn import CostkitWarning
from costkit.errors import ConfigError
from costkit.records import CostRecord
from costkit.sinks import CallableSink, FanoutSink, MemorySink, Sink, as_sink, close_sink, flush_sink, safe_emit


def test_object_with_emit_is_used_as_is() -> None:
    sink = MemorySink()
    assert as_sink(sink) is sink
    assert isinstance(sink, Sink)


def test_plain_function_becomes_a_callable_sink(make_record) -> None:
    got: list[CostRecord] = []
    sink = as_sink(got.append)
    assert isinstance(sink, CallableSink)
    rec = make_record()
    sink.emit(rec)
    assert got == [rec]
    assert (sink.emitted, sink.written, sink.dropped, sink.errors) == (1, 1, 0, 0)


def test_raising_callable_never_raises_into_emit_and_warns_once(make_record) -> None:
    def broken(record: CostRecord) -> None:
        raise OSError("disk full")

    sink = as_sink(broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            sink.emit(make_record())
    assert [str(w.message).count("disk full") for w in caught if w.category is CostkitWarning] == [1]
    assert sink.stats.emitted == 5
    assert sink.stats.errors == 5
    assert sink.stats.dropped == 5
    assert sink.stats.written == 0


def test_list_becomes_fanout_and_one_broken_sink_does_not_stop_the_others(make_record) -> None:
    a, b = MemorySink(), MemorySink()

    class Broken:
        def emit(self, record: CostRecord) -> None:
            raise RuntimeError("nope")

    fan = as_sink([a, Broken(), b.emit])
    assert isinstance(fan, FanoutSink)
    rec = make_record()
    with pytest.warns(CostkitWarning, match="nope"):
        fan.emit(rec)
    assert a.records == [rec]
    assert b.records == [rec]
    assert fan.errors == 1
    fan.flush()
    fan.close()


@pytest.mark.parametrize("bad", [None, 42, "costs.db"])
def test_not_a_sink_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        as_sink(bad)
    assert err.value.field == "sink"


def test_empty_fanout_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        FanoutSink([])
    assert err.value.field == "sinks"


def test_safe_emit_and_optional_flush_close(make_record) -> None:
    class OnlyEmit:
        def __init__(self) -> None:
            self.n = 0

        def emit(self, record: CostRecord) -> None:
            self.n += 1

    s = OnlyEmit()
    assert safe_emit(s, make_record()) is True
    flush_sink(s)  # no flush method: nothing happens
    close_sink(s)

    class BadClose:
        def emit(self, record: CostRecord) -> None:
            raise ValueError("x")

        def close(self) -> None:
            raise ValueError("close failed")

    with pytest.warns(CostkitWarning):
        assert safe_emit(BadClose(), make_record()) is False
    with pytest.warns(CostkitWarning, match="close failed"):
        close_sink(BadClose())
