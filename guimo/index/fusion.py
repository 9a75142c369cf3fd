"""Merge the rankings of several retrievers (BM25, dense) into one: rank fusion and score fusion.

Why two methods. Reciprocal-rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009) uses only
positions, so it needs no calibration between a BM25 score (unbounded, query-dependent) and a
cosine (in [-1, 1]); k=60 is the constant of the paper, which damps the weight of the very top
ranks so that one retriever's first hit cannot outvote agreement lower down. Normalised score
fusion (min-max per ranking, then a weighted sum; Fox and Shaw's CombSUM over normalised scores)
keeps how far apart the scores are, which helps when one retriever is confidently right and the
other is flat, and lets a user weight one retriever over the other.

Both take rankings as lists of ``Hit`` (best first, as every guimo index returns them) and should
be given a deep candidate pool (e.g. 100 per retriever): a document that one retriever ranks
101st contributes nothing, so a shallow pool turns fusion back into a union of two top-10s.

Ties in the fused score are broken by the best rank the document reached in any input ranking,
then by the input ranking that reached it first, so results are deterministic and do not depend
on dict or set ordering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from guimo.errors import GuimoError
from guimo.index.sparse import Hit

RRF_K = 60  # Cormack et al. 2009


@dataclass
class _Fused:
    score: float = 0.0
    best_rank: int = 1 << 30  # 1-based best rank over the rankings that hold the document
    first_list: int = 1 << 30  # index of the first ranking in which it reached best_rank
    metadata: dict[str, Any] = field(default_factory=dict)

    def seen(self, rank: int, ranking: int, metadata: dict[str, Any]) -> None:
        if rank < self.best_rank:
            self.best_rank, self.first_list = rank, ranking
        if not self.metadata and metadata:
            self.metadata = dict(metadata)


def _unique(ranking: Sequence[Hit]) -> list[Hit]:
    """The ranking without repeated ids (the first, best-ranked occurrence counts)."""
    seen: set[str] = set()
    out = []
    for hit in ranking:
        if hit.id not in seen:
            seen.add(hit.id)
            out.append(hit)
    return out


def _top(fused: dict[str, _Fused], top: int) -> list[Hit]:
    order = sorted(fused.items(), key=lambda kv: (-kv[1].score, kv[1].best_rank, kv[1].first_list))
    return [Hit(doc_id, f.score, f.metadata) for doc_id, f in order[:top]]


def _check_top(top: int) -> None:
    if top < 1:
        raise GuimoError(f"top must be >= 1, got {top}")


def rrf(rankings: Sequence[Sequence[Hit]], k: int = RRF_K, top: int = 10) -> list[Hit]:
    """Reciprocal-rank fusion: score(d) = sum over rankings holding d of 1 / (k + rank(d)).

    ``rank`` is 1-based; a document missing from a ranking contributes nothing from it. Returns
    the ``top`` documents by fused score, best first, each with the metadata it first came with.
    """
    _check_top(top)
    if k < 0:
        raise GuimoError(f"rrf k must be >= 0, got {k}")
    fused: dict[str, _Fused] = {}
    for r, ranking in enumerate(rankings):
        for rank, hit in enumerate(_unique(ranking), start=1):
            f = fused.setdefault(hit.id, _Fused())
            f.score += 1.0 / (k + rank)
            f.seen(rank, r, hit.metadata)
    return _top(fused, top)


def normalized_fusion(rankings: Sequence[Sequence[Hit]], weights: Sequence[float] | None = None,
                      top: int = 10) -> list[Hit]:
    """Min-max score fusion: score(d) = sum_i w_i * (s_i(d) - min_i) / (max_i - min_i).

    Each ranking's scores are scaled to [0, 1] over the documents it returned (its own min and
    max), so a retriever's scale does not matter; a ranking whose scores are all equal (one hit,
    or a flat list) gives each of its documents 1.0. A document missing from a ranking gets 0
    from it. ``weights`` (one per ranking, >= 0; default all 1) say how much each retriever counts.
    """
    _check_top(top)
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise GuimoError(f"normalized fusion: {len(weights)} weights for {len(rankings)} rankings")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise GuimoError(f"normalized fusion: weights must be finite and >= 0, got {list(weights)}")
    fused: dict[str, _Fused] = {}
    for r, (ranking, w) in enumerate(zip(rankings, weights)):
        ranking = _unique(ranking)
        if not ranking:
            continue
        scores = [h.score for h in ranking]
        lo, hi = min(scores), max(scores)
        for rank, hit in enumerate(ranking, start=1):
            norm = (hit.score - lo) / (hi - lo) if hi > lo else 1.0
            f = fused.setdefault(hit.id, _Fused())
            f.score += w * norm
            f.seen(rank, r, hit.metadata)
    return _top(fused, top)


# name -> fusion of (rankings, top); what `guimo search --fusion` and Collection.search accept.
FUSIONS: dict[str, Callable[..., list[Hit]]] = {"rrf": rrf, "normalized": normalized_fusion}


def fuse(rankings: Sequence[Sequence[Hit]], method: str = "rrf", top: int = 10) -> list[Hit]:
    """Fuse ``rankings`` with the named method at its defaults (``rrf`` k=60, equal weights)."""
    if method not in FUSIONS:
        raise GuimoError(f"unknown fusion {method!r}; choose one of {', '.join(FUSIONS)}")
    return FUSIONS[method](rankings, top=top)
