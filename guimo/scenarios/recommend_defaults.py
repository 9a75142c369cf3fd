"""Settings a user did not set, chosen from their data: `guimo run recommend --data FILE` fits the file.

The scenario's declared defaults are the embedded marketplace's recipe (3,000 items, ~49 items per
user, 400 steps of full softmax). A user's own file inherits none of that blindly: after preprocess,
``choose_defaults`` looks at the data's statistics (catalogue size, sequence lengths, training
windows) and picks the loss, the context, the batch, the learning rate, the regularisation and a
training budget counted in epochs with early stopping on validation. Each rule cites the tuned
recipe or measurement it comes from (``bench/recommend_beauty.toml``, ``bench/recommend_ml100k.toml``,
docs/benchmarks/recommend.md). A key the user set with ``--set`` or ``--config`` is never touched.

Everything here is a pure function of the data and the config: no clock, no machine, so the same
command on the same file chooses the same settings and trains the same weights.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Collection

import numpy as np


@dataclass
class AutoConfig:
    enabled: bool = field(default=True, metadata={"help": "with data.path: choose the settings you did not set from the data's statistics (printed, and recorded in the manifest under stages.preprocess.auto_settings); false: the declared defaults (the marketplace's recipe)"})
    full_softmax_max_items: int = field(default=20_000, metadata={"help": "model.loss: full softmax up to this many items, sampled softmax with in-batch negatives above. The full softmax scores every item for every training position, so its cost grows with the catalogue while the sampled one stays at n_negatives + the batch's targets (~6k columns). A training step of 512 Beauty-like windows on one thread took 1.3x the sampled one's time at 10k items, 2.2x at 20k and 5.9x at Beauty's 54.5k (bench/recommend_defaults.py --loss-timing): up to 20k the exact loss costs at most about twice as much"})
    batch_positions: int = field(default=4096, metadata={"help": "train.batch_size aims at this many target positions per step: the tuned recipes sit at 4-6k (Beauty 512 windows x 7.7 targets, MovieLens-100k 128 x 41, marketplace 128 x 47), so their learning rates carry over"})
    min_steps: int = field(default=2000, metadata={"help": "the epoch cap holds at least this many steps (the Beauty recipe's cosine ran 1,896); early stopping usually ends sooner"})
    epoch_bounds: list[int] = field(default_factory=lambda: [20, 200], metadata={"help": "train.max_epochs stays within [lo, hi]"})
    eval_min_steps: int = field(default=25, metadata={"help": "validate every epoch, or every few epochs when an epoch is shorter than this many steps"})
    patience: int = field(default=5, metadata={"help": "train.patience: stop after this many validations without a new best"})
    val_cases: int = field(default=10_000, metadata={"help": "eval.val_cases: validation users scored during training (all when fewer); sqrt(10,000 / 2,000) = 2.2x less noise than the default 2,000"})


@dataclass(frozen=True)
class DataStats:
    """What the chooser reads: the preprocessed data's shape, not its contents."""

    items: int  # catalogue size N
    seq_lengths: np.ndarray  # (U,) each user's whole sequence length
    train_lengths: np.ndarray  # (U,) each user's training prefix length
    val_cases: int
    embedded: bool  # the generated marketplace (its defaults are its recipe)

    @classmethod
    def of(cls, prep: Any, embedded: bool) -> "DataStats":
        """From a ``guimo.data.recdata.Prepared``."""
        return cls(prep.n_items, np.asarray(prep.seqs.lengths), np.asarray(prep.split.train_end), len(prep.split.val_users), embedded)


def windows(train_lengths: np.ndarray, max_len: int) -> tuple[int, int]:
    """(training windows, target positions) for ``max_len``, as ``NextItemWindows`` cuts them.

    A training prefix of length L has L - 1 targets, cut into ceil((L - 1) / max_len) windows.
    """
    targets = np.maximum(np.asarray(train_lengths, dtype=np.int64) - 1, 0)
    return int(np.ceil(targets / max_len).sum()), int(targets.sum())


def choose_defaults(stats: DataStats, cfg: Any, set_keys: Collection[str]) -> tuple[Any, dict[str, str]]:
    """Return ``(cfg, reasons)``: ``cfg`` with the settings the user did not set chosen for ``stats``.

    ``set_keys``: the dotted keys the user set (``train.lr``, ...); they keep their values, and a
    rule that depends on one reads the user's value. ``reasons`` maps each chosen key to one line
    saying why. With ``cfg.auto.enabled`` false nothing is chosen. On the embedded marketplace only
    the loss follows the catalogue (its other defaults are its recipe).
    """
    a = cfg.auto
    reasons: dict[str, str] = {}
    if not a.enabled:
        return cfg, reasons
    sections = {name: getattr(cfg, name) for name in ("model", "train", "eval")}

    def get(key: str) -> Any:
        section, name = key.split(".")
        return getattr(sections[section], name)

    def choose(key: str, value: Any, why: str) -> None:
        if key in set_keys:
            return
        section, name = key.split(".")
        sections[section] = dataclasses.replace(sections[section], **{name: value})
        reasons[key] = why

    n = stats.items
    if n > a.full_softmax_max_items:
        choose("model.loss", "sampled", f"{n:,} items > auto.full_softmax_max_items ({a.full_softmax_max_items:,}): sampled softmax")
        if get("model.loss") == "sampled":
            choose("model.in_batch_negatives", True, "the batch's targets as negatives too, logQ-corrected (uniform ones alone: Beauty val NDCG@10 0.0098 vs 0.0219)")
    else:
        choose("model.loss", "ce", f"{n:,} items <= auto.full_softmax_max_items ({a.full_softmax_max_items:,}): full softmax")
    if stats.embedded:
        return dataclasses.replace(cfg, **sections), reasons

    p90 = int(np.percentile(stats.seq_lengths, 90)) if len(stats.seq_lengths) else 1
    max_len = next((m for m in (50, 100, 200) if m >= p90), 200)
    held = "the smallest of 50/100/200 that holds them" if p90 <= 200 else "200 at most"
    choose("model.max_len", max_len, f"90% of users have <= {p90} items: {held} (SASRec: 50 on Amazon, 200 on MovieLens-1M)")
    sampled = get("model.loss") == "sampled"
    if sampled:  # the block and regularisation validated with this loss on a large sparse catalogue
        why = "the original SASRec block, +12% val NDCG@10 on Beauty's 54k items (bench/recommend_beauty.toml)"
        choose("model.input_scale", True, why)
        choose("model.d_ff", get("model.d_model"), why)
        choose("model.activation", "relu", why)
        choose("train.weight_decay", 0.3, "Beauty recipe: +3% val NDCG@10 over 3 seeds")
    choose("model.dropout", 0.2, "the tuned Beauty and MovieLens-100k recipes")

    n_windows, n_targets = windows(stats.train_lengths, get("model.max_len"))
    per_window = n_targets / max(1, n_windows)
    batch = 2 ** round(math.log2(max(1.0, a.batch_positions / per_window)))
    batch = int(min(512, max(32, batch), _floor_pow2(max(1, n_windows // 8))))
    choose("train.batch_size", batch, f"~{a.batch_positions:,} targets per step at {per_window:.1f} per window; {n_windows:,} windows")
    lr = 2e-3 if sampled else 3e-3
    choose("train.lr", lr, "tuned at ~4-6k targets per step: " + ("Beauty recipe, sampled softmax" if sampled else "MovieLens-100k recipe, full softmax"))

    spe = max(1, n_windows // get("train.batch_size"))  # the loop drops the last partial batch
    lo, hi = a.epoch_bounds
    if "train.max_steps" in set_keys and "train.max_epochs" not in set_keys:
        pass  # the user's step budget rules; an epoch cap would cut it
    elif "train.max_epochs" in set_keys and get("train.max_epochs") is not None:
        choose("train.max_steps", math.ceil(get("train.max_epochs") * spe), "your train.max_epochs decides the budget")
    else:
        epochs = int(min(hi, max(lo, math.ceil(a.min_steps / spe))))
        choose("train.max_epochs", float(epochs), f"cap: >= {a.min_steps:,} steps at {spe} steps per epoch, within {lo}-{hi} epochs; early stopping may end sooner")
        if get("train.max_epochs") is not None:
            choose("train.max_steps", math.ceil(get("train.max_epochs") * spe), f"max_epochs x {spe} steps per epoch (the cosine decays over it)")
    every = spe * math.ceil(a.eval_min_steps / spe)
    choose("train.eval_every", every, f"every {every // spe} epoch(s)")
    choose("train.checkpoint_every", get("train.eval_every"), "at each validation")
    choose("train.patience", a.patience, f"stop after {a.patience} validations without a new best; the best weights are kept")
    choose("train.warmup_steps", int(min(100, max(20, spe))), "about one epoch, 20-100 steps")
    val = a.val_cases if stats.val_cases > a.val_cases else None
    choose("eval.val_cases", val, f"{min(stats.val_cases, a.val_cases):,} users (the Beauty recipe's 10,000 at most): on the default 2,000 an NDCG@10 near 0.04 is ~2.2x noisier, too noisy to stop on")
    return dataclasses.replace(cfg, **sections), reasons


def _floor_pow2(x: int) -> int:
    return 1 << (max(1, x).bit_length() - 1)


def settings_of(cfg: Any, reasons: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``{key: {"value": ..., "why": ...}}`` for the manifest and ``data/auto_settings.json``."""
    out = {}
    for key, why in reasons.items():
        section, name = key.split(".")
        out[key] = {"value": getattr(getattr(cfg, section), name), "why": why}
    return out


def apply_settings(cfg: Any, settings: dict[str, dict[str, Any]]) -> Any:
    """``cfg`` with recorded ``settings`` applied (type-checked as a config file would be)."""
    from guimo.config import merge

    nested: dict[str, dict[str, Any]] = {}
    for key, entry in settings.items():
        section, name = key.split(".")
        nested.setdefault(section, {})[name] = entry["value"]
    return merge(cfg, nested)
