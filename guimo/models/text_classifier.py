"""A text classifier: guimo's bidirectional Transformer (a pretrained BERT/MiniLM encoder) with a
linear head over the pooled hidden states, plus the tokenizing and batching both training and
serving use.

It is the Transformer itself (one level of subclassing) rather than a wrapper around it, so the
state dict keeps the encoder's names: the pipeline's init stage loads a pretrained checkpoint
(``guimo.models.pretrained``) straight into it, and only ``classifier.*`` starts random.
The encoder trains at ``encoder_lr_mult`` times the head's rate (``lr_multipliers``, which the
training loop asks every module for): a fresh head needs a large step, pretrained weights a small
one, or the first noisy head gradients undo what pretraining learned.
Shapes: B batch, T tokens, C = d_model, K classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn as nn

from guimo.errors import GuimoError
from guimo.models.transformer import Transformer, TransformerConfig


@dataclass
class TextClassifierConfig(TransformerConfig):
    # encoder defaults: a BERT-style bidirectional post-norm model without an LM head (a pretrained
    # checkpoint's config.json replaces the architecture fields at init)
    causal: bool = field(default=False, metadata={"help": "False: every token sees the whole text (BERT)"})
    norm_first: bool = field(default=False, metadata={"help": "post-norm, as BERT checkpoints are"})
    tie_weights: bool = field(default=False, metadata={"help": "no LM head to tie"})
    lm_head: bool = field(default=False, metadata={"help": "a classifier has no vocabulary head"})
    n_classes: int = field(default=2, metadata={"help": "number of labels (set from the data)"})
    pooling: Literal["mean", "cls"] = field(default="mean", metadata={"help": "mean of real tokens (what MiniLM was trained for) or the first ([CLS]) token"})
    head_dropout: float = field(default=0.1, metadata={"help": "dropout on the pooled vector before the head"})
    encoder_lr_mult: float = field(default=0.05, metadata={"help": "encoder lr = train.lr x this (the head trains at train.lr)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_classes < 2:
            raise ValueError("n_classes must be at least 2")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError("head_dropout must be in [0, 1)")
        if not self.encoder_lr_mult >= 0:
            raise ValueError("encoder_lr_mult must be non-negative (0 freezes the encoder's updates)")


class TextClassifier(Transformer):
    def __init__(self, cfg: TextClassifierConfig) -> None:
        super().__init__(cfg)
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.classifier = nn.Linear(cfg.d_model, cfg.n_classes)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def lr_multipliers(self) -> list[tuple[nn.Parameter, float]]:
        """Every encoder parameter at ``encoder_lr_mult``; the head keeps the schedule's lr."""
        head = {id(p) for p in self.classifier.parameters()}
        return [(p, self.cfg.encoder_lr_mult) for p in self.parameters() if id(p) not in head]

    def pool(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pooled hidden state (B, C) of token ids (B, T) with ``mask`` (B, T) True on real tokens."""
        h = self.encode(ids, key_mask=mask)  # (B, T, C)
        if self.cfg.pooling == "cls":
            return h[:, 0]
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Class logits (B, K)."""
        return self.classifier(self.head_drop(self.pool(ids, mask)))


# -- tokens ------------------------------------------------------------------------------------


def load_tokenizer(path: str | Path, max_len: int):
    """The ``tokenizers`` tokenizer of ``path`` (a tokenizer.json), truncating to ``max_len`` tokens."""
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise GuimoError(f"{path}: tokenizer file not found")
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()  # batches pad to their own longest row
    tok.enable_truncation(max_len)
    return tok


def pad_id(tokenizer) -> int:
    return tokenizer.token_to_id("[PAD]") or 0


def tokenize(tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
    """One int32 array of token ids per text ([CLS] ... [SEP], truncated)."""
    return [np.asarray(e.ids, dtype=np.int32) for e in tokenizer.encode_batch(list(texts))]


def pad(seqs: Sequence[np.ndarray], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, T) and mask (B, T), T the longest row."""
    T = max(1, max((len(s) for s in seqs), default=1))
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.from_numpy(np.asarray(s, dtype=np.int64))
        mask[r, : len(s)] = True
    return ids, mask


@torch.inference_mode()
def predict_logits(model: TextClassifier, seqs: Sequence[np.ndarray], pad_token: int, batch_size: int = 64,
                   with_pooled: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (N, K) float32 in input order (and pooled states (N, C) when asked), in batches of
    rows sorted by length so each batch pads little. The model is put in eval mode and back."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else torch.device("cpu")
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    logits = np.zeros((len(seqs), model.cfg.n_classes), dtype=np.float32)
    pooled = np.zeros((len(seqs), model.cfg.d_model), dtype=np.float32) if with_pooled else None
    try:
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            ids, mask = pad([seqs[i] for i in rows], pad_token)
            ids, mask = ids.to(device), mask.to(device)
            p = model.pool(ids, mask)
            logits[rows] = model.classifier(p).float().cpu().numpy()
            if pooled is not None:
                pooled[rows] = p.float().cpu().numpy()
    finally:
        model.train(was_training)
    return logits, pooled
