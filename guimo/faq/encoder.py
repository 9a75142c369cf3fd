"""The FAQ answerer's encoder: guimo's Transformer (a pretrained BERT/MiniLM) and what embeds text with it.

Shared by the `faq` scenario (which fine-tunes it) and the predictor (which serves it), so that
serving never imports the scenario or the training code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from guimo.models.text_encoder import mean_pool
from guimo.models.text_classifier import load_tokenizer  # noqa: F401  (the one tokenizer loader; callers import it from here)
from guimo.models.transformer import TransformerConfig


@dataclass
class FaqModelConfig(TransformerConfig):
    # a BERT-style encoder without an LM head; a pretrained checkpoint's config replaces the architecture at init
    causal: bool = field(default=False, metadata={"help": "False: every token sees the whole text (BERT)"})
    norm_first: bool = field(default=False, metadata={"help": "post-norm, as BERT checkpoints are"})
    tie_weights: bool = field(default=False, metadata={"help": "no LM head to tie"})
    lm_head: bool = field(default=False, metadata={"help": "an encoder has no vocabulary head"})
    max_len: int = field(default=128, metadata={"help": "tokens kept per text (entries are question + answer; longer ones are cut)"})
    temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature on cosines (0.05: sentence-transformers' MNRL scale 20)"})


def pad_batch(tokenizer, texts: Sequence[str], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, T) and mask (B, T) True on real tokens, T the batch's longest text."""
    enc = tokenizer.encode_batch(list(texts))
    T = max(1, max(len(e.ids) for e in enc))
    ids = torch.full((len(enc), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(enc), T), dtype=torch.bool)
    for r, e in enumerate(enc):
        ids[r, : len(e.ids)] = torch.tensor(e.ids, dtype=torch.long)
        mask[r, : len(e.ids)] = True
    return ids, mask


def embed(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unit-norm mean-pooled embeddings (B, C): what ``TextEncoder`` computes (sentence-transformers' pooling)."""
    return mean_pool(model.encode(ids, key_mask=mask), mask)


class RunEncoder:
    """``encode(texts) -> (N, C)`` unit-norm float32 embeddings with a (fine-tuned) encoder, in input order."""

    def __init__(self, model: torch.nn.Module, tokenizer_file: str | Path, max_len: int) -> None:
        self.model = model
        self.tokenizer = load_tokenizer(tokenizer_file, max_len)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> torch.Tensor:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts")
        texts = list(texts)
        device = next(self.model.parameters()).device
        # sorted by length so that each batch pads little; put back in input order at the end
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = torch.empty(len(texts), self.model.cfg.d_model)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for s in range(0, len(order), batch_size):
                    rows = order[s : s + batch_size]
                    ids, mask = pad_batch(self.tokenizer, [texts[i] for i in rows], self.pad_id)
                    out[rows] = embed(self.model, ids.to(device), mask.to(device)).float().cpu()
        finally:
            self.model.train(was_training)
        return out
