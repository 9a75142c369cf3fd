"""int8 dynamic quantization: what is quantized, the int8 file round trip, the dequantized weights,
and the optimize stage on a real (tiny) language-model run: report, artifacts, serving."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from guimo.models.int8 import Int8Linear
from guimo.models.transformer import Transformer, TransformerConfig
from guimo.optimize import quantize as q8
from tests.numerics import assert_close, assert_equal


def _model(tie: bool = True) -> Transformer:
    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=300, max_len=16, n_layer=2, n_head=2, d_model=32, tie_weights=tie)).eval()


def test_tied_head_stays_float_and_every_other_linear_is_quantized():
    tied, untied = q8.quantizable(_model(tie=True)), q8.quantizable(_model(tie=False))
    assert "head" not in tied and "head" in untied
    assert sorted(tied) == sorted(f"blocks.{i}.{m}" for i in range(2) for m in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"))


@pytest.mark.numerics
def test_int8_file_round_trip_is_exact_and_smaller(tmp_path):
    model = _model(tie=False)
    qmodel, names = q8.quantize(model)
    x = torch.randint(0, 300, (3, 16))
    with torch.no_grad():
        ref, out = model(x), qmodel(x)
    assert (ref - out).abs().max() > 0  # quantized...
    # ...and close: each int8 matmul rounds its weights and inputs to 1/127 of their range, an error of
    # about that "eps" relative to its output; the logits pass 9 of them in sequence (4 per block, the
    # untied head), so the rounding stages play the part of the reduction size (measured: 0.02 of the
    # logits' scale, against 0.19 allowed; a wrong scale or channel would be off by the whole scale)
    assert_close(out, ref, dtype=torch.int8, reduction=9, name="int8 logits")
    size = q8.save_int8(tmp_path / "m.int8.safetensors", qmodel, model, names)
    assert size < 0.5 * q8.float_bytes(model)  # Linear weights (incl. the untied head) are 1 byte instead of 4
    loaded = q8.load_int8(_model(tie=False), tmp_path / "m.int8.safetensors")
    with torch.no_grad():
        assert_equal(loaded(x), out, name="reloaded int8 logits")  # the same int8 weights, the same kernels
    # a file from before guimo.models.int8 (no activation_bits) runs as it was validated: torch's stock 7-bit inputs
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(tmp_path / "m.int8.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta.pop("activation_bits") == "8"
    save_file(load_file(str(tmp_path / "m.int8.safetensors")), str(tmp_path / "old.int8.safetensors"), metadata=meta)
    old = q8.load_int8(_model(tie=False), tmp_path / "old.int8.safetensors")
    assert type(old.blocks[0].mlp.fc) is torch.ao.nn.quantized.dynamic.Linear and isinstance(loaded.blocks[0].mlp.fc, Int8Linear)


def test_dequantized_weights_load_into_the_float_model():
    model = _model()
    qmodel, names = q8.quantize(model)
    state = q8.dequantized_state(qmodel, model, names)
    w = state["blocks.0.mlp.fc.weight"]
    scales = dict(qmodel.named_modules())["blocks.0.mlp.fc"]._weight_bias()[0].q_per_channel_scales()
    levels = w / scales[:, None].float()  # int8 x scale / scale: integers up to float32 rounding of the two operations
    assert_close(levels, torch.round(levels), dtype=torch.float32, reduction=2, scale=128, name="int8 levels")
    assert levels.abs().max() <= 64  # 7-bit weights (guimo.models.int8): -64..63
    fresh = _model()
    from guimo.train.checkpoint import load_model_state

    load_model_state(fresh, state)  # strict apart from the tied head
    assert not torch.equal(fresh.blocks[0].mlp.fc.weight, model.blocks[0].mlp.fc.weight)


def _outlier_mlp() -> torch.nn.Sequential:
    """Two Linear layers; the first writes one huge channel that the second reads with a tiny weight, so the
    second layer's input range is set by that channel and its int8 rounding wipes out the other channels."""
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Linear(32, 8)).eval()
    with torch.no_grad():
        mlp[0].weight[0] *= 1000.0
        mlp[1].weight[:, 0] /= 1000.0
    return mlp


def test_int8_errors_find_the_layer_with_an_outlier_input_and_keeping_it_float_helps():
    mlp, x = _outlier_mlp(), torch.randn(256, 16)
    qmodel, names = q8.quantize(mlp)
    errors = q8.int8_errors(mlp, qmodel, names, lambda m: m(x))
    assert sorted(errors) == ["0", "1"]
    assert errors["1"] > 100 * errors["0"] > 0  # measured: 0.90 against 2.7e-4
    partial, kept_names = q8.quantize(mlp, keep_float=["1"])
    assert kept_names == ["0"] and isinstance(partial[1], torch.nn.Linear)
    with torch.no_grad():
        ref = mlp(x)
        all_err = (qmodel(x) - ref).pow(2).sum() / ref.pow(2).sum()
        part_err = (partial(x) - ref).pow(2).sum() / ref.pow(2).sum()
    assert part_err < 0.01 * all_err
    assert all(not h for m in mlp for h in (m._forward_hooks,))  # the measuring hooks are gone
    with pytest.raises(ValueError, match="no quantizable Linear layer: \\['2'\\]"):
        q8.quantize(mlp, keep_float=["2"])


def test_fallback_counts_double_up_to_the_cap_and_never_reach_every_layer():
    from guimo.optimize.stage import fallback_counts

    assert fallback_counts(8, 25) == [1, 2, 4, 8]
    assert fallback_counts(5, 25) == [1, 2, 4, 5]
    assert fallback_counts(8, 8) == [1, 2, 4, 7]
    assert fallback_counts(8, 2) == [1] and fallback_counts(8, 1) == [] and fallback_counts(0, 9) == []


@pytest.mark.parametrize("tolerance", [0.1, 1e-9], ids=["fallback-kept", "fallback-refused"])
def test_optimize_keeps_the_worst_layer_float_when_int8_misses_the_tolerance(tmp_path, tolerance):
    """The stage's int8 step on the outlier MLP, its metric a mean squared error (lower is better) against
    targets 10% off the float outputs: every layer int8 is ~90x worse (int8 error 0.9 of the output's power
    against the baseline's 0.01), layer "1" kept float ~1.03x (2.7e-4): kept within 10%; nothing is within 1e-9."""
    from types import SimpleNamespace

    from guimo.optimize.stage import Kept, _quantize
    from guimo.scenarios.base import OptimizeConfig

    mlp, x = _outlier_mlp(), torch.randn(256, 16)
    with torch.no_grad():
        ref = mlp(x)
        y = ref + 0.1 * ref.std() * torch.randn_like(ref)

    def evaluate(model):
        with torch.no_grad():
            return {"mse": float((model(x) - y).pow(2).mean())}

    ctx = SimpleNamespace(run=tmp_path, cfg=SimpleNamespace(optimize=OptimizeConfig(quantize=True, quantize_tolerance=tolerance)))
    report, kept = _quantize(ctx, Kept(mlp, evaluate(mlp)["mse"], "trained"), evaluate, "mse", hib=False)
    assert [a["float_layers"] for a in report["attempts"]] == [[], ["1"]]  # two Linear layers: at most one stays float
    assert report["attempts"][0]["relative_change"] > 50 and 0 < report["attempts"][1]["relative_change"] < 0.1
    assert list(report["int8_errors"]) == ["1", "0"]
    assert report["kept"] is (tolerance == 0.1) and (tmp_path / "model.int8.safetensors").exists() is report["kept"]
    if report["kept"]:
        assert report["modules"] == ["0"] and report["float_layers"] == ["1"]
        assert kept.source == "trained + int8 (1 Linear layers float)" and kept.value == report["attempts"][1]["value"]
        served = q8.load_int8(_outlier_mlp(), tmp_path / "model.int8.safetensors")
        assert isinstance(served[1], torch.nn.Linear) and not isinstance(served[0], torch.nn.Linear)
        assert evaluate(served)["mse"] == kept.value  # what was validated is what is served
    else:
        assert kept.source == "trained" and kept.model is mlp


def test_not_an_int8_file_is_a_clear_error(tmp_path):
    from guimo.errors import GuimoError
    from guimo.io import atomic_save_safetensors

    atomic_save_safetensors(tmp_path / "plain.safetensors", {"a": torch.zeros(2)})
    with pytest.raises(GuimoError, match="not a guimo-int8-dynamic-v1 file"):
        q8.load_int8(_model(), tmp_path / "plain.safetensors")


@pytest.mark.numerics
@pytest.mark.parametrize("kept", [True, False], ids=["int8-kept", "int8-refused"])
def test_optimize_stage_on_a_language_model_run(tiny_lm_run, tmp_path, kept):
    """Search (2 short trials) + int8 on a copy of the shared tiny run; serving still works. Both
    branches of the int8 decision are forced: a tolerance of 1.0 keeps any int8 model within 100% of
    the float one, one of -1.0 would need the int8 loss to drop by 100%, which no loss can."""
    from guimo.config import apply_overrides, from_dict
    from guimo.models.load import load_model
    from guimo.pipeline.rundir import RunDir
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios.lm import SCENARIO

    run_path = tmp_path / "run"
    shutil.copytree(tiny_lm_run, run_path)
    cfg = from_dict(SCENARIO.config_cls, RunDir.open(run_path).config)
    search = ["optimize.trials=2", "optimize.trial_steps=8"] if kept else ["optimize.trials=0"]
    if kept:
        pytest.importorskip("optuna")
    cfg = apply_overrides(cfg, [*search, "optimize.quantize=true", f"optimize.quantize_tolerance={1.0 if kept else -1.0}"])
    run = run_pipeline("lm", cfg, run_path, from_stage="optimize", quiet=True)
    report = json.loads((run_path / "optimize.json").read_text())
    assert run.manifest["stages"]["optimize"]["status"] == "done"
    assert report["metric"] == "loss"
    if kept:
        assert len(report["search"]["trials"]) == 2
        for t in report["search"]["trials"]:
            assert (run_path / t["path"] / "train_log.jsonl").exists()
        assert report["search"]["kept"] == (report["search"]["candidate"]["value"] < report["baseline"]["value"])
    qz = report["quantize"]
    head = [] if cfg.model.tie_weights else ["head"]  # a tied head stays float with the embedding
    linear = sorted([f"blocks.{i}.{m}" for i in range(cfg.model.n_layer) for m in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")] + head)
    assert qz["int8_bytes"] < qz["fp32_bytes"] and sorted(qz["modules"] + qz["float_layers"]) == linear
    if kept:  # within tolerance at once: every Linear int8, no fallback measured
        assert qz["float_layers"] == [] and len(qz["attempts"]) == 1 and qz["int8_errors"] == {}
    else:  # the fallback kept the 1, 2, 4, 8 layers with the largest int8 error float, each validated, none enough
        order, errors = list(qz["int8_errors"]), list(qz["int8_errors"].values())
        assert sorted(order) == linear and errors == sorted(errors, reverse=True) and errors[-1] > 0
        assert [a["float_layers"] for a in qz["attempts"]] == [order[:k] for k in (0, 1, 2, 4, 8)]
        assert qz["float_layers"] == order[:8] and qz["value_int8"] == qz["attempts"][-1]["value"]
    assert 0 < abs(qz["relative_change"]) < 0.05  # int8 changed the loss, by little
    assert qz["kept"] is kept and qz["artifact"] == ("model.int8.safetensors" if kept else None)
    assert (run_path / "model.int8.safetensors").exists() is kept
    metrics = json.loads((run_path / "metrics.json").read_text())
    served = load_model(SCENARIO, RunDir.open(run_path))
    predictor = SCENARIO.load_predictor(RunDir.open(run_path))
    assert predictor.complete("def ", max_tokens=5, temperature=0).completion_tokens >= 1
    if kept:
        assert metrics["optimized"]["source"].endswith("+ int8")
        kept_value = report["search"]["candidate"]["value"] if report["search"]["kept"] else report["baseline"]["value"]
        assert report["final_value"] == qz["value_int8"]  # served = the int8 model validated, the same kernels on the same weights
        assert report["final_value"] == pytest.approx(kept_value, rel=0.05)  # within the 5% int8 moved it
        assert isinstance(served.blocks[0].mlp.fc, Int8Linear)  # int8 kernels (8-bit inputs), not fp32
        # the same optimize again: "before" is still the trained model's, not the int8 model's that metrics.json describes now
        run_pipeline("lm", apply_overrides(cfg, ["optimize.trials=0"]), run_path, from_stage="optimize", quiet=True)
        again = json.loads((run_path / "optimize.json").read_text())
        assert again["test_before"] == metrics["optimized"]["before"] == report["test_before"]
        # --from evaluate: evaluate scores the trained model again (not the int8 file still on disk), then optimize chooses
        run_pipeline("lm", apply_overrides(cfg, ["optimize.trials=0"]), run_path, from_stage="evaluate", quiet=True)
        assert json.loads((run_path / "optimize.json").read_text())["test_before"] == metrics["optimized"]["before"]
        # a later optimize without quantization serves float weights again, and metrics.json describes them again
        plain = apply_overrides(cfg, ["optimize.trials=0", "optimize.quantize=false"])
        run_pipeline("lm", plain, run_path, from_stage="optimize", quiet=True)
        assert not (run_path / "model.int8.safetensors").exists()
        assert isinstance(load_model(SCENARIO, RunDir.open(run_path)).blocks[0].mlp.fc, torch.nn.Linear)
        restored = json.loads((run_path / "metrics.json").read_text())
        assert "optimized" not in restored and restored["model"] == metrics["optimized"]["before"]
    else:  # refused: the trained float model is served, its metrics untouched
        assert report["final"]["source"] == "checkpoints/best.safetensors" and "optimized" not in metrics
        assert report["final_value"] == report["baseline"]["value"] == qz["value_before"]
        assert isinstance(served.blocks[0].mlp.fc, torch.nn.Linear)
        assert (run_path / "model.safetensors").read_bytes() == (run_path / "checkpoints" / "best.safetensors").read_bytes()
