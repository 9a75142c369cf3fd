"""SASRec (Kang & McAuley, ICDM 2018) on the shared transformer core, trained with cross-entropy.

Causal self-attention over a user's item history; the hidden state at position t scores the
item at t+1 by a dot product with the (input-tied) item embeddings. Following Klenitskiy &
Vasilev (RecSys 2023, "SASRec+"), the loss is softmax cross-entropy over the whole catalogue
instead of the original binary loss with one negative, which is what lifts SASRec above BERT4Rec.
For large catalogues ``loss="sampled"`` replaces the full softmax by a softmax over the positive
and ``n_negatives`` distinct uniform negatives shared by the batch (accidental hits masked out);
with uniform sampling the logQ correction is a constant and drops out. Only real (non-padding)
positions are encoded and scored.

Sequences are right-padded with item 0, so with causal attention no real position ever attends
to padding and the fast ``is_causal`` attention kernel applies. An optional category side feature
is added to every item embedding (input and output alike). Shapes: B batch, T positions,
C = d_model, N items (+1 for padding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from guimo.models.transformer import Transformer, TransformerConfig


@dataclass
class SASRecConfig:
    n_items: int = field(default=0, metadata={"help": "catalogue size without padding (derived from the data)"})
    n_categories: int = field(default=0, metadata={"help": "category vocabulary for the side feature; 0 disables (derived)"})
    max_len: int = field(default=50, metadata={"help": "most recent items the model reads"})
    n_blocks: int = field(default=2, metadata={"help": "self-attention blocks (the core's n_layer)"})
    n_heads: int = field(default=1, metadata={"help": "attention heads (the core's n_head)"})
    d_model: int = field(default=64, metadata={"help": "item embedding and hidden width"})
    d_ff: int | None = field(default=None, metadata={"help": "feed-forward width; None means 4 * d_model"})
    dropout: float = field(default=0.3, metadata={"help": "dropout on embeddings, residuals and attention"})
    activation: Literal["gelu", "gelu_tanh", "relu"] = field(default="gelu", metadata={"help": "feed-forward nonlinearity"})
    loss: Literal["ce", "sampled"] = field(default="ce", metadata={"help": "ce: softmax over all items; sampled: over n_negatives uniform negatives"})
    n_negatives: int = field(default=3000, metadata={"help": "negatives per batch for loss=sampled"})
    in_batch_negatives: bool = field(default=False, metadata={"help": "loss=sampled: the batch's targets are negatives too (popular items, logQ-corrected); needs item frequencies"})
    input_scale: bool = field(default=False, metadata={"help": "multiply item embeddings by sqrt(d_model) where they enter the encoder (not where they score), as the original SASRec does"})
    emb_lr_scale: float = field(default=1.0, metadata={"help": "item/category tables are stored divided by this and scaled back on use: under Adam, an lr this many times higher for them"})
    use_categories: bool = field(default=True, metadata={"help": "add category embeddings to item embeddings when the data has categories"})
    item_categories: list[int] = field(default_factory=list, metadata={"help": "category id of each item id, index 0 = padding (derived)"})
    score_precision: Literal["fp32", "bf16"] = field(default="fp32", metadata={"help": "the catalogue scoring (evaluation and serving): bf16 made a batch of 64 top-10s over Beauty's 54k items 1.2-1.8x faster on an avx512_bf16 CPU, changed 1.3% of the top-10 items and test NDCG@10 0.0337 -> 0.0336 (bench/recommend_scoring.py)"})

    def transformer_config(self) -> TransformerConfig:
        return TransformerConfig(
            vocab_size=self.n_items + 1, max_len=self.max_len, n_layer=self.n_blocks, n_head=self.n_heads,
            d_model=self.d_model, d_ff=self.d_ff, dropout=self.dropout, causal=True, activation=self.activation,
            lm_head=False, tie_weights=False,
        )


# Presets for `--set model=NAME`: plain data.
PRESETS: dict[str, dict] = {
    "small": dict(max_len=50, n_blocks=2, n_heads=1, d_model=64),
    "medium": dict(max_len=100, n_blocks=2, n_heads=2, d_model=128),
    "large": dict(max_len=200, n_blocks=3, n_heads=4, d_model=256),
}


class SASRec(nn.Module):
    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self._scoring_cache: tuple | None = None  # (weights' storage and versions, bf16 table): see scoring_table
        self.core = Transformer(cfg.transformer_config())
        self.cat_emb = nn.Embedding(cfg.n_categories + 1, cfg.d_model) if cfg.use_categories and cfg.n_categories else None
        if self.cat_emb is not None:
            nn.init.normal_(self.cat_emb.weight, std=0.02)
        if cfg.emb_lr_scale != 1.0:  # same initial vectors, stored smaller: Adam's steps move them faster
            with torch.no_grad():
                for table in (self.core.tok_emb, self.cat_emb):
                    if table is not None:
                        table.weight.div_(cfg.emb_lr_scale)
        # category of each item id (0 for padding / unknown): data, not a weight, so not persistent
        cats = torch.zeros(cfg.n_items + 1, dtype=torch.long)
        if self.cat_emb is not None:
            if len(cfg.item_categories) != cfg.n_items + 1:
                raise ValueError(f"item_categories has {len(cfg.item_categories)} entries; expected n_items + 1 = {cfg.n_items + 1}")
            cats = torch.tensor(cfg.item_categories, dtype=torch.long)
        self.register_buffer("item_cat", cats, persistent=False)

    @property
    def n_items(self) -> int:
        return self.cfg.n_items

    def item_vectors(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of item ``ids`` (any shape, -> shape + (C,)), or of all N + 1 ids."""
        w = self.core.tok_emb.weight if ids is None else self.core.tok_emb(ids)
        if self.cat_emb is not None:
            w = w + self.cat_emb(self.item_cat if ids is None else self.item_cat[ids])
        return w * self.cfg.emb_lr_scale if self.cfg.emb_lr_scale != 1.0 else w

    def scoring_table(self) -> torch.Tensor:
        """Every item's vector (N + 1, C) as the catalogue scoring uses it: in ``cfg.score_precision``.

        The bf16 copy is kept while the weights stay as they are (evaluation, serving): a batch of one would
        otherwise pay its conversion (~0.9 ms over 54k items) on every call. Switching to train mode drops
        it, and a weight replaced or updated in place (load_state_dict, an optimizer step) is seen by its
        storage and version counter.
        """
        if self.cfg.score_precision == "fp32":
            return self.item_vectors()
        tables = [self.core.tok_emb.weight] + ([self.cat_emb.weight] if self.cat_emb is not None else [])
        key = tuple((t.data_ptr(), t._version) for t in tables)
        if self._scoring_cache is None or self._scoring_cache[0] != key:
            with torch.no_grad():
                self._scoring_cache = (key, self.item_vectors().to(torch.bfloat16))
        return self._scoring_cache[1]

    def train(self, mode: bool = True) -> "SASRec":
        self._scoring_cache = None
        return super().train(mode)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, T, C) for right-padded item ids ``seq`` (B, T)."""
        return self.core.encode(seq, inputs_embeds=self._input(self.item_vectors(seq)))

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """Item vectors as the encoder reads them: scaled by sqrt(C) with ``input_scale``, so the
        item identity outweighs the position embedding from the first step (Kang & McAuley)."""
        return x * self.cfg.d_model**0.5 if self.cfg.input_scale else x

    def forward(self, seq: torch.Tensor, target: torch.Tensor | None = None, item_freq: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states (B, T, C); with ``target`` the training loss instead (so DDP sees it)."""
        return self.encode(seq) if target is None else self.loss(seq, target, item_freq)

    def negatives(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """``min(n_negatives, N)`` distinct uniform item ids, sorted (K,), shared by the batch."""
        k = min(self.cfg.n_negatives, self.n_items)
        return torch.randperm(self.n_items, device=device)[:k].sort().values + 1

    def loss(self, seq: torch.Tensor, target: torch.Tensor, item_freq: torch.Tensor | None = None) -> torch.Tensor:
        """Mean next-item cross-entropy over real positions; ``target`` (B, T) has 0 at padding.

        ``item_freq`` (N + 1,): each item's share of the training targets, needed by
        ``in_batch_negatives`` to correct each candidate's logit by the log of its probability
        of being in the step's candidate set (uniform draw or some row's target).

        Only the M real (non-padding) positions are encoded and scored: rows are encoded in
        length groups (`_hidden_at`) and the output projection sees the gathered (M, C) states.
        """
        sampled = self.cfg.loss == "sampled"
        neg = self.negatives(seq.device) if sampled else seq.new_zeros(0)  # (K,)
        real = target > 0
        y = target[real]  # (M,) targets in row-major order
        log_q = None
        if sampled and self.cfg.in_batch_negatives:
            if item_freq is None:
                raise ValueError("in_batch_negatives needs item_freq (each item's share of the training targets)")
            k = len(neg)
            neg = torch.unique(torch.cat([neg, y]))  # sorted, distinct
            # P(item in the candidate set) = 1 - P(not drawn uniformly) * P(no row's target)
            miss = (1.0 - k / self.n_items) * torch.exp(len(y) * torch.log1p(-item_freq.clamp_max(1 - 1e-6)))
            log_q = torch.log1p(-miss)  # (N + 1,)
        # One lookup for inputs, targets and negatives: the big item table gets a single dense
        # gradient per step instead of one per use (that alone was ~1/3 of a Beauty step).
        vecs = self.item_vectors(torch.cat([seq.flatten(), y, neg]))
        x, v_y, v_neg = vecs.split([seq.numel(), len(y), len(neg)])
        h = self._hidden_at(seq, real, self._input(x).view(*seq.shape, -1))  # (M, C), same order as y
        if not sampled:
            logits = (h @ self.item_vectors().T).float()  # (M, N + 1)
            logits[:, 0] = float("-inf")
            return F.cross_entropy(logits, y)
        if log_q is None:
            return sampled_softmax_loss(h, y, v_y, v_neg, neg)
        return sampled_softmax_loss(h, y, v_y, v_neg, neg, log_q[y], log_q[neg])

    def _hidden_at(self, seq: torch.Tensor, real: torch.Tensor, x: torch.Tensor, slack: float = 1.25) -> torch.Tensor:
        """Hidden states (M, C) at the ``real`` (B, T) positions, row-major, from embeddings ``x`` (B, T, C).

        Rows are sorted by length and encoded in groups, each trimmed to its own longest row; a
        group grows while its padded positions stay within ``slack`` x its real ones. With skewed
        lengths (Beauty: mean 6 targets, cap 50) this computes far fewer padded positions than one
        (B, T) pass in a handful of passes, and causal attention makes the result identical.
        """
        lengths = real.sum(1)  # (B,)
        order = torch.argsort(lengths, descending=True)
        out = x.new_zeros(*real.shape, x.shape[-1])  # (B, T, C)
        for i, j, t in length_groups(lengths[order].tolist(), slack):
            rows = order[i:j]
            out[rows, :t] = self.core.encode(seq[rows, :t], inputs_embeds=x[rows, :t]).to(out.dtype)
        return out[real]

    def last_state(self, seq: torch.Tensor, lengths: torch.Tensor, slack: float = 1.25) -> torch.Tensor:
        """The hidden state (B, C) after each right-padded history's last real item (zeros for length 0).

        Rows are encoded in length groups, each trimmed to its longest row, as in training (``_hidden_at``):
        a batch's longest history no longer sets every row's width. Causal attention makes a row's states
        independent of the padding after it, so this equals ``encode(seq)`` at each row's last position
        (Beauty's test histories, mean ~9 items under a cap of 50: 6,201 -> 21,726 rows/s at batch 64, one thread).
        """
        order = torch.argsort(lengths, descending=True, stable=True)
        out = None
        for i, j, t in length_groups(lengths[order].tolist(), slack):
            rows = order[i:j]
            h = self.encode(seq[rows, :t])  # (rows, t, C)
            if out is None:
                out = h.new_zeros(len(seq), h.shape[-1])
            out[rows] = h[torch.arange(j - i, device=seq.device), lengths[rows] - 1]
        return out if out is not None else self.core.tok_emb.weight.new_zeros(len(seq), self.cfg.d_model)

    @torch.no_grad()
    def score_next(self, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores (B, N + 1) of every item as the next one after each right-padded history.

        ``lengths`` (B,) counts the real items of each row (>= 1); padding id 0 scores -inf.
        """
        last = self.last_state(seq, lengths)  # (B, C)
        table = self.scoring_table()
        scores = (last.to(table.dtype) @ table.T).float()
        scores[:, 0] = float("-inf")
        return scores


def length_groups(lengths: list[int], slack: float = 1.25) -> list[tuple[int, int, int]]:
    """Split rows sorted by descending ``lengths`` into ``(start, end, width)`` groups.

    A group starts at its longest row and takes the next rows while rows x width stays within
    ``slack`` x the group's real positions; rows of length 0 are left out.
    """
    groups, i = [], 0
    while i < len(lengths) and lengths[i] > 0:
        t, j, filled = lengths[i], i + 1, lengths[i]
        while j < len(lengths) and lengths[j] > 0 and (j + 1 - i) * t <= slack * (filled + lengths[j]):
            filled += lengths[j]
            j += 1
        groups.append((i, j, t))
        i = j
    return groups


def sampled_softmax_loss(
    h: torch.Tensor, y: torch.Tensor, v_y: torch.Tensor, v_neg: torch.Tensor, neg: torch.Tensor,
    log_q_y: torch.Tensor | None = None, log_q_neg: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of each positive against shared negatives, accidental hits excluded.

    ``h`` (M, C) hidden states, ``y`` (M,) target ids with vectors ``v_y`` (M, C), ``neg`` (K,)
    sorted distinct negative ids with vectors ``v_neg`` (K, C). Equals ``F.cross_entropy`` over
    ``[pos, negatives]`` with the column of a negative equal to the target set to -inf; the hit
    is found by binary search (one per row at most, the ids being distinct) instead of an (M, K)
    comparison, and the log-sum-exp avoids materialising the concatenated logits. With a
    non-uniform candidate set, ``log_q_y`` (M,) and ``log_q_neg`` (K,) are the log inclusion
    probabilities subtracted from the logits (the logQ correction of sampled softmax).
    """
    pos = (h * v_y).sum(-1).float()  # (M,)
    logits = (h @ v_neg.T).float()  # (M, K)
    if log_q_y is not None and log_q_neg is not None:
        pos = pos - log_q_y
        logits = logits - log_q_neg
    col = torch.searchsorted(neg, y).clamp_max(len(neg) - 1)  # (M,)
    rows = (neg[col] == y).nonzero().squeeze(1)
    logits.index_put_((rows, col[rows]), logits.new_tensor(float("-inf")))  # in place: no (M, K) copy
    lse = torch.logaddexp(torch.logsumexp(logits, dim=1), pos)  # (M,)
    return (lse - pos).mean()


def pad_right(histories: list, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The last ``max_len`` items of each history, right-padded with 0: (B, T) ids and (B,) lengths."""
    lengths = np.fromiter((min(len(h), max_len) for h in histories), np.int64, len(histories))
    seq = np.zeros((len(histories), max(1, int(lengths.max())) if len(histories) else 1), np.int64)
    for i, h in enumerate(histories):  # numpy slices: a serving batch of 64 rows in ~0.1 ms, not torch's ~0.5 ms
        n = int(lengths[i])
        if n:
            seq[i, :n] = h[-n:]
    return torch.from_numpy(seq), torch.from_numpy(lengths)
