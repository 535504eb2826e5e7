"""How many everyday paraphrases can a pair scorer answer while QQP's false-hit rate stays <= δ? (dev data only)

    python scripts/cache_paraphrase_ceiling.py                          # bundled wordllama embedder
    python scripts/cache_paraphrase_ceiling.py --embedder minilm-onnx   # all-MiniLM-L6-v2 (ONNX)

Why this exists: the shipped calibration answers few everyday paraphrases, and the lever that
looked most promising was pair features that read rewording as agreement. This measures that lever
on the data it may be tuned on and nothing else: the QQP half the shipped calibration is made from
(``halves(seed=0)[0]``, as scripts/make_cache_calibration.py) and the *dev* clusters of
benchmarks/data/everyday_paraphrases.txt (the held-out clusters are never read).

For each feature set -- the shipped :data:`FEATURES`, and those plus a soft word alignment (below)
-- and each way of fitting the logistic scorer, the threshold is chosen exactly as ``calibrate()``
does (two-fold cross-fitted QQP scores, 99% Clopper-Pearson fixed-sequence bound), and the dev
paraphrase cache (the dev questions cached; paraphrases and related-but-different questions looked
up, top 5 by cosine, meaning-flip veto) is scored against it:

* ``QQP only``: the scorer as shipped (fitted on the QQP half).
* ``+ dev x20, cluster CV``: fitted on QQP plus the dev paraphrase candidates weighted 20x, each
  dev cluster scored by a model that did not see it (5 folds by cluster): an honest dev figure.
* ``+ dev x1000, in-sample``: fitted on QQP plus every dev candidate weighted 1000x and scored on
  those same candidates: a ceiling, not a result (the model has seen the answers).

Soft alignment (BERTScore-like, on the bundled static model's word vectors): content words (the
calibration's stop words plus conversational framing such as "way", "best", "steps", "tips") are
weighted by rarity (7.5 - wordfreq's Zipf frequency, clipped to [0.5, 7]); each word's best cosine
to the other question's words, weighted mean in both directions (min and mean), the weighted share
of words with no counterpart above 0.5 (max and mean of the two directions), and the weight of the
rarest such word.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _qqp import calibration_setup  # noqa: E402
from cache_quality import paraphrase_clusters  # noqa: E402

from costkit.embedders import normalize_rows  # noqa: E402
from costkit.policies.cache import calibration as cal_mod  # noqa: E402

RATES = (0.01, 0.02, 0.05)
_FRAMING_WORDS = (
    "way ways best good easiest right process steps step tips tip know possible want need tell like help anyone "
    "someone really actually thing things go going make sure one"
)
FRAMING = frozenset(_FRAMING_WORDS.split())
UNALIGNED = 0.5


@functools.lru_cache(maxsize=200_000)
def rarity(word: str) -> float:
    from wordfreq import zipf_frequency

    return max(0.5, min(7.0, 7.5 - zipf_frequency(word, "en")))


@functools.lru_cache(maxsize=65_536)
def content_words(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in cal_mod.tokens(text) if t not in cal_mod._STOP | FRAMING))


def soft_alignment(query: str, entry: str) -> list[float]:
    """[align min, align mean, unaligned share max, unaligned share mean, rarest unaligned word / 7]."""
    cq, ce = content_words(query), content_words(entry)
    if not cq or not ce:
        one_empty = float(bool(cq) != bool(ce))
        return [1 - one_empty, 1 - one_empty, one_empty, one_empty, one_empty]
    vecs = cal_mod.LEXICON.vectors([*cq, *ce])
    sims = np.stack(vecs[: len(cq)]) @ np.stack(vecs[len(cq) :]).T
    best_q, best_e = sims.max(axis=1), sims.max(axis=0)
    wq = np.array([rarity(w) for w in cq])
    we = np.array([rarity(w) for w in ce])
    aq, ae = float(wq @ best_q / wq.sum()), float(we @ best_e / we.sum())
    uq = float(wq[best_q < UNALIGNED].sum() / wq.sum())
    ue = float(we[best_e < UNALIGNED].sum() / we.sum())
    rarest = max([0.0, *wq[best_q < UNALIGNED], *we[best_e < UNALIGNED]])
    return [min(aq, ae), (aq + ae) / 2, max(uq, ue), (uq + ue) / 2, rarest / 7.0]


def tensor(lk: cal_mod.Lookups, fn: Callable[[str, str, float], list[float]]) -> np.ndarray:
    n, k = lk.candidates.shape
    rows = [
        fn(lk.queries[j], lk.entries[int(lk.candidates[j, r])], float(lk.cosines[j, r]))
        for j in range(n)
        for r in range(k)
    ]
    return np.asarray(rows, dtype=np.float64).reshape(n, k, -1)


def fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    """calibration.fit_logistic with per-row weights (Newton's method)."""
    w = np.zeros(x.shape[1])
    for _ in range(30):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        step = np.linalg.solve(
            (x.T * (weight * p * (1 - p))) @ x + np.eye(x.shape[1]) * l2, x.T @ (weight * (p - y)) + l2 * w
        )
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


def dev_lookups(emb: Any) -> tuple[cal_mod.Lookups, np.ndarray]:
    """The dev paraphrase cache as a simulation: dev questions cached, paraphrases and different questions looked up."""
    clusters = [c for c in paraphrase_clusters() if not c["held_out"]]
    entries = [q for c in clusters for q, _ in c["qs"]]
    looks = [p for c in clusters for _q, ps in c["qs"] for p in ps] + [n for c in clusters for n in c["ns"]]
    owner = [q for c in clusters for q, ps in c["qs"] for _p in ps] + [None for c in clusters for _n in c["ns"]]
    cluster = [i for i, c in enumerate(clusters) for _q, ps in c["qs"] for _p in ps]
    cluster += [i for i, c in enumerate(clusters) for _n in c["ns"]]
    sims = emb(looks) @ emb(entries).T
    cand = np.argsort(-sims, axis=1, kind="stable")[:, : cal_mod.DEFAULT_TOP_K]
    cos = np.take_along_axis(sims, cand, axis=1)
    right = np.array([[owner[j] is not None and entries[c] == owner[j] for c in cand[j]] for j in range(len(looks))])
    dup = np.array([o is not None for o in owner])
    return cal_mod.Lookups(tuple(looks), tuple(entries), cand, cos, right, dup), np.array(cluster)


def main() -> None:
    # the same text set as scripts/make_cache_calibration.py, so its stored vectors are reused
    _, model, cal_pairs, _, emb = calibration_setup(__doc__.split("\n\n")[0])
    dev_texts = sorted({t for c in paraphrase_clusters() if not c["held_out"] for t in _texts(c)})
    emb.table.update(zip(dev_texts, normalize_rows(np.asarray(model(dev_texts))), strict=True))

    qqp = cal_mod.simulate(cal_pairs, emb)
    qqp_veto = cal_mod.veto_mask(qqp)
    dev, cluster = dev_lookups(emb)
    dev_veto = cal_mod.veto_mask(dev)
    base_q = tensor(qqp, cal_mod.pair_features)
    base_d = tensor(dev, cal_mod.pair_features)
    align_q = tensor(qqp, lambda q, e, _c: soft_alignment(q, e))
    align_d = tensor(dev, lambda q, e, _c: soft_alignment(q, e))
    n_para, n_dev = int(dev.duplicate.sum()), len(dev.queries)
    where_paraphrases_sit(qqp, qqp_veto, align_q, dev, align_d)
    print(
        f"embedder {emb.name}; QQP calibration half {len(qqp.queries)} lookups; dev: {len(dev.entries)} cached, "
        f"{n_para} paraphrases, {n_dev - n_para} different questions"
    )
    print(
        f"{'features':22s} {'scorer fitted on':30s} " + "  ".join(f"δ={d}: answered/wrong, QQP dup-hit" for d in RATES)
    )
    for label, xq, xd in (
        ("shipped", base_q, base_d),
        ("shipped + alignment", np.concatenate([base_q, align_q], 2), np.concatenate([base_d, align_d], 2)),
    ):
        for how, weight, folds in (
            ("QQP only", 0.0, 1),
            ("+ dev x20, cluster CV", 20.0, 5),
            ("+ dev x1000, in-sample", 1000.0, 0),
        ):
            cells = measure(qqp, qqp_veto, xq, dev, dev_veto, xd, cluster, weight, folds)
            print(f"{label:22s} {how:30s} " + "  ".join(cells), flush=True)


def where_paraphrases_sit(
    qqp: cal_mod.Lookups, qqp_veto: np.ndarray, align_q: np.ndarray, dev: cal_mod.Lookups, align_d: np.ndarray
) -> None:
    """Where each paraphrase sits against its own question, and how often QQP's picks there are right."""
    own_cos = dev.cosines[dev.right]
    own_unaligned = align_d[..., 2][dev.right]
    lo, mid, hi = np.quantile(own_cos, [0.25, 0.5, 0.75])
    print(
        f"dev paraphrase vs its own question: cosine quartiles {lo:.2f} / {mid:.2f} / {hi:.2f}; unaligned share "
        "quartiles " + " / ".join(f"{v:.2f}" for v in np.quantile(own_unaligned, [0.25, 0.5, 0.75]))
    )
    m = np.where(qqp_veto, -np.inf, qqp.cosines).argmax(axis=1)
    rows = np.arange(len(m))
    cos, ok, unaligned = qqp.cosines[rows, m], qqp.right[rows, m], align_q[rows, m, 2]
    for name, sel in (
        (f"cosine in [{lo:.2f}, {hi:.2f}]", (cos >= lo) & (cos <= hi)),
        (f"cosine in [{lo:.2f}, {hi:.2f}], every content word aligned", (cos >= lo) & (cos <= hi) & (unaligned == 0)),
        ("cosine >= 0.95, every content word aligned", (cos >= 0.95) & (unaligned == 0)),
    ):
        print(
            f"QQP calibration half, best pick by cosine with {name}: "
            f"{int(sel.sum())} picks, {100 * ok[sel].mean():.0f}% right"
        )


def _texts(c: dict[str, Any]) -> list[str]:
    return [q for q, _ in c["qs"]] + [p for _q, ps in c["qs"] for p in ps] + list(c["ns"])


def measure(
    qqp: cal_mod.Lookups,
    qqp_veto: np.ndarray,
    xq: np.ndarray,
    dev: cal_mod.Lookups,
    dev_veto: np.ndarray,
    xd: np.ndarray,
    cluster: np.ndarray,
    weight: float,
    folds: int,
) -> list[str]:
    """Answered / wrong on the dev paraphrases and the cross-fitted QQP dup-hit rate, per δ."""
    n = len(qqp.queries)
    y = qqp.right.astype(np.float64)
    order = np.random.default_rng(0).permutation(n)
    halves_ = (np.sort(order[: n // 2]), np.sort(order[n // 2 :]))
    answered = dict.fromkeys(RATES, 0)
    wrong = dict.fromkeys(RATES, 0)
    dup_hit = {d: [] for d in RATES}
    for f in range(max(folds, 1)):
        train_dev = (cluster % folds != f) if folds > 1 else np.full(len(cluster), weight > 0)
        test_dev = (cluster % folds == f) if folds > 1 else np.ones(len(cluster), dtype=bool)
        keep_d = ~dev_veto[train_dev]
        xd_train, yd_train = xd[train_dev][keep_d], dev.right[train_dev][keep_d].astype(np.float64)

        def fit_on(rows: np.ndarray, xd_train: np.ndarray = xd_train, yd_train: np.ndarray = yd_train) -> np.ndarray:
            keep = ~qqp_veto[rows]
            x = np.concatenate([xq[rows][keep], xd_train])
            w = np.concatenate([np.ones(int(keep.sum())), np.full(len(yd_train), weight)])
            return fit(x, np.concatenate([y[rows][keep], yd_train]), w)

        best, ok = np.empty(n), np.empty(n, dtype=bool)
        for train, held in ((halves_[0], halves_[1]), (halves_[1], halves_[0])):
            w = fit_on(train)
            best[held], ok[held] = cal_mod._picks(np.where(qqp_veto[held], -np.inf, xq[held] @ w), qqp.right[held])
        w_all = fit_on(np.arange(n))
        cal = cal_mod.Calibration(
            embedder="",
            scorer=cal_mod.Scorer(tuple(w_all)),
            n_lookups=n,
            n_duplicates=int(qqp.duplicate.sum()),
            n_entries=len(qqp.entries),
            right_scores=tuple(best[ok]),
            wrong_scores=tuple(best[~ok]),
        )
        scores = np.where(dev_veto[test_dev], -np.inf, xd[test_dev] @ w_all)
        pick, pick_ok = cal_mod._picks(scores, dev.right[test_dev])
        for d in RATES:
            t = cal.threshold(d)
            answered[d] += int(((pick >= t) & pick_ok).sum())
            wrong[d] += int(((pick >= t) & ~pick_ok).sum())
            dup_hit[d].append(sum(s >= t for s in cal.right_scores) / cal.n_duplicates)
    n_para, n_dev = int(dev.duplicate.sum()), len(dev.queries)
    return [
        f"{100 * answered[d] / n_para:5.1f}% / {100 * wrong[d] / n_dev:3.1f}%, {100 * float(np.mean(dup_hit[d])):4.1f}%"
        for d in RATES
    ]


if __name__ == "__main__":
    main()
