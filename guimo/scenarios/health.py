"""`health` — disease risk from clinical measurements, on the tabular transformer held to LightGBM's standard.

A hospital's analytics team wants one question answered per patient: how likely is this tumour malignant (or how
far will this patient's diabetes progress in a year), and how sure is the model? The model is the FT-Transformer of
`guimo.scenarios.tabular`, calibrated on validation data, beside logistic regression and LightGBM on the same rows.

Data: scikit-learn's packaged copies, so the default runs offline:
- ``data.dataset=breast_cancer`` (default): Wisconsin diagnostic breast cancer, 569 tumours, 30 numeric measurements,
  target ``malignant`` (binary; headline ROC-AUC);
- ``data.dataset=diabetes``: 442 patients, 10 baseline measurements, target ``progression`` (regression; headline R^2,
  with RMSE and MAE in the target's units).
``--data FILE --set data.target=COLUMN`` reads any CSV/Parquet table instead. Stratified split (or k-fold with
``data.folds``). Served through ``/v1/classifications`` (rows) and ``guimo predict --batch``; a regression run answers
``guimo predict --batch`` with a ``prediction`` per row and is not served by /v1/classifications.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from guimo.scenarios.base import InitConfig, OptimizeConfig
from guimo.scenarios.tabular import (TableSource, TabularDataConfig, TabularEvalConfig, TabularModelConfig, TabularPreprocessConfig,
                                     TabularScenario, default_train)
from guimo.privacy.dp import PrivacyConfig
from guimo.train.config import TrainConfig


@dataclass
class HealthDataConfig(TabularDataConfig):
    dataset: Literal["breast_cancer", "diabetes"] = field(default="breast_cancer", metadata={
        "help": "the embedded data (without --data): breast_cancer (binary) or diabetes (regression), scikit-learn's copies"})


@dataclass
class HealthConfig:
    seed: int = field(default=0, metadata={"help": "seeds the split, the model's init, data order and dropout"})
    data: HealthDataConfig = field(default_factory=HealthDataConfig)
    preprocess: TabularPreprocessConfig = field(default_factory=TabularPreprocessConfig)
    model: TabularModelConfig = field(default_factory=TabularModelConfig)
    train: TrainConfig = field(default_factory=default_train)
    init: InitConfig = field(default_factory=InitConfig)
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(search_width=False))
    eval: TabularEvalConfig = field(default_factory=TabularEvalConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)  # DP-SGD: --set privacy.epsilon=3 (guimo.privacy.dp)


def default_source(cfg: HealthConfig) -> TableSource:
    from guimo.data.tabular import breast_cancer, diabetes

    df, target = breast_cancer() if cfg.data.dataset == "breast_cancer" else diabetes()
    return TableSource(frame=df, target=target, description=f"embedded:{cfg.data.dataset} (scikit-learn's packaged copy)")


SCENARIO = TabularScenario(
    name="health",
    summary="disease risk from clinical measurements: FT-Transformer vs logistic regression and LightGBM "
            "(default: scikit-learn's breast cancer; data.dataset=diabetes for regression)",
    config_cls=HealthConfig,
    default_source=default_source,
)
