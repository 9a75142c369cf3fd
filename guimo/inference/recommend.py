"""Top-K next items for histories of original item ids: what `guimo recommend` and the server call.

``top_k`` is the pure function (internal ids in, internal ids out, no I/O); ``RecPredictor``
wraps it with the run's item vocabulary, the known users' histories and popularity for an
empty history (a brand-new visitor), so callers only ever see the dataset's ids.

Item ids that the model never saw cannot be scored. They are left out of the history, but never
silently: every result names them under ``unknown_items``, ``unknown_message`` says what known ids
look like, and the callers (``guimo recommend``, ``/v1/recommendations``) refuse a history none of
whose items is known unless asked to fall back to popularity (a typo such as ``12`` for ``i00012``
would otherwise quietly return the most popular items).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from guimo.errors import GuimoError


def top_k(model, histories: list[np.ndarray], k: int, exclude_seen: bool = True, chunk: int = 1024,
          fallback: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Internal item ids (B, k) and scores (B, k), best first, for histories of internal ids.

    An empty history is scored by ``fallback`` (N + 1,) (e.g. popularity) when given. Padding and,
    with ``exclude_seen``, history items never appear; rows with fewer than k candidates end
    with score -inf (callers drop those).
    """
    from guimo.evaluate.ranking import mask_seen
    from guimo.models.sasrec import pad_right

    n = model.cfg.n_items
    k = max(1, min(k, n))
    device = next(model.parameters()).device
    ids_out, scores_out = [], []
    for start in range(0, len(histories), chunk):
        hs = histories[start : start + chunk]
        known = [i for i, h in enumerate(hs) if len(h)]
        if known:
            seq, lengths = pad_right([hs[i] for i in known], model.cfg.max_len)
            with torch.no_grad():
                scored = model.score_next(seq.to(device), lengths.to(device)).float().cpu()
        if len(known) == len(hs):  # the usual case: no (B, N + 1) table to fill and copy
            scores = scored
        else:
            scores = torch.full((len(hs), n + 1), float("-inf"))
            if known:
                scores[known] = scored
        if fallback is not None and len(known) < len(hs):
            empty = [i for i, h in enumerate(hs) if not len(h)]
            scores[empty] = fallback.float()[None, :]
        if exclude_seen:
            mask_seen(scores, hs)
        scores[:, 0] = float("-inf")
        top = scores.topk(k, dim=1)
        ids_out.append(top.indices)
        scores_out.append(top.values)
    if not ids_out:
        return torch.zeros(0, k, dtype=torch.long), torch.zeros(0, k)
    return torch.cat(ids_out), torch.cat(scores_out)


class RecPredictor:
    """Recommendations in the dataset's own item ids over one finished run."""

    def __init__(self, model, item_ids: list[str], user_ids: list[str], sequences, popularity: np.ndarray, name: str = "recommend") -> None:
        self.model, self.item_ids, self.name = model, item_ids, name
        self.index = {item: i + 1 for i, item in enumerate(item_ids)}
        self._user_ids, self._seqs = user_ids, sequences
        self._user_index: dict[str, int] | None = None
        self.popularity = torch.as_tensor(np.log1p(popularity.astype(np.float32)))

    @classmethod
    def from_run(cls, run, device: str = "cpu") -> "RecPredictor":
        from guimo.data.recdata import Prepared
        from guimo.models.load import load_run_model
        from guimo.models.sasrec import SASRec, SASRecConfig

        prep = Prepared.load(run.data_dir)
        counts = np.bincount(np.concatenate(prep.train_sequences()), minlength=prep.n_items + 1)
        model = load_run_model(run, SASRecConfig, SASRec, device=device)
        return cls(model, prep.seqs.item_ids, prep.seqs.user_ids, prep.seqs, counts, name=run.path.name)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def encode(self, history: list) -> np.ndarray:
        """Internal ids of a history's known items (unknown ones are skipped: see ``unknown``), oldest first."""
        return np.array([self.index[str(i)] for i in history if str(i) in self.index], dtype=np.int64)

    def unknown(self, history: list) -> list[str]:
        """The ids of ``history`` that are not in the catalogue, in order (each once)."""
        return list(dict.fromkeys(str(i) for i in history if str(i) not in self.index))

    def id_examples(self, n: int = 3) -> list[str]:
        """The ``n`` smallest catalogue ids (a stable, readable sample), to show what a known item id looks like."""
        import heapq

        return heapq.nsmallest(n, self.item_ids)

    def unknown_message(self, unknown: list[str], total: int) -> str:
        """'2 of 3 items are not in the catalogue of RUN: 12, 7 (known item ids look like i00001, ...)'."""
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        return (f"{len(unknown)} of {total} items are not in the catalogue of {self.name} ({self.n_items} items): {shown} "
                f"(known item ids look like {', '.join(self.id_examples())})")

    def _users(self) -> dict[str, int]:
        if self._user_index is None:  # built on first use: 40k+ users cost ~10 ms
            self._user_index = {u: j for j, u in enumerate(self._user_ids)}
        return self._user_index

    def knows_user(self, uid: str) -> bool:
        return str(uid) in self._users()

    def users(self, ids: list[str]) -> list[list[str]]:
        """Full known histories (original item ids, oldest first) of known users; unknown -> GuimoError."""
        out = []
        for uid in ids:
            j = self._users().get(str(uid))
            if j is None:
                raise GuimoError(f"unknown user '{uid}' (pass their history instead)")
            out.append([self.item_ids[i - 1] for i in self._seqs.seq(j)])
        return out

    def recommend(self, histories: list[list[str]], k: int = 10, exclude_seen: bool = True) -> list[dict[str, Any]]:
        """One ``{"items", "scores", "unknown_items"}`` per history: the top items best first and the
        history's ids that are not in the catalogue (left out of the scoring), all in original ids.

        A history with no known item is scored like an empty one, by popularity; callers that must
        not answer a typo with the popular items check ``unknown`` first (the CLI and server do).
        """
        if k < 1:
            raise GuimoError("k must be at least 1")
        ids, scores = top_k(self.model, [self.encode(h) for h in histories], k, exclude_seen, fallback=self.popularity)
        out = []
        for history, row_ids, row_scores in zip(histories, ids.tolist(), scores.tolist()):
            keep = [(i, s) for i, s in zip(row_ids, row_scores) if s != float("-inf")]
            out.append({"items": [self.item_ids[i - 1] for i, _ in keep], "scores": [round(s, 6) for _, s in keep],
                        "unknown_items": self.unknown(history)})
        return out
