"""The dashboard's numbers computed the plain way, from the records in Python (no SQL, no rollups)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from costkit.records import CostRecord


def day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d")


def cost_by(records: list[CostRecord], dim: str) -> dict[tuple[str, str], float]:
    """(value, day) -> USD."""
    out: dict[tuple[str, str], float] = defaultdict(float)
    for r in records:
        v = getattr(r, dim)
        out[("(none)" if v is None else v, day(r.timestamp))] += r.cost_usd or 0.0
    return out


def savings_by_layer(records: list[CostRecord]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = defaultdict(float)
    for r in records:
        for layer, usd in r.savings.items():
            out[(layer, day(r.timestamp))] += usd
    return out


def cache_by_day(records: list[CostRecord]) -> dict[str, dict[str, Any]]:
    """day -> hit rate (hits / (first calls + hits)) and the live false-hit estimate."""
    acc: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in records:
        a = acc[day(r.timestamp)]
        if r.kind == "call":
            a["calls"] += 1
        elif r.kind == "cache_hit":
            a["hits"] += 1
            a["semantic"] += r.cache == "semantic"
        v = r.notes.get("cache_verified")
        if v is True:
            a["ok"] += 1
        elif v is False:
            a["wrong"] += 1
    out = {}
    for d, a in acc.items():
        sampled = a["ok"] + a["wrong"]
        lookups = a["calls"] + a["semantic"]
        estimate = None
        if sampled and lookups:
            estimate = a["wrong"] / sampled * (a["semantic"] + a["wrong"]) / lookups
        out[d] = {"hit_rate": a["hits"] / (a["calls"] + a["hits"]), "false_hit_estimate": estimate}
    return out
