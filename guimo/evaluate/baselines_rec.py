"""Non-neural next-item baselines, fitted on the training sequences and ranked by the same code.

- ``popularity``: score = training interaction count of the item.
- ``item_knn`` ("bought together"): cosine co-occurrence ``S_ij = c_ij / sqrt(n_i n_j)`` where
  ``c_ij`` counts training users who have both items and ``n_i`` users who have item i; a user's
  score for j is the sum of ``S_ij`` over the items i of the history (Sarwar et al. 2001).
- ``markov``: first-order Markov chain, score = P(next = j | last item) from counts of consecutive
  training pairs (Rendle et al. 2010's FPMC without the factorisation).

Ties (items a baseline cannot tell apart, e.g. no co-occurrence at all) are broken by popularity
with a 1e-6 weight, so every baseline degrades to popularity rather than to item-id order.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

DENSE_MAX_ITEMS = 8000  # below this the item-item matrix is kept dense (<= 256 MB float32)


def _counts(train: list[np.ndarray], n_items: int) -> np.ndarray:
    flat = np.concatenate(train) if train else np.zeros(0, dtype=np.int64)
    return np.bincount(flat, minlength=n_items + 1).astype(np.float32)


class Popularity:
    def __init__(self, train: list[np.ndarray], n_items: int) -> None:
        self.counts = torch.as_tensor(_counts(train, n_items))

    def __call__(self, histories: list[np.ndarray]) -> torch.Tensor:
        return self.counts[None, :].expand(len(histories), -1).clone()


def _tiebreak(counts: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(1e-6 * counts / max(1.0, counts.max()))


def _binary_rows(rows: list[np.ndarray], n_cols: int) -> sp.csr_matrix:
    """One row per history with a 1 for each distinct item."""
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    indices = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, dtype=np.int64)
    m = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), n_cols))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


class ItemKNN:
    def __init__(self, train: list[np.ndarray], n_items: int) -> None:
        x = _binary_rows([t for t in train if len(t)], n_items + 1)  # (U, N + 1)
        co = (x.T @ x).tocsr()  # (N + 1, N + 1) co-occurrence counts
        n = np.asarray(co.diagonal()).astype(np.float32)
        inv = 1.0 / np.sqrt(np.maximum(n, 1.0))
        sim = sp.diags(inv) @ co @ sp.diags(inv)
        sim.setdiag(0.0)
        sim = sim.tocsr().astype(np.float32)
        sim.eliminate_zeros()
        self.sim = sim.toarray() if n_items <= DENSE_MAX_ITEMS else sim
        self.n_items = n_items
        self.tie = _tiebreak(_counts(train, n_items))

    def __call__(self, histories: list[np.ndarray]) -> torch.Tensor:
        h = _binary_rows(list(histories), self.n_items + 1)  # (B, N + 1)
        s = h @ self.sim
        s = s.toarray() if sp.issparse(s) else np.asarray(s)
        return torch.as_tensor(s, dtype=torch.float32) + self.tie


class MarkovChain:
    def __init__(self, train: list[np.ndarray], n_items: int) -> None:
        src = np.concatenate([t[:-1] for t in train if len(t) > 1] or [np.zeros(0, dtype=np.int64)])
        dst = np.concatenate([t[1:] for t in train if len(t) > 1] or [np.zeros(0, dtype=np.int64)])
        t = sp.csr_matrix((np.ones(len(src), dtype=np.float32), (src, dst)), shape=(n_items + 1, n_items + 1))
        t.sum_duplicates()
        rows = np.asarray(t.sum(1)).ravel()
        self.trans = (sp.diags(1.0 / np.maximum(rows, 1.0)) @ t).tocsr().astype(np.float32)
        self.tie = _tiebreak(_counts(train, n_items))

    def __call__(self, histories: list[np.ndarray]) -> torch.Tensor:
        last = np.array([h[-1] if len(h) else 0 for h in histories], dtype=np.int64)
        return torch.as_tensor(self.trans[last].toarray(), dtype=torch.float32) + self.tie


BASELINES = {"popularity": Popularity, "item_knn": ItemKNN, "markov": MarkovChain}


def fit_baselines(train: list[np.ndarray], n_items: int, names: list[str] | None = None) -> dict:
    """name -> fitted baseline (a callable ``histories -> (B, N + 1) scores``)."""
    return {name: BASELINES[name](train, n_items) for name in (names or list(BASELINES))}
