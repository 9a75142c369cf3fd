"""Explanations of a tabular run's predictions, per column a user sent: what ``guimo explain``, ``guimo predict
--explain`` and ``/v1/classifications`` with ``"explain": true`` show.

For each row, every input column gets two numbers:

- ``attribution``: the transformer's Integrated Gradients (``guimo.explain.integrated``) in the units of its
  calibrated output: the log-odds of the positive class (binary: ``(logit - shift) / T``, so
  ``score = sigmoid(output)``), the log-probability scale of the explained class (``logit / T``; K classes), or
  the prediction itself (regression). They sum to ``output - baseline_output`` up to ``completeness_error``.
  The baseline is one reference row: every numeric column at its training median, not missing, and every
  categorical column in the unknown bucket (a category the model never saw). A column's missing-value
  indicator, when the encoder made one, is added into that column.
- ``tree``: the run's LightGBM baseline's exact TreeSHAP contribution to its raw score (``guimo.explain.trees``),
  relative to its average training row, for the same class (its own log-odds, or for regression the prediction in
  the target's units); None when the run saved no booster.

The two models and their references differ, so compare which columns lead and their directions, not sizes.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from guimo.errors import GuimoError

if TYPE_CHECKING:
    import pandas as pd
    import torch

N_STEPS = 64  # Gauss-Legendre points of IG: completeness errors ~1e-4 of the output gap on the tests' models


@dataclass
class FeatureAttribution:
    feature: str  # an input column
    value: Any  # its value in the row (None when missing)
    attribution: float  # the transformer's IG share of output - baseline_output
    tree: float | None = None  # LightGBM's TreeSHAP contribution (None: the run has no booster)


@dataclass
class RowExplanation:
    features: list[FeatureAttribution]  # by |attribution|, largest first
    output: float  # the explained output for this row (see the module docstring for its units)
    baseline_output: float  # the same output for the baseline row
    completeness_error: float  # |sum of attributions - (output - baseline_output)|
    explained: str | None  # the class whose score is explained (None for regression)
    tree_raw_score: float | None = None  # LightGBM's raw score for the row: tree_expected + sum of the tree column
    tree_expected: float | None = None
    units: str = ""  # what output and the attributions measure
    extra: dict = field(default_factory=dict)

    def top(self, k: int | None) -> list[FeatureAttribution]:
        return self.features if k is None else self.features[:k]

    def to_dict(self, top: int | None = None) -> dict:
        d = asdict(self)
        d.pop("extra")
        d["features"] = [asdict(f) for f in self.top(top)]
        return d


_BASELINES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # encoder -> its baseline row (encoding it is pandas work)


def baseline_inputs(encoder) -> tuple[np.ndarray, np.ndarray]:
    """The reference row (x_num (n_num,), x_cat (n_cat,)): training medians, nothing missing, unknown categories."""
    cached = _BASELINES.get(encoder)
    if cached is None:
        cached = _BASELINES[encoder] = _baseline_inputs(encoder)
    return cached


def _baseline_inputs(encoder) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    from guimo.data.tabular import UNKNOWN_INDEX

    row = {s.name: s.fill for s in encoder.numeric}
    row.update({c: None for c in encoder.columns.categorical})
    x_num, _, _ = encoder.transform(pd.DataFrame([row]))
    return x_num[0], np.full(len(encoder.columns.categorical), UNKNOWN_INDEX, dtype=np.int64)


def float_model(predictor) -> "torch.nn.Module":
    """The predictor's model with float weights: an int8 run (optimize.quantize) is reloaded from its float file,
    which holds the dequantized values the int8 model runs (IG needs gradients, which int8 kernels lack)."""
    import torch

    model = predictor.model
    if all(torch.is_floating_point(t) for n, t in model.state_dict().items() if n.endswith("weight")):
        return model
    from guimo.models.load import load_run_model
    from guimo.models.tabular import FTTransformer, TabularConfig
    from guimo.pipeline.rundir import RunDir

    run = RunDir.open(predictor.run_path)
    return load_run_model(run, TabularConfig, FTTransformer, weights=run.weights_path())


def _column_groups(encoder) -> tuple[list[str], np.ndarray]:
    """The input columns, and for each model feature (``encoder.feature_names``) the column it belongs to."""
    columns = [s.name for s in encoder.numeric] + list(encoder.columns.categorical)
    where = {c: i for i, c in enumerate(columns)}
    owner = [where[s.name] for s in encoder.numeric]
    owner += [where[s.name] for s in encoder.numeric if s.missing_indicator]  # "<col>__missing" adds into <col>
    owner += [where[c] for c in encoder.columns.categorical]
    return columns, np.asarray(owner)


def _by_column(values: np.ndarray, owner: np.ndarray, n_columns: int) -> np.ndarray:
    """Sum per-feature values (..., F) into per-column values (..., n_columns)."""
    out = np.zeros(values.shape[:-1] + (n_columns,))
    for j, c in enumerate(owner):
        out[..., c] += values[..., j]
    return out


def _plain(v: Any) -> Any:
    """A cell as JSON-ready Python (None for missing)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        return None if isinstance(v, float) and math.isnan(v) else v
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None
    except ImportError:  # pragma: no cover - pandas is in the tabular extra
        pass
    return v


def explain_frame(predictor, df: "pd.DataFrame", *, n_steps: int = N_STEPS, trees: bool = True) -> list[RowExplanation]:
    """Explain every row of ``df`` for a ``TabularPredictor`` (unknown extra columns are ignored, as scoring does;
    a missing feature column or a non-number in a numeric one is a ``GuimoError`` naming it)."""
    from guimo.explain.integrated import integrated_gradients

    if len(df) == 0:
        return []
    encoder, task = predictor.encoder, predictor.task
    x_num, x_cat = predictor.encode(df)
    b_num, b_cat = baseline_inputs(encoder)
    ig = integrated_gradients(float_model(predictor), x_num, x_cat, (b_num, b_cat), n_steps=n_steps)
    if task == "regression":  # prediction = z * y_std + y_mean: attributions in the target's units
        scale, shift, units = float(predictor.table["y_std"]), -float(predictor.table["y_mean"]) / float(predictor.table["y_std"]), f"{predictor.table['target']} (prediction)"
    elif task == "binary":
        scale, shift, units = 1.0 / predictor.temperature, predictor.shift, f"calibrated log-odds of {predictor.labels[1]!r}"
    else:
        scale, shift, units = 1.0 / predictor.temperature, 0.0, "temperature-scaled logit of the explained class"

    def out(z: np.ndarray) -> np.ndarray:  # the model's logit -> the explained output (affine, so IG scales with it)
        return (z - shift) * scale

    columns, owner = _column_groups(encoder)
    attributions = _by_column(ig.values * scale, owner, len(columns))
    tree = None
    booster = predictor.lightgbm() if trees else None
    if booster is not None:
        from guimo.evaluate.baselines_tab import lightgbm_matrix
        from guimo.explain.trees import tree_contributions

        tree = tree_contributions(booster, lightgbm_matrix(x_num, x_cat))
    explained_class = [None if task == "regression" else predictor.labels[1 if task == "binary" else int(t)] for t in ig.target]

    results = []
    for i in range(len(df)):
        raw = df.iloc[i]
        t_values = t_raw = t_expected = None
        if tree is not None:
            vals, exp, raw_score = tree.values[i], tree.expected[i], tree.raw_score[i]
            if vals.ndim == 2:  # K classes: the explained class's block
                k = int(ig.target[i])
                vals, exp, raw_score = vals[k], exp[k], raw_score[k]
            t_values = _by_column(vals, owner, len(columns))
            t_raw, t_expected = float(raw_score), float(exp)
            if task == "regression":  # LightGBM fitted the standardised target too: back to the target's units
                t_values = t_values * scale
                t_raw, t_expected = float(out(np.float64(t_raw))), float(out(np.float64(t_expected)))
        feats = [FeatureAttribution(feature=c, value=_plain(raw[c]) if c in raw.index else None, attribution=float(attributions[i, j]),
                                    tree=None if t_values is None else float(t_values[j])) for j, c in enumerate(columns)]
        feats.sort(key=lambda f: -abs(f.attribution))
        results.append(RowExplanation(features=feats, output=float(out(ig.output[i])), baseline_output=float(out(ig.baseline_output[i])),
                                      completeness_error=float(ig.completeness_error[i] * abs(scale)), explained=explained_class[i],
                                      tree_raw_score=t_raw, tree_expected=t_expected, units=units))
    return results


def explain_rows(predictor, df: "pd.DataFrame") -> list[list[tuple[str, Any, float]]]:
    """Per row, ``(column, value, attribution)`` by |attribution|, largest first (the transformer's IG)."""
    return [[(f.feature, f.value, f.attribution) for f in r.features] for r in explain_frame(predictor, df, trees=False)]


def rows_frame(rows: list[dict[str, Any]]) -> "pd.DataFrame":
    """Request rows (dicts of column -> value) as a frame; anything but a list of objects is a ``GuimoError``."""
    import pandas as pd

    if not isinstance(rows, list) or not rows:
        raise GuimoError("expected a non-empty list of rows (objects of column: value)")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise GuimoError(f"row {i}: expected an object of column: value, got {type(r).__name__}")
    return pd.DataFrame.from_records(rows)


def check_columns(encoder, columns, *, target: str | None = None) -> None:
    """Refuse columns the model does not know, naming them and the columns it reads (a typo would otherwise be
    silently ignored and the real column reported missing, or worse, filled with the median)."""
    known = set(encoder.columns.features) | set(encoder.columns.dropped) | set(encoder.columns.dropped_ids)
    known |= {encoder.columns.target} | ({target} if target else set())
    if encoder.columns.time_column:
        known.add(encoder.columns.time_column)
    columns = list(columns)
    unknown = [str(c) for c in columns if c not in known]
    missing = [c for c in encoder.columns.features if c not in columns]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown columns {', '.join(unknown)}")
        if missing:
            parts.append(f"missing columns {', '.join(missing)}")
        raise GuimoError(f"{'; '.join(parts)} (the model reads: {', '.join(encoder.columns.features)})")


def explain_records(predictor, rows: list[dict[str, Any]], *, top: int | None = None, strict: bool = True,
                    n_steps: int = N_STEPS) -> list[dict[str, Any]]:
    """JSON-ready explanations of request rows, each ``RowExplanation.to_dict(top)``; ``strict`` refuses columns the
    model does not know (the API and ``guimo explain``; ``guimo predict --batch`` passes extra columns through)."""
    if top is not None and top < 1:
        raise GuimoError("top must be at least 1")
    df = rows_frame(rows)
    if strict:
        check_columns(predictor.encoder, df.columns)
    return [r.to_dict(top) for r in explain_frame(predictor, df, n_steps=n_steps)]
