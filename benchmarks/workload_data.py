"""The workload's sources, read from their files and split into a development and a held-out part.

Every source is a file given on the command line (the defaults are the copies in benchmarks/data),
so the same generator runs on other data of the same formats. Splits are deterministic:

* QQP pairs (``{"a", "b", "duplicate"}``): when the file is the bundled ``qqp_pairs_dev.jsonl``, its
  first half under ``np.random.default_rng(0).permutation`` is dropped (the shipped semantic-cache
  calibration was fitted on it: scripts/make_cache_calibration.py); the rest is cut in two in that
  order: development, then held out. Any other file is cut the same way with nothing dropped.
* MMLU routing labels (``{"subject", "prompt", "weak_correct", "strong_correct"}``), permuted with
  seed 0: the first half trains the learned router, the next quarter is the development part, the
  last quarter is held out. The router never sees a prompt the workload asks.
* SQuAD 2.0 articles, in file order: the first half of the articles is development (in the bundled
  file "Normans", on which the compressor's defaults were chosen), the rest held out ("Sky (United
  Kingdom)").
* The Azure LLM inference trace (``TIMESTAMP,ContextTokens,GeneratedTokens``), by time: the first
  half of the rows is development, the second half held out.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import datetime
from pathlib import Path

import attrs
import numpy as np

DATA = Path(__file__).resolve().parent / "data"
SPLITS = ("dev", "heldout")
# sha256 of the QQP file the shipped semantic-cache calibration was fitted on (its first half)
CALIBRATION_QQP_SHA256 = "fc93329af7eb7f1e542fd7ccd301683ccf7f3016d42926e92738ff8145b6ceb4"


@attrs.frozen
class Paths:
    """Where each source is read from."""

    qqp: Path = DATA / "qqp_pairs_dev.jsonl"
    mmlu: Path = DATA / "mmlu_routing_dev.jsonl"
    squad: Path = DATA / "squad_context_dev.json"
    trace: Path = DATA / "azure_llm_trace_conv.csv"


@attrs.frozen
class QqpPair:
    a: str
    b: str
    duplicate: bool


@attrs.frozen
class MmluItem:
    subject: str
    prompt: str
    weak_correct: bool
    strong_correct: bool


@attrs.frozen
class SquadQuestion:
    """An answerable question, the paragraphs of its article and the sentence that holds its answer."""

    question: str
    article: str
    gold: int  # index of the paragraph holding the answer in ``paragraphs``
    paragraphs: tuple[str, ...]
    answer_sentence: str


@attrs.frozen
class TraceRow:
    t_s: float  # seconds since the split's first row
    context_tokens: int
    generated_tokens: int


@attrs.frozen
class Sources:
    """One split of every source, plus the router's training items (the same for both splits)."""

    split: str
    qqp: tuple[QqpPair, ...]
    mmlu: tuple[MmluItem, ...]
    router_train: tuple[MmluItem, ...]
    squad: tuple[SquadQuestion, ...]
    trace: tuple[TraceRow, ...]


def load(paths: Paths = Paths(), split: str = "dev") -> Sources:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    train, mmlu = mmlu_split(paths.mmlu, split)
    return Sources(
        split=split,
        qqp=qqp_split(paths.qqp, split),
        mmlu=mmlu,
        router_train=train,
        squad=squad_split(paths.squad, split),
        trace=trace_split(paths.trace, split),
    )


def qqp_split(path: Path, split: str) -> tuple[QqpPair, ...]:
    raw = path.read_bytes()
    rows = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    order = np.random.default_rng(0).permutation(len(rows))
    if hashlib.sha256(raw).hexdigest() == CALIBRATION_QQP_SHA256:
        order = order[len(rows) // 2 :]
    half = len(order) // 2
    part = order[:half] if split == "dev" else order[half:]
    return tuple(QqpPair(a=rows[i]["a"], b=rows[i]["b"], duplicate=bool(rows[i]["duplicate"])) for i in part)


def mmlu_split(path: Path, split: str) -> tuple[tuple[MmluItem, ...], tuple[MmluItem, ...]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    items = [MmluItem(r["subject"], r["prompt"], bool(r["weak_correct"]), bool(r["strong_correct"])) for r in rows]
    order = np.random.default_rng(0).permutation(len(items))
    n_train, n_dev = len(items) // 2, len(items) // 4
    part = order[n_train : n_train + n_dev] if split == "dev" else order[n_train + n_dev :]
    return tuple(items[i] for i in order[:n_train]), tuple(items[i] for i in part)


def answer_sentence(paragraph: str, start: int, end: int) -> str:
    """The sentence(s) holding [start, end): a plain split at . ! ? followed by a capital
    (the reference rule of benchmarks/context.py, not the library's splitter)."""
    bounds = [0, *(m.end() for m in re.finditer(r"[.!?][\"')\]]*\s+(?=[A-Z\"(])", paragraph)), len(paragraph)]
    s = max(b for b in bounds if b <= start)
    e = min(b for b in bounds if b >= end)
    return paragraph[s:e].strip()


def squad_split(path: Path, split: str) -> tuple[SquadQuestion, ...]:
    articles = json.loads(path.read_text())["data"]
    cut = (len(articles) + 1) // 2
    chosen = articles[:cut] if split == "dev" else articles[cut:]
    out = []
    for article in chosen:
        paragraphs = tuple(p["context"] for p in article["paragraphs"])
        for pi, p in enumerate(article["paragraphs"]):
            for q in p["qas"]:
                if q.get("is_impossible") or not q["answers"]:
                    continue
                a = q["answers"][0]
                sentence = answer_sentence(p["context"], a["answer_start"], a["answer_start"] + len(a["text"]))
                out.append(SquadQuestion(q["question"], article["title"], pi, paragraphs, sentence))
    return tuple(out)


def trace_split(path: Path, split: str) -> tuple[TraceRow, ...]:
    with path.open() as f:
        rows = [
            (_timestamp(r["TIMESTAMP"]), int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in csv.DictReader(f)
        ]
    rows.sort(key=lambda r: r[0])
    half = len(rows) // 2
    part = rows[:half] if split == "dev" else rows[half:]
    t0 = part[0][0]
    return tuple(TraceRow(t - t0, c, g) for t, c, g in part)


def _timestamp(text: str) -> float:
    """``2023-11-16 18:15:46.6805900`` (7 fractional digits: more than datetime parses) -> seconds."""
    day, _, frac = text.partition(".")
    return datetime.fromisoformat(day).timestamp() + float(f"0.{frac or 0}")
