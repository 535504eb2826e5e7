"""The recorder: pricing per attempt, per-layer savings, settlement across a request's attempts."""

from __future__ import annotations

import pytest

import costkit
from costkit import Call, Result, Usage
from costkit._recorder import Recorder
from costkit.sinks import MemorySink

GPT4O = (2.5e-6, 1e-5)
MINI = (1.5e-7, 6e-7)


def make_call(**kw):
    base = dict(provider="openai", api="chat.completions", requested_model="gpt-4o", model="gpt-4o",
                messages=({"role": "user", "content": "q"},))
    base.update(kw)
    return Call(**base)


def recorder():
    return Recorder(MemorySink(), costkit.pricing.default_pricebook())


def usage(i=1000, o=100):
    return Usage(input_tokens=i, output_tokens=o)


def test_attempt_is_priced_and_the_result_carries_its_cost():
    rec = recorder()
    out = rec.attempt(make_call(), Result(text="a", usage=usage()), None, 0.0)
    [r] = rec.sink.records
    assert r.cost_usd == pytest.approx(1000 * GPT4O[0] + 100 * GPT4O[1], abs=1e-15)
    assert out.cost_usd == r.cost_usd
    assert (r.saved_usd, r.savings) == (0.0, {})


def test_router_saving_is_requested_minus_actual_at_the_same_usage():
    rec = recorder()
    rec.attempt(make_call(model="gpt-4o-mini"), Result(usage=usage()), None, 0.0)
    [r] = rec.sink.records
    expected = (1000 * GPT4O[0] + 100 * GPT4O[1]) - (1000 * MINI[0] + 100 * MINI[1])
    assert r.savings == {"router": pytest.approx(expected, abs=1e-15)}
    assert r.saved_usd == pytest.approx(expected, abs=1e-15)


def test_context_budget_saving_prices_removed_tokens_at_the_requested_input_rate():
    rec = recorder()
    rec.attempt(make_call(notes={"tokens_removed": 4000}), Result(usage=usage()), None, 0.0)
    assert rec.sink.records[0].savings == {"context_budget": pytest.approx(4000 * GPT4O[0], abs=1e-15)}


def test_rejected_cascade_attempt_is_a_cost_of_routing():
    rec = recorder()
    call = rec.begin(make_call(model="gpt-4o-mini"))
    rec.attempt(call, Result(usage=usage()), None, 0.0)  # cheap answer, rejected by the gate
    rec.attempt(call.evolve(model="gpt-4o", kind="escalation", attempt=2), Result(usage=usage()), None, 0.0)
    assert rec.sink.records == []  # held until the request ends
    rec.end(call, Result())
    cheap, strong = rec.sink.records
    assert (cheap.saved_usd, cheap.savings) == (0.0, {})
    assert strong.kind == "escalation"
    assert strong.savings == {"router": pytest.approx(-cheap.cost_usd, abs=1e-15)}


def test_a_refused_attempt_costs_nothing_and_names_the_error():
    import httpx
    import openai

    rec = recorder()
    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    refused = openai.RateLimitError("slow down", response=httpx.Response(429, request=request), body=None)
    assert rec.attempt(make_call(), None, refused, 0.0) is None
    [r] = rec.sink.records
    assert (r.success, r.error_type, r.cost_usd, r.input_tokens, r.usage_estimated) == (
        False, "RateLimitError", 0.0, 0, False)


@pytest.mark.parametrize("error", [TimeoutError("slow"), ConnectionResetError("reset")], ids=["timeout", "reset"])
def test_an_attempt_lost_after_it_was_sent_is_billed_its_counted_input(error):
    """The provider read the prompt: it bills it, whether or not an answer came back."""
    from costkit.tokens import count_messages

    rec = recorder()
    call = make_call(messages=({"role": "user", "content": "Summarize this long report for me. " * 10},))
    rec.attempt(call, None, error, 0.0)
    [r] = rec.sink.records
    n = count_messages(list(call.messages), "gpt-4o")
    assert (r.success, r.error_type, r.input_tokens, r.output_tokens, r.usage_estimated) == (
        False, type(error).__name__, n, 0, True)
    assert r.cost_usd == pytest.approx(n * GPT4O[0], abs=1e-15)


def test_an_attempt_that_never_connected_costs_nothing():
    import httpx
    import openai

    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    try:
        raise httpx.ConnectError("refused")
    except httpx.ConnectError as cause:
        try:
            raise openai.APIConnectionError(request=request) from cause
        except openai.APIConnectionError as exc:
            error = exc
    rec = recorder()
    rec.attempt(make_call(), None, error, 0.0)
    [r] = rec.sink.records
    assert (r.cost_usd, r.input_tokens, r.usage_estimated) == (0.0, 0, False)


def test_cache_hit_saves_the_original_cost_and_costs_nothing():
    rec = recorder()
    rec.cache_hit(make_call(model="gpt-4o-mini"), Result(usage=usage(), source="semantic", cost_usd=0.0035), 0.0)
    [r] = rec.sink.records
    assert (r.kind, r.cache, r.cost_usd, r.model, r.attempt) == ("cache_hit", "semantic", 0.0, "gpt-4o", 0)
    assert r.savings == {"semantic": 0.0035}


def test_a_cache_hit_saves_the_stored_cost_not_a_reprice():
    """The stored answer was paid for on the model that wrote it (here the cheap tier), not the one asked for."""
    rec = recorder()
    cheap = 1000 * MINI[0] + 100 * MINI[1]
    rec.cache_hit(make_call(model="gpt-4o-mini"), Result(usage=usage(), source="exact", cost_usd=cheap), 0.0)
    [r] = rec.sink.records
    assert (r.savings, r.saved_usd) == ({"exact": cheap}, cheap)


def test_a_cache_hit_without_a_stored_cost_saves_the_requested_models_price_for_its_usage():
    rec = recorder()
    answer = Result(usage=usage(), source="exact", model="gpt-4o-2024-08-06")
    rec.cache_hit(make_call(model="gpt-4o-mini"), answer, 0.0)
    [r] = rec.sink.records
    full = 1000 * GPT4O[0] + 100 * GPT4O[1]
    assert r.savings == {"exact": pytest.approx(full, abs=1e-15)}
    assert (r.model, r.requested_model, r.input_tokens, r.output_tokens, r.cost_usd) == (
        "gpt-4o-2024-08-06", "gpt-4o", 1000, 100, 0.0)


def test_a_cache_hit_is_priced_at_the_calls_provider():
    rec = Recorder(MemorySink(), groq_book())
    call = make_call(provider="groq", requested_model="llama-3-8b", model="llama-3-8b")
    rec.cache_hit(call, Result(usage=usage(), source="exact"), 0.0)
    assert rec.sink.records[0].savings == {"exact": pytest.approx(1000 * 0.05e-6 + 100 * 0.08e-6, abs=1e-15)}


def test_a_cache_hit_of_an_unpriced_model_saves_nothing_it_cannot_price():
    rec = recorder()
    call = make_call(requested_model="house-model-7", model="house-model-7")
    rec.cache_hit(call, Result(usage=usage(), source="semantic"), 0.0)
    [r] = rec.sink.records
    assert (r.savings, r.saved_usd, r.cost_usd, r.priced) == ({}, 0.0, 0.0, True)


def test_a_cache_hit_records_how_long_the_layer_took(monkeypatch):
    from types import SimpleNamespace

    from costkit import _recorder

    monkeypatch.setattr(_recorder, "time", SimpleNamespace(perf_counter=lambda: 12.5))
    rec = recorder()
    rec.cache_hit(make_call(), Result(usage=usage(), source="exact", cost_usd=0.0035), 12.25)
    assert rec.sink.records[0].latency_ms == 250.0


def test_served_service_tier_is_priced():
    from openai.types.chat import ChatCompletion

    raw = ChatCompletion.model_validate({
        "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-5", "service_tier": "flex",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "a"}}]})
    rec = recorder()
    rec.attempt(make_call(model="gpt-5", requested_model="gpt-5"), Result(usage=usage(), raw=raw), None, 0.0)
    rec.attempt(make_call(model="gpt-5", requested_model="gpt-5"), Result(usage=usage()), None, 0.0)
    flex, default = rec.sink.records
    assert flex.cost_usd == pytest.approx(costkit.pricing.cost("gpt-5", usage(), service_tier="flex"), abs=1e-15)
    assert flex.cost_usd == pytest.approx(default.cost_usd / 2, rel=1e-9)


def test_listener_failure_is_contained():
    rec = recorder()
    rec.listeners.append(lambda r: 1 / 0)
    with pytest.warns(UserWarning, match="listener failed"):
        rec.attempt(make_call(), Result(usage=usage()), None, 0.0)
    assert len(rec.sink.records) == 1


def test_attempts_of_a_request_are_numbered_in_order():
    rec = recorder()
    call = rec.begin(make_call())
    rec.attempt(call, None, TimeoutError(), 0.0)
    rec.attempt(call.evolve(attempt=2, kind="retry"), None, TimeoutError(), 0.0)
    rec.attempt(call.evolve(model="gpt-4o-mini", attempt=2, kind="retry"), Result(usage=usage()), None, 0.0)
    rec.end(call, Result())
    assert [(r.attempt, r.kind) for r in rec.sink.records] == [(1, "call"), (2, "retry"), (3, "retry")]


def test_shadow_route_cost_is_recorded():
    rec = recorder()
    rec.attempt(make_call(notes={"shadow_model": "gpt-4o-mini"}), Result(usage=usage()), None, 0.0)
    [r] = rec.sink.records
    assert r.notes["shadow_cost_usd"] == pytest.approx(1000 * MINI[0] + 100 * MINI[1], abs=1e-15)
    assert r.saved_usd == 0.0  # shadow mode changes nothing, so it saves nothing


def test_a_judge_is_a_cost_of_routing_and_the_answer_keeps_the_saving():
    rec = recorder()
    call = rec.begin(make_call(model="gpt-4o-mini"))
    rec.attempt(call, Result(usage=usage()), None, 0.0)  # the cheap answer
    rec.attempt(call.evolve(kind="judge", attempt=2), Result(usage=usage(200, 1)), None, 0.0)  # accepted by a judge
    rec.end(call, Result())
    answer, judge = rec.sink.records
    full = 1000 * GPT4O[0] + 100 * GPT4O[1]
    assert answer.savings == {"router": pytest.approx(full - answer.cost_usd - judge.cost_usd, abs=1e-15)}
    assert (judge.kind, judge.saved_usd) == ("judge", 0.0)


def groq_book():
    book = costkit.pricing.PriceBook(base=None)
    book.register("llama-3-8b", input_per_million=0.05, output_per_million=0.08, provider="groq")
    book.register("llama-3-8b", input_per_million=0.2, output_per_million=0.2)
    return book


def compressed_call(strategies, **kw):
    removed = sum(s.get("tokens_removed", 0) for s in strategies.values() if isinstance(s, dict))
    notes = {"tokens_removed": removed, "compression": {"layer": "compressor", "strategies": strategies}}
    return make_call(notes=notes, **kw)


def test_each_compression_strategy_saves_its_removed_tokens_at_the_input_rate_less_its_summary():
    rec = recorder()
    strategies = {"retrieved": {"tokens_removed": 4000}, "history": {"summary_cost_usd": 0.001}}
    rec.attempt(compressed_call(strategies), Result(usage=usage()), None, 0.0)
    [r] = rec.sink.records
    priced = r.notes["compression"]["strategies"]
    assert priced["retrieved"]["saved_usd"] == pytest.approx(4000 * GPT4O[0], abs=1e-15)
    assert priced["history"]["saved_usd"] == -0.001  # a summary that removed nothing only cost
    assert r.savings == {"compressor": pytest.approx(4000 * GPT4O[0] - 0.001, abs=1e-15)}


def test_a_compression_entry_that_is_not_a_strategy_saves_nothing():
    rec = recorder()
    call = compressed_call({"retrieved": {"tokens_removed": 4000}, "version": "2"})
    rec.attempt(call, Result(usage=usage()), None, 0.0)
    [r] = rec.sink.records
    assert r.savings == {"compressor": pytest.approx(4000 * GPT4O[0], abs=1e-15)}
    assert set(r.notes["compression"]["strategies"]) == {"retrieved"}


def test_compression_is_priced_at_the_input_rate_of_the_calls_provider():
    rec = Recorder(MemorySink(), groq_book())
    call = compressed_call({"retrieved": {"tokens_removed": 4000}}, provider="groq", requested_model="llama-3-8b",
                           model="llama-3-8b")
    rec.attempt(call, Result(usage=usage()), None, 0.0)
    [r] = rec.sink.records
    assert r.notes["compression"]["strategies"]["retrieved"]["saved_usd"] == pytest.approx(4000 * 0.05e-6, abs=1e-15)
    assert r.savings == {"compressor": pytest.approx(4000 * 0.05e-6, abs=1e-15)}


def test_compression_on_an_unpriced_model_is_recorded_as_the_compressor_wrote_it():
    rec = recorder()
    strategies = {"retrieved": {"tokens_removed": 4000}}
    rec.attempt(compressed_call(strategies, requested_model="house-model-7", model="house-model-7"),
                Result(usage=usage()), None, 0.0)
    [r] = rec.sink.records
    assert (r.priced, r.savings) == (False, {})
    assert r.notes["compression"] == {"layer": "compressor", "strategies": {"retrieved": {"tokens_removed": 4000}}}


# ------------------------------------------------------------------ the router's saving settled across attempts
def rate_limited():
    import httpx
    import openai

    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    return openai.RateLimitError("slow down", response=httpx.Response(429, request=request), body=None)


def test_a_refused_attempt_before_a_routed_answer_takes_nothing_from_its_saving():
    rec = recorder()
    call = rec.begin(make_call(model="gpt-4o-mini"))
    rec.attempt(call, None, rate_limited(), 0.0)  # $0: never reached the model
    rec.attempt(call.evolve(kind="retry", attempt=2), Result(usage=usage()), None, 0.0)
    rec.end(call, Result())
    refused, answer = rec.sink.records
    full, cheap = 1000 * GPT4O[0] + 100 * GPT4O[1], 1000 * MINI[0] + 100 * MINI[1]
    assert refused.cost_usd == 0.0
    assert answer.savings == {"router": pytest.approx(full - cheap, abs=1e-15)}
    assert answer.saved_usd == pytest.approx(full - cheap, abs=1e-15)


def test_a_retry_on_the_requested_model_is_no_routing_and_saves_nothing():
    rec = recorder()
    call = rec.begin(make_call())
    rec.attempt(call, None, TimeoutError("slow"), 0.0)  # billed its input, but nothing was routed
    rec.attempt(call.evolve(kind="retry", attempt=2), Result(usage=usage()), None, 0.0)
    rec.end(call, Result())
    lost, answer = rec.sink.records
    assert lost.cost_usd > 0
    assert (answer.savings, answer.saved_usd) == ({}, 0.0)


def test_a_judge_on_the_requested_model_is_a_cost_of_routing():
    rec = recorder()
    call = rec.begin(make_call())
    rec.attempt(call.evolve(kind="judge"), Result(usage=usage(200, 1)), None, 0.0)  # the router asked a judge
    rec.attempt(call.evolve(attempt=2), Result(usage=usage()), None, 0.0)  # and kept the requested model
    rec.end(call, Result())
    judge, answer = rec.sink.records
    assert answer.savings == {"router": -judge.cost_usd}
    assert answer.saved_usd == -judge.cost_usd


def test_an_escalation_before_the_answer_is_a_cost_of_routing():
    rec = recorder()
    call = rec.begin(make_call())
    rec.attempt(call.evolve(kind="escalation"), None, TimeoutError("slow"), 0.0)  # billed its input
    rec.attempt(call.evolve(kind="retry", attempt=2), Result(usage=usage()), None, 0.0)
    rec.end(call, Result())
    escalation, answer = rec.sink.records
    assert escalation.cost_usd > 0
    assert (answer.savings, answer.saved_usd) == ({"router": -escalation.cost_usd}, -escalation.cost_usd)


def test_an_attempt_before_the_answer_keeps_no_savings_even_a_zero_one():
    rec = recorder()
    call = rec.begin(make_call(model="gpt-4o-2024-08-06"))  # routed to a snapshot priced as the model asked for
    rec.attempt(call, None, TimeoutError("slow"), 0.0)
    rec.attempt(call.evolve(kind="retry", attempt=2), Result(usage=usage()), None, 0.0)
    rec.end(call, Result())
    lost, answer = rec.sink.records
    assert (lost.savings, lost.saved_usd) == ({}, 0.0)
    assert answer.savings == {"router": pytest.approx(-lost.cost_usd, abs=1e-15)}


def test_a_lost_attempt_is_billed_its_prompt_and_tools_as_its_own_model_counts_them():
    from costkit.tokens import count_messages, count_tools

    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city, über naïve",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    messages = ({"role": "user", "content": "请把这份很长的报告总结一下。谢谢。" * 10},)
    rec = recorder()
    rec.attempt(make_call(messages=messages, params={"tools": tools}), None, TimeoutError("slow"), 0.0)
    [r] = rec.sink.records
    n = count_messages(list(messages), "gpt-4o") + count_tools(tools, "gpt-4o")  # o200k: other models count more
    assert n < count_messages(list(messages), "gpt-4") + count_tools(tools, "gpt-4")
    assert (r.input_tokens, r.usage_estimated) == (n, True)
    assert r.cost_usd == pytest.approx(n * GPT4O[0], abs=1e-15)


# ------------------------------------------------------------------ prices at the call's provider and tier
def test_an_attempt_is_priced_at_its_providers_price():
    rec = Recorder(MemorySink(), groq_book())
    call = make_call(provider="groq", requested_model="llama-3-8b", model="llama-3-8b")
    out = rec.attempt(call, Result(usage=usage()), None, 0.0)
    assert out.cost_usd == pytest.approx(1000 * 0.05e-6 + 100 * 0.08e-6, abs=1e-15)


def test_savings_are_priced_at_the_providers_price_of_the_model_asked_for():
    book = groq_book()
    book.register("llama-3-1b", input_per_million=0.01, output_per_million=0.02, provider="groq")
    rec = Recorder(MemorySink(), book)
    call = make_call(provider="groq", requested_model="llama-3-8b", model="llama-3-1b", notes={"tokens_removed": 4000})
    rec.attempt(call, Result(usage=usage()), None, 0.0)
    [r] = rec.sink.records
    asked, served = 1000 * 0.05e-6 + 100 * 0.08e-6, 1000 * 0.01e-6 + 100 * 0.02e-6
    assert r.savings == {
        "context_budget": pytest.approx(4000 * 0.05e-6, abs=1e-15),
        "router": pytest.approx(asked - served, abs=1e-15),
    }


def test_a_compressor_that_names_no_layer_saves_under_compressor():
    rec = recorder()
    notes = {"tokens_removed": 4000, "compression": {"strategies": {"retrieved": {"tokens_removed": 4000}}}}
    rec.attempt(make_call(notes=notes), Result(usage=usage()), None, 0.0)
    assert rec.sink.records[0].savings == {"compressor": pytest.approx(4000 * GPT4O[0], abs=1e-15)}


def test_tokens_removed_from_a_prompt_for_an_unpriced_model_save_nothing_they_cannot_price():
    rec = recorder()
    call = make_call(requested_model="house-model-7", model="gpt-4o-mini", notes={"tokens_removed": 4000})
    rec.attempt(call, Result(usage=usage()), None, 0.0)
    [r] = rec.sink.records
    assert (r.cost_usd, r.savings) == (pytest.approx(1000 * MINI[0] + 100 * MINI[1], abs=1e-15), {})


def test_the_service_tier_asked_for_is_priced_when_the_answer_does_not_name_one():
    rec = recorder()
    call = make_call(model="gpt-5", requested_model="gpt-5", params={"service_tier": "flex"})
    out = rec.attempt(call, Result(usage=usage()), None, 0.0)
    assert out.cost_usd == pytest.approx(costkit.pricing.cost("gpt-5", usage(), service_tier="flex"), abs=1e-15)
    assert out.cost_usd == pytest.approx(costkit.pricing.cost("gpt-5", usage()) / 2, rel=1e-9)


# ------------------------------------------------------------------ what the hot path reads before the record is built
def test_a_held_attempt_carries_its_cost_and_tokens_before_its_record_is_built():
    rec = recorder()
    call = rec.begin(make_call())
    rec.attempt(call.evolve(kind="retry", attempt=2), Result(usage=usage()), None, 0.0)
    [held] = call.scope.records  # what a budget settles on while the request is still running
    full = 1000 * GPT4O[0] + 100 * GPT4O[1]
    assert (held.request_id, held.attempt, held.kind, held.input_tokens, held.output_tokens) == (
        call.request_id, 2, "retry", 1000, 100)
    assert held.cost_usd == pytest.approx(full, abs=1e-15)


def test_a_lost_attempt_carries_its_billed_input_before_its_record_is_built():
    from costkit.tokens import count_messages

    rec = recorder()
    call = rec.begin(make_call())
    rec.attempt(call, None, TimeoutError("slow"), 0.0)
    [held] = call.scope.records
    assert (held.input_tokens, held.output_tokens) == (count_messages(list(call.messages), "gpt-4o"), 0)


def test_an_attempt_is_stamped_when_it_ended_and_timed_from_its_start(monkeypatch):
    from types import SimpleNamespace

    from costkit import _recorder, records

    clock = [100.0]
    previous = records.set_clock(lambda: clock[0])
    try:
        monkeypatch.setattr(_recorder, "time", SimpleNamespace(perf_counter=lambda: 12.5))
        rec = recorder()
        call = rec.begin(make_call())
        rec.attempt(call, Result(usage=usage()), None, 12.25)
        clock[0] = 200.0  # the request ends later; its records are built then
        rec.end(call, Result())
    finally:
        records.set_clock(previous)
    [r] = rec.sink.records
    assert (r.timestamp, r.latency_ms) == (100.0, 250.0)


def test_a_record_carries_the_price_its_attempt_was_charged_even_if_the_price_changes_before_it_is_built():
    book = costkit.pricing.PriceBook(base=None)
    book.register("house-model-7", input_per_million=1.0, output_per_million=2.0)
    rec = Recorder(MemorySink(), book)
    call = rec.begin(make_call(requested_model="house-model-7", model="house-model-7"))
    out = rec.attempt(call, Result(usage=usage()), None, 0.0)
    book.register("house-model-7", input_per_million=10.0, output_per_million=20.0)  # while the request runs
    rec.end(call, Result())
    [r] = rec.sink.records
    assert r.cost_usd == out.cost_usd == pytest.approx(1000 * 1e-6 + 100 * 2e-6, abs=1e-15)
