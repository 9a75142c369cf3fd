"""Where training runs: a device that is not there is one clear error before any stage; on a GPU (tests marked
``cuda``, run by bench/device_check.sh where torch sees one) auto picks it with bf16, trains, records it in the
manifest, evaluates there and serves from it."""

from __future__ import annotations

import json

import pytest
import torch

from guimo.errors import GuimoError
from guimo.device import describe, pick_device, resolve_precision

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


@pytest.mark.parametrize("name, says", [("tpu", "not a device"), ("bogus", "not a device"), ("mps", "'mps' is not supported")])
def test_a_device_guimo_cannot_train_on_is_a_clear_error(name, says):
    with pytest.raises(GuimoError, match=says):
        pick_device(name)


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_asking_for_a_gpu_without_one_says_why(name):
    with pytest.raises(GuimoError, match=r"sees no CUDA device .*use auto or cpu"):
        pick_device(name)


@no_cuda
def test_guimo_run_on_a_missing_gpu_stops_before_the_run_starts(tmp_path, capsys):
    from guimo.cli import main

    assert main(["run", "lm", "--set", "train.device=cuda", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "sees no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # no stage ran, not even collect


@no_cuda
def test_guimo_serve_on_a_missing_gpu_is_refused_before_loading(capsys):
    pytest.importorskip("fastapi")
    from guimo.cli import main

    assert main(["serve", "--device", "cuda", "does-not-matter"]) == 2
    assert "sees no CUDA device" in capsys.readouterr().err


def test_the_manifest_says_where_training_ran(tiny_lm_run, capsys):
    from guimo.cli import main

    train = json.loads((tiny_lm_run / "manifest.json").read_text())["stages"]["train"]
    want = pick_device("auto")
    assert train["device"] == describe(want) and train["precision"] == resolve_precision("auto", want)
    assert main(["show", str(tiny_lm_run)]) == 0
    assert f"trained on {describe(want)} in {train['precision']}, 30 steps" in capsys.readouterr().out


# -- on a GPU -----------------------------------------------------------------------------------


@pytest.mark.cuda
def test_auto_picks_the_gpu_and_bf16():
    device = pick_device("auto")
    assert device.type == "cuda" and resolve_precision("auto", device) == "bf16"
    assert describe(pick_device("cuda:0")).startswith("cuda:0 (")


@pytest.mark.cuda
def test_bf16_on_the_gpu_trains_with_fp32_master_weights(tmp_path):
    from guimo.models.transformer import Transformer
    from guimo.scenarios.lm import TokenBlocks, lm_loss
    from guimo.train.config import TrainConfig
    from guimo.train.loop import fit
    from tests.train.worker import BLOCK, corpus, model_config

    torch.manual_seed(0)
    model = Transformer(model_config(0.0))
    cfg = TrainConfig(max_steps=40, batch_size=16, lr=1e-2, warmup_steps=4, eval_every=0, checkpoint_every=0, log_every=1, device="auto")
    result = fit(model, TokenBlocks(corpus(3000), BLOCK), lm_loss, cfg, out_dir=tmp_path)
    assert result.device.startswith("cuda:") and result.precision == "bf16"
    assert all(p.dtype == torch.float32 and p.is_cuda for p in model.parameters())
    losses = [json.loads(line)["loss"] for line in (tmp_path / "train_log.jsonl").read_text().splitlines() if "loss" in line]
    assert losses[-1] < losses[0] - 0.5, losses


@pytest.mark.cuda
def test_lm_pipeline_on_the_gpu_beats_the_unigram_and_serves_from_it(tmp_path):
    """The whole pipeline with device auto: trained and evaluated on the GPU, and the predictor loaded there decodes
    a batch as it decodes each prompt alone (greedy)."""
    from guimo.pipeline.rundir import RunDir
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get
    from tests.conftest import tiny_lm_config

    cfg = tiny_lm_config(**{"train.max_steps": "120", "train.lr": "1e-2"})
    run_pipeline("lm", cfg, tmp_path / "run", quiet=True)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["train"]["device"].startswith("cuda:") and manifest["stages"]["train"]["precision"] == "bf16"
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["model"]["bits_per_byte"] < 0.9 * m["baselines"]["unigram"]["bits_per_byte"], m

    predictor = get("lm").load_predictor(RunDir.open(tmp_path / "run"), device="cuda")
    assert next(predictor.model.parameters()).is_cuda
    prompts = ["def ", "import os\n", "class Foo(object):\n", "x"]
    assert predictor.complete_batch(prompts, max_tokens=12, temperature=0) == [predictor.complete(q, max_tokens=12, temperature=0) for q in prompts]


@pytest.mark.cuda
def test_recommender_on_the_gpu_beats_popularity(tmp_path):
    from guimo.pipeline.runner import run_pipeline
    from tests.scenarios.test_recommend import tiny_config

    run_pipeline("recommend", tiny_config(), tmp_path / "run", quiet=True)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["train"]["device"].startswith("cuda:")
    assert m["model"]["ndcg@10"] > 2.0 * m["baselines"]["popularity"]["ndcg@10"], m
