"""Property: whatever a CostRecord holds (within JSON's words), SQLite and JSONL give it back equal."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costkit.records import CACHES, KINDS, CostRecord
from costkit.sinks import JSONLSink, SQLiteSink

text = st.text(max_size=30)
opt_text = st.none() | text
money = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
tokens = st.integers(min_value=0, max_value=2**53)
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | money | text
notes = st.dictionaries(
    text,
    st.recursive(json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=6),
    max_size=4,
)

records = st.builds(
    CostRecord,
    request_id=text,
    attempt=st.integers(0, 10),
    kind=st.sampled_from(KINDS),
    timestamp=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    provider=st.sampled_from(["openai", "anthropic", "litellm"]),
    requested_model=text,
    model=text,
    tenant=opt_text,
    user=opt_text,
    feature=opt_text,
    route=opt_text,
    prompt_version=opt_text,
    input_tokens=tokens,
    output_tokens=tokens,
    cached_read_tokens=tokens,
    cache_write_tokens=tokens,
    cost_usd=st.none() | money,
    priced=st.booleans(),
    saved_usd=money,
    savings=st.dictionaries(st.sampled_from(["router", "exact", "semantic", "context_budget"]), money),
    cache=st.sampled_from(CACHES),
    success=st.booleans(),
    error_type=opt_text,
    latency_ms=money,
    usage_estimated=st.booleans(),
    notes=notes,
    prompt_text=opt_text,
    completion_text=opt_text,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=8))
def test_sqlite_and_jsonl_round_trip(recs: list[CostRecord]) -> None:
    with tempfile.TemporaryDirectory() as d:
        db, jl = Path(d) / "c.db", Path(d) / "c.jsonl"
        with SQLiteSink(db) as s, JSONLSink(jl) as j:
            for r in recs:
                s.emit(r)
                j.emit(r)
        assert SQLiteSink.read(db) == recs
        assert JSONLSink.read(jl) == recs
