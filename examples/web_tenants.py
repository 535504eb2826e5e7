"""A FastAPI service where every tenant has its own daily budget and every call is tagged.

    python examples/web_tenants.py

A middleware tags each request with the tenant and user from its headers (``costkit.tags``:
contextvars, so the tags follow the request into the endpoint); each endpoint names its feature.
``costkit.Budget`` reserves a call's worst case against the tenant's plan before the provider is
called, so a tenant over its plan gets HTTP 429 and costs nothing. Run as a script, the example
drives the app with FastAPI's TestClient against the fake provider; serve ``app`` with any ASGI
server (``uvicorn web_tenants:app``) and swap ``FakeAsyncOpenAI(fake)`` for ``openai.AsyncOpenAI()``
to run it for real. Needs the ``examples`` extra (``pip install -e ".[examples]"``).
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

import costkit
from costkit.report import aggregate, to_table
from costkit.sinks import MemorySink
from costkit.testing import FakeAsyncOpenAI, FakeProvider

PLAN_USD = {"acme": 0.05, "initech": 0.002}  # per tenant per day; initech is on the trial plan

fake = FakeProvider(default="Thanks for asking. " * 10)  # about 50 output tokens per answer
fake.on(r"(?i)refund", "Refunds are processed within 5 business days.")
PLANS = {t: costkit.BudgetLimit(usd=usd, window="day", tenant=t, name=f"plan:{t}") for t, usd in PLAN_USD.items()}
budget = costkit.Budget(limits=[costkit.BudgetLimit(usd=1.0, window="day", name="whole-service"), *PLANS.values()])
records = MemorySink()
llm = costkit.wrap(
    FakeAsyncOpenAI(fake),
    policies=[
        costkit.Guardrails(max_output_tokens=100),
        costkit.ExactCache(store="memory"),  # a repeated question is free, and spends no budget
        budget,  # last: every provider attempt reserves its own worst case
    ],
    sink=records,
)
app = FastAPI()


@app.middleware("http")
async def attribute_to_tenant(request: Request, call_next):  # type: ignore[no-untyped-def]
    tenant = request.headers.get("x-tenant")
    if tenant not in PLAN_USD:
        return JSONResponse({"detail": "unknown tenant"}, status_code=401)
    with costkit.tags(tenant=tenant, user=request.headers.get("x-user")):
        return await call_next(request)


class Ask(BaseModel):
    question: str


async def complete(feature: str, model: str, prompt: str) -> str:
    with costkit.tags(feature=feature):
        try:
            reply = await llm.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], temperature=0
            )
        except costkit.BudgetExceeded as exc:  # refused before the provider was called
            raise HTTPException(429, {"error": "daily budget reached", "limit_usd": exc.limit_usd}) from exc
    return reply.choices[0].message.content or ""


@app.post("/v1/answer")
async def answer(ask: Ask) -> dict[str, str]:
    return {"answer": await complete("support_answer", "gpt-4o", ask.question)}


@app.post("/v1/summarize")
async def summarize(ask: Ask) -> dict[str, str]:
    return {"summary": await complete("summarize", "gpt-4o-mini", f"Summarize: {ask.question}")}


def main() -> None:
    traffic = [
        ("acme", "ann", "/v1/answer", "How do I get a refund?"),
        ("acme", "bob", "/v1/answer", "How do I get a refund?"),  # same question: an exact-cache hit
        ("acme", "ann", "/v1/summarize", "Ticket 311: printer on fire"),
        *(("initech", "peter", "/v1/answer", f"Why is report {n} late?") for n in range(4)),
        ("initech", "peter", "/v1/answer", "How do I get a refund?"),  # another tenant: no shared hit
    ]
    with TestClient(app) as http:
        for tenant, user, path, question in traffic:
            resp = http.post(path, json={"question": question}, headers={"x-tenant": tenant, "x-user": user})
            print(f"{tenant:<8} {path:<14} HTTP {resp.status_code}  {str(resp.json())[:60]}")
        print("unknown tenant:", http.post("/v1/answer", json={"question": "hi"}).status_code)

    print(f"\nprovider calls: {fake.count()}   cost records: {len(records.records)}")
    for r in records.records:
        print(f"  {r.tenant:<8} {r.user:<6} {r.feature:<15} {r.kind:<10} {r.model:<12} cost ${r.cost_usd:.6f}")
    for tenant, limit in PLANS.items():
        spent = budget.spent(limit, costkit.Tags(tenant=tenant))
        print(f"  {tenant} spent ${spent:.6f} of its ${limit.usd} plan today")
    print(to_table([aggregate(records.records, by=["tenant", "feature"])], title="spend by tenant and feature"))


if __name__ == "__main__":
    main()
