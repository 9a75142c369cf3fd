"""FT-Transformer (Gorishniy et al. 2021, "Revisiting Deep Learning Models for Tabular Data") on guimo's
shared transformer blocks.

Every column becomes one token of width ``d_model``:

- a numeric column j: ``x_j * W_j + b_j`` (the feature tokenizer; the encoder has already scaled x), or with
  ``num_embedding="plr"`` ReLU(W_j [cos(2 pi c_j x_j), sin(2 pi c_j x_j)] + b_j) (``PeriodicEmbedding``);
- a categorical column j: ``E_j[x_j] + b_j`` (one embedding table per column, the encoder's unknown bucket included);
- a learned [CLS] token is appended, the stack of pre-norm, bidirectional blocks (``guimo.models.transformer.Block``,
  no causal mask, no positions: a table's columns have no order) mixes them, and the head reads the [CLS] state:
  LayerNorm -> ReLU -> Linear.

Outputs (``n_out``): 1 logit for binary classification (the positive class) and for regression (the
standardised target), K logits for K classes. One logit for binary keeps the loss a plain BCE whose
``pos_weight`` is the class-imbalance weight, and a single score is what ROC-AUC, PR-AUC and a cost threshold read.

With the linear numeric tokens it is Opacus-friendly by construction (``guimo.privacy.dp`` trains it with DP-SGD): no
BatchNorm, and every parameter lives in an ``nn.Linear``, ``nn.Embedding`` or ``nn.LayerNorm``, the layers Opacus computes per-sample gradients
for. That is why the numeric weights ``W_j``, the biases ``b_j`` and the [CLS] vector are embedding tables looked
up by column index rather than bare ``nn.Parameter``s: the lookup's output gradient times ``x_j`` is exactly the
per-sample gradient of ``W_j``, which Opacus's embedding rule computes.
Shapes: B rows, F = n_num + n_cat feature tokens, C = d_model, K outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn as nn

from guimo.models.transformer import Block, TransformerConfig

if TYPE_CHECKING:
    import numpy as np


@dataclass
class TabularConfig:
    n_num: int = field(default=0, metadata={"help": "numeric columns (set from the data)"})
    cat_cardinalities: list[int] = field(default_factory=list, metadata={"help": "per categorical column: its vocabulary incl. the unknown bucket (set from the data)"})
    n_out: int = field(default=1, metadata={"help": "outputs: 1 for binary (positive-class logit) and regression, K for K classes (set from the data)"})
    task: Literal["binary", "multiclass", "regression"] = field(default="binary", metadata={"help": "set from the data's target"})
    d_model: int = field(default=64, metadata={"help": "token width C (FT-Transformer's d_token: 96-192 there; 64 trains 2x faster here)"})
    n_layer: int = field(default=3, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads; must divide d_model"})
    ff_mult: float = field(default=4 / 3, metadata={"help": "MLP hidden width = d_model x this (the paper's 4/3 with ReGLU; GELU here)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on attention and the residual branches"})
    attention_dropout: float | None = field(default=None, metadata={"help": "dropout on the attention weights (None: dropout; the FT-Transformer paper's 0.2)"})
    ffn_dropout: float = field(default=0.0, metadata={"help": "dropout inside each block's MLP (the FT-Transformer paper's 0.1, with dropout, its residual dropout, 0)"})
    n_members: int = field(default=1, metadata={"help": "an ensemble of this many FT-Transformers in one module (own tokenizer channels, blocks and head each; logits averaged)"})
    num_embedding: Literal["linear", "plr"] = field(default="linear", metadata={
        "help": "numeric column -> token: linear (x_j W_j + b_j, the FT-Transformer's) or plr (periodic -> linear -> ReLU, Gorishniy et al. 2022)"})
    n_frequencies: int = field(default=16, metadata={"help": "plr: frequencies per numeric column (2x this periodic features)"})
    frequency_scale: float = field(default=0.1, metadata={"help": "plr: the frequencies' initial standard deviation (the paper's sigma; trained after)"})
    linear_skip: bool = field(default=False, metadata={
        "help": "add a linear map of the feature tokens to the logits (a GLM beside the blocks, for near-linear tasks where logistic regression leads)"})
    lr_mult: float = field(default=1.0, metadata={
        "help": "every parameter trains at this x the schedule's lr (below 1 for a model warm-started from a linear fit: see linear_warm_start)"})

    def __post_init__(self) -> None:
        if self.n_num < 0:
            raise ValueError("n_num must be non-negative")
        if self.n_num + len(self.cat_cardinalities) == 0:
            raise ValueError("a table model needs at least one feature column")
        if any(c < 1 for c in self.cat_cardinalities):
            raise ValueError("every categorical cardinality must be at least 1")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if self.n_out < 1 or (self.task == "multiclass" and self.n_out < 3) or (self.task != "multiclass" and self.n_out != 1):
            raise ValueError(f"n_out {self.n_out} does not fit task {self.task} (binary and regression: 1; multiclass: K >= 3)")
        for name in ("dropout", "attention_dropout", "ffn_dropout"):
            if getattr(self, name) is not None and not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
        if self.n_members < 1:
            raise ValueError("n_members must be at least 1")
        if self.num_embedding not in ("linear", "plr"):
            raise ValueError(f"num_embedding must be linear or plr, not {self.num_embedding!r}")
        if self.n_frequencies < 1 or self.frequency_scale <= 0:
            raise ValueError("n_frequencies must be at least 1 and frequency_scale positive")
        if self.lr_mult <= 0:
            raise ValueError("lr_mult must be positive")

    @property
    def n_tokens(self) -> int:
        return self.n_num + len(self.cat_cardinalities) + 1  # + [CLS]

    def block_config(self) -> TransformerConfig:
        """The shared blocks' config: bidirectional, pre-norm, no vocabulary (the tokenizer embeds)."""
        return TransformerConfig(vocab_size=1, max_len=self.n_tokens, n_layer=self.n_layer, n_head=self.n_head, d_model=self.d_model,
                                 d_ff=max(1, round(self.ff_mult * self.d_model)), dropout=self.dropout,
                                 attn_dropout=self.attention_dropout, ffn_dropout=self.ffn_dropout, causal=False, norm_first=True,
                                 tie_weights=False, lm_head=False)


class FeatureTokenizer(nn.Module):
    """(x_num (B, n_num) float, x_cat (B, n_cat) int64) -> tokens (B, F, M x C): the M ensemble members' tokenizers side
    by side in the channels (member m reads channels m*C .. (m+1)*C - 1), so one layer holds every member's feature
    tokens, and an attribution through its output (``guimo.explain.integrated``) covers the whole ensemble."""

    def __init__(self, cfg: TabularConfig) -> None:
        super().__init__()
        self.n_num, self.n_cat = cfg.n_num, len(cfg.cat_cardinalities)
        d = cfg.d_model * cfg.n_members
        scale = 1 / math.sqrt(cfg.d_model)  # per member's width, as in the paper
        # per numeric column j: W_j and b_j, looked up by column index (see the module docstring: Opacus)
        # (a table without numeric or without categorical columns gets no such layers: Opacus refuses parameters
        # that never receive a gradient)
        linear = self.n_num > 0 and cfg.num_embedding == "linear"
        self.num_weight = nn.Embedding(self.n_num, d) if linear else None
        self.num_bias = nn.Embedding(self.n_num, d) if linear else None
        # plr: periodic features of each numeric column, then the column's own linear map and a ReLU (below)
        self.periodic = PeriodicEmbedding(self.n_num, cfg.n_frequencies, d, cfg.frequency_scale) if self.n_num > 0 and not linear else None
        # every categorical column's table in one embedding, column j's ids offset by the cardinalities before it
        self.cat_emb = nn.Embedding(sum(cfg.cat_cardinalities), d) if self.n_cat else None
        self.cat_bias = nn.Embedding(self.n_cat, d) if self.n_cat else None
        offsets = torch.tensor([0] + list(cfg.cat_cardinalities[:-1]), dtype=torch.long).cumsum(0) if self.n_cat else torch.zeros(0, dtype=torch.long)
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("num_index", torch.arange(self.n_num), persistent=False)
        self.register_buffer("cat_index", torch.arange(self.n_cat), persistent=False)
        # the paper's init: uniform(-1/sqrt(C), 1/sqrt(C)) for the tokenizer's weights and biases
        for emb in (self.num_weight, self.num_bias, self.cat_emb, self.cat_bias):
            if emb is not None:
                nn.init.uniform_(emb.weight, -scale, scale)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        B = x_num.shape[0] if self.n_num else x_cat.shape[0]
        parts = []
        if self.periodic is not None:
            parts.append(self.periodic(x_num))  # (B, n_num, C)
        elif self.n_num:
            idx = self.num_index.expand(B, -1)  # (B, n_num)
            parts.append(x_num.unsqueeze(-1) * self.num_weight(idx) + self.num_bias(idx))  # (B, n_num, C)
        if self.n_cat:
            parts.append(self.cat_emb(x_cat + self.offsets) + self.cat_bias(self.cat_index.expand(B, -1)))  # (B, n_cat, C)
        return torch.cat(parts, dim=1)


class PeriodicEmbedding(nn.Module):
    """PLR numeric embeddings (Gorishniy et al. 2022, "On Embeddings for Numerical Features in Tabular Deep Learning"):
    column j's value x -> ReLU(W_j [cos(2 pi c_j x), sin(2 pi c_j x)] + b_j), with K trained frequencies c_j per column.

    Why: a linear token x W_j + b_j can only scale one direction, so every threshold ("amount above 10x the account's
    mean", "account younger than a day") must be carved out by the blocks after it; periodic features give each
    column a bank of bumps at many scales, and the ReLU lets the token switch on past a threshold, which is what
    gradient-boosted trees find for free. (B, F) -> (B, F, C).

    Its parameters are plain tensors used per column (an einsum), which Opacus has no per-sample rule for: DP-SGD runs
    use the linear tokenizer (``guimo.scenarios.tabular`` chooses it).
    """

    def __init__(self, n_features: int, n_frequencies: int, d: int, scale: float) -> None:
        super().__init__()
        # the paper's init: frequencies ~ N(0, sigma) (truncated at 3 sigma), the linear layer as nn.Linear's default
        self.frequencies = nn.Parameter(nn.init.trunc_normal_(torch.empty(n_features, n_frequencies), std=scale, a=-3 * scale, b=3 * scale))
        bound = 1 / math.sqrt(2 * n_frequencies)
        self.weight = nn.Parameter(torch.empty(n_features, 2 * n_frequencies, d).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_features, d).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = 2 * math.pi * self.frequencies * x.unsqueeze(-1)  # (B, F, K)
        periodic = torch.cat([torch.cos(v), torch.sin(v)], dim=-1)  # (B, F, 2K)
        return torch.relu(torch.einsum("bfk,fkd->bfd", periodic, self.weight) + self.bias)


class _Stack(nn.Module):
    """One member's blocks and head: tokens (B, F, C) with [CLS] last -> logits (B, n_out).

    With ``linear_skip`` a linear map of the flattened feature tokens is added to the head's logits: with linear
    numeric tokens that is a logistic regression on the columns (one weight per category), which the blocks then only
    have to correct. It reads the tokens, not the raw columns, so attributions through the tokenizer's output
    (``guimo.explain.integrated``) still sum to the output difference."""

    def __init__(self, cfg: TabularConfig) -> None:
        super().__init__()
        bcfg = cfg.block_config()
        self.blocks = nn.ModuleList(Block(bcfg, i) for i in range(cfg.n_layer))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.n_out)
        self.skip = nn.Linear((cfg.n_tokens - 1) * cfg.d_model, cfg.n_out) if cfg.linear_skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stack_forward(self, x)


def stack_forward(stack: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``stack``'s blocks, norm, head (and skip) over tokens (B, F, C) with [CLS] last -> logits (B, n_out)."""
    h = x
    for block in stack.blocks:
        h = block(h)
    out = stack.head(torch.relu(stack.norm(h[:, -1])))
    if stack.skip is not None:
        out = out + stack.skip(x[:, :-1].flatten(1))
    return out


class FTTransformer(nn.Module):
    """``forward(x_num, x_cat) -> logits (B, n_out)``; ``x_num`` float32 (B, n_num), ``x_cat`` int64 (B, n_cat).

    With ``cfg.n_members`` = M > 1 the module is a deep ensemble (Lakshminarayanan et al. 2017) of M FT-Transformers
    that differ by their initialisation: ``member_logits`` gives each one's logits (the training loss averages the
    members' own losses, so each learns on its own), ``forward`` their mean. Averaging a few models cancels much of
    what one small-data training run owes to its seed (on a few hundred rows the validation pick of one run is
    noisy). M = 1 is the plain model, with the parameter names of runs saved before ensembles existed.
    """

    def __init__(self, cfg: TabularConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = FeatureTokenizer(cfg)
        self.cls = nn.Embedding(1, cfg.d_model * cfg.n_members)  # the [CLS] vector(s), an embedding so Opacus sees it
        if cfg.n_members == 1:
            stack = _Stack(cfg)
            self.blocks, self.norm, self.head, self.skip = stack.blocks, stack.norm, stack.head, stack.skip
        else:
            self.members = nn.ModuleList(_Stack(cfg) for _ in range(cfg.n_members))
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
                if name.endswith("proj"):  # GPT-2: residual projections scaled by 1/sqrt(2L), as the shared transformer does
                    nn.init.normal_(module.weight, std=0.02 / math.sqrt(2 * cfg.n_layer))
        nn.init.uniform_(self.cls.weight, -1 / math.sqrt(cfg.d_model), 1 / math.sqrt(cfg.d_model))
        self.register_buffer("cls_index", torch.zeros(1, dtype=torch.long), persistent=False)

    def tokens(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Feature tokens with [CLS] last, as in the paper: (B, F, M x C)."""
        tokens = self.tokenizer(x_num, x_cat)  # (B, F - 1, M x C)
        cls = self.cls(self.cls_index.expand(tokens.shape[0], -1))  # (B, 1, M x C)
        return torch.cat([tokens, cls], dim=1)

    def member_logits(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Every member's logits (M, B, n_out)."""
        x = self.tokens(x_num, x_cat)
        if self.cfg.n_members == 1:
            return stack_forward(self, x)[None]
        c = self.cfg.d_model
        return torch.stack([m(x[..., i * c:(i + 1) * c]) for i, m in enumerate(self.members)])

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.member_logits(x_num, x_cat).mean(0)  # (B, n_out)

    def lr_multipliers(self):
        """(parameter, lr multiplier) pairs for ``guimo.train.loop.make_optimizer``: all of them at ``cfg.lr_mult``, or none."""
        return [(p, self.cfg.lr_mult) for p in self.parameters()] if self.cfg.lr_mult != 1.0 else []

    def stacks(self) -> list[nn.Module]:
        """Each member's blocks, head and skip (the model itself when it is one)."""
        return [self] if self.cfg.n_members == 1 else list(self.members)


@torch.no_grad()
def linear_warm_start(model: FTTransformer, coef: "np.ndarray", intercept: "np.ndarray") -> None:
    """Make the untrained ``model`` compute a fitted linear model: every member's linear skip reads its initial feature
    tokens with the weights that reproduce ``coef`` and ``intercept``, and its head starts at zero.

    ``coef`` (n_out, n_num + sum(cardinalities)) and ``intercept`` (n_out,) are over ``[x_num | one-hot(x_cat)]``, the
    logistic regression baseline's design matrix (``guimo.evaluate.baselines_tab.design_matrix``). Numeric column j's
    token is ``x w + b``, so the readout ``u = beta w / |w|^2`` gives ``beta x`` plus a constant, moved into the bias;
    categorical column j's tokens are the rows of its table (plus the column's bias), and ``u`` solves ``E u = gamma``
    exactly by least squares as long as the column has no more categories than the token width.

    Why: on a few hundred rows logistic regression is the strongest model (German credit), and a transformer trained
    from random weights ends below it however it is regularised. Started at the linear fit, with the head at zero, the
    blocks only learn what the linear model misses (Wide & Deep, Cheng et al. 2016), and early stopping keeps the start
    when they find nothing. Needs ``linear_skip`` and linear numeric tokens.
    """
    import numpy as np

    cfg, tok = model.cfg, model.tokenizer
    if not cfg.linear_skip or cfg.num_embedding != "linear":
        raise ValueError("a linear warm start needs linear_skip=True and num_embedding='linear'")
    coef, intercept = np.atleast_2d(np.asarray(coef, dtype=np.float64)), np.atleast_1d(np.asarray(intercept, dtype=np.float64))
    cards, c = cfg.cat_cardinalities, cfg.d_model
    if coef.shape != (cfg.n_out, cfg.n_num + sum(cards)) or intercept.shape != (cfg.n_out,):
        raise ValueError(f"coef {coef.shape} / intercept {intercept.shape} do not fit {cfg.n_out} outputs over {cfg.n_num} numeric "
                         f"and {sum(cards)} one-hot columns")
    beta, bias0 = torch.from_numpy(coef), torch.from_numpy(intercept)
    for i, stack in enumerate(model.stacks()):
        ch = slice(i * c, (i + 1) * c)  # this member's channels of the tokens
        weight = torch.zeros(cfg.n_out, cfg.n_tokens - 1, c, dtype=torch.float64)
        bias = bias0.clone()
        for j in range(cfg.n_num):
            w, b = tok.num_weight.weight[j, ch].double(), tok.num_bias.weight[j, ch].double()
            u = beta[:, j, None] * w / (w @ w)  # (n_out, C)
            weight[:, j] = u
            bias -= u @ b
        start = cfg.n_num
        for j, k in enumerate(cards):
            table = tok.cat_emb.weight[int(tok.offsets[j]):int(tok.offsets[j]) + k, ch].double() + tok.cat_bias.weight[j, ch].double()
            weight[:, cfg.n_num + j] = torch.linalg.lstsq(table, beta[:, start:start + k].T, driver="gelsd").solution.T
            start += k
        stack.skip.weight.copy_(weight.flatten(1).float())
        stack.skip.bias.copy_(bias.float())
        stack.head.weight.zero_()
        stack.head.bias.zero_()


@torch.no_grad()
def predict_logits(model: FTTransformer, x_num, x_cat, batch_size: int = 1024) -> "np.ndarray":
    """Logits (N, n_out) as float64 NumPy of encoded arrays, in eval mode, on the model's device."""
    import numpy as np

    device = next(model.parameters()).device
    model.eval()
    n = len(x_num) if x_num is not None and len(x_num) else len(x_cat)
    out = []
    for s in range(0, n, batch_size):
        xn = torch.as_tensor(np.asarray(x_num[s : s + batch_size], dtype=np.float32), device=device)
        xc = torch.as_tensor(np.asarray(x_cat[s : s + batch_size], dtype=np.int64), device=device)
        out.append(model(xn, xc).float().cpu().numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, model.cfg.n_out))


def imbalance_loss(logits: torch.Tensor, y: torch.Tensor, *, task: str, kind: str, pos_weight: float = 1.0,
                   class_weight: torch.Tensor | None = None, gamma: float = 2.0) -> torch.Tensor:
    """The training loss of one batch: logits (B, n_out), y (B,) (0/1, class ids, or the standardised target).

    - binary ``weighted``: BCE with the positive rows weighted ``pos_weight`` (a rare class then moves the
      gradient as much as it should; the shift it adds to the logit, log pos_weight, is taken off again before
      calibration); ``focal``: the focal loss (Lin et al. 2017) (1 - p_t)^gamma x BCE, which down-weights the
      easy majority rows; ``none``: plain BCE.
    - multiclass: cross-entropy with ``class_weight`` (B-independent (K,)) for ``weighted``, focal likewise.
    - regression: mean squared error on the standardised target.
    """
    import torch.nn.functional as F

    if task == "regression":
        return F.mse_loss(logits[:, 0], y.float())
    if task == "binary":
        z, t = logits[:, 0], y.float()
        if kind == "focal":
            bce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
            p_t = torch.exp(-bce)
            return ((1 - p_t) ** gamma * bce).mean()
        w = torch.tensor(pos_weight if kind == "weighted" else 1.0, device=z.device, dtype=z.dtype)
        return F.binary_cross_entropy_with_logits(z, t, pos_weight=w)
    if kind == "focal":
        ce = F.cross_entropy(logits, y, reduction="none")
        return ((1 - torch.exp(-ce)) ** gamma * ce).mean()
    return F.cross_entropy(logits, y, weight=class_weight if kind == "weighted" else None)
