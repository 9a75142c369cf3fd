"""The `lm` scenario end to end on small real text: artifacts, splits, re-running a stage, the
metric arithmetic, `--data` sources, and quality against the unigram and bigram baselines."""

from __future__ import annotations

import json
import math
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from guimo.cli import main
from guimo.config import apply_overrides
from guimo.pipeline.runner import run_pipeline
from guimo.scenarios.lm import LM_PRESETS, SCENARIO

# 300 KB of the standard library, a 512-token BPE, evaluation on 5,000 tokens.
SMALL_DATA = ["data.max_bytes=300000", "data.vocab_size=512", "data.eval_tokens=5000", "train.batch_size=16", "train.checkpoint_every=0"]


def _config(*overrides: str):
    return apply_overrides(SCENARIO.config_cls(), [*SMALL_DATA, *overrides], SCENARIO.presets)


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """nano model, 40 steps (a few seconds)."""
    out = tmp_path_factory.mktemp("lm") / "small"
    cfg = _config("model=nano", "train.max_steps=40", "train.lr=1e-2", "train.warmup_steps=5", "train.eval_every=20")
    run_pipeline("lm", cfg, out, quiet=True)
    return out


def test_run_leaves_every_artifact(small_run):
    manifest = json.loads((small_run / "manifest.json").read_text())
    assert manifest["status"] == "done"
    assert [s for s, v in manifest["stages"].items() if v["status"] == "done"] == ["collect", "preprocess", "init", "train", "evaluate", "optimize"]
    assert manifest["data"]["fingerprint"].startswith("sha256:") and manifest["data"]["source"] == "embedded:python-stdlib"
    assert manifest["stages"]["collect"]["bytes"] <= 300_000
    for rel in ("data/raw.jsonl", "data/tokenizer.json", "data/train.npy", "data/val.npy", "data/test.npy", "model_config.json",
                "checkpoints/init.safetensors", "checkpoints/best.safetensors", "model.safetensors", "train_log.jsonl"):
        assert (small_run / rel).is_file(), rel
    tok = json.loads((small_run / "data/tokenizer.json").read_text())
    assert len(tok["model"]["vocab"]) == 512 == manifest["stages"]["preprocess"]["vocab_size"]
    model_config = json.loads((small_run / "model_config.json").read_text())
    assert model_config["vocab_size"] == 512 and model_config["causal"] and not model_config["tie_weights"]
    m = _metrics(small_run)
    assert m["headline"] == "bits_per_byte" and m["higher_is_better"] is False and m["split"] == "test"
    assert set(m["baselines"]) == {"unigram", "bigram"}
    assert m["eval_tokens"] == 5000 // 128 * 128  # whole blocks of the model's context


def test_transformer_clearly_beats_the_unigram_baseline(small_run):
    m = _metrics(small_run)
    assert m["model"]["bits_per_byte"] < 0.9 * m["baselines"]["unigram"]["bits_per_byte"]  # measured: 0.84x


def test_metrics_follow_from_the_token_files(small_run):
    """bits per byte = loss * targets / ln 2 / bytes of those targets; perplexity = exp(loss)."""
    from guimo.pipeline.rundir import RunDir
    from guimo.scenarios.lm import block_targets, load_tokenizer, token_byte_lengths

    m = _metrics(small_run)
    run = RunDir.open(small_run)
    test = np.load(small_run / "data/test.npy")[: 5000 + 1]
    _, targets = block_targets(test, 128)
    n_bytes = token_byte_lengths(load_tokenizer(run))[targets].sum()
    for scores in (m["model"], *m["baselines"].values()):
        assert scores["perplexity"] == pytest.approx(math.exp(scores["loss"]))
        assert scores["bits_per_byte"] == pytest.approx(scores["loss"] * len(targets) / math.log(2) / n_bytes)


def test_from_evaluate_reruns_only_evaluate(small_run, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(small_run, run)
    before = json.loads((run / "manifest.json").read_text())
    kept = {p: p.stat().st_mtime_ns for p in [*(run / "data").iterdir(), *(run / "checkpoints").iterdir(), run / "model.safetensors"]}
    (run / "metrics.json").unlink()
    assert main(["run", "lm", "--out", str(run), "--from", "evaluate", "--to", "evaluate", "--quiet"]) == 0
    after = json.loads((run / "manifest.json").read_text())
    for stage in ("collect", "preprocess", "init", "train", "optimize"):
        assert after["stages"][stage] == before["stages"][stage], stage
    assert after["stages"]["evaluate"]["finished"] >= before["stages"]["evaluate"]["finished"]
    assert after["config"] == before["config"]  # --from keeps the run's own config
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # no earlier artifact was rewritten
    # the same model on the same tokens; only the file scored differs: model.safetensors now, the
    # byte-identical checkpoints/best.safetensors before the optimize stage had copied it
    rerun, first = _metrics(run), _metrics(small_run)
    assert (rerun.pop("weights"), first.pop("weights")) == ("model.safetensors", "checkpoints/best.safetensors")
    assert rerun == first


# -- --data sources (collect and preprocess only: no training needed) ---------------------------


def _stdlib_files(n: int) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if 3_000 < p.stat().st_size < 30_000)
    return files[:n]


def _preprocess(tmp_path: Path, data: Path) -> dict:
    out = tmp_path / "run"
    assert main(["run", "lm", "--data", str(data), "--out", str(out), "--to", "preprocess", "--quiet",
                 "--set", "data.vocab_size=300", "--set", "model=nano"]) == 0
    return json.loads((out / "manifest.json").read_text())


def test_data_folder_is_split_by_document(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    files = _stdlib_files(40)
    for f in files:
        shutil.copy(f, folder / f.name)
    manifest = _preprocess(tmp_path, folder)
    assert manifest["data"]["source"] == str(folder) and manifest["stages"]["collect"]["files"] == 40
    pre = manifest["stages"]["preprocess"]
    assert pre["train_documents"] + pre["val_documents"] + pre["test_documents"] == 40
    assert pre["val_documents"] >= 1 and pre["test_documents"] >= 1
    # The token files hold exactly the documents of their split (each followed by end-of-text):
    from guimo.data.text import split_single
    from guimo.pipeline.rundir import RunDir
    from guimo.scenarios.lm import load_tokenizer

    run = RunDir.open(tmp_path / "run")
    docs = [(p.name, p.read_text()) for p in sorted(folder.iterdir())]
    splits = split_single(docs, 0.05, 0.05)
    names = [{n for n, _ in splits[s]} for s in ("train", "val", "test")]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    tok = load_tokenizer(run)
    for split in ("train", "val", "test"):
        expected = sum(len(tok.encode(t).ids) + 1 for _, t in splits[split])
        assert len(np.load(run.path / f"data/{split}.npy")) == expected


def test_data_text_file(tmp_path):
    f = tmp_path / "corpus.txt"
    f.write_text("".join(p.read_text() for p in _stdlib_files(12)))
    manifest = _preprocess(tmp_path, f)
    assert manifest["stages"]["collect"]["files"] == 1 and manifest["stages"]["collect"]["bytes"] == len(f.read_bytes())
    assert manifest["stages"]["preprocess"]["val_tokens"] > 0 and manifest["stages"]["preprocess"]["test_tokens"] > 0


def test_data_jsonl(tmp_path):
    f = tmp_path / "corpus.jsonl"
    f.write_text("".join(json.dumps({"text": p.read_text(), "source": p.name}) + "\n" for p in _stdlib_files(25)))
    manifest = _preprocess(tmp_path, f)
    assert manifest["stages"]["collect"]["files"] == 25
    raw = [json.loads(line) for line in (tmp_path / "run/data/raw.jsonl").read_text().splitlines()]
    assert [r["name"] for r in raw] == [f"corpus.jsonl:{i}" for i in range(1, 26)]


# -- presets ------------------------------------------------------------------------------------


def test_lm_presets_are_the_shared_sizes_with_an_untied_head():
    from guimo.models.transformer import PRESETS

    assert set(LM_PRESETS) == set(PRESETS)
    for name, values in LM_PRESETS.items():
        assert values == {**PRESETS[name], "tie_weights": False}
    cfg = apply_overrides(SCENARIO.config_cls(), ["model=tiny"], SCENARIO.presets)
    assert cfg.model == SCENARIO.config_cls().model  # the default model is the tiny preset


# -- quality: one slightly longer run -----------------------------------------------------------


def test_tiny_transformer_beats_the_bigram_baseline(tmp_path):
    """tiny model, 200 steps on 300 KB: below the bigram's bits per byte with a margin."""
    cfg = _config("model=tiny", "train.max_steps=200", "train.lr=5e-3", "train.warmup_steps=20", "train.eval_every=200")
    run_pipeline("lm", cfg, tmp_path / "run", quiet=True)
    m = _metrics(tmp_path / "run")
    assert m["model"]["bits_per_byte"] < 0.98 * m["baselines"]["bigram"]["bits_per_byte"]  # measured: 0.954x
    assert m["baselines"]["bigram"]["bits_per_byte"] < m["baselines"]["unigram"]["bits_per_byte"]


def test_data_cap_is_head_or_spread():
    cfg = apply_overrides(SCENARIO.config_cls(), ["data.max_bytes=1000", "data.cap=spread"], SCENARIO.presets)
    assert cfg.data.cap == "spread"
    from guimo.errors import GuimoError

    with pytest.raises(GuimoError, match="data.cap must be 'head' or 'spread'"):
        apply_overrides(SCENARIO.config_cls(), ["data.cap=middle"], SCENARIO.presets)
