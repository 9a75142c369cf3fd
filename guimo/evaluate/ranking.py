"""Next-item ranking metrics, full-catalogue and sampled, vectorised over users and chunked.

Each evaluation case has one held-out target item. With 0-based rank ``r`` of the target among
the candidates (scores higher first; ties broken towards the lower item id, like ``torch.topk``):

- ``HR@K``     = 1[r < K]                      (hit rate)
- ``Recall@K`` = |{target} ∩ top-K| / |{target}| = HR@K with a single target
- ``NDCG@K``   = 1[r < K] / log2(r + 2)        (ideal DCG is 1 with a single relevant item)
- ``MRR``      = 1 / (r + 1)                   (over the full list, no cut-off)
- ``coverage@K`` = |∪ top-K lists| / N         (share of the catalogue ever recommended)

All are averaged over cases. **Full ranking** ranks the target against every item; with
``filter_seen`` the items of the case's history score -inf first (a target that is itself in the
history then counts as a miss; we never peek at the target to rescue it). **Sampled-100** ranks the
target against 100 uniform negatives drawn without the history and the target: the protocol of
older papers, reported separately because it inflates every number.

``score_fn(histories) -> (B, N + 1)`` scores a chunk of histories; column 0 is the padding id.
Chunks of ``chunk`` cases keep memory at ``chunk * (N + 1)`` floats whatever the number of users.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

ScoreFn = Callable[[list[np.ndarray]], torch.Tensor]


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank (B,) of ``targets`` (B,) in ``scores`` (B, N): higher first, ties to lower ids."""
    t = scores.gather(1, targets[:, None])  # (B, 1)
    ids = torch.arange(scores.shape[1], device=scores.device)[None, :]
    better = (scores > t) | ((scores == t) & (ids < targets[:, None]))
    return better.sum(1)


def metrics_from_ranks(ranks: torch.Tensor, ks: Sequence[int]) -> dict[str, float]:
    """HR@K, Recall@K, NDCG@K for each K and MRR from 0-based ranks, averaged."""
    r = ranks.double()
    out = {}
    for k in ks:
        hit = (r < k).double()
        out[f"hr@{k}"] = hit.mean().item()
        out[f"recall@{k}"] = out[f"hr@{k}"]
        out[f"ndcg@{k}"] = (hit / torch.log2(r + 2)).mean().item()
    out["mrr"] = (1.0 / (r + 1)).mean().item()
    return out


def mask_seen(scores: torch.Tensor, histories: list[np.ndarray]) -> None:
    """Set the score of every history item (and of padding id 0) to -inf, in place."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) if len(rows) else np.zeros(0, dtype=np.int64)
    scores[torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)] = float("-inf")
    scores[:, 0] = float("-inf")


def sample_negatives(histories: list[np.ndarray], targets: np.ndarray, n_items: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """(B, n) uniform item ids in 1..N, none in the case's history or equal to its target.

    Draws with replacement across the n slots, redrawing only forbidden ones (vectorised).
    """
    B = len(histories)
    forbidden = torch.zeros(B, n_items + 1, dtype=torch.bool)
    mask_rows = np.repeat(np.arange(B), [len(h) for h in histories])
    if len(mask_rows):
        forbidden[torch.as_tensor(mask_rows), torch.as_tensor(np.concatenate(histories), dtype=torch.long)] = True
    forbidden[torch.arange(B), torch.as_tensor(targets, dtype=torch.long)] = True
    forbidden[:, 0] = True
    if bool(forbidden.all(1).any()):
        raise ValueError("a history covers the whole catalogue; cannot sample negatives")
    neg = torch.randint(1, n_items + 1, (B, n), generator=gen)
    bad = forbidden.gather(1, neg)
    while bad.any():
        neg[bad] = torch.randint(1, n_items + 1, (int(bad.sum()),), generator=gen)
        bad = forbidden.gather(1, neg)
    return neg


def evaluate_ranking(
    score_fn: ScoreFn,
    histories: list[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    *,
    ks: Sequence[int] = (10, 20),
    filter_seen: bool = True,
    sampled: int = 100,
    chunk: int = 512,
    seed: int = 0,
    keep_ranks: bool = False,
) -> dict:
    """``{"full": {...}, "sampled": {...}}`` metrics of ``score_fn`` on the cases ``(histories[i], targets[i])``.

    ``sampled=0`` skips the sampled protocol. The negatives depend only on ``seed``, ``chunk`` and the
    cases, so every model and baseline is ranked against the same negatives. ``keep_ranks`` adds
    ``"ranks"``: the (cases,) int64 array of full-ranking 0-based ranks in case order, from which
    `guimo.evaluate.breakdown` averages any subset of the cases without scoring them again.
    """
    gen = torch.Generator().manual_seed(seed)
    full_ranks, samp_ranks = [], []
    covered = {k: torch.zeros(n_items + 1, dtype=torch.bool) for k in ks}
    kmax = max(ks)
    for start in range(0, len(histories), chunk):
        hs = histories[start : start + chunk]
        tg = torch.as_tensor(targets[start : start + chunk], dtype=torch.long)
        scores = score_fn(hs).float().cpu()  # (B, N + 1)
        if filter_seen:
            mask_seen(scores, hs)
        else:
            scores[:, 0] = float("-inf")
        full_ranks.append(target_ranks(scores, tg))
        top = scores.topk(min(kmax, n_items), dim=1).indices  # (B, kmax), best first
        for k in ks:
            covered[k][top[:, :k].flatten()] = True
        if sampled:
            neg = sample_negatives(hs, tg.numpy(), n_items, sampled, gen)
            cand = torch.cat([tg[:, None], neg], dim=1)  # (B, 1 + n): target first
            cand_scores = scores.gather(1, cand)
            # rank among the candidates; ties broken towards lower item ids as in full ranking
            t = cand_scores[:, :1]
            better = (cand_scores[:, 1:] > t) | ((cand_scores[:, 1:] == t) & (neg < tg[:, None]))
            samp_ranks.append(better.sum(1))
    all_ranks = torch.cat(full_ranks)
    full = metrics_from_ranks(all_ranks, ks)
    for k in ks:
        covered[k][0] = False
        full[f"coverage@{k}"] = covered[k].sum().item() / n_items
    full["cases"] = len(histories)
    out: dict = {"full": full}
    if keep_ranks:
        out["ranks"] = all_ranks.numpy().astype(np.int64)
    if sampled:
        out["sampled"] = {k: v for k, v in metrics_from_ranks(torch.cat(samp_ranks), ks).items() if not k.startswith("recall")}
    return out


def ndcg_at(rank: int, k: int) -> float:
    """NDCG@k of a single case from its 0-based rank (for hand checks and docs)."""
    return 1.0 / math.log2(rank + 2) if rank < k else 0.0
