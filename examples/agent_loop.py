"""A tool-using agent loop under ``@costkit.budgeted``: runaway loops stop at a bound.

    python examples/agent_loop.py

The agent calls the model, runs the tools it asks for, and repeats until the model answers. The
decorator gives every invocation a budget: ``max_tool_steps`` (answers that asked for tools),
``max_calls`` (completion calls) and ``max_usd_per_call`` (USD), each enforced before the next call
is sent. The fake provider plays the model: its replies are scripted from the conversation so far
(``tool_call(...)`` replies ask for tools). Three tasks: one finishes, one keeps asking for tools
and is stopped by ``max_tool_steps``, one never commits to an answer and is stopped by ``max_calls``.
"""

from __future__ import annotations

import json

import costkit
from costkit.report import aggregate
from costkit.sinks import MemorySink
from costkit.testing import FakeOpenAI, FakeProvider, FakeRequest, Reply, tool_call

TOOLS = {
    "get_weather": lambda city: {"city": city, "celsius": 24},
    "convert_currency": lambda amount, to: {"amount": round(amount * 0.92, 2), "currency": to},
    "search_flights": lambda query: {"results": [], "hint": "try another query"},
}
SCHEMAS = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}} for name in TOOLS]


def scripted_model(req: FakeRequest) -> Reply:
    """What the fake 'model' answers, given the conversation so far."""
    steps = sum(m["role"] == "tool" for m in req.messages)
    if "Lisbon" in req.last_user_text:  # a well-behaved task: two tools, then an answer
        plan = [tool_call("get_weather", city="Lisbon"), tool_call("convert_currency", amount=200, to="EUR")]
        return plan[steps] if steps < len(plan) else Reply(text="FINAL: 24 C in Lisbon; 200 USD is 184 EUR.")
    if "flight" in req.last_user_text:  # a runaway: asks for the same tool forever
        return tool_call("search_flights", query=f"cheapest flight, attempt {steps + 1}")
    return Reply(text="Let me think about that some more.")  # never commits to an answer


fake = FakeProvider()
fake.on(scripted_model)
records = MemorySink()
client = costkit.wrap(FakeOpenAI(fake), sink=records)


@costkit.budgeted(feature="trip_agent", max_usd_per_call=0.05, max_calls=6, max_tool_steps=3)
def run_agent(task: str) -> str:
    messages: list[dict] = [{"role": "user", "content": task}]
    while True:
        reply = client.chat.completions.create(  # max_tokens bounds each call's worst case (else: the model's ceiling)
            model="gpt-4o", messages=messages, tools=SCHEMAS, max_tokens=300, temperature=0
        )
        message = reply.choices[0].message
        if not message.tool_calls:
            if (message.content or "").startswith("FINAL:"):
                return message.content or ""
            messages += [{"role": "assistant", "content": message.content},
                         {"role": "user", "content": "Please give your final answer."}]
            continue
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            output = TOOLS[call.function.name](**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(output)})


def main() -> None:
    tasks = {"lisbon": "Plan a weekend in Lisbon with 200 USD", "flights": "Find me the cheapest flight to Oslo",
             "dither": "Should we launch on Monday or Tuesday?"}
    for name, task in tasks.items():
        with costkit.tags(task=name):
            try:
                print(f"{name:<8} answered: {run_agent(task)}")
            except (costkit.GuardrailViolation, costkit.BudgetExceeded) as exc:
                print(f"{name:<8} stopped by {type(exc).__name__}({getattr(exc, 'rule', '')!r}): {exc}")

    print(f"\nprovider calls: {fake.count()}   cost records: {len(records.records)}")
    for r in records.records:
        print(f"  {r.task:<8} {r.kind:<5} {r.model:<7} in={r.input_tokens:<4} out={r.output_tokens:<3} "
              f"cost ${r.cost_usd:.6f}")
    print("\nper task (one invocation each):")
    for group in aggregate(records.records, by=["task"]).groups:
        print(f"  {group.key[0]:<8} calls={group.requests}  cost=${group.cost_usd:.6f}")
    print(f"trip_agent spent today (this process): ${run_agent.budget.spent_today():.6f}")


if __name__ == "__main__":
    main()
