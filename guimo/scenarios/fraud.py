"""`fraud` — payment fraud detection: the tabular transformer against logistic regression and LightGBM.

A payment service must stop account takeovers (a thief transfers the victim's money to a mule, who cashes it out)
while letting honest payments through. The model is the FT-Transformer of `guimo.scenarios.tabular`, trained on the
past and tested on the future (a time-based split: a model is always used on transactions newer than its data),
with the class imbalance weighted in the loss and probabilities calibrated on validation. The report gives ROC-AUC,
PR-AUC (what matters at a fraud rate of 1%), recall at 1% false-positive rate and calibration for every model.

Data:
- default: ``guimo.data.payments.generate_payments``, a seeded PaySim-like stream (accounts, merchants, fraud rings,
  transfer-then-cash-out thefts, honest look-alikes) with ``data.rows`` transactions at ``data.fraud_rate``; no
  balance columns leak the label, the features are what a bank's stream would hold;
- ``--data ../shared/data/paysim_sample/paysim_sample.csv`` (recognised by its header): real PaySim rows; its balance
  columns leak the label (the simulator cancels fraudulent transactions), so they are left out unless
  ``data.leaky=true`` (to show how much they give away);
- any other CSV/Parquet with ``--set data.target=COLUMN`` (``data.time_column=COLUMN`` for a split in time).
Account-id columns (nameOrig, nameDest) are detected as ids, left out and named in the report. Served through
``/v1/classifications`` (rows) and ``guimo predict --batch``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from guimo.scenarios.base import InitConfig, OptimizeConfig
from guimo.scenarios.tabular import (TableSource, TabularDataConfig, TabularEvalConfig, TabularModelConfig, TabularPreprocessConfig,
                                     TabularScenario, read_any_table)
from guimo.privacy.dp import PrivacyConfig
from guimo.train.config import TrainConfig


@dataclass
class FraudDataConfig(TabularDataConfig):
    rows: int = field(default=40_000, metadata={"help": "embedded generator: transactions"})
    fraud_rate: float = field(default=0.01, metadata={"help": "embedded generator: share of fraudulent rows"})
    generator_seed: int = field(default=0, metadata={"help": "embedded generator: its seed (the same seed, the same stream)"})
    leaky: bool = field(default=False, metadata={"help": "PaySim files: keep the balance columns that leak the label"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rows < 100:
            raise ValueError("rows must be at least 100")
        if not 0 < self.fraud_rate < 0.5:
            raise ValueError("fraud_rate must be in (0, 0.5)")


@dataclass
class FraudConfig:
    seed: int = field(default=0, metadata={"help": "seeds the split, the model's init, data order and dropout"})
    data: FraudDataConfig = field(default_factory=FraudDataConfig)
    preprocess: TabularPreprocessConfig = field(default_factory=TabularPreprocessConfig)
    model: TabularModelConfig = field(default_factory=TabularModelConfig)
    train: TrainConfig = field(default_factory=lambda: fraud_train())
    init: InitConfig = field(default_factory=InitConfig)
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(search_width=False))
    eval: TabularEvalConfig = field(default_factory=lambda: fraud_eval())
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)  # DP-SGD: --set privacy.epsilon=3 (guimo.privacy.dp)


def fraud_train() -> TrainConfig:
    """Transactions are many and fraud is rare: batch 256 (a batch then holds ~2-3 frauds at 1%) at 1e-3, validated
    every 50 steps, stopped after 10 validations without a better one, at most 1,800 steps. A fixed count, no time
    budget: the same command gives the same weights on any machine. The 200 s budget this preset had
    (``train.max_time_s``) let a busy machine's clock pick the count (2,325-2,583 steps on the benchmark's folds).
    1,800 keeps a run under the issue's 5 minutes on 2 cores: a step costs ~0.1 s there (the default stream's 27,936
    training rows, 2 threads on a quiet 2-core EPYC: 2,400 steps took 275 s of a 286 s run), 0.135 s on one thread
    beside another job (docs/benchmarks/risk.md)."""
    return TrainConfig(max_steps=1800, batch_size=256, lr=1e-3, warmup_steps=50, weight_decay=1e-5, eval_every=50, patience=10,
                       checkpoint_every=500, log_every=25, min_lr_ratio=0.1)


def fraud_eval() -> TabularEvalConfig:
    """Early stopping on validation PR-AUC, the metric fraud teams read (at a 1% fraud rate ROC-AUC is dominated by
    the easy honest rows). Measured on the generated stream's inner validation splits (bench/risk_recipes.py): PR-AUC
    of the kept checkpoints 0.334 against 0.271 when stopping on ROC-AUC; stopping on validation log-loss scored
    0.343 there but picked checkpoints from step 50 on PaySim, whose log-loss rises while its ranking still improves
    (docs/benchmarks/risk.md)."""
    return TabularEvalConfig(select_on="pr_auc")


def default_source(cfg: FraudConfig) -> TableSource:
    from guimo.data.payments import TARGET, TIME_COLUMN, generate_payments

    d = cfg.data
    df = generate_payments(d.rows, fraud_rate=d.fraud_rate, seed=d.generator_seed)
    return TableSource(frame=df, target=TARGET, time_column=TIME_COLUMN,
                       description=f"embedded:payments (guimo.data.payments, {d.rows:,} rows, fraud rate {d.fraud_rate}, seed {d.generator_seed})")


def is_paysim(path: str | Path) -> bool:
    """A PaySim file: its header names step, type, amount, nameOrig and isFraud."""
    p = Path(path)
    if not p.is_file() or p.suffix.lower() not in (".csv", ".gz"):
        return False
    import gzip

    opener = gzip.open if p.suffix.lower() == ".gz" else open
    with opener(p, "rt", encoding="utf-8", errors="replace") as f:
        header = {h.strip() for h in f.readline().split(",")}
    return {"step", "type", "amount", "nameOrig", "isFraud"} <= header


def file_source(cfg: FraudConfig) -> TableSource:
    if is_paysim(cfg.data.path):
        from guimo.data.tabular import load_paysim

        df, target, time_column = load_paysim(cfg.data.path, leaky=cfg.data.leaky)
        what = "with the balance columns, which leak the label" if cfg.data.leaky else "without the balance columns (they leak the label)"
        return TableSource(frame=df, target=target, time_column=time_column, description=f"{cfg.data.path} (PaySim, {what})")
    return read_any_table(cfg)


SCENARIO = TabularScenario(
    name="fraud",
    summary="payment fraud: FT-Transformer vs logistic regression and LightGBM, split in time "
            "(default: a PaySim-like generated stream; PaySim files recognised)",
    config_cls=FraudConfig,
    default_source=default_source,
    file_source=file_source,
)
