"""Every example runs offline, as a user would run it (a subprocess), and prints what it claims."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def example(name: str) -> str:
    return run(str(ROOT / "examples" / name))


def number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in:\n{text}"
    return float(found.group(1))


def test_quickstart_runs_and_saves_money():
    out = example("quickstart.py")
    assert "answer: Refunds are processed within 5 business days." in out
    assert "provider calls made: 7   cost records: 9" in out  # 3 FAQ asks -> 1 call; one 429 retried
    assert out.count("cache_hit") == 2
    assert "ticket_triage   gpt-4o-mini" in out  # classification routed to the cheap model
    assert number(r"total .* saved=\$([\d.]+)", out) > 0


def test_web_tenants_refuses_a_tenant_over_its_plan_and_tags_every_call():
    out = example("web_tenants.py")
    statuses = re.findall(r"^(\w+)\s+(\S+)\s+HTTP (\d+)", out, re.M)
    assert [s for t, _, s in statuses if t == "acme"] == ["200", "200", "200"]
    assert [s for t, _, s in statuses if t == "initech"] == ["200", "200", "200", "429", "429"]
    assert "unknown tenant: 401" in out
    assert "provider calls: 5   cost records: 6" in out  # refused calls never reached the provider
    assert re.search(r"acme\s+bob\s+support_answer\s+cache_hit", out)  # tags from the headers, one shared hit
    assert re.search(r"acme\s+ann\s+summarize\s+call\s+gpt-4o-mini", out)
    assert number(r"initech spent \$([\d.]+) of its \$0.002 plan", out) <= 0.002
    assert "by tenant x feature" in out


def test_agent_loop_stops_the_runaway_tasks_by_tool_steps_and_by_calls():
    out = example("agent_loop.py")
    assert "lisbon   answered: FINAL: 24 C in Lisbon; 200 USD is 184 EUR." in out
    assert "flights  stopped by GuardrailViolation('max_tool_steps')" in out
    assert "dither   stopped by GuardrailViolation('max_calls')" in out
    assert "provider calls: 13   cost records: 13" in out
    calls = dict(re.findall(r"^  (\w+)\s+calls=(\d+)", out, re.M))
    assert calls == {"lisbon": "3", "flights": "4", "dither": "6"}  # max_tool_steps=3, max_calls=6
    spent = number(r"trip_agent spent today \(this process\): \$([\d.]+)", out)
    assert spent == pytest.approx(sum(float(c) for c in re.findall(r"cost=\$([\d.]+)", out)), abs=2e-6)


def test_rag_answerer_trims_context_and_caches_without_wrong_answers():
    out = example("rag_answerer.py")
    assert "provider calls: 8   cost records: 10   wrong answers: 0" in out
    lines = {line.split(" -> ")[0].strip(): line for line in out.splitlines() if " -> " in line}
    assert "exact" in lines["Who was the duke in the battle of Hastings?"].split(" -> ")[1]
    assert "semantic (score" in lines["Who was the leader of the Norse?"]
    french = lines["When was the French version of the word Norman first recorded?"]  # near miss: not served
    assert "The documents do not say." in french and "tokens sent" in french
    sent = [int(n) for n in re.findall(r"(\d+) tokens sent", out)]
    assert len(sent) == 8 and max(sent) < 300  # ContextBudget(retrieved=250) + the question and framing
    for layer in ("context_budget", "exact", "semantic"):
        assert number(rf"; saved .*{layer} \$([\d.]+)", out) > 0


def test_nightly_batch_runs_at_half_price_and_resumes_without_resubmitting():
    out = example("nightly_batch.py")
    assert "nightly job: 60 answers, labels {'billing': 20, 'bug': 40}" in out
    assert "items submitted to the Batch API: 55 (5 answered by the exact cache), submitted twice: 0" in out
    assert "the same job run again (a restart): 60 answers, items submitted now 55" in out
    assert "cost records: 65" in out
    assert re.search(r"nightly_triage\s+cache_hit\s+requests=5 ", out)
    interactive = number(r"interactive \$([\d.]+) ->", out)
    batch = number(r"-> batch \$([\d.]+)", out)
    assert batch == pytest.approx(interactive / 2, abs=2e-7)
    assert number(r"savings\['batch'\] \$([\d.]+)", out) == pytest.approx(interactive - batch, abs=2e-7)


def test_learned_router_is_saved_loaded_and_routes_unseen_prompts():
    out = example("learned_router.py")
    assert "trained on 1000 logged outcomes, saved to router.npz" in out
    calls = re.search(r"provider calls: 300 \((\d+) to gpt-4o-mini, (\d+) to gpt-4o\)", out)
    assert calls and int(calls.group(1)) + int(calls.group(2)) == 300
    assert int(calls.group(1)) >= 30  # the cheap model takes a real share
    assert number(r"quality ratio >= ([\d.]+) of gpt-4o", out) >= 0.95  # the calibrated bound
    assert number(r"\(quality ratio ([\d.]+)\)", out) >= 0.9  # measured on 300 unseen questions
    assert number(r"router saved \$[\d.]+ \((\d+)%\)", out) >= 10


def test_pytest_app_suite_passes_with_costkits_fixtures():
    out = run("-m", "pytest", str(ROOT / "examples" / "pytest_app"), "-q", "-p", "no:cacheprovider")
    assert re.search(r"^7 passed", out, re.M), out


@pytest.mark.redis
def test_redis_fleet_shares_cache_dedup_and_budget_between_processes():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/test installs it)")
    out = example("redis_fleet.py")
    workers = re.findall(r"^worker (\d) \(pid (\d+)\): provider calls (\d+), trial calls refused (\d+)", out, re.M)
    assert len({pid for _, pid, _, _ in workers}) == 4
    assert "same question, 5 asks from 4 processes: 1 none, 3 dedup, 1 exact" in out  # one provider call
    answered = int(number(r"trial tenant: (\d+) calls answered", out))
    assert answered + sum(int(refused) for *_, refused in workers) == 4 * 6
    recorded = number(r"\$([\d.]+) recorded", out)
    assert recorded == number(r"\$([\d.]+) settled in Redis", out)
    assert recorded <= 0.003
