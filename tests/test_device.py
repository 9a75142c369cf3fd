"""Where training runs: a device that is not there is one clear error before any stage; on a GPU (tests marked
``cuda``, run by bench/device_check.sh where torch sees one) auto picks it with bf16, trains, records it in the
manifest, evaluates there and serves from it."""

from __future__ import annotations

import json

import pytest
import torch

from guimo.errors import GuimoError
from guimo.device import Bf16Evidence, choose_precision, cpu_info, describe, pick_device, resolve_precision

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
    assert train["precision_reason"] == choose_precision("auto", want)[1] and train["precision_reason"].startswith("auto: ")
    assert json.loads((tiny_lm_run / "manifest.json").read_text())["environment"]["cpu"] == cpu_info()
    assert main(["show", str(tiny_lm_run)]) == 0
    assert f"trained on {describe(want)} in {train['precision']}, 30 steps" in capsys.readouterr().out


# -- the CPU and precision=auto ----------------------------------------------------------------

XEON = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
EPYC = "processor\t: 0\nmodel name\t: AMD EPYC 9654 96-Core Processor\nflags\t\t: fpu avx avx2 avx512f avx512_bf16 avx512_vnni\n"
OLD = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU E5-2680 v4\nflags\t\t: fpu avx avx2\n"
MEASURED = {"amx_bf16": Bf16Evidence(step_speedup=2.4, equal_quality=True, source="a test's record")}
CPU = torch.device("cpu")


@pytest.mark.parametrize("text, model, flags", [
    (XEON, "Intel(R) Xeon(R) Platinum 8480+", ["avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"]),
    (EPYC, "AMD EPYC 9654 96-Core Processor", ["avx2", "avx512f", "avx512_bf16"]),
    (OLD + OLD.replace("processor\t: 0", "processor\t: 1"), "Intel(R) Xeon(R) CPU E5-2680 v4", ["avx2"]),
])
def test_cpu_info_reads_the_model_and_the_bf16_flags(text, model, flags):
    info = cpu_info(text)
    assert (info["model"], info["flags"]) == (model, flags)
    assert info["capability"] == torch.backends.cpu.get_cpu_capability() and info["cores"] >= 1


def test_this_machines_cpu_is_recorded_with_its_flags():
    info = cpu_info()
    assert info["model"] and set(info["flags"]) <= {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}
    json.dumps(info)  # it goes into manifest.json and the bench results as it is


@pytest.mark.parametrize("text", [EPYC, OLD])
def test_auto_is_fp32_on_a_cpu_without_amx_even_with_a_measured_speedup(text):
    precision, why = choose_precision("auto", CPU, cpu_info(text), MEASURED)
    assert precision == "fp32" and "bf16 is picked only with AMX" in why and cpu_info(text)["model"] in why


def test_auto_is_bf16_on_amx_where_a_step_measured_fast_enough_at_equal_quality():
    precision, why = choose_precision("auto", CPU, cpu_info(XEON), MEASURED)
    assert precision == "bf16" and "2.40x at equal quality" in why and "not bit-identical" in why


@pytest.mark.parametrize("evidence, says", [
    ({"amx_bf16": Bf16Evidence(None, None, "matmul only")}, "no bf16 training step is measured on AMX yet (matmul only)"),
    ({}, "no bf16 training step is measured on AMX yet (no record)"),
    ({"amx_bf16": Bf16Evidence(1.3, True, "slow")}, "measured 1.30x (needs >= 1.5x"),
    ({"amx_bf16": Bf16Evidence(2.0, False, "worse")}, "measured 2.00x and lost validation quality"),
])
def test_auto_stays_fp32_on_amx_without_the_evidence_and_says_why(evidence, says):
    precision, why = choose_precision("auto", CPU, cpu_info(XEON), evidence)
    assert precision == "fp32" and says in why


def test_the_recorded_table_keeps_auto_fp32_on_amx_until_a_step_is_measured_there():
    """The shipped evidence: AMX was measured on a matmul only (issue #22), so auto does not switch on AMX yet."""
    precision, why = choose_precision("auto", CPU, cpu_info(XEON))
    assert precision == "fp32" and "no bf16 training step is measured on AMX yet" in why


def test_an_explicit_precision_is_kept_and_a_wrong_one_refused():
    assert choose_precision("bf16", CPU, cpu_info(OLD)) == ("bf16", "train.precision = bf16, set by the config")
    assert choose_precision("fp32", CPU, cpu_info(XEON), MEASURED)[0] == "fp32"
    with pytest.raises(GuimoError, match="train.precision = 'fp16'"):
        choose_precision("fp16", CPU)


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
