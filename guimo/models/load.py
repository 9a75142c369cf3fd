"""Reading weights into a model, and rebuilding a run's trained model: one public place for both.

The pipeline's init and train stages, the optimize stage, the CLI's predictors and the server all
load weights; before this module the pipeline runner held the only copy (as private helpers that
the optimize stage imported back, an import circle). Nothing here imports the training loop or
the optimize stage, so serving a run (``guimo.serve``, ``guimo.inference``) never pulls them in.

- ``read_weights(path_or_run)``: a safetensors file, or a run directory's served weights.
- ``load_weights(model, state, strict)``: strict for checkpoints of the same model (tied weights
  may be absent: safetensors stores shared storage once); not strict for pretrained weights,
  where the scenario may add heads but every loaded tensor must land somewhere.
- ``load_run_model(run, config_cls, build, ...)``: the run's ``model_config.json`` + its weights,
  or its int8 file on CPU when the optimize stage kept quantization (what was validated runs).
- ``load_int8(model, path)``: rebuild the int8 model from ``model.int8.safetensors``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from guimo.errors import GuimoError

if TYPE_CHECKING:
    import torch

    from guimo.pipeline.rundir import RunDir

INT8_FORMAT = "guimo-int8-dynamic-v1"  # metadata "format" of model.int8.safetensors (guimo.optimize.quantize writes it)


def read_weights(source: str | Path) -> dict[str, "torch.Tensor"]:
    """Tensors of a safetensors file, or of a run directory's served weights (``RunDir.weights_path``)."""
    from safetensors.torch import load_file

    from guimo.pipeline.rundir import RunDir

    path = Path(source)
    if path.is_dir():
        path = RunDir.open(path).weights_path()
    if not path.is_file():
        raise GuimoError(f"{path}: weights file not found")
    return load_file(str(path))


def load_state(model: "torch.nn.Module", tensors: dict[str, "torch.Tensor"]) -> None:
    """Load ``tensors`` exactly: every weight present (tied duplicates may be absent), none left over.

    Raises ValueError naming the missing and unexpected keys (training checkpoints use this too).
    """
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    untied = sorted(set(missing) - {n for n in missing if _is_tied(model, n)})
    if untied or unexpected:
        raise ValueError(f"checkpoint does not match model: missing {untied}, unexpected {unexpected}")


def _is_tied(model: "torch.nn.Module", name: str) -> bool:
    params = dict(model.named_parameters(remove_duplicate=False))
    if name not in params:
        return False
    ptr = params[name].data_ptr()
    return any(p.data_ptr() == ptr and n != name for n, p in params.items())


def load_weights(model: "torch.nn.Module", state: dict[str, "torch.Tensor"], strict: bool) -> None:
    """Put ``state`` into ``model``; a mismatch is a GuimoError, never silently random weights."""
    if strict:
        try:
            load_state(model, state)
        except (ValueError, RuntimeError) as e:
            raise GuimoError(f"weights do not fit this model: {e}") from None
        return
    # pretrained weights: the scenario may add heads (missing keys), but every loaded weight must
    # land somewhere, or a mismatched wrapper would silently keep random weights
    try:
        _, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise GuimoError(f"pretrained weights do not fit this model: {e}") from None
    if unexpected:
        raise GuimoError(f"pretrained weights do not fit this model: no place for {', '.join(sorted(unexpected)[:5])}")


def load_int8(model: "torch.nn.Module", path: str | Path) -> "torch.nn.Module":
    """Rebuild the quantized model from ``model`` (a freshly built float model of the same config)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    from guimo.models.int8 import quantize_modules

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != INT8_FORMAT:
        raise GuimoError(f"{path}: not a {INT8_FORMAT} file")
    names = json.loads(meta["quantized"])
    tables = set(json.loads(meta.get("embeddings", "[]")))  # 8-bit embedding rows (optimize.quantize_embeddings)
    bits = int(meta.get("activation_bits", "7"))  # files from before guimo.models.int8: torch's stock 7-bit inputs
    tensors = load_file(str(path))
    floats = {k: v for k, v in tensors.items() if not any(k.startswith(n + ".") for n in names)}
    model.load_state_dict(floats, strict=False)
    q = quantize_modules(model, [n for n in names if n not in tables], tables, activation_bits=bits)
    modules = dict(q.named_modules())
    for n in names:
        if n in tables:
            w = torch._make_per_channel_quantized_tensor(tensors[f"{n}.weight"], tensors[f"{n}.weight_scale"].double(),
                                                         tensors[f"{n}.weight_zero_point"].double(), 0)
            modules[n].set_weight(w)
            continue
        scale = tensors[f"{n}.weight_scale"].double()
        w = torch._make_per_channel_quantized_tensor(tensors[f"{n}.weight"], scale, torch.zeros_like(scale, dtype=torch.long), 0)
        modules[n].set_weight_bias(w, tensors.get(f"{n}.bias"))
    return q


def load_run_model(run: "RunDir", config_cls: type, build: Callable[[Any], "torch.nn.Module"],
                   weights: str | Path | None = None, device: str = "cpu") -> "torch.nn.Module":
    """Rebuild a run's model from ``model_config.json`` (as ``config_cls``) and load its weights, in eval mode.

    ``weights`` defaults to the served weights (optimize output, else the best checkpoint). A run
    whose optimize stage kept int8 quantization runs on CPU with int8 kernels
    (``model.int8.safetensors``): what was validated is what runs. Elsewhere (CUDA, where dynamic
    quantization does not exist, or named ``weights``) it is the float weights, which for such a
    run hold the dequantized int8 values.
    """
    import torch

    from guimo.config import from_dict
    from guimo.io import read_json

    model = build(from_dict(config_cls, read_json(run / "model_config.json")))
    int8 = run.path / "model.int8.safetensors"
    if weights is None and torch.device(device).type == "cpu" and int8.exists():
        return load_int8(model, int8).eval()
    load_weights(model, read_weights(weights or run.weights_path()), strict=True)
    return model.to(device).eval()


def load_model(scenario: Any, run: "RunDir", weights: str | Path | None = None, device: str = "cpu") -> "torch.nn.Module":
    """``load_run_model`` with a scenario's ``model_config_cls`` and ``build_model``."""
    return load_run_model(run, scenario.model_config_cls, scenario.build_model, weights=weights, device=device)
