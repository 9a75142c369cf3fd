"""The run directory contract: manifest contents, stage bookkeeping, re-running one stage."""

from __future__ import annotations

import json

import pytest

from guimo.errors import GuimoError
from guimo.io import atomic_write_json, iter_jsonl, read_text_strict
from guimo.pipeline.rundir import STAGES, RunDir, list_runs


def test_manifest_records_config_versions_fingerprint_and_every_stage(tiny_lm_run):
    m = json.loads((tiny_lm_run / "manifest.json").read_text())
    assert m["scenario"] == "lm" and m["status"] == "done"
    assert m["config"]["train"]["max_steps"] == 30 and m["config"]["model"]["d_model"] == 32
    assert m["environment"]["packages"]["torch"]
    assert m["data"]["fingerprint"].startswith("sha256:") and m["data"]["bytes"] > 100_000
    for stage in STAGES:
        assert m["stages"][stage]["status"] == "done", stage
        assert m["stages"][stage]["seconds"] >= 0
    assert m["stages"]["train"]["steps"] == 30
    for name in ("data/raw.jsonl", "data/tokenizer.json", "data/train.npy", "model_config.json",
                 "checkpoints/best.safetensors", "train_log.jsonl", "metrics.json", "model.safetensors"):
        assert (tiny_lm_run / name).exists(), name


def test_from_stage_reruns_only_later_stages(tiny_lm_run, tmp_path):
    import shutil

    from guimo.cli import main

    run = tmp_path / "copy"
    shutil.copytree(tiny_lm_run, run)
    before = json.loads((run / "manifest.json").read_text())["stages"]
    assert main(["run", "lm", "--out", str(run), "--from", "evaluate", "--quiet"]) == 0
    after = json.loads((run / "manifest.json").read_text())["stages"]
    assert after["train"]["finished"] == before["train"]["finished"]  # train was not re-run
    assert after["evaluate"]["finished"] >= before["evaluate"]["finished"]
    assert after["evaluate"]["status"] == "done"


def test_from_stage_needs_the_earlier_stages(tmp_path):
    from tests.conftest import tiny_lm_config

    from guimo.pipeline.runner import run_pipeline

    run_pipeline("lm", tiny_lm_config(), tmp_path / "r", to_stage="collect", quiet=True)
    with pytest.raises(GuimoError, match="'preprocess' has not finished"):
        run_pipeline("lm", tiny_lm_config(), tmp_path / "r", from_stage="train", quiet=True)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(GuimoError, match="is not a run directory"):
        RunDir.open(tmp_path)
    (tmp_path / "stuff.txt").write_text("x")
    with pytest.raises(GuimoError, match="not a run directory; choose another --out"):
        RunDir.create(tmp_path, "lm", {})


def test_a_run_of_another_scenario_is_not_reused(tmp_path):
    RunDir.create(tmp_path / "r", "lm", {})
    with pytest.raises(GuimoError, match="holds a 'lm' run"):
        RunDir.create(tmp_path / "r", "recommend", {})


def test_list_runs_finds_nested_runs(tiny_lm_run):
    runs = list_runs(tiny_lm_run.parent)
    assert [r.path for r in runs] == [tiny_lm_run]


def test_atomic_json_replaces_whole_file(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]  # no temp files left behind


def test_strict_readers_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n\n{"a": \n')
    with pytest.raises(GuimoError, match=r"bad\.jsonl:3: not valid JSON"):
        list(iter_jsonl(bad))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("ok\nline two caf\xe9\n".encode("latin-1"))
    with pytest.raises(GuimoError, match=r"latin\.txt:2: not UTF-8"):
        read_text_strict(latin)


def test_module_parameter_counts_exclude_lookups_and_count_tied_weights_once():
    import torch.nn as nn

    from guimo.models.transformer import Transformer, TransformerConfig, count_parameters
    from guimo.pipeline.runner import module_parameter_counts

    cfg = TransformerConfig(vocab_size=100, max_len=32, n_layer=2, n_head=2, d_model=16)
    assert module_parameter_counts(Transformer(cfg)) == count_parameters(cfg)  # tied head counted once
    wrapper = nn.ModuleDict({"item_emb": nn.Embedding(50, 8), "proj": nn.Linear(8, 4)})
    assert module_parameter_counts(wrapper) == {"total": 50 * 8 + 8 * 4 + 4, "non_embedding": 8 * 4 + 4}
