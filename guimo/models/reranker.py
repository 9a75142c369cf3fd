"""Cross-encoder reranker: ``[CLS] query [SEP] document [SEP]`` through the shared Transformer -> one score.

A bi-encoder embeds query and document apart, so it cannot compare their words; a cross-encoder
reads them together and, trained on a few hundred judged queries, reorders the top of a hybrid list
better than either retriever (Nogueira & Cho 2019; BEIR's BM25+CE). It starts from the same
all-MiniLM-L6-v2 weights as the text encoder (a fresh, seeded linear head on the [CLS] state).

Training runs in the shared loop (``guimo.train.loop.fit``): ``PairSet`` is its ``TrainSet`` (a
query, one positive and ``n`` hard negatives per example) and ``listwise_loss`` its ``LossFn``:
softmax cross-entropy of the positive against its negatives (the "localized contrastive" loss of
Gao et al. 2021), which uses every negative of a query at once where BCE would score each alone.
Nothing here imports the training code, so serving can load a reranker (``Reranker.load``).

A saved reranker is a folder: ``model.safetensors``, ``config.json`` (the Transformer's config and
the max length) and ``tokenizer.json``.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from guimo.errors import GuimoError
from guimo.models.text_encoder import TOKENIZER_FILE, pad_encodings, packaged_model_dir
from guimo.models.transformer import Transformer, TransformerConfig

FORMAT = "guimo-cross-encoder/1"


class CrossEncoder(nn.Module):
    """Transformer encoder + linear head on the first ([CLS]) hidden state: (B, T) ids -> (B,) scores."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Transformer(cfg)
        self.head = nn.Linear(cfg.d_model, 1)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, key_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        h = self.encoder.encode(ids, key_mask=key_mask, token_type_ids=token_type_ids)  # (B, T, C)
        return self.head(h[:, 0]).squeeze(-1)  # (B,)


def _tokenizer(path: Path, max_length: int):
    from tokenizers import Tokenizer

    if not path.is_file():
        raise GuimoError(f"{path}: not found (a reranker needs the tokenizers file)")
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length, strategy="longest_first")  # long documents give way, short queries stay whole
    return tok


class Reranker:
    """Score (query, document) pairs with a ``CrossEncoder``; higher is more relevant."""

    def __init__(self, model: CrossEncoder, tokenizer_file: str | Path, max_length: int = 256) -> None:
        self.model, self.max_length, self.tokenizer_file = model, max_length, Path(tokenizer_file)
        self.tokenizer = _tokenizer(self.tokenizer_file, max_length)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0

    @classmethod
    def pretrained(cls, folder: str | Path | None = None, *, max_length: int = 256, dropout: float = 0.1, seed: int = 0) -> "Reranker":
        """A reranker whose encoder holds a sentence-transformers folder's weights (default: the packaged
        MiniLM) and whose head is freshly initialised from ``seed``: to be trained before use."""
        from guimo.models.pretrained import load_pretrained

        folder = Path(folder) if folder is not None else packaged_model_dir()
        cfg, state = load_pretrained(folder, TransformerConfig(max_len=max_length, dropout=dropout))
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            model = CrossEncoder(cfg)
        finally:
            torch.random.set_rng_state(gen_state)
        missing, unexpected = model.encoder.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise GuimoError(f"{folder}: weights do not fit the cross-encoder (missing {missing}, unexpected {unexpected})")
        return cls(model, folder / TOKENIZER_FILE, max_length)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def tensors(self, pairs: Sequence[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """``ids``, ``types``, ``mask`` (B, T) of ``[CLS] q [SEP] d [SEP]`` for each (q, d) pair."""
        encodings = self.tokenizer.encode_batch([(q, d) for q, d in pairs])
        ids, types, mask = pad_encodings(encodings, self.pad_id)
        return {"ids": ids, "types": types, "mask": mask}

    @torch.inference_mode()
    def score(self, query: str, docs: Sequence[str], *, batch_size: int = 32) -> list[float]:
        """One relevance score per document of ``docs`` for ``query`` (logits; only their order means anything)."""
        return self.score_pairs([(query, d) for d in docs], batch_size=batch_size)

    @torch.inference_mode()
    def score_pairs(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 32) -> list[float]:
        was_training = self.model.training
        self.model.eval()
        try:
            out: list[float] = []
            for s in range(0, len(pairs), batch_size):
                t = {k: v.to(self.device) for k, v in self.tensors(pairs[s : s + batch_size]).items()}
                out.extend(self.model(t["ids"], t["mask"], t["types"]).float().cpu().tolist())
            return out
        finally:
            self.model.train(was_training)

    def save(self, folder: str | Path) -> Path:
        """Write weights, config and tokenizer into ``folder`` (each file atomically)."""
        from guimo.io import atomic_save_safetensors, atomic_write_bytes, atomic_write_json

        folder = Path(folder)
        atomic_write_bytes(folder / TOKENIZER_FILE, self.tokenizer_file.read_bytes())
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        atomic_save_safetensors(folder / "model.safetensors", state)
        atomic_write_json(folder / "config.json", {"format": FORMAT, "max_length": self.max_length, "transformer": asdict(self.model.cfg)})
        return folder

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> "Reranker":
        from safetensors.torch import load_file

        folder = Path(folder)
        path = folder / "config.json"
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
            if spec.get("format") != FORMAT:
                raise GuimoError(f"{path}: format {spec.get('format')!r}, expected {FORMAT!r}")
            cfg = TransformerConfig(**spec["transformer"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise GuimoError(f"{path}: not a saved reranker ({e})") from None
        model = CrossEncoder(cfg)
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return cls(model.to(device).eval(), folder / TOKENIZER_FILE, int(spec["max_length"]))


class PairSet:
    """Training examples for the shared loop: (query, positive, negatives) triples tokenized per batch.

    ``batch`` returns the 1 + n pairs of each example in a row, positive first: (B * (1 + n), T).
    """

    def __init__(self, reranker: Reranker, examples: Sequence[tuple[str, str, Sequence[str]]], negatives: int) -> None:
        if negatives < 1:
            raise GuimoError("a reranker trains on at least one negative per example")
        short = [i for i, (_, _, negs) in enumerate(examples) if len(negs) < negatives]
        if short:
            raise GuimoError(f"{len(short)} training examples have fewer than {negatives} negatives (e.g. #{short[0]})")
        self.reranker, self.examples, self.negatives = reranker, list(examples), negatives
        self.tokens_per_example = (1 + negatives) * reranker.max_length

    def __len__(self) -> int:
        return len(self.examples)

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        pairs = []
        for i in indices:
            q, pos, negs = self.examples[i]
            pairs.append((q, pos))
            pairs.extend((q, d) for d in negs[: self.negatives])
        out = self.reranker.tensors(pairs)
        out["group"] = torch.tensor(1 + self.negatives)  # a 0-d tensor: the loop moves every value to the device
        return out


def listwise_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of each example's positive (column 0) against its negatives. ``model`` is a CrossEncoder."""
    scores = model(batch["ids"], batch["mask"], batch["types"]).float()  # (B * (1 + n),)
    group = int(batch["group"]) if "group" in batch else None
    if group is None:
        raise GuimoError("listwise_loss needs the batch's group size (PairSet adds it)")
    logits = scores.view(-1, group)  # (B, 1 + n)
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


def sample_negatives(candidates: Sequence[str], positives: set[str], n: int, rng: random.Random) -> list[str]:
    """``n`` ids drawn from ``candidates`` (best first) that are not positives, the harder half first.

    Taking only the very top ids as negatives trains on unjudged relevant documents (false
    negatives), which SciFact and most qrels have; drawing from the top-k mixes hard and medium ones.
    """
    pool = [c for c in candidates if c not in positives]
    if len(pool) <= n:
        return pool
    hard = pool[: max(n, len(pool) // 2)]
    return rng.sample(hard, n)
