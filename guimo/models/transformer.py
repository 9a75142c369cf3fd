"""One transformer for every scenario: causal (GPT) or bidirectional (BERT), pre- or post-norm.

Variants are config fields, not subclasses: ``causal`` picks the attention mask, ``norm_first``
picks pre-norm (GPT-2, our default) or post-norm (BERT, needed to load BERT checkpoints exactly),
``tie_weights`` shares the token embedding with the output head, ``mup_base_width`` switches
from the standard parametrization to muP (below). Attention is
``F.scaled_dot_product_attention`` so PyTorch picks the fastest kernel for the device.

muP (Yang et al. 2022, "Tensor Programs V"; Cerebras-GPT's recipe) makes the best learning rate
and init the same at every width, so a rate tuned on the smallest model transfers to the largest
and a scaling sweep needs no per-size tuning. With m = d_model / mup_base_width: the hidden
matrices start at std 0.02 / sqrt(m) and train at lr / m (Adam), attention logits are divided by
the head dimension instead of its square root (which changes nothing in a family whose heads keep
one width and grow in number), and the output logits are multiplied by 1 / m;
embeddings, norms and biases keep the standard init and rate. At d_model == mup_base_width the
model is exactly the standard one. Measured on guimo's sweeps (docs/benchmarks/scale.md): the best lr
does stay put from width 32 to 224; with only the lr tuned at the base the widest models trained
worse than in the standard parametrization, with ``mup_output_mult`` tuned there too they matched
or beat it. Its best value differs by corpus and grid (4 to 32 on guimo's; tune it at the base with
``guimo scale --probe-set``), and the recipe made the scaling law extrapolate within 3% on one
corpus of three, so it is an option, not the default.
Shapes: B batch, T sequence length, C = d_model, H heads, D = C // H.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TransformerConfig:
    vocab_size: int = field(default=256, metadata={"help": "token (or item) vocabulary size incl. special ids"})
    max_len: int = field(default=256, metadata={"help": "longest sequence; size of the learned position table"})
    n_layer: int = field(default=4, metadata={"help": "number of transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads; must divide d_model"})
    d_model: int = field(default=256, metadata={"help": "residual stream width"})
    d_ff: int | None = field(default=None, metadata={"help": "MLP hidden width; None means 4 * d_model"})
    dropout: float = field(default=0.0, metadata={"help": "dropout on embeddings, residual branches and attention"})
    attn_dropout: float | None = field(default=None, metadata={"help": "dropout on the attention weights (None: dropout)"})
    ffn_dropout: float = field(default=0.0, metadata={"help": "dropout on the MLP's hidden activations (the FT-Transformer's ffn_dropout)"})
    causal: bool = field(default=True, metadata={"help": "True: each position sees only the past (GPT)"})
    norm_first: bool = field(default=True, metadata={"help": "pre-norm (GPT-2) if True, post-norm (BERT) if False"})
    tie_weights: bool = field(default=True, metadata={"help": "share token embedding and output head weights"})
    bias: bool = field(default=True, metadata={"help": "biases in Linear and LayerNorm layers"})
    activation: Literal["gelu", "gelu_tanh", "relu"] = field(default="gelu", metadata={"help": "MLP nonlinearity"})
    layer_norm_eps: float = field(default=1e-5, metadata={"help": "LayerNorm epsilon (BERT uses 1e-12)"})
    embed_norm: bool = field(default=False, metadata={"help": "LayerNorm right after the embeddings (BERT)"})
    type_vocab_size: int = field(default=0, metadata={"help": "segment (token type) embeddings; 0 disables"})
    lm_head: bool = field(default=True, metadata={"help": "project hidden states to vocabulary logits"})
    mup_base_width: int | None = field(default=None, metadata={
        "help": "muP: the width whose init and lr the others inherit; None = standard parametrization"})
    mup_base_head_dim: int | None = field(default=None, metadata={
        "help": "muP: the base model's head dimension (default: mup_base_width // n_head, a family that grows its heads' width)"})
    mup_output_mult: float = field(default=1.0, metadata={
        "help": "muP: logits x this / width multiplier; a base constant to tune at the base width (the mup package's output_mult)"})

    def __post_init__(self) -> None:
        if self.d_model % self.n_head:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        for name in ("vocab_size", "max_len", "n_layer", "n_head", "d_model"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("dropout", "attn_dropout", "ffn_dropout"):
            if getattr(self, name) is not None and not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
        if self.mup_base_width is not None:
            if self.mup_base_width <= 0:
                raise ValueError("mup_base_width must be positive")
            if self.mup_base_head_dim is None and self.mup_base_width % self.n_head:  # the base's heads are these heads
                raise ValueError(f"mup_base_width ({self.mup_base_width}) must be divisible by n_head ({self.n_head}), or give mup_base_head_dim")
            if self.mup_base_head_dim is not None and self.mup_base_head_dim <= 0:
                raise ValueError("mup_base_head_dim must be positive")
            if not self.mup_output_mult > 0:
                raise ValueError("mup_output_mult must be positive")
            if not self.lm_head:  # muP's output multiplier lives in the head
                raise ValueError("mup_base_width needs lm_head=True: muP scales the output logits, which a headless model leaves to its caller")

    @property
    def width_mult(self) -> float:
        """muP's m = d_model / mup_base_width; 1 in the standard parametrization."""
        return self.d_model / self.mup_base_width if self.mup_base_width else 1.0

    @property
    def ff_width(self) -> int:
        return self.d_ff or 4 * self.d_model


# Presets as plain data: `--set model=small`. Roughly x3-x4 apart in non-embedding parameters.
PRESETS: dict[str, dict] = {
    "nano": dict(n_layer=2, n_head=2, d_model=32, max_len=128),
    "tiny": dict(n_layer=2, n_head=4, d_model=64, max_len=128),
    "mini": dict(n_layer=3, n_head=4, d_model=96, max_len=128),
    "small": dict(n_layer=4, n_head=4, d_model=128, max_len=256),
    "medium": dict(n_layer=4, n_head=4, d_model=256, max_len=256),
    "base": dict(n_layer=6, n_head=8, d_model=384, max_len=256),
    "large": dict(n_layer=12, n_head=12, d_model=768, max_len=512),
}


class KVCache:
    """Preallocated keys and values for incremental decoding: (L, B, H, T_max, D) each."""

    def __init__(self, cfg: TransformerConfig, batch_size: int, device: torch.device | str, dtype: torch.dtype) -> None:
        shape = (cfg.n_layer, batch_size, cfg.n_head, cfg.max_len, cfg.d_model // cfg.n_head)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = 0  # number of positions already cached

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = k.shape[2]
        self.k[layer, :, :, self.pos : self.pos + t] = k
        self.v[layer, :, :, self.pos : self.pos + t] = v
        end = self.pos + t
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class SelfAttention(nn.Module):
    def __init__(self, cfg: TransformerConfig, layer: int) -> None:
        super().__init__()
        self.n_head, self.causal, self.layer = cfg.n_head, cfg.causal, layer
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.attn_dropout = cfg.dropout if cfg.attn_dropout is None else cfg.attn_dropout
        # muP: q.k / head_dim, matched to SDPA's default 1 / sqrt(head_dim) (None) at the base's head
        # dimension; a family that adds heads of a fixed width keeps the default at every width
        head_dim = cfg.d_model // cfg.n_head
        base = (cfg.mup_base_head_dim or cfg.mup_base_width // cfg.n_head) if cfg.mup_base_width else head_dim
        self.scale = None if head_dim == base else math.sqrt(base) / head_dim

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None, cache: KVCache | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        past = cache.pos if cache is not None else 0
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (B, H, past + T, D)
        mask = _attention_mask(T, past, self.causal, key_mask, x.device)
        is_causal = self.causal and mask is None and past == 0 and T > 1
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0, is_causal=is_causal, scale=self.scale
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


def _attention_mask(t: int, past: int, causal: bool, key_mask: torch.Tensor | None, device) -> torch.Tensor | None:
    """Boolean mask (True = may attend), broadcastable to (B, H, T, past + T), or None."""
    mask = None
    if causal and (past > 0 or key_mask is not None) and t > 1:
        q_pos = torch.arange(past, past + t, device=device)[:, None]
        k_pos = torch.arange(past + t, device=device)[None, :]
        mask = (k_pos <= q_pos)[None, None]  # (1, 1, T, past + T)
    if key_mask is not None:
        km = key_mask[:, None, None, :].bool()  # (B, 1, 1, past + T)
        mask = km if mask is None else (mask & km)
    return mask


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.ff_width, bias=cfg.bias)
        self.proj = nn.Linear(cfg.ff_width, cfg.d_model, bias=cfg.bias)
        self.act = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "relu": nn.ReLU()}[cfg.activation]
        self.drop = nn.Dropout(cfg.ffn_dropout) if cfg.ffn_dropout > 0 else None  # none by default: no sampling per step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(x))
        return self.proj(h if self.drop is None else self.drop(h))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig, layer: int) -> None:
        super().__init__()
        self.norm_first = cfg.norm_first
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.attn = SelfAttention(cfg, layer)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        if self.norm_first:  # GPT-2: x + f(LN(x))
            x = x + self.drop(self.attn(self.ln1(x), key_mask, cache))
            return x + self.drop(self.mlp(self.ln2(x)))
        x = self.ln1(x + self.drop(self.attn(x, key_mask, cache)))  # BERT: LN(x + f(x))
        return self.ln2(x + self.drop(self.mlp(x)))


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.type_emb = nn.Embedding(cfg.type_vocab_size, cfg.d_model) if cfg.type_vocab_size else None
        self.emb_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps, bias=cfg.bias) if cfg.embed_norm else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps, bias=cfg.bias) if cfg.norm_first else None
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False) if cfg.lm_head else None
        if self.head is not None and cfg.tie_weights:
            self.head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2L)
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))
        if cfg.mup_base_width:  # muP: hidden init ~ 1/sqrt(fan_in); rescaled, so m = 1 is the standard model exactly
            with torch.no_grad():
                for p, _ in self.lr_multipliers():
                    p.mul_(1.0 / math.sqrt(cfg.width_mult))

    def _hidden_names(self) -> set[str]:
        """The matrices both of whose dimensions grow with the width: muP's "hidden" weights."""
        return {n for n, _ in self.named_parameters() if n.startswith("blocks.") and n.endswith(("qkv.weight", "proj.weight", "fc.weight"))}

    def lr_multipliers(self) -> list[tuple[nn.Parameter, float]]:
        """Parameters whose Adam lr is scaled (muP: hidden matrices at lr / m); empty when standard.

        The training loop asks every module for this, so the parametrization stays in the model.
        """
        if not self.cfg.mup_base_width:
            return []
        hidden = self._hidden_names()
        return [(p, 1.0 / self.cfg.width_mult) for n, p in self.named_parameters() if n in hidden]

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def encode(
        self,
        idx: torch.Tensor,
        *,
        key_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states (B, T, C) for token ids ``idx`` (B, T).

        ``key_mask`` (B, T_total) marks real positions (True) vs padding; ``cache`` continues a
        sequence whose first ``cache.pos`` positions were already seen; ``inputs_embeds`` (B, T, C)
        replaces the token lookup (e.g. items with side features); ``positions`` (B, T) overrides
        the default positions start..start+T-1 (left-padded batches of different lengths).
        """
        B, T = idx.shape[:2]
        start = cache.pos if cache is not None else 0
        if start + T > self.cfg.max_len:
            raise ValueError(f"sequence of {start + T} positions exceeds max_len={self.cfg.max_len}")
        pos = positions if positions is not None else torch.arange(start, start + T, device=idx.device)
        x = (self.tok_emb(idx) if inputs_embeds is None else inputs_embeds) + self.pos_emb(pos)  # (B, T, C)
        if self.type_emb is not None:
            x = x + self.type_emb(token_type_ids if token_type_ids is not None else torch.zeros_like(idx))
        if self.emb_norm is not None:
            x = self.emb_norm(x)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, key_mask, cache)
        if cache is not None:
            cache.pos += T
        return self.ln_f(x) if self.ln_f is not None else x

    def forward(self, idx: torch.Tensor, **kwargs) -> torch.Tensor:
        """Logits (B, T, vocab) when the config has an LM head, else hidden states (B, T, C)."""
        h = self.encode(idx, **kwargs)
        if self.head is None:
            return h
        logits = self.head(h)
        return logits * (self.cfg.mup_output_mult / self.cfg.width_mult) if self.cfg.mup_base_width else logits

    def new_cache(self, batch_size: int) -> KVCache:
        p = next(self.parameters())
        return KVCache(self.cfg, batch_size, p.device, p.dtype)


def build(cfg: TransformerConfig, **overrides) -> Transformer:
    return Transformer(dataclasses.replace(cfg, **overrides) if overrides else cfg)


def count_parameters(cfg: TransformerConfig) -> dict[str, int]:
    """Total and non-embedding parameter counts, computed on the meta device (no memory).

    Non-embedding excludes token, position and type embeddings and an untied output head
    (Kaplan et al. 2020); a tied head is the token embedding, counted once in ``total``.
    """
    with torch.device("meta"):
        model = Transformer(cfg)
    total = sum(p.numel() for p in model.parameters())
    emb = cfg.vocab_size * cfg.d_model + cfg.max_len * cfg.d_model + cfg.type_vocab_size * cfg.d_model
    if cfg.lm_head and not cfg.tie_weights:
        emb += cfg.vocab_size * cfg.d_model
    return {"total": total, "non_embedding": total - emb}


def flops_per_token(cfg: TransformerConfig, seq_len: int | None = None) -> float:
    """Training FLOPs per token: 6N + 12 * L * C * T (forward + backward; PaLM appendix B).

    N counts every matmul weight a token passes through: the non-embedding parameters plus the
    output head (C * vocab) when there is one. The attention term counts QK^T and AV.
    """
    T = seq_len or cfg.max_len
    n = count_parameters(cfg)["non_embedding"] + (cfg.d_model * cfg.vocab_size if cfg.lm_head else 0)
    return 6.0 * n + 12.0 * cfg.n_layer * cfg.d_model * T
