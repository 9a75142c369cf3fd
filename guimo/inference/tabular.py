"""Scoring table rows with a finished tabular run: what `guimo predict --batch rows.csv` and /v1/classifications call.

``TabularPredictor.from_run(run)`` loads what the run validated: the FT-Transformer's weights, the ``TableEncoder``
fitted on its training rows (``data/encoder.json``: scaling, vocabularies, the columns it reads and the id-like
ones it ignores), the task and classes (``data/table.json``) and the calibration chosen on validation
(``calibration.json``: the imbalance weight's logit shift, the temperature, the decision threshold). The fitted
LightGBM baseline (``baseline_lightgbm.txt``) is there too, for explanations that compare both.

- ``predict_frame(df)``: the input columns plus ``score`` (the calibrated probability of the positive class) and
  ``label`` for a binary run; ``label`` and ``confidence`` (plus ``p_<class>`` columns) for K classes; ``prediction``
  for regression.
- ``classify(rows)``: one ``{"label", "confidence", "out_of_scope": False, "scores"}`` per row (a dict of column ->
  value, strings from a CSV included), what /v1/classifications answers. A regression run has no classes: its
  ``classify`` answers ``{"prediction": value}`` rows, which ``guimo predict --batch`` writes as they are; the
  server's /v1/classifications refuses them (400), since there is no label to give.

Nothing here imports training code (the server loads this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from guimo.errors import GuimoError

if TYPE_CHECKING:
    import pandas as pd

# The run's files a tabular model is served from (guimo.scenarios.tabular writes them):
CALIBRATION = "calibration.json"  # temperature, logit shift and decision threshold, chosen on validation by evaluate
ENCODER = "encoder.json"  # under data/: the TableEncoder fitted on the training rows
TABLE = "table.json"  # under data/: task, target, classes, cost matrix, the regression target's mean and std
LIGHTGBM = "baseline_lightgbm.txt"  # the fitted LightGBM baseline (guimo.evaluate.baselines_tab.LIGHTGBM_FILE)
MAX_ROWS = 100_000  # one call scores at most this many rows (a batch file is fed in chunks by the caller)


class TabularPredictor:
    input_kind = "records"  # `guimo predict` and the server feed it dicts of column -> value, not texts

    def __init__(self, model, encoder, table: dict[str, Any], calibration: dict[str, Any] | None = None, *, run_path: Path | None = None,
                 batch_size: int = 2048) -> None:
        self.model, self.encoder, self.table = model, encoder, table
        self.task: str = table["task"]
        self.labels: list[str] = [str(c) for c in table.get("classes", [])]
        cal = calibration or {}
        self.calibrated = bool(cal)
        self.temperature, self.shift = float(cal.get("temperature", 1.0)), float(cal.get("shift", 0.0))
        self.threshold = float(cal.get("threshold") or 0.5)
        self.run_path, self.batch_size = run_path, batch_size

    @classmethod
    def from_run(cls, run, device: str = "cpu", batch_size: int = 2048) -> "TabularPredictor":
        from guimo.data.tabular import TableEncoder
        from guimo.io import read_json
        from guimo.models.load import load_run_model
        from guimo.models.tabular import FTTransformer, TabularConfig

        path = Path(getattr(run, "path", run))
        if not hasattr(run, "path"):
            from guimo.pipeline.rundir import RunDir

            run = RunDir.open(path)
        for need in ("model_config.json", f"data/{ENCODER}", f"data/{TABLE}"):
            if not (path / need).exists():
                raise GuimoError(f"{path / need}: not found; is {path} a finished tabular run (fraud, credit, health)?")
        model = load_run_model(run, TabularConfig, FTTransformer, device=device)
        encoder = TableEncoder.from_json(read_json(path / "data" / ENCODER))
        cal = read_json(path / CALIBRATION) if (path / CALIBRATION).exists() else None
        return cls(model, encoder, read_json(path / "data" / TABLE), cal, run_path=path, batch_size=batch_size)

    # -- what the encoder and the model see --------------------------------------------------------------------

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns in order: ``x_num``'s (missing indicators included) then ``x_cat``'s."""
        return self.encoder.feature_names

    def encode(self, df: "pd.DataFrame") -> tuple[np.ndarray, np.ndarray]:
        """(x_num, x_cat) of rows; a missing feature column or a non-number in a numeric one is a GuimoError."""
        if len(df) > MAX_ROWS:
            raise GuimoError(f"{len(df)} rows in one call; at most {MAX_ROWS}")
        x_num, x_cat, _ = self.encoder.transform(df.drop(columns=[self.table["target"]], errors="ignore"))
        return x_num, x_cat

    def logits(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        from guimo.models.tabular import predict_logits

        return predict_logits(self.model, x_num, x_cat, self.batch_size)

    def outputs(self, x_num: np.ndarray, x_cat: np.ndarray) -> np.ndarray:
        """Calibrated P(positive) (N,) for binary, probabilities (N, K) for K classes, predictions (N,) for regression."""
        z = self.logits(x_num, x_cat)
        if self.task == "regression":
            return z[:, 0] * self.table["y_std"] + self.table["y_mean"]
        if self.task == "binary":
            return 1.0 / (1.0 + np.exp(-np.clip((z[:, 0] - self.shift) / self.temperature, -50, 50)))
        from guimo.evaluate.classification import softmax

        return softmax(z, self.temperature)

    # -- the two entry points ----------------------------------------------------------------------------------

    def predict_frame(self, df: "pd.DataFrame") -> "pd.DataFrame":
        """``df`` with the prediction columns added (see the module docstring); rows keep their order and index."""
        out = df.copy()
        if len(df) == 0:
            return out
        y = self.outputs(*self.encode(df))
        if self.task == "regression":
            out["prediction"] = y
        elif self.task == "binary":
            out["score"] = y
            out["label"] = np.where(y >= self.threshold, self.labels[1], self.labels[0])
        else:
            top = y.argmax(1)
            out["label"] = [self.labels[i] for i in top]
            out["confidence"] = y[np.arange(len(y)), top]
            for j, name in enumerate(self.labels):
                out[f"p_{name}"] = y[:, j]
        return out

    def classify(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One result per row (a dict of column -> value): label, calibrated confidence, never out of scope, and every
        class's probability; for a regression run ``{"prediction": value}``."""
        import pandas as pd

        if isinstance(rows, dict):
            raise TypeError("pass a list of rows; wrap a single row in a list")
        for i, r in enumerate(rows):
            if not isinstance(r, dict):
                raise GuimoError(f"input {i}: expected a row (an object of column: value), got {type(r).__name__}")
        if not rows:
            return []
        y = self.outputs(*self.encode(pd.DataFrame.from_records(rows)))
        if self.task == "regression":
            return [{"prediction": float(v)} for v in y]
        out = []
        for p in y:
            probs = np.array([1 - p, p]) if self.task == "binary" else p
            top = (1 if p >= self.threshold else 0) if self.task == "binary" else int(np.argmax(probs))
            out.append({"label": self.labels[top], "confidence": float(probs[top]), "out_of_scope": False,
                        "scores": {l: float(v) for l, v in zip(self.labels, probs)}})
        return out

    def lightgbm(self):
        """The run's fitted LightGBM baseline (a ``lightgbm.Booster``) over the same encoded columns, or None."""
        if self.run_path is None or not (self.run_path / LIGHTGBM).exists():
            return None
        import lightgbm as lgb

        return lgb.Booster(model_file=str(self.run_path / LIGHTGBM))

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "labels": len(self.labels), "features": len(self.feature_names), "temperature": self.temperature,
                "threshold": self.threshold if self.task == "binary" else None, "calibrated": self.calibrated}
