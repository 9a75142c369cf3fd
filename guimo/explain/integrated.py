"""Integrated Gradients for the tabular transformer, attributed per feature token.

IG (Sundararajan et al. 2017) integrates the gradient along the straight path from a baseline input to the row:
``a_i = (x_i - x'_i) * mean_{alpha in [0,1]} d f(x' + alpha (x - x')) / d x_i``. It satisfies *completeness*:
``sum_i a_i = f(x) - f(x')`` exactly for the integral, and up to the quadrature error for ``n_steps`` points; the
gap (:attr:`Attributions.completeness_error`) is how far to trust the numbers, so every explanation reports it.

Categorical inputs are integers, with no path between two categories; so, as Captum's ``LayerIntegratedGradients``
does for token ids, the path runs through the feature tokenizer's *output*: each feature's token (B, F, C) moves
from the baseline's token to the row's. For a numeric column the token is affine in the value (``x_j W_j + b_j``),
so this is exactly IG on the scaled value; for a categorical column it is IG on its embedding. Summing a token's
attribution over its C dimensions gives one number per feature, and completeness still holds.

Captum needs a plain module: Opacus' hooks break its backward passes (``IndexError: pop from empty list``), and an
int8 model has no gradients; :func:`clean_copy` rebuilds the float module from the config and the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from guimo.errors import GuimoError


@dataclass
class Attributions:
    """IG of N rows over F feature tokens (``x_num``'s columns, then ``x_cat``'s)."""

    values: np.ndarray  # (N, F) float64: each feature's share of output - baseline_output
    output: np.ndarray  # (N,) f(row): the explained output (a logit)
    baseline_output: np.ndarray  # (N,) f(baseline)
    completeness_error: np.ndarray  # (N,) |sum(values) - (output - baseline_output)|
    target: np.ndarray  # (N,) the output index explained per row


def clean_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A fresh float copy of ``model`` (its class rebuilt from ``model.cfg``, the weights loaded), in eval mode.

    Fresh means without forward/backward hooks (Opacus leaves them on a model it trained until they are removed)
    and never sharing parameters with a model that keeps training or serving.
    """
    inner = getattr(model, "_module", model)  # an Opacus GradSampleModule wraps the model
    cfg = getattr(inner, "cfg", None)
    if cfg is None:
        raise GuimoError(f"cannot explain a {type(inner).__name__}: it has no config to rebuild a clean copy from")
    state = inner.state_dict()
    if any(not torch.is_floating_point(t) for n, t in state.items() if n.endswith("weight")):
        raise GuimoError("cannot explain int8 weights (no gradients): load the run's float weights (model.safetensors)")
    copy = type(inner)(cfg)
    copy.load_state_dict(state)
    return copy.float().eval()


def integrated_gradients(model: torch.nn.Module, x_num: torch.Tensor, x_cat: torch.Tensor,
                         baseline: tuple[torch.Tensor, torch.Tensor], *, target: int | torch.Tensor | None = None,
                         n_steps: int = 64, batch_rows: int = 64) -> Attributions:
    """IG of ``model(x_num, x_cat)[:, target]`` for each row, relative to ``baseline``, per feature token.

    ``model`` is an ``FTTransformer`` (anything with a ``tokenizer`` submodule whose output is (B, F, C) and a
    ``cfg``); it is copied clean first (:func:`clean_copy`), on every call: Captum hooks the copy's tokenizer while
    it attributes, so two requests explained at once in the server's worker threads must not share one. ``x_num`` float (N, n_num), ``x_cat`` int64
    (N, n_cat); ``baseline`` is one row ``(b_num (n_num,), b_cat (n_cat,))`` or N rows. ``target``: the output
    explained: None picks output 0 for one output (binary logit, regression) and each row's argmax otherwise.
    ``n_steps`` Gauss-Legendre points; rows go through Captum ``batch_rows`` at a time (memory: rows x n_steps).
    """
    from captum.attr import LayerIntegratedGradients

    clean = clean_copy(model)
    device = next(clean.parameters()).device
    x_num = torch.as_tensor(x_num, dtype=torch.float32, device=device)
    x_cat = torch.as_tensor(x_cat, dtype=torch.long, device=device)
    n = x_num.shape[0] if x_num.ndim == 2 and x_num.shape[1] else x_cat.shape[0]
    b_num = _rows(torch.as_tensor(baseline[0], dtype=torch.float32, device=device), x_num.shape[1], n)
    b_cat = _rows(torch.as_tensor(baseline[1], dtype=torch.long, device=device), x_cat.shape[1], n)
    with torch.no_grad():
        out = clean(x_num, x_cat)  # (N, K)
        base_out = clean(b_num, b_cat)
    if target is None:
        target = torch.zeros(n, dtype=torch.long) if out.shape[1] == 1 else out.argmax(dim=1).cpu()
    target = torch.as_tensor(target, dtype=torch.long).reshape(-1).expand(n).clone()

    lig = LayerIntegratedGradients(clean, clean.tokenizer)
    values, deltas = [], []
    for s in range(0, n, batch_rows):
        sl = slice(s, s + batch_rows)
        attr, delta = lig.attribute((x_num[sl], x_cat[sl]), baselines=(b_num[sl], b_cat[sl]), target=target[sl].tolist(),
                                    n_steps=n_steps, return_convergence_delta=True)
        values.append(attr.sum(dim=-1).detach().double().cpu().numpy())  # (b, F): a token's share, summed over C
        deltas.append(delta.detach().double().abs().cpu().numpy())
    pick = target.to(out.device).unsqueeze(1)
    return Attributions(values=np.concatenate(values), output=out.gather(1, pick)[:, 0].double().cpu().numpy(),
                        baseline_output=base_out.gather(1, pick)[:, 0].double().cpu().numpy(),
                        completeness_error=np.concatenate(deltas), target=target.numpy())


def _rows(b: torch.Tensor, width: int, n: int) -> torch.Tensor:
    """A baseline of one row (width,) or n rows (n, width) as (n, width); a table without such columns has width 0."""
    if width == 0:
        return b.reshape(n, 0) if b.numel() == 0 else b.new_zeros((n, 0))
    return b.reshape(-1, width).expand(n, -1)
