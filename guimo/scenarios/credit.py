"""`credit` — credit risk: will this applicant repay? The tabular transformer against logistic regression and LightGBM.

A lender scores each application and turns away the risky ones; turning away a good customer costs the margin,
accepting a bad one costs the loan. The model is the FT-Transformer of `guimo.scenarios.tabular`, calibrated on
validation data, so that its probability can be thresholded where the expected cost is lowest; the report gives the
cost per application at that threshold for every model beside ROC-AUC, PR-AUC and calibration.

Data (``--data`` is required: credit data is private, and no public table ships with guimo):
- UCI Statlog German credit (``--data ../shared/data/german_credit/german.csv``, the comma-separated file without a
  header, recognised by its coded values): 1,000 applicants, 7 numeric and 13 categorical attributes, target
  ``bad_credit``, with the dataset's 5:1 cost matrix (accepting a bad applicant costs 5, refusing a good one 1);
- any other CSV/Parquet table with ``--set data.target=COLUMN`` (no cost matrix: the threshold is 0.5).
Stratified split, or k-fold with ``data.folds``/``data.fold``. Served through ``/v1/classifications`` and
``guimo predict --batch``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from guimo.errors import GuimoError
from guimo.scenarios.base import InitConfig, OptimizeConfig
from guimo.scenarios.tabular import (TableSource, TabularDataConfig, TabularEvalConfig, TabularModelConfig, TabularPreprocessConfig,
                                     TabularScenario, default_train, read_any_table)
from guimo.privacy.dp import PrivacyConfig
from guimo.train.config import TrainConfig

GERMAN_HINT = "../shared/data/german_credit/german.csv"


@dataclass
class CreditConfig:
    seed: int = field(default=0, metadata={"help": "seeds the split, the model's init, data order and dropout"})
    data: TabularDataConfig = field(default_factory=TabularDataConfig)
    preprocess: TabularPreprocessConfig = field(default_factory=TabularPreprocessConfig)
    model: TabularModelConfig = field(default_factory=TabularModelConfig)
    train: TrainConfig = field(default_factory=default_train)
    init: InitConfig = field(default_factory=InitConfig)
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(search_width=False))
    eval: TabularEvalConfig = field(default_factory=TabularEvalConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)  # DP-SGD: --set privacy.epsilon=3 (guimo.privacy.dp)


def is_german_credit(path: str | Path) -> bool:
    """The UCI file: no header, 21 comma-separated fields, the first a checking-account code A11..A14 (or a CSV
    with the loader's ``bad_credit`` column)."""
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    fields = first.split(",")
    return (len(fields) == 21 and re.fullmatch(r"A1[1-4]", fields[0].strip()) is not None) or "bad_credit" in fields


def default_source(cfg: CreditConfig) -> TableSource:
    raise GuimoError("guimo run credit needs --data: e.g. --data " + GERMAN_HINT + " (UCI German credit, recognised with its 5:1 "
                     "cost matrix), or any CSV/Parquet table with --set data.target=COLUMN")


def file_source(cfg: CreditConfig) -> TableSource:
    if is_german_credit(cfg.data.path):
        from guimo.data.tabular import load_german_credit

        df, target, cost = load_german_credit(cfg.data.path)
        return TableSource(frame=df, target=target, cost_matrix=cost,
                           description=f"{cfg.data.path} (UCI German credit, cost matrix [true][predicted] {cost})")
    return read_any_table(cfg)


SCENARIO = TabularScenario(
    name="credit",
    summary="credit risk: FT-Transformer vs logistic regression and LightGBM, cost at the Bayes threshold "
            "(--data required: German credit recognised with its 5:1 cost matrix)",
    config_cls=CreditConfig,
    default_source=default_source,
    file_source=file_source,
)
