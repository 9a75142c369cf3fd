"""Calibrated text classification over a finished run: what `guimo predict` and /v1/classifications call.

``TextClassPredictor.from_run(run)`` loads what the run validated: its weights (the int8 file on
CPU when the optimize stage kept quantization), its tokenizer, its label order, and from
``calibration.json`` the temperature and the out-of-scope threshold that evaluate chose on
validation data. A run whose evaluate stage has not run has neither: confidences are the raw
softmax and nothing is rejected unless the model predicts the out-of-scope label itself.

Nothing here imports training code (the server loads this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from guimo.errors import GuimoError

MAX_TEXT_CHARS = 20_000  # longer inputs are refused rather than silently tokenized for minutes
# The run's files a text classifier is served from (guimo.scenarios.textclass writes them):
CALIBRATION = "calibration.json"  # temperature and out-of-scope threshold, chosen on validation by evaluate
LABELS = "labels.json"  # under data/: the head's label order and the out-of-scope label (preprocess)
TOKENIZER = "tokenizer.json"  # the encoder's tokenizer, copied into the run at init


class TextClassPredictor:
    """``classify(texts) -> [{"label", "confidence", "out_of_scope", "scores"}]`` and ``embed(texts)``."""

    input_kind = "text"  # `guimo predict` feeds it strings (a tabular predictor takes records)

    def __init__(self, model, tokenizer, labels: list[str], *, temperature: float = 1.0, oos_log_odds: float = float("-inf"),
                 oos_label: str | None = None, batch_size: int = 64, calibrated: bool = False) -> None:
        from guimo.models.text_classifier import pad_id

        if len(labels) != model.cfg.n_classes:
            raise GuimoError(f"{len(labels)} labels for a head of {model.cfg.n_classes} classes")
        self.model, self.tokenizer, self.labels = model, tokenizer, list(labels)
        self.temperature, self.oos_log_odds, self.oos_label = float(temperature), float(oos_log_odds), oos_label
        self.batch_size, self.calibrated, self.pad = batch_size, calibrated, pad_id(tokenizer)

    @classmethod
    def from_run(cls, run, device: str = "cpu", batch_size: int = 64) -> "TextClassPredictor":
        from guimo.evaluate.classification import oos_log_odds_of
        from guimo.io import read_json
        from guimo.models.load import load_run_model
        from guimo.models.text_classifier import TextClassifier, TextClassifierConfig, load_tokenizer

        path = Path(run.path)
        for need in ("model_config.json", TOKENIZER, f"data/{LABELS}"):
            if not (path / need).exists():
                raise GuimoError(f"{path / need}: not found; is {path} a finished text classification run?")
        model = load_run_model(run, TextClassifierConfig, TextClassifier, device=device)
        tokenizer = load_tokenizer(path / TOKENIZER, model.cfg.max_len)
        labels = read_json(path / "data" / LABELS)
        cal = read_json(path / CALIBRATION) if (path / CALIBRATION).exists() else {}
        return cls(model, tokenizer, labels["labels"], temperature=cal.get("temperature", 1.0), oos_log_odds=oos_log_odds_of(cal),
                   oos_label=labels.get("oos_label"), batch_size=batch_size, calibrated=bool(cal))

    def _tokens(self, texts: Sequence[str]) -> list[np.ndarray]:
        from guimo.models.text_classifier import tokenize

        if isinstance(texts, str):
            raise TypeError("pass a list of texts; wrap a single string in a list")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise GuimoError(f"input {i}: expected a string, got {type(t).__name__}")
            if not t.strip():
                raise GuimoError(f"input {i}: empty text")
            if len(t) > MAX_TEXT_CHARS:
                raise GuimoError(f"input {i}: {len(t)} characters; at most {MAX_TEXT_CHARS}")
        return tokenize(self.tokenizer, texts)

    def _logits(self, texts: Sequence[str]) -> np.ndarray:
        from guimo.models.text_classifier import predict_logits

        if not len(texts):
            return np.zeros((0, len(self.labels)))
        return predict_logits(self.model, self._tokens(texts), self.pad, self.batch_size)[0]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated class probabilities (N, K) in ``self.labels`` order."""
        from guimo.evaluate.classification import softmax

        return softmax(self._logits(texts), self.temperature)

    def classify(self, inputs: list[str]) -> list[dict[str, Any]]:
        """For each text: the top label, its calibrated probability, whether it is out of scope (the
        top label is the out-of-scope label, or its log-odds are below the validated threshold) and
        every label's probability."""
        from guimo.evaluate.classification import softmax, top_log_odds

        logits = self._logits(inputs)
        out = []
        for row, lo in zip(softmax(logits, self.temperature), top_log_odds(logits, self.temperature)):
            top = int(row.argmax())
            label, conf = self.labels[top], float(row[top])
            out.append({"label": label, "confidence": conf,
                        "out_of_scope": bool(label == self.oos_label or lo < self.oos_log_odds),
                        "scores": {l: float(p) for l, p in zip(self.labels, row)}})
        return out

    def embed(self, texts: list[str]) -> tuple[list[list[float]], list[int]]:
        """Unit-norm pooled encoder states of the fine-tuned model (N, d_model) and each text's token count."""
        from guimo.models.text_classifier import predict_logits

        if not len(texts):
            return [], []
        seqs = self._tokens(texts)
        _, pooled = predict_logits(self.model, seqs, self.pad, self.batch_size, with_pooled=True)
        pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.tolist(), [int(len(s)) for s in seqs]

    def describe(self) -> dict[str, Any]:
        from guimo.evaluate.classification import oos_calibration

        return {"labels": len(self.labels), "oos_label": self.oos_label, "temperature": self.temperature,
                **oos_calibration(self.oos_log_odds), "calibrated": self.calibrated}
