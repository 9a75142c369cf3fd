"""Checkpoints: plain data, the JSON as commit marker, torn files ignored, RNG restored."""

from __future__ import annotations

import json

import pytest
import torch

from guimo.models.transformer import Transformer
from guimo.train import checkpoint
from guimo.train.config import TrainConfig
from guimo.train.loop import make_optimizer
from tests.train.worker import model_config


def _trained(seed=0):
    torch.manual_seed(seed)
    model = Transformer(model_config(0.0))
    opt = make_optimizer(model, TrainConfig(), torch.device("cpu"))
    x = torch.randint(0, 32, (4, 16))
    model(x).sum().backward()
    opt.step()
    return model, opt


def _save(tmp_path, step, model, opt):
    return checkpoint.save(tmp_path, step, model, opt, {"examples_seen": step * 16})


def test_round_trip_restores_model_optimizer_and_rng(tmp_path):
    model, opt = _trained()
    torch.manual_seed(123)
    stem = _save(tmp_path, 5, model, opt)
    expected_draw = torch.rand(3)

    fresh, fresh_opt = _trained(seed=1)
    torch.manual_seed(999)
    meta = checkpoint.load(stem, fresh, fresh_opt, torch.device("cpu"))
    assert (meta["step"], meta["examples_seen"]) == (5, 80)
    assert torch.equal(torch.rand(3), expected_draw)  # the dropout stream continues exactly
    for (n, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), n
    for pid, state in opt.state_dict()["state"].items():
        for k, v in state.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(fresh_opt.state_dict()["state"][pid][k])), (pid, k)


def test_tied_head_saved_once_and_reloaded_tied(tmp_path):
    model, opt = _trained()
    stem = _save(tmp_path, 1, model, opt)
    from safetensors import safe_open

    with safe_open(str(stem.with_suffix(".safetensors")), "pt") as f:
        names = set(f.keys())
    assert "model.tok_emb.weight" in names and "model.head.weight" not in names
    fresh, fresh_opt = _trained(seed=1)
    checkpoint.load(stem, fresh, fresh_opt, torch.device("cpu"))
    assert fresh.head.weight is fresh.tok_emb.weight and torch.equal(fresh.head.weight, model.tok_emb.weight)


def test_keeps_the_two_newest(tmp_path):
    model, opt = _trained()
    for step in (10, 20, 30):
        _save(tmp_path, step, model, opt)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step-0000020.json", "step-0000020.safetensors", "step-0000030.json", "step-0000030.safetensors",
    ]
    assert checkpoint.latest(tmp_path).name == "step-0000030"


def test_json_is_the_commit_marker(tmp_path):
    """A kill between the tensor file and the JSON leaves the previous checkpoint as the latest."""
    model, opt = _trained()
    _save(tmp_path, 10, model, opt)
    stem = _save(tmp_path, 20, model, opt)
    stem.with_suffix(".json").unlink()
    assert checkpoint.latest(tmp_path).name == "step-0000010"


def test_missing_or_torn_tensor_file_is_ignored(tmp_path):
    model, opt = _trained()
    _save(tmp_path, 10, model, opt)
    stem = _save(tmp_path, 20, model, opt)
    data = stem.with_suffix(".safetensors").read_bytes()
    stem.with_suffix(".safetensors").write_bytes(data[: len(data) - 100])
    with pytest.warns(checkpoint.SkippedCheckpointWarning, match="step-0000020.safetensors: SafetensorError"):
        assert checkpoint.latest(tmp_path).name == "step-0000010"
    stem.with_suffix(".safetensors").unlink()
    with pytest.warns(checkpoint.SkippedCheckpointWarning, match="step-0000020.safetensors: FileNotFoundError"):
        assert checkpoint.latest(tmp_path).name == "step-0000010"


def test_torn_json_is_ignored(tmp_path):
    model, opt = _trained()
    _save(tmp_path, 10, model, opt)
    stem = _save(tmp_path, 20, model, opt)
    stem.with_suffix(".json").write_text('{"step": 2')
    with pytest.warns(checkpoint.SkippedCheckpointWarning, match="step-0000020.json: JSONDecodeError"):
        assert checkpoint.latest(tmp_path).name == "step-0000010"


def test_no_checkpoint(tmp_path):
    assert checkpoint.latest(tmp_path) is None
    assert checkpoint.latest(tmp_path / "absent") is None


def test_writes_are_atomic_no_temp_files_left(tmp_path):
    model, opt = _trained()
    _save(tmp_path, 1, model, opt)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    meta = json.loads((tmp_path / "step-0000001.json").read_text())
    assert meta["param_groups"][0]["weight_decay"] == TrainConfig().weight_decay


def test_checkpoint_holds_no_pickle(tmp_path):
    """Tensors in safetensors, the rest in JSON: loadable without executing anything."""
    model, opt = _trained()
    stem = _save(tmp_path, 1, model, opt)
    json.loads(stem.with_suffix(".json").read_text())
    from safetensors.torch import load_file

    tensors = load_file(str(stem.with_suffix(".safetensors")))
    assert {k.split(".")[0] for k in tensors} == {"model", "optim", "rng"}


def test_a_skipped_checkpoint_is_named_in_a_warning(tmp_path):
    model, opt = _trained()
    _save(tmp_path, 10, model, opt)
    stem = _save(tmp_path, 20, model, opt)
    stem.with_suffix(".json").write_text('{"step": "twenty"}')
    with pytest.warns(checkpoint.SkippedCheckpointWarning, match=r"step-0000020.json: no integer 'step' key; resuming from .*step-0000010"):
        assert checkpoint.latest(tmp_path).name == "step-0000010"


def test_tensors_without_their_json_were_never_committed_and_are_passed_over(tmp_path, recwarn):
    model, opt = _trained()
    _save(tmp_path, 10, model, opt).with_suffix(".json").unlink()  # a kill between the two writes of the first checkpoint
    assert checkpoint.latest(tmp_path) is None and not recwarn.list


def test_checkpoints_none_of_which_can_be_read_are_an_error_naming_each(tmp_path):
    from guimo.errors import GuimoError

    model, opt = _trained()
    for step in (10, 20):
        _save(tmp_path, step, model, opt)
    (tmp_path / "step-0000020.safetensors").write_bytes(b"\0" * 64)
    (tmp_path / "step-0000010.json").write_text("{")
    with pytest.raises(GuimoError, match=r"no checkpoint can be read.*step-0000020.safetensors: SafetensorError.*step-0000010.json: JSONDecodeError"):
        checkpoint.latest(tmp_path)


def test_an_optimizer_grouped_otherwise_is_refused_by_name(tmp_path):
    """A checkpoint whose optimizer groups do not match this model's optimizer (another guimo version grouped the
    parameters otherwise) is refused with the file named, not torch's bare size mismatch or a silent mix-up."""
    from guimo.errors import GuimoError

    model, opt = _trained()
    stem = _save(tmp_path, 5, model, opt)
    fresh, _ = _trained(seed=1)
    one_group = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    with pytest.raises(GuimoError, match=r"parameter groups of sizes .*cannot resume"):
        checkpoint.load(stem, fresh, one_group, torch.device("cpu"))
