"""What the tabular scenarios (`fraud`, `credit`, `health`) share: a table in, the FT-Transformer against logistic
regression and LightGBM out, on one split, calibrated, with the verdict said plainly.

A scenario is ``TabularScenario(name=..., config_cls=..., default_source=..., file_source=...)``: its config class
(the sections below, with its own data section) and two functions that give a ``TableSource`` (a frame, its target,
its time column, a cost matrix): the embedded default and a recognised file (PaySim, German credit). Everything
else is here, so the three behave the same way:

- collect: the source into ``data/raw.csv`` and ``data/source.json`` (target, time column, cost matrix);
- with ``preprocess.anonymize``: personal data replaced before the rows are first written into the run (in collect,
  so no copy of them ever lands there; ``data/anonymize_report.json`` says what was replaced where);
- preprocess: column roles (``guimo.data.tabular.infer_columns``:
  id-like columns are left out and named in the report); a time-based split when the table has a time column (train on
  the past, test on the future), else a stratified one; ``data.folds``/``data.fold`` for k-fold (stratified folds, or
  forward-chaining folds in time); ``data.fraction`` keeps a nested, stratified share of the training rows (learning
  curves); the ``TableEncoder`` fitted on the training rows only (``data/encoder.json``) and the encoded splits;
- init/train: ``guimo.models.tabular.FTTransformer`` in the shared loop (numeric columns as PLR tokens from 5,000
  training rows up, linear tokens below and under DP-SGD: ``numeric_embedding``), with the class-imbalance loss of
  ``model.imbalance`` (default ``weighted``: BCE with positives weighted sqrt(negatives / positives), a compromise
  between no weight, which lets a 1% class barely move the gradient, and the full ratio, which makes every step's
  gradient hinge on a handful of rows); below 5,000 training rows a binary table's model starts at the logistic
  regression baseline (``model.linear_start``), and other small tables train an ensemble of 5 such models side by side
  (``model.members``; ``ensemble_members`` says why); early stopping on validation ROC-AUC (``eval.select_on``),
  accuracy for K classes, R^2 for regression;
- evaluate: calibration on validation (``calibration.json``: the weight's logit shift log(pos_weight) taken off, then
  one temperature; for K classes the temperature alone), test metrics of ``guimo.evaluate.tabular`` for the
  transformer and the baselines (``guimo.evaluate.baselines_tab``: logistic regression and LightGBM, always run, on
  the same rows; the LightGBM booster is saved in the run), the cost at the Bayes-optimal threshold of the cost matrix
  where there is one, and ``metrics.json`` in the shape of every scenario's (model, baselines, val), so the report's
  verdict (``guimo.evaluate.verdict``) says which wins.

Served by ``guimo.inference.tabular.TabularPredictor`` (``/v1/classifications`` with rows, ``guimo predict --batch``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np

from guimo.errors import GuimoError
from guimo.inference.tabular import CALIBRATION, ENCODER, TABLE
from guimo.scenarios.base import TrainInputs
from guimo.train.config import TrainConfig

if TYPE_CHECKING:
    import pandas as pd

SPLITS = ("train", "val", "test")
RAW, SOURCE = "raw.csv", "source.json"  # under data/: the collected table and what collect knew about it
ANONYMIZE_REPORT = "anonymize_report.json"  # under data/: what preprocess.anonymize replaced, per column (counts only)


@dataclass
class TableSource:
    """A table and what its origin says about it."""

    frame: "pd.DataFrame"
    target: str
    description: str  # for the report: where the rows came from
    time_column: str | None = None  # orders the split (transactions); never a feature
    cost_matrix: list[list[float]] | None = None  # [true][predicted] over [negative, positive]
    task: str | None = None  # forced task (None: inferred from the target)


@dataclass
class TabularDataConfig:
    path: str | None = field(default=None, metadata={"help": "a CSV/TSV or Parquet file (None: the scenario's embedded default)"})
    target: str | None = field(default=None, metadata={"help": "the column to predict (None: the source's own, e.g. isFraud; required for other files)"})
    time_column: str | None = field(default=None, metadata={"help": "a column ordering the rows in time: train on the past, test on the future (None: the source's own, if any; 'none': stratified split)"})
    drop: list[str] = field(default_factory=list, metadata={"help": "columns to leave out besides the detected ids (e.g. a leaking column)"})
    task: Literal["auto", "binary", "multiclass", "regression"] = field(default="auto", metadata={"help": "auto: from the target (2 values binary, few integers multiclass, else regression)"})
    folds: int = field(default=0, metadata={"help": "k-fold cross-validation: test on fold data.fold of k (0: one train/val/test split)"})
    fold: int = field(default=0, metadata={"help": "which fold is the test set (0..folds-1)"})
    val_fraction: float = field(default=0.15, metadata={"help": "share of the rows for validation (early stopping, calibration, LightGBM's trees)"})
    test_fraction: float = field(default=0.15, metadata={"help": "share of the rows for test (without folds)"})
    fraction: float = field(default=1.0, metadata={"help": "keep this share of each class's training rows (nested: a smaller share is a subset of a larger one); learning curves"})
    scaling: Literal["quantile", "standard"] = field(default="quantile", metadata={"help": "numeric columns: quantile to a normal (robust to heavy-tailed amounts) or standardised"})

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 0.5:
                raise ValueError(f"{name} must be in (0, 0.5)")
        if not 0 < self.fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        if self.folds < 0 or self.folds == 1:
            raise ValueError("folds must be 0 (no cross-validation) or at least 2")
        if self.folds and not 0 <= self.fold < self.folds:
            raise ValueError(f"fold must be in 0..{self.folds - 1}")


@dataclass
class TabularModelConfig:
    d_model: int = field(default=64, metadata={"help": "token width (FT-Transformer's d_token; 64 x 3 blocks trained 2x faster than 96 here at equal quality)"})
    n_layer: int = field(default=3, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads; divide d_model"})
    ff_mult: float = field(default=4 / 3, metadata={"help": "MLP width = d_model x this"})
    dropout: float = field(default=0.1, metadata={"help": "dropout on attention and residual branches (dropout_layout=uniform)"})
    dropout_layout: Literal["auto", "uniform", "paper"] = field(default="auto", metadata={
        "help": "uniform: `dropout` on the attention weights and the residual branches; paper: the FT-Transformer's "
                "(attention 0.2, inside the MLP 0.1, residual 0); auto: paper from 5,000 training rows up, uniform below "
                "(see dropout_layout)"})
    imbalance: Literal["weighted", "focal", "none"] = field(default="weighted", metadata={
        "help": "class imbalance: weighted (BCE / cross-entropy with sqrt inverse-frequency weights; default), focal (Lin et al. 2017), none"})
    pos_weight: float | None = field(default=None, metadata={"help": "weighted, binary: the positives' weight (None: sqrt(negatives / positives))"})
    focal_gamma: float = field(default=2.0, metadata={"help": "focal: the exponent of (1 - p_t)"})
    members: int | None = field(default=None, metadata={
        "help": "an ensemble of this many FT-Transformers trained side by side, logits averaged (None: auto, 5 below 5,000 "
                "training rows, else 1; 1 for a model started at the logistic regression and under DP-SGD; see ensemble_members)"})
    num_embedding: Literal["auto", "linear", "plr"] = field(default="auto", metadata={
        "help": "numeric column -> token: plr (periodic -> linear -> ReLU, Gorishniy et al. 2022), linear (the FT-Transformer's "
                "x W + b), or auto: plr from 5,000 training rows up, linear below and under DP-SGD (see numeric_embedding)"})
    n_frequencies: int = field(default=16, metadata={"help": "plr: trained frequencies per numeric column"})
    frequency_scale: float = field(default=0.1, metadata={"help": "plr: their initial standard deviation on the scaled columns (the paper's sigma)"})
    linear_skip: bool = field(default=False, metadata={"help": "add a linear map of the feature tokens to the logits (a logistic regression beside the blocks)"})
    linear_start: Literal["auto", "logistic", "none"] = field(default="auto", metadata={
        "help": "logistic: start from the logistic regression baseline fitted on the training rows (the linear skip set to its "
                "coefficients, the head at zero; ridge for regression), the whole model then at 0.4x train.lr; none: random "
                "weights; auto: logistic for binary tasks below 5,000 training rows, none else and under DP-SGD (see linear_start)"})

    def __post_init__(self) -> None:
        if self.members is not None and self.members < 1:
            raise ValueError("members must be at least 1 (or None: auto)")
        if self.num_embedding not in ("auto", "linear", "plr"):
            raise ValueError(f"num_embedding must be auto, linear or plr, not {self.num_embedding!r}")
        if self.linear_start not in ("auto", "logistic", "none"):
            raise ValueError(f"linear_start must be auto, logistic or none, not {self.linear_start!r}")


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(d_model=32, n_layer=1, n_head=4, members=1),  # one model: seconds, for tests and tours
    "small": dict(d_model=64, n_layer=2, n_head=4),
    "default": dict(d_model=64, n_layer=3, n_head=4),
    "wide": dict(d_model=128, n_layer=3, n_head=8),
}


@dataclass
class TabularPreprocessConfig:
    anonymize: bool = field(default=False, metadata={"help": "replace personal data (e-mails, phones, cards, IBANs, IPs, ID numbers) before the rows are written into the run (keyed pseudonyms with GUIMO_ANONYMIZE_KEY, else masks; done when collect reads the source)"})


@dataclass
class TabularEvalConfig:
    baselines: list[str] = field(default_factory=lambda: ["logistic_regression", "lightgbm"], metadata={"help": "logistic_regression, lightgbm: fitted on the same training rows"})
    lr_c: float = field(default=1.0, metadata={"help": "inverse L2 strength of the logistic regression"})
    lgb_learning_rate: float = field(default=0.05, metadata={"help": "LightGBM's shrinkage (trees chosen by early stopping on validation)"})
    lgb_num_leaves: int = field(default=31, metadata={"help": "LightGBM's leaves per tree"})
    batch_size: int = field(default=2048, metadata={"help": "rows per forward pass when scoring"})
    select_on: Literal["roc_auc", "pr_auc", "loss"] = field(default="roc_auc", metadata={
        "help": "binary: what early stopping and the kept checkpoint follow on validation: roc_auc, pr_auc (for rare positives, "
                "where the top of the ranking matters) or loss (the log-loss with the weight's shift taken off)"})

    def __post_init__(self) -> None:
        from guimo.evaluate.baselines_tab import BASELINES

        unknown = set(self.baselines) - set(BASELINES)
        if unknown:
            raise ValueError(f"unknown baseline(s) {', '.join(sorted(unknown))}; choose from {', '.join(BASELINES)}")


def default_train() -> TrainConfig:
    """Batch 64 at 5e-4 (AdamW, tiny weight decay as in the FT-Transformer paper), validated every 10 steps and stopped
    after 20 validations (200 steps) without a better one; at most 2,000 steps (seconds to a minute on 2 cores). The
    best validation comes early on these small sets (step 50-125 on breast cancer and German credit), so validating
    every 10 steps instead of 25 keeps a better checkpoint: on 5-fold splits it raised the transformer's test ROC-AUC
    on 4 of the 5 folds tried and left the fifth unchanged (e.g. breast cancer fold 4 0.938 -> 0.965, German credit
    fold 0 0.738 -> 0.751; bench/risk.py has the 5-fold means)."""
    return TrainConfig(max_steps=2000, batch_size=64, lr=5e-4, warmup_steps=50, weight_decay=1e-5, eval_every=10, patience=20,
                       checkpoint_every=500, log_every=25, min_lr_ratio=0.1)


# -- splits ------------------------------------------------------------------------------------------------------


SMALL_TABLE_ROWS = 5000  # below this many training rows the default model is an ensemble
SMALL_TABLE_MEMBERS = 5


def ensemble_members(members: int | None, train_rows: int, *, private: bool = False, started: bool = False) -> int:
    """``model.members``, or by default 5 below 5,000 training rows and 1 above: a few hundred rows leave one run's
    result from random weights at the mercy of its seed and of a noisy validation pick, and 5 small models cost
    seconds there; on large tables one model is both steadier and the only one that fits the time budget.

    A model that starts at the logistic regression (``started``, see ``linear_start``) is one model: the start, not
    the draw, sets where it begins, and the 5 members cost 5x the time for nothing measured (German credit's inner
    validation, docs/benchmarks/risk.md: one model 0.773 / 0.754 / 0.755 at seeds 0-2 against 0.755 for 5; breast
    cancer 0.992 for one, as logistic regression), while 5 members took German credit's slowest fold to 526 s, past
    the issue's 5 minutes. Under DP-SGD the default is 1: the noise is added per parameter, so 5x the parameters under
    one clipping norm drown the signal."""
    if members is not None:
        return members
    if private or started:
        return 1
    return SMALL_TABLE_MEMBERS if train_rows < SMALL_TABLE_ROWS else 1


def numeric_embedding(choice: str, train_rows: int, *, private: bool = False) -> str:
    """``model.num_embedding``, with auto resolved: plr from 5,000 training rows up, linear below them and under
    DP-SGD. Measured on inner validation splits (bench/risk_recipes.py, docs/benchmarks/risk.md): on the generated
    payments (~5,000-27,000 training rows) plr, trained longer and stopped on PR-AUC or log-loss, reached PR-AUC
    0.334-0.343 where linear tokens reached 0.284-0.295 (LightGBM 0.366); on breast cancer and German credit (a few hundred rows) it moved ROC-AUC by -0.005 and
    +0.006, inside the seed noise, so the smaller model stays. Under DP-SGD Opacus needs every parameter in a layer it
    has a per-sample gradient rule for (the linear tokenizer's embedding tables; plr's per-column einsum has none)."""
    if choice == "plr" and private:
        raise GuimoError("model.num_embedding=plr cannot train under DP-SGD (Opacus has no per-sample gradients for it); "
                         "use model.num_embedding=linear or auto")
    if choice != "auto":
        return choice
    return "linear" if private or train_rows < SMALL_TABLE_ROWS else "plr"


PAPER_DROPOUT = {"dropout": 0.0, "attention_dropout": 0.2, "ffn_dropout": 0.1}  # Gorishniy et al. 2021's defaults


def dropout_layout(choice: str, dropout: float, train_rows: int) -> dict[str, float | None]:
    """``model.dropout_layout`` as the tabular model's dropout fields, with auto resolved: the FT-Transformer paper's
    layout from 5,000 training rows up, ``dropout`` on attention and residual below. Measured on the generated payments'
    inner validation (bench/risk_recipes.py, docs/benchmarks/risk.md, 2026-12-07, 5 folds, seeds 0 / 1): PR-AUC 0.326 /
    0.326 and ROC-AUC 0.954 / 0.939 with 0.1 uniform, 0.334 / 0.379 and 0.964 / 0.954 with the paper's (LightGBM 0.366,
    0.970); it also takes 6 of a step's 9 dropout draws away. The small tables keep the layout their linear start and
    ensembles were measured with."""
    if choice not in ("auto", "uniform", "paper"):
        raise GuimoError(f"model.dropout_layout = {choice!r}: use auto, uniform or paper")
    if choice == "paper" or (choice == "auto" and train_rows >= SMALL_TABLE_ROWS):
        return dict(PAPER_DROPOUT)
    return {"dropout": dropout, "attention_dropout": None, "ffn_dropout": 0.0}


START_LR_MULT = 0.4  # a model started at the linear fit trains at 0.4x train.lr (2e-4 by default)


def linear_start(choice: str, task: str, train_rows: int, *, private: bool = False) -> bool:
    """``model.linear_start``, with auto resolved: start from the logistic regression baseline for binary tasks below
    5,000 training rows, not above, not for other tasks and not under DP-SGD.

    Measured on German credit's inner validation splits (bench/risk_recipes.py, docs/benchmarks/risk.md; logistic
    regression 0.758 ROC-AUC): 5 members from random weights 0.740, one model with a randomly initialised linear skip
    0.745; started at the logistic regression, 5 members 0.755 at train.lr 5e-4 and at 2e-4, one model 0.755 at 5e-4 and
    0.773 at 2e-4, so the start trains at 0.4x the lr (``START_LR_MULT``). Multiclass
    and regression tables were not measured, so auto leaves them alone (``logistic`` works for them: multinomial
    logistic regression, ridge). Under DP-SGD the fit would read the rows without noise, outside the privacy account:
    an explicit ``logistic`` there is refused."""
    if choice == "logistic" and private:
        raise GuimoError("model.linear_start=logistic cannot be used with DP-SGD: the logistic regression would see the training "
                         "rows outside the privacy account; use model.linear_start=none or auto")
    if choice != "auto":
        return choice == "logistic"
    return task == "binary" and train_rows < SMALL_TABLE_ROWS and not private


def _private(cfg) -> bool:
    privacy = getattr(cfg, "privacy", None)
    return privacy is not None and getattr(privacy, "epsilon", None) is not None


def keep_fraction(y: np.ndarray, idx: np.ndarray, fraction: float, seed: int, n_rows: int) -> np.ndarray:
    """The first ``fraction`` of each class's rows among ``idx`` in one seeded order of all ``n_rows`` rows (at least
    one per class): a smaller share is a subset of a larger one. A regression target is one class."""
    if fraction >= 1:
        return idx
    rank = np.random.default_rng(seed).permutation(n_rows)
    strata = y[idx] if y.dtype.kind in "iub" else np.zeros(len(idx), dtype=np.int64)
    out = []
    for c in np.unique(strata):
        rows = idx[strata == c]
        rows = rows[np.argsort(rank[rows], kind="stable")]
        out.append(rows[: max(1, round(fraction * len(rows)))])
    return np.sort(np.concatenate(out))


def split_indices(df: "pd.DataFrame", y_strata: np.ndarray, d: TabularDataConfig, time_column: str | None, seed: int
                  ) -> tuple[dict[str, np.ndarray], str]:
    """Row positions of train/val/test and a sentence saying how they were chosen.

    In time (``time_column``): one split cuts the time-ordered rows into train, val, test; ``k`` folds chain forward
    (fold i tests on the (i+2)-th of k+1 equal time blocks and trains on everything before it, its last
    ``val_fraction`` in time validating), so no fold ever trains on the future. Otherwise stratified by class.
    """
    from guimo.data.tabular import stratified_folds, stratified_split, time_split

    n = len(df)
    if time_column:
        order_df = df.assign(_pos=np.arange(n))
        if not d.folds:
            test_f = d.test_fraction
            parts = time_split(order_df, time_column, (1 - d.val_fraction - test_f, d.val_fraction, test_f))
            return {s: p["_pos"].to_numpy() for s, p in zip(SPLITS, parts)}, \
                f"in time by {time_column!r}: the earliest {1 - d.val_fraction - test_f:.0%} train, the next {d.val_fraction:.0%} validate, the last {test_f:.0%} test"
        blocks = time_split(order_df, time_column, [1 / (d.folds + 1)] * (d.folds + 1))
        past = [b["_pos"].to_numpy() for b in blocks[: d.fold + 1]]
        history = order_df.iloc[np.concatenate(past)]
        train, val = time_split(history, time_column, (1 - d.val_fraction, d.val_fraction))
        return {"train": train["_pos"].to_numpy(), "val": val["_pos"].to_numpy(), "test": blocks[d.fold + 1]["_pos"].to_numpy()}, \
            (f"forward-chaining fold {d.fold} of {d.folds} in time by {time_column!r}: test on time block {d.fold + 2} of {d.folds + 1}, "
             f"train on the blocks before it (their last {d.val_fraction:.0%} validate)")
    if not d.folds:
        tr, va, te = stratified_split(y_strata, (1 - d.val_fraction - d.test_fraction, d.val_fraction, d.test_fraction), seed=seed)
        return {"train": tr, "val": va, "test": te}, f"stratified: {1 - d.val_fraction - d.test_fraction:.0%} train, {d.val_fraction:.0%} validate, {d.test_fraction:.0%} test"
    rest, test = stratified_folds(y_strata, d.folds, seed=seed)[d.fold]
    share = d.val_fraction / (1 - 1 / d.folds)
    tr_rel, va_rel = stratified_split(y_strata[rest], (1 - share, share), seed=seed + 1)
    return {"train": rest[tr_rel], "val": rest[va_rel], "test": np.sort(test)}, \
        f"stratified {d.folds}-fold, test fold {d.fold}; {d.val_fraction:.0%} of the rows validate"


# -- the training set --------------------------------------------------------------------------------------------


class TableBatches:
    """Encoded rows for the training loop: ``batch(idx)`` -> {"x_num", "x_cat", "y"} tensors."""

    tokens_per_example = 1

    def __init__(self, x_num: np.ndarray, x_cat: np.ndarray, y: np.ndarray) -> None:
        self.x_num, self.x_cat, self.y = x_num, x_cat, y

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, indices: list[int]):
        import torch

        return {"x_num": torch.from_numpy(self.x_num[indices]), "x_cat": torch.from_numpy(self.x_cat[indices]),
                "y": torch.from_numpy(self.y[indices])}


def load_split(run, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_num, x_cat, y) of ``data/{split}.npz``; y in the model's units (standardised for regression)."""
    with np.load(run.data_dir / f"{split}.npz") as z:
        return z["x_num"], z["x_cat"], z["y"]


# -- the scenario ------------------------------------------------------------------------------------------------


class TabularScenario:
    """A tabular scenario; ``default_source(cfg)`` gives the embedded table, ``file_source(cfg)`` reads ``data.path``."""

    headline = "roc_auc"  # binary; metrics.json names the headline of a multiclass (accuracy) or regression (r2) run
    higher_is_better = True
    serve_kind = "classification"

    def __init__(self, *, name: str, summary: str, config_cls: type, default_source: Callable[[Any], TableSource],
                 file_source: Callable[[Any], TableSource] | None = None) -> None:
        from guimo.models.tabular import TabularConfig

        self.name, self.summary, self.config_cls = name, summary, config_cls
        self.default_source, self.file_source = default_source, file_source or read_any_table
        self.presets = {"model": MODEL_PRESETS}
        self.model_config_cls = TabularConfig

    # collect / preprocess ---------------------------------------------------------------------------------------

    def collect(self, ctx) -> dict[str, Any]:
        from guimo.data.fetch import fingerprint
        from guimo.io import atomic_write_bytes, atomic_write_json

        src = self.default_source(ctx.cfg) if ctx.cfg.data.path is None else self.file_source(ctx.cfg)
        frame, info = src.frame, {}
        if ctx.cfg.preprocess.anonymize:  # before the run holds a copy of the rows: personal data never lands in it
            frame, report = anonymize(frame, ctx.cfg.data.target or src.target)
            atomic_write_json(ctx.run.data_dir / ANONYMIZE_REPORT, report)
            info["anonymized"] = summary_of(report)
        data = frame.to_csv(index=False).encode()
        atomic_write_bytes(ctx.run.data_dir / RAW, data)
        atomic_write_json(ctx.run.data_dir / SOURCE, {"target": src.target, "time_column": src.time_column, "cost_matrix": src.cost_matrix,
                                                       "task": src.task, "description": src.description})
        return {"source": src.description, "rows": len(frame), "columns": len(frame.columns), "bytes": len(data),
                "fingerprint": fingerprint([("rows", data)]), **info}

    def preprocess(self, ctx) -> dict[str, Any]:
        from guimo.data.tabular import TableEncoder, infer_columns, read_table
        from guimo.io import atomic_write_json, read_json

        cfg, d = ctx.cfg, ctx.cfg.data
        src = read_json(ctx.run.data_dir / SOURCE)
        df = read_table(ctx.run.data_dir / RAW)
        target = d.target or src["target"]
        if target is None:
            raise GuimoError(f"name the column to predict: --set data.target=COLUMN (columns: {', '.join(map(str, df.columns))})")
        time_column = src["time_column"] if d.time_column is None else (None if d.time_column.lower() == "none" else d.time_column)
        if time_column == target:
            raise GuimoError(f"data.time_column and data.target are both {target!r}")
        task = None if d.task == "auto" else d.task
        columns = infer_columns(df, target, drop=[c for c in d.drop], time_column=time_column, task=task or src.get("task"),
                                source=d.path or src["description"])
        if time_column is not None and time_column not in df.columns:
            raise GuimoError(f"no time column {time_column!r}; columns: {', '.join(map(str, df.columns))} (data.time_column=none: a stratified split)")
        y_all = target_strata(df, columns)
        parts, how = split_indices(df, y_all, d, time_column, cfg.seed)
        parts["train"] = keep_fraction(y_all, parts["train"], d.fraction, cfg.seed, len(df))
        frames = {s: df.iloc[parts[s]] for s in SPLITS}
        for s, f in frames.items():
            if len(f) == 0:
                raise GuimoError(f"the {s} split is empty; check data.val_fraction, data.test_fraction and data.folds")
        encoder = TableEncoder.fit(frames["train"], columns, scaling=d.scaling)
        encoded = {s: encoder.transform(f) for s, f in frames.items()}
        table: dict[str, Any] = {"task": columns.task, "target": target, "classes": [_jsonable(c) for c in columns.classes],
                                 "cost_matrix": src.get("cost_matrix"), "time_column": time_column, "split": how, "source": src["description"]}
        info: dict[str, Any] = {"task": columns.task, "target": target}
        y_train = encoded["train"][2]
        if columns.task == "regression":
            mean, std = float(y_train.mean()), float(y_train.std()) or 1.0
            table.update(y_mean=mean, y_std=std)
        else:
            counts = np.bincount(y_train, minlength=len(columns.classes))
            if (counts == 0).any():
                raise GuimoError(f"class(es) {', '.join(str(columns.classes[i]) for i in np.flatnonzero(counts == 0))} have no training rows "
                                 f"({how}); use more data or a larger data.fraction")
            info["labels"] = len(columns.classes)
            if columns.task == "binary":
                info["positive_rate"] = round(float(y_train.mean()), 6)
                table["pos_weight"] = _pos_weight(cfg.model, counts)
            else:
                table["class_weight"] = (np.sqrt(counts.sum() / (len(counts) * counts))).tolist()
        for s in SPLITS:
            x_num, x_cat, y = encoded[s]
            if columns.task == "regression":
                y = ((y - table["y_mean"]) / table["y_std"]).astype(np.float32)
            np.savez(ctx.run.data_dir / f"{s}.npz", x_num=x_num, x_cat=x_cat, y=y)
        atomic_write_json(ctx.run.data_dir / ENCODER, encoder.to_json())
        atomic_write_json(ctx.run.data_dir / TABLE, table)
        info.update({f"{s}_rows": len(frames[s]) for s in SPLITS})
        info.update(numeric_columns=len(columns.numeric), categorical_columns=len(columns.categorical),
                    dropped_ids=", ".join(columns.dropped_ids) or "none",
                    dropped=", ".join(f"{k} ({v})" for k, v in columns.dropped.items()) or "none", split=how)
        if (ctx.run.data_dir / ANONYMIZE_REPORT).exists():
            info["anonymized"] = summary_of(read_json(ctx.run.data_dir / ANONYMIZE_REPORT))
        return info

    # init / train -----------------------------------------------------------------------------------------------

    def model_config(self, ctx):
        from guimo.data.tabular import TableEncoder
        from guimo.io import read_json
        from guimo.models.tabular import TabularConfig

        enc = TableEncoder.from_json(read_json(ctx.run.data_dir / ENCODER))
        table = read_json(ctx.run.data_dir / TABLE)
        m = ctx.cfg.model
        n_out = len(table["classes"]) if table["task"] == "multiclass" else 1
        train_rows = len(load_split(ctx.run, "train")[2])
        private = _private(ctx.cfg)
        start = linear_start(m.linear_start, table["task"], train_rows, private=private)
        embedding = numeric_embedding(m.num_embedding, train_rows, private=private)
        if start and embedding != "linear":
            if m.num_embedding == "plr":
                raise GuimoError("model.linear_start=logistic needs linear numeric tokens; drop model.num_embedding=plr or set "
                                 "model.linear_start=none")
            embedding = "linear"  # auto chose plr (5,000 rows and up) for a start the user asked for
        return TabularConfig(n_num=enc.n_num, cat_cardinalities=enc.cardinalities, n_out=n_out, task=table["task"], d_model=m.d_model,
                             n_layer=m.n_layer, n_head=m.n_head, ff_mult=m.ff_mult, **dropout_layout(m.dropout_layout, m.dropout, train_rows),
                             n_members=ensemble_members(m.members, train_rows, private=private, started=start),
                             num_embedding=embedding, n_frequencies=m.n_frequencies, frequency_scale=m.frequency_scale,
                             linear_skip=m.linear_skip or start, lr_mult=START_LR_MULT if start else 1.0)

    def build_model(self, model_config):
        from guimo.models.tabular import FTTransformer

        return FTTransformer(model_config)

    def warm_start(self, ctx, model) -> dict[str, Any] | None:
        """With ``model.linear_start`` on (see ``linear_start``), set the model to the logistic regression baseline (ridge
        for regression) fitted on the training rows, as evaluate fits it (``eval.lr_c``); the init stage calls this after
        building the model, and records what it returns. Deterministic (lbfgs on the full training rows)."""
        from guimo.evaluate.baselines_tab import fit_logistic
        from guimo.io import read_json
        from guimo.models.tabular import linear_warm_start

        if ctx.cfg.init.checkpoint:
            return None
        table = read_json(ctx.run.data_dir / TABLE)
        x_num, x_cat, y = load_split(ctx.run, "train")
        if not linear_start(ctx.cfg.model.linear_start, table["task"], len(y), private=_private(ctx.cfg)):
            return None
        fitted = fit_logistic(table["task"], model.cfg.cat_cardinalities, (x_num, x_cat, y), c=ctx.cfg.eval.lr_c, seed=ctx.cfg.seed)
        intercept = np.atleast_1d(fitted.model.intercept_).astype(np.float64)
        if table["task"] == "binary":  # the weighted loss's optimum sits log(pos_weight) above the plain one (evaluate takes it off)
            intercept = intercept + np.log(float(table.get("pos_weight", 1.0)))
        linear_warm_start(model, fitted.model.coef_, intercept)
        kind = "ridge regression" if table["task"] == "regression" else "logistic regression"
        return {"from": f"{kind} (C={ctx.cfg.eval.lr_c:g}) on {len(y)} training rows", "lr_mult": model.cfg.lr_mult}

    def train_inputs(self, ctx) -> TrainInputs:
        import torch

        from guimo.io import read_json
        from guimo.models.tabular import imbalance_loss, predict_logits

        table = read_json(ctx.run.data_dir / TABLE)
        task, m = table["task"], ctx.cfg.model
        x_num, x_cat, y = load_split(ctx.run, "train")
        val = load_split(ctx.run, "val")
        class_weight = torch.tensor(table["class_weight"], dtype=torch.float32) if "class_weight" in table else None
        pos_weight = float(table.get("pos_weight", 1.0))
        metric = {"binary": ctx.cfg.eval.select_on, "multiclass": "accuracy", "regression": "r2"}[task]
        shift = float(np.log(pos_weight))

        def loss_fn(model, batch):
            # an ensemble's members each minimise their own loss (the mean of theirs, not the loss of their mean logits,
            # which would let them co-adapt and lose the diversity averaging needs); one member: the plain loss
            member_logits = model.member_logits(batch["x_num"], batch["x_cat"])  # (M, B, n_out)
            cw = class_weight.to(member_logits.device) if class_weight is not None else None
            return torch.stack([imbalance_loss(z, batch["y"], task=task, kind=m.imbalance, pos_weight=pos_weight, class_weight=cw,
                                               gamma=m.focal_gamma) for z in member_logits]).mean()

        def evaluate(model) -> dict[str, float]:
            z = predict_logits(model, val[0], val[1], ctx.cfg.eval.batch_size)
            if metric == "loss":
                return {"loss": binary_log_loss(val[2], z[:, 0] - shift)}
            return {metric: quick_metric(task, val[2], z, metric)}

        return TrainInputs(train_set=TableBatches(x_num, x_cat, y), loss_fn=loss_fn, evaluate=evaluate, metric=metric,
                           higher_is_better=metric != "loss")

    # evaluate ---------------------------------------------------------------------------------------------------

    def evaluate(self, ctx, model) -> dict[str, Any]:
        from guimo.data.tabular import TableEncoder
        from guimo.evaluate import baselines_tab as B
        from guimo.io import atomic_write_json, read_json
        from guimo.models.tabular import predict_logits

        e = ctx.cfg.eval
        table = read_json(ctx.run.data_dir / TABLE)
        enc = TableEncoder.from_json(read_json(ctx.run.data_dir / ENCODER))
        task = table["task"]
        train, val, test = (load_split(ctx.run, s) for s in SPLITS)
        z_val = predict_logits(model, val[0], val[1], e.batch_size)
        z_test = predict_logits(model, test[0], test[1], e.batch_size)
        calibration = fit_calibration(task, z_val, val[2], table, fit_shift=(ctx.run / "privacy.json").exists())
        atomic_write_json(ctx.run / CALIBRATION, {k: calibration[k] for k in ("temperature", "shift", "threshold", "fitted_on")})
        score = lambda z: apply_calibration(task, z, calibration, table)  # noqa: E731
        out: dict[str, Any] = {"split": "test", "task": task, "headline": HEADLINES[task], "higher_is_better": True,
                               "protocol": {"split": table["split"], "train_rows": len(train[2]), "test_rows": len(test[2]),
                                            "baselines": "fitted on the same training rows, LightGBM's trees chosen on validation"},
                               "val": task_metrics(task, val[2], score(z_val), table, threshold=calibration["threshold"])[0]}
        out["model"], details = task_metrics(task, test[2], score(z_test), table, threshold=calibration["threshold"])
        out["details"] = {"model": details}
        if task != "regression":
            out["calibration"] = calibration_report(task, z_test, test[2], calibration, table)
        baselines: dict[str, Any] = {}
        n_classes = max(2, len(table["classes"]))
        for name in e.baselines:
            if name == "logistic_regression":
                fitted = B.fit_logistic(task, enc.cardinalities, train, c=e.lr_c, seed=ctx.cfg.seed)
            else:
                fitted = B.fit_lightgbm(task, enc.n_num, len(enc.cardinalities), train, val, n_classes=n_classes, seed=ctx.cfg.seed,
                                        learning_rate=e.lgb_learning_rate, num_leaves=e.lgb_num_leaves, feature_names=_safe_names(enc.feature_names))
                B.save_booster(fitted, ctx.run.path)
            pred = fitted.predict(test[0], test[1])
            if task == "regression":
                pred = pred * table["y_std"] + table["y_mean"]
            baselines[name], out["details"][name] = task_metrics(task, test[2], pred, table, threshold=calibration["threshold"])
            out.setdefault("baseline_settings", {})[name] = fitted.info
        out["baselines"] = baselines
        out["columns"] = {"numeric": enc.columns.numeric, "categorical": enc.columns.categorical, "dropped_ids": enc.columns.dropped_ids,
                          "dropped": enc.columns.dropped}
        return out

    def load_predictor(self, run, device: str = "cpu"):
        from guimo.inference.tabular import TabularPredictor

        return TabularPredictor.from_run(run, device=device)


HEADLINES = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}


# -- helpers -----------------------------------------------------------------------------------------------------


def read_any_table(cfg) -> TableSource:
    """``data.path`` as any CSV/Parquet table; its target must be named (``data.target``)."""
    from guimo.data.tabular import read_table

    df = read_table(cfg.data.path)
    if cfg.data.target is None:
        raise GuimoError(f"{cfg.data.path}: name the column to predict with --set data.target=COLUMN "
                         f"(columns: {', '.join(map(str, df.columns))})")
    return TableSource(frame=df, target=cfg.data.target, description=str(cfg.data.path))


def anonymize(df: "pd.DataFrame", target: str | None) -> tuple["pd.DataFrame", dict]:
    """Personal data replaced (``guimo.privacy.anonymize.preprocess_anonymize``: keyed pseudonyms with a key, else
    masks; the target untouched), and the per-column report (counts only, never a raw value)."""
    from guimo.privacy.anonymize import preprocess_anonymize

    return preprocess_anonymize(df, target=target)


def summary_of(report: dict) -> str:
    """One line for the report: what was replaced where, e.g. ``email: 120 cells (contact); mode mask``."""
    cols = report.get("columns") or {}
    if not cols:
        return f"nothing found ({report.get('mode', '?')} mode)"
    return "; ".join(f"{c} ({', '.join(f'{k} {n}' for k, n in kinds.items())})" for c, kinds in cols.items()) + f"; {report.get('mode', '?')} mode"


def target_strata(df: "pd.DataFrame", columns) -> np.ndarray:
    """Class indices of every row (what stratified splits keep the shares of), or the float target for regression."""
    if columns.task == "regression":
        return df[columns.target].to_numpy(dtype=np.float64)
    return np.unique(df[columns.target].astype(str).to_numpy(), return_inverse=True)[1].astype(np.int64)


def _pos_weight(m: TabularModelConfig, counts: np.ndarray) -> float:
    if m.imbalance != "weighted":
        return 1.0
    return float(m.pos_weight) if m.pos_weight is not None else float(np.sqrt(counts[0] / max(1, counts[1])))


def _jsonable(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _safe_names(names: list[str]) -> list[str]:
    """LightGBM refuses some characters in feature names (JSON specials); the order is what matters."""
    import re

    return [re.sub(r'[\[\]{}",:]', "_", n) for n in names]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def quick_metric(task: str, y: np.ndarray, z: np.ndarray, metric: str = "roc_auc") -> float:
    """The validation metric early stopping watches: ROC-AUC or PR-AUC (binary), accuracy or R^2 (of the standardised
    target)."""
    if task == "binary":
        from sklearn.metrics import average_precision_score, roc_auc_score

        if not 0 < y.sum() < len(y):
            return float("nan")
        return float((average_precision_score if metric == "pr_auc" else roc_auc_score)(y, z[:, 0]))
    if task == "multiclass":
        return float((z.argmax(1) == y).mean())
    return float(1 - np.mean((z[:, 0] - y) ** 2) / max(np.var(y), 1e-12))


def binary_log_loss(y: np.ndarray, z: np.ndarray) -> float:
    """Mean log-loss of 0/1 labels ``y`` under logits ``z`` (numerically stable: log(1 + e^-|z|) + max(z, 0) - y z)."""
    z = np.asarray(z, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_calibration(task: str, z_val: np.ndarray, y_val: np.ndarray, table: dict, *, fit_shift: bool = False) -> dict[str, Any]:
    """Temperature scaling on validation (Guo et al. 2017). Binary: the weighted loss's shift log(pos_weight) is taken
    off first (weighting positives by w moves the optimal logit by log w), then one temperature on the positive-class
    logit; the decision threshold is the Bayes-optimal one of the cost matrix (c_fp / (c_fp + c_fn)) or 0.5.
    ``fit_shift`` (a DP-SGD run): the shift is fitted on validation with the temperature (Platt scaling,
    ``guimo.privacy.dp.fit_shift_and_temperature`` says why clipping leaves the logit offset)."""
    from guimo.evaluate.classification import fit_temperature

    out: dict[str, Any] = {"fitted_on": "val", "temperature": 1.0, "shift": 0.0, "threshold": None}
    if task == "regression":
        return out
    if task == "binary":
        shift = float(np.log(table.get("pos_weight", 1.0)))
        zz = z_val[:, 0] - shift
        out.update(shift=shift, temperature=fit_temperature(np.stack([np.zeros_like(zz), zz], 1), y_val),
                   threshold=bayes_threshold(table.get("cost_matrix")))
        if fit_shift:
            from guimo.privacy.dp import fit_shift_and_temperature

            out["shift"], out["temperature"] = fit_shift_and_temperature(z_val[:, 0], y_val)
            out["fitted"] = "shift and temperature (Platt scaling: a DP-SGD run)"
        return out
    out["temperature"] = fit_temperature(z_val, y_val)
    return out


def bayes_threshold(cost_matrix: list[list[float]] | None) -> float:
    """With calibrated probabilities, calling a row positive when p > c_fp / (c_fp + c_fn) minimises the expected cost."""
    if not cost_matrix:
        return 0.5
    c_fp, c_fn = cost_matrix[0][1], cost_matrix[1][0]
    return float(c_fp / (c_fp + c_fn))


def apply_calibration(task: str, z: np.ndarray, cal: dict, table: dict) -> np.ndarray:
    """Binary: P(positive) (N,); multiclass: probabilities (N, K); regression: the prediction in the target's units."""
    from guimo.evaluate.classification import softmax

    if task == "regression":
        return z[:, 0] * table["y_std"] + table["y_mean"]
    if task == "binary":
        return sigmoid((z[:, 0] - cal["shift"]) / cal["temperature"])
    return softmax(z, cal["temperature"])


def task_metrics(task: str, y: np.ndarray, pred: np.ndarray, table: dict, *, threshold: float | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``guimo.evaluate.tabular``'s metrics of one contender on one split (regression in the target's units): the
    ones contenders are compared on (``QUALITY``), and the rest (thresholds, base rate, the oracle's cost)."""
    from guimo.evaluate import tabular as T

    if task == "binary":
        m = T.binary_metrics(y, pred, cost_matrix=table.get("cost_matrix"), threshold=threshold)
    elif task == "multiclass":
        m = T.multiclass_metrics(y, pred)
    else:
        m = T.regression_metrics(y * table["y_std"] + table["y_mean"], pred)
    m = {k: (float(v) if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) else v) for k, v in m.items()}
    out = {k: m[k] for k in QUALITY[task] if k in m}
    out["examples"] = int(len(y))
    return out, {k: v for k, v in m.items() if k not in out}  # thresholds, base rates, the oracle's cost: context, not compared


# The metrics a contender is compared on (the verdict reads every number in a contender's table)
QUALITY = {"binary": ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "ece", "accuracy", "cost_per_row"),
           "multiclass": ("accuracy", "macro_f1", "roc_auc_ovr", "log_loss", "ece"),
           "regression": ("r2", "rmse", "mae")}


def calibration_report(task: str, z: np.ndarray, y: np.ndarray, cal: dict, table: dict) -> dict[str, Any]:
    """Test ECE and NLL before and after (top-class, 15 bins), in the shape the run report prints."""
    from guimo.evaluate import classification as C

    if task == "binary":
        raw = np.stack([np.zeros(len(z)), z[:, 0]], 1)
        after = np.stack([np.zeros(len(z)), (z[:, 0] - cal["shift"]) / cal["temperature"]], 1)
    else:
        raw, after = z, z / cal["temperature"]
    p_raw, p_after = C.softmax(raw), C.softmax(after)
    return {**cal, "bins": 15, "ece_before": C.ece(p_raw, y), "ece_after": C.ece(p_after, y), "nll_before": C.nll(raw, y),
            "nll_after": C.nll(after, y)}
