"""The baselines every tabular run is measured against: logistic regression and LightGBM.

Both are fitted on the same training rows, encoded by the same ``TableEncoder`` the transformer reads, so the
comparison differs only in the model:

- logistic regression on the scaled numeric columns plus one-hot categories (the encoder's unknown bucket is one
  more column), L2 with ``C`` = 1; what a risk team fits first and must be able to explain;
- LightGBM (gradient-boosted trees) on the numeric columns and the category codes as categorical features, its
  number of trees chosen by early stopping on the validation rows. Trees do not care about the quantile scaling
  (it is monotone), so this is LightGBM on the raw values up to the filled-in missing ones (whose indicator
  columns it also gets). ``n_jobs=1``: on these 2-core machines two threads were ~10x slower under contention.
  The fitted booster is saved in the run (``baseline_lightgbm.txt``, LightGBM's text format) so its TreeSHAP
  contributions (``pred_contrib=True``) can explain a row beside the transformer's.

Each ``fit_*`` returns a ``Fitted`` whose ``predict(x_num, x_cat)`` gives what the transformer's evaluation
gives: the positive class's probability (binary, (N,)), class probabilities (multiclass, (N, K)) or the
predicted value (regression, (N,)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

LIGHTGBM_FILE = "baseline_lightgbm.txt"  # the fitted booster in a run (LightGBM's own text format, no pickle)
BASELINES = ("logistic_regression", "lightgbm")


@dataclass
class Fitted:
    name: str
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)  # what was chosen (trees, iterations), for the report
    model: Any = None  # the fitted estimator or booster


def design_matrix(x_num: np.ndarray, x_cat: np.ndarray, cardinalities: list[int]) -> np.ndarray:
    """[x_num | one-hot(x_cat)] (N, n_num + sum(cardinalities)) for the linear model."""
    blocks = [np.asarray(x_num, dtype=np.float64)]
    for j, k in enumerate(cardinalities):
        onehot = np.zeros((len(x_cat), k))
        onehot[np.arange(len(x_cat)), x_cat[:, j]] = 1.0
        blocks.append(onehot)
    return np.concatenate(blocks, axis=1)


def fit_logistic(task: str, cardinalities: list[int], train: tuple, *, c: float = 1.0, seed: int = 0) -> Fitted:
    """L2 logistic regression (lbfgs), or ridge regression for a regression task."""
    x_num, x_cat, y = train
    X = design_matrix(x_num, x_cat, cardinalities)
    if task == "regression":
        from sklearn.linear_model import Ridge

        reg = Ridge(alpha=1.0 / c).fit(X, y)
        return Fitted("logistic_regression", lambda a, b: reg.predict(design_matrix(a, b, cardinalities)), {"kind": "ridge", "alpha": 1.0 / c}, reg)
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(X, y)

    def predict(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        p = clf.predict_proba(design_matrix(a, b, cardinalities))
        return p[:, 1] if task == "binary" else p

    return Fitted("logistic_regression", predict, {"kind": "logistic", "C": c}, clf)


def lightgbm_matrix(x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
    """[x_num | x_cat] as float64: the column order of ``TableEncoder.feature_names``."""
    return np.concatenate([np.asarray(x_num, dtype=np.float64), np.asarray(x_cat, dtype=np.float64)], axis=1)


def fit_lightgbm(task: str, n_num: int, n_cat: int, train: tuple, val: tuple, *, n_classes: int = 2, seed: int = 0,
                 learning_rate: float = 0.05, num_leaves: int = 31, max_rounds: int = 2000, patience: int = 100,
                 feature_names: list[str] | None = None) -> Fitted:
    """Gradient-boosted trees, stopped early on the validation rows (their loss)."""
    import lightgbm as lgb

    objective = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[task]
    params = {"objective": objective, "learning_rate": learning_rate, "num_leaves": num_leaves, "min_data_in_leaf": 20,
              "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1, "lambda_l2": 1.0, "num_threads": 1,
              "seed": seed, "deterministic": True, "verbose": -1}
    if task == "multiclass":
        params["num_class"] = n_classes
    names = feature_names or [f"f{i}" for i in range(n_num + n_cat)]
    cats = list(range(n_num, n_num + n_cat))
    dtrain = lgb.Dataset(lightgbm_matrix(*train[:2]), label=train[2], feature_name=names, categorical_feature=cats, free_raw_data=False)
    dval = lgb.Dataset(lightgbm_matrix(*val[:2]), label=val[2], reference=dtrain, free_raw_data=False)
    booster = lgb.train(params, dtrain, num_boost_round=max_rounds, valid_sets=[dval],
                        callbacks=[lgb.early_stopping(patience, verbose=False)])
    best = booster.best_iteration or booster.current_iteration()

    def predict(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return booster.predict(lightgbm_matrix(a, b), num_iteration=best)

    return Fitted("lightgbm", predict, {"trees": int(best), "learning_rate": learning_rate, "num_leaves": num_leaves}, booster)


def save_booster(fitted: Fitted, run_path: str | Path) -> Path:
    """Write the LightGBM booster (its best iteration) into the run, atomically."""
    from guimo.io import atomic_write_text

    text = fitted.model.model_to_string(num_iteration=fitted.info.get("trees"))
    return atomic_write_text(Path(run_path) / LIGHTGBM_FILE, text)
