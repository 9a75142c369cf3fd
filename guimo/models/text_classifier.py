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
    layer_lr_decay: float = field(default=1.0, metadata={
        "help": "layer-wise lr decay (Clark et al. 2020, ELECTRA): the top block at encoder_lr_mult, each block below it at this "
                "times the one above, the embeddings below the first block; 1.0: every encoder parameter at encoder_lr_mult"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.layer_lr_decay <= 1:
            raise ValueError("layer_lr_decay must be in (0, 1]")
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
        """The encoder at ``encoder_lr_mult``, times ``layer_lr_decay`` per block below the top one (the embeddings one
        step below the first block): the lower layers hold the general features pretraining found and move least; the
        head keeps the schedule's lr."""
        cfg, out = self.cfg, []
        for name, p in self.named_parameters():
            if name.startswith("classifier."):
                continue
            depth = len(self.blocks) - int(name.split(".")[1]) - 1 if name.startswith("blocks.") else len(self.blocks)  # 0: the top block
            out.append((p, cfg.encoder_lr_mult * cfg.layer_lr_decay ** depth))
        return out

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


def fit_head(head: nn.Linear, features: np.ndarray, labels: np.ndarray, *, c: float = 10.0, max_iter: int = 200) -> float:
    """Fit ``head`` in place as a multinomial logistic regression on fixed ``features`` (N, C); returns
    its training accuracy.

    The objective is sklearn's ``LogisticRegression(C=c)`` scaled by 1/N: mean cross-entropy plus
    ``||W||^2 / (2 c N)`` (the bias unpenalised), minimised by full-batch L-BFGS in float64 on the CPU,
    so the same features always give the same head.
    """
    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    n_classes = head.out_features
    if len(x) == 0:
        raise GuimoError("cannot fit the head: no labelled training rows")
    if int(y.max()) >= n_classes or int(y.min()) < 0:
        raise GuimoError(f"labels must be in [0, {n_classes}); got {int(y.min())}..{int(y.max())}")
    w = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    l2 = 1.0 / (2.0 * c * len(x))
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(x @ w.T + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        head.weight.copy_(w.detach().to(head.weight.dtype))
        head.bias.copy_(b.detach().to(head.bias.dtype))
        return float(((x @ w.T + b).argmax(1) == y).double().mean())

