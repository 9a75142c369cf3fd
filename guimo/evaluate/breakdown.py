"""Metrics split into buckets, so a user sees *where* a model wins, not only whether it does.

A headline number averages over very different cases. A recommender may beat item-kNN on the
users with long histories and lose on the new ones, or only ever recommend the head of the
catalogue; a language model gains most of its edge over a bigram once it has seen some context.
Each function here turns per-case results that the evaluation already computed (ranks, per-token
log-likelihoods) into buckets, so a breakdown costs no extra model evaluation.

Every breakdown has one JSON shape (stored under ``metrics.json["breakdown"][name]`` and read by
the run report and the server)::

    {"title": ..., "axis": "history length (items)", "weight": "cases" | "bytes",
     "metrics": ["ndcg@10", "hr@10"],
     "buckets": [{"label": "3-5", "lo": 3, "hi": 5, "weight": 812,
                  "model": {"ndcg@10": ...}, "baselines": {"markov": {"ndcg@10": ...}}}, ...]}

The bucket metrics are exact sub-averages: weighting each bucket by ``weight`` gives back the
overall metric (cases for ranking metrics, bytes of text for bits per byte).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

# Popularity buckets as shares of the catalogue ranked by training interactions, most popular first.
POPULARITY_SHARES: tuple[tuple[float, float, str], ...] = (
    (0.0, 0.01, "top 1% of items"), (0.01, 0.1, "next 9%"), (0.1, 0.5, "next 40%"), (0.5, 1.0, "bottom 50%"))


def ranking_values(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """HR@K and NDCG@K of 0-based ranks (the formulas of `guimo.evaluate.ranking`), averaged."""
    r = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = r < k
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(r + 2), 0.0).mean()) if len(r) else float("nan")
        out[f"hr@{k}"] = float(hit.mean()) if len(r) else float("nan")
    return out


def quantile_edges(values: np.ndarray, buckets: int) -> list[tuple[int, int]]:
    """Up to ``buckets`` integer ranges ``(lo, hi)`` (inclusive) holding about equal numbers of values.

    Ties make some quantiles coincide (many users with exactly 3 items); those ranges merge, so a
    skewed distribution gets fewer, never empty, buckets.
    """
    v = np.asarray(values, dtype=np.int64)
    if len(v) == 0:
        return []
    cuts = np.quantile(v, np.linspace(0, 1, buckets + 1)[1:-1], method="higher")
    highs = sorted({int(c) for c in cuts if c < v.max()} | {int(v.max())})
    ranges, lo = [], int(v.min())
    for hi in highs:
        if np.any((v >= lo) & (v <= hi)):
            ranges.append((lo, hi))
        lo = hi + 1
    return ranges


def _range_label(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def ranking_breakdown(
    title: str,
    axis: str,
    key: np.ndarray,
    groups: list[tuple[str, int, int]],
    ranks: dict[str, np.ndarray],
    ks: Sequence[int],
) -> dict:
    """Bucket cases by ``key`` (one integer per case) into ``groups`` ``(label, lo, hi)`` inclusive.

    ``ranks`` maps "model" and each baseline name to its (cases,) 0-based full-ranking ranks, in
    the same case order as ``key``. Empty groups are left out.
    """
    key = np.asarray(key)
    buckets = []
    for label, lo, hi in groups:
        sel = (key >= lo) & (key <= hi)
        n = int(sel.sum())
        if n == 0:
            continue
        values = {name: ranking_values(r[sel], ks) for name, r in ranks.items()}
        buckets.append({"label": label, "lo": int(lo), "hi": int(hi), "weight": n,
                        "model": values.pop("model"), "baselines": values})
    metrics = [m for k in ks for m in (f"ndcg@{k}", f"hr@{k}")]
    return {"title": title, "axis": axis, "weight": "cases", "metrics": metrics, "buckets": buckets}


def history_length_breakdown(history_lengths: np.ndarray, ranks: dict[str, np.ndarray], ks: Sequence[int], buckets: int = 5) -> dict:
    """Ranking metrics by the number of items in the user's history (quantile buckets).

    Short histories are the cold-ish users a shop meets every day; a sequence model earns its cost
    on the long ones. Quantile buckets keep each bucket's average from resting on a few users.
    """
    groups = [(f"{_range_label(lo, hi)} items", lo, hi) for lo, hi in quantile_edges(history_lengths, buckets)]
    return ranking_breakdown("by history length", "items in the user's history", history_lengths, groups, ranks, ks)


def popularity_breakdown(targets: np.ndarray, item_counts: np.ndarray, ranks: dict[str, np.ndarray], ks: Sequence[int]) -> dict:
    """Ranking metrics by how popular the target item was in training (catalogue-share buckets).

    ``item_counts`` (N + 1,) are training interactions per item id (0 is padding). Items are ranked
    by count, most popular first (ties by lower id), and a case falls in the bucket of its target's
    rank: "top 1% of items" ... "bottom 50%" (the long tail, where popularity cannot help).
    """
    counts = np.asarray(item_counts)[1:]
    n_items = len(counts)
    order = np.lexsort((np.arange(n_items), -counts))  # most popular first, ties to lower ids
    rank_of = np.empty(n_items, dtype=np.int64)
    rank_of[order] = np.arange(n_items)
    target_rank = rank_of[np.asarray(targets, dtype=np.int64) - 1]
    groups = []
    for a, b, label in POPULARITY_SHARES:
        lo, hi = int(math.floor(a * n_items)), int(math.ceil(b * n_items)) - 1
        if groups and lo <= groups[-1][2]:
            lo = groups[-1][2] + 1  # tiny catalogues: the shares round onto the same items
        if lo <= hi:
            groups.append((label, lo, hi))
    return ranking_breakdown("by target item popularity", "popularity of the target item (share of the catalogue, by training interactions)",
                             target_rank, groups, ranks, ks)


def position_edges(block: int) -> list[tuple[int, int]]:
    """Context lengths 1..block in doubling ranges: 1, 2-3, 4-7, ..., the last one ending at ``block``.

    A last range shorter than half the one before it joins that one (block 128: ..., 64-128, not a
    bucket holding position 128 alone).
    """
    ranges, lo = [], 1
    while lo <= block:
        hi = min(block, 2 * lo - 1)
        ranges.append((lo, hi))
        lo = hi + 1
    if len(ranges) > 2 and (ranges[-1][1] - ranges[-1][0] + 1) * 2 < ranges[-2][1] - ranges[-2][0] + 1:
        ranges[-2:] = [(ranges[-2][0], block)]
    return ranges


def position_breakdown(block: int, token_bytes_at: np.ndarray, nll_at: dict[str, np.ndarray]) -> dict:
    """Bits per byte by context length within the block (how far back the model can see).

    ``token_bytes_at`` (T,) are the bytes of text predicted at each position of the block, summed
    over every evaluated block; ``nll_at`` maps "model" and each baseline to its (T,) summed NLL
    (nats) per position. Position p predicts its target from p + 1 tokens of context. Bits per byte
    of a bucket is its NLL / ln 2 / its bytes, so bytes are the weights that give back the total.
    """
    b = np.asarray(token_bytes_at, dtype=np.float64)
    buckets = []
    for lo, hi in position_edges(block):
        sel = slice(lo - 1, hi)
        nbytes = float(b[sel].sum())
        values = {name: {"bits_per_byte": float(np.asarray(nll, dtype=np.float64)[sel].sum() / math.log(2) / max(nbytes, 1.0))}
                  for name, nll in nll_at.items()}
        buckets.append({"label": f"{_range_label(lo, hi)} token{'s' if hi > 1 else ''}", "lo": lo, "hi": hi, "weight": nbytes,
                        "model": values.pop("model"), "baselines": values})
    return {"title": "by context position", "axis": "tokens of context before the predicted token", "weight": "bytes",
            "metrics": ["bits_per_byte"], "buckets": buckets}


def weighted_total(breakdown: dict, metric: str, who: str = "model") -> float:
    """The weight-averaged bucket metric: equals the overall metric (a check, and what tests assert)."""
    total = weight = 0.0
    for bucket in breakdown["buckets"]:
        value = bucket["model"][metric] if who == "model" else bucket["baselines"][who][metric]
        total += bucket["weight"] * value
        weight += bucket["weight"]
    return total / weight if weight else float("nan")
