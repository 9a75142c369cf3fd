"""Float comparisons whose tolerance follows from the dtype and the size of the reductions.

Why not a fixed ``atol=1e-6``: two correct computations of the same float result differ by
rounding, and how much depends on the kernels torch dispatches to (AVX2, AVX-512, AMX, CUDA),
which sum in different orders. A sum of N terms carries a rounding error of about
``eps * sqrt(N)`` times the size of its terms when the errors are independent (the probabilistic
bound of Higham & Mary, "A new approach to probabilistic rounding error analysis", 2019; the
worst case is ``eps * N``). So a tolerance that holds on every CPU torch supports is

    |actual - expected| <= c * eps(dtype) * sqrt(N) * scale

with ``N`` the number of terms summed into each result (a matmul's inner dimension, the tokens a
loss averages, summed over the layers a value passes through), ``scale`` the size of the
expected values (by default their largest magnitude: an element that cancels to near zero still
carries the rounding of the large terms it came from), and ``c`` a small safety factor
(``C`` = 8 by default). A tolerance this tight still fails on any real bug: a wrong mask, a
swapped weight or a missed gradient moves results by orders of magnitude more.

Failure messages say where the largest absolute and relative differences are (tensor name and
index), how many elements are over, and the tolerance with each factor it came from.

Identities that must hold exactly (the same computation twice on the same machine, a resumed
run) use ``assert_equal``, which says by how much and where two tensors differ when they do.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

C = 8.0  # safety factor over eps * sqrt(N): room for a few layers of compounding, far below any bug
# int8 has no finfo: symmetric int8 quantization rounds to 1/127 of a tensor's (or channel's) range,
# which plays the part of eps for values computed with int8 weights and activations.
INT8_EPS = 1 / 127


def eps(dtype: torch.dtype) -> float:
    """Machine epsilon of a float dtype, or ``INT8_EPS`` for int8 (quantized) arithmetic."""
    return INT8_EPS if dtype in (torch.int8, torch.qint8, torch.quint8) else torch.finfo(dtype).eps


def tolerance(dtype: torch.dtype, reduction: int = 1, *, c: float = C) -> float:
    """Relative tolerance ``c * eps(dtype) * sqrt(reduction)`` (see the module docstring)."""
    if reduction < 1:
        raise ValueError(f"reduction must be >= 1 (terms summed per result), not {reduction}")
    return c * eps(dtype) * math.sqrt(reduction)


def assert_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    *,
    dtype: torch.dtype | None = None,
    reduction: int = 1,
    c: float = C,
    scale: float | None = None,
    atol: float | None = None,
    name: str = "tensor",
) -> None:
    """Assert ``|actual - expected| <= c * eps(dtype) * sqrt(reduction) * scale`` elementwise.

    ``dtype`` is the precision the values were computed in (default: ``expected``'s). ``scale``
    defaults to ``max |expected|``. ``atol``, when given, replaces the whole bound with one derived
    elsewhere from the same quantities (``adam_tolerance`` for trained weights). Shapes must match
    exactly; NaN and inf must sit in the same places with the same values.
    """
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}")
    dtype = dtype or expected.dtype
    a, e = actual.detach().to("cpu", torch.float64), expected.detach().to("cpu", torch.float64)
    finite = torch.isfinite(e)
    if not torch.equal(torch.isfinite(a), finite) or not torch.equal(a[~finite], e[~finite]):
        bad = (torch.isfinite(a) != finite).nonzero()
        where = tuple(bad[0].tolist()) if len(bad) else "a non-finite value"
        raise AssertionError(f"{name}: NaN/inf differ (first at {where})")
    if a.numel() == 0 or finite.sum() == 0:
        return
    a, e = torch.where(finite, a, 0.0), torch.where(finite, e, 0.0)
    if atol is None:
        scale = float(e.abs().max()) if scale is None else scale
        atol = tolerance(dtype, reduction, c=c) * max(scale, torch.finfo(torch.float64).tiny)
        why = f"c {c:g} x eps({_short(dtype)}) {eps(dtype):.3g} x sqrt(N={reduction}) x scale {scale:.3g}"
    else:
        why = "the derived bound given"
    diff = (a - e).abs()
    over = int((diff > atol).sum())
    if over:
        raise AssertionError(f"{name}: {over} of {diff.numel()} elements differ by more than {atol:.3g} = {why}\n" + _worst(a, e, diff))


def assert_all_close(actual: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], *, skip=(), **kw) -> None:
    """``assert_close`` for every tensor of two state dicts (same names); ``skip``: names left out."""
    if set(actual) != set(expected):
        raise AssertionError(f"names differ: only in actual {sorted(set(actual) - set(expected))}, "
                             f"only in expected {sorted(set(expected) - set(actual))}")
    for key in expected:
        if key not in skip:
            assert_close(actual[key], expected[key], name=key, **kw)


def assert_equal(actual: torch.Tensor, expected: torch.Tensor, *, name: str = "tensor") -> None:
    """Bit-for-bit equality (``torch.equal``), with where and by how much it fails."""
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        raise AssertionError(f"{name}: {tuple(actual.shape)} {actual.dtype} != expected {tuple(expected.shape)} {expected.dtype}")
    if torch.equal(actual, expected):
        return
    a, e = actual.detach().to("cpu", torch.float64), expected.detach().to("cpu", torch.float64)
    diff = (a - e).abs().nan_to_num(nan=math.inf)
    raise AssertionError(f"{name}: {int((diff != 0).sum())} of {diff.numel()} elements differ, expected bit-for-bit equality\n"
                         + _worst(a, e, diff))


def assert_all_equal(actual: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> None:
    """``assert_equal`` for every tensor of two state dicts (same names)."""
    if set(actual) != set(expected):
        raise AssertionError(f"names differ: only in actual {sorted(set(actual) - set(expected))}, "
                             f"only in expected {sorted(set(expected) - set(actual))}")
    for key in expected:
        assert_equal(actual[key], expected[key], name=key)


def _worst(a: torch.Tensor, e: torch.Tensor, diff: torch.Tensor) -> str:
    """Where the largest absolute and relative differences are, with both values."""
    i = _index(diff.argmax(), diff.shape)
    rel = diff / e.abs().clamp_min(torch.finfo(torch.float64).tiny)
    j = _index(rel.argmax(), rel.shape)
    return (f"  largest absolute difference {float(diff[i]):.3g} at {list(i)}: actual {float(a[i]):.9g}, expected {float(e[i]):.9g}\n"
            f"  largest relative difference {float(rel[j]):.3g} at {list(j)}: actual {float(a[j]):.9g}, expected {float(e[j]):.9g}")


def _index(flat: torch.Tensor, shape: torch.Size) -> tuple[int, ...]:
    if len(shape) == 0:
        return ()
    return tuple(int(x) for x in torch.unravel_index(flat, shape))


def _short(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def adam_tolerance(dtype: torch.dtype, reduction: int, lr_sum: float, *, adam_eps: float = 1e-8, grad_scale: float = 1.0,
                   c: float = C) -> float:
    """Absolute tolerance on weights after AdamW steps whose gradients differ only by rounding.

    A gradient summed over ``reduction`` terms differs by at most ``eps * sqrt(reduction) * grad_scale``
    between two correct summation orders (``grad_scale`` bounds |g|: 1 under ``train.grad_clip=1``,
    which caps the gradient's norm and so each element). Adam divides by ``sqrt(v) + adam_eps``
    >= ``adam_eps``, so each step's update moves by at most ``lr * that / adam_eps``, and over the
    run by ``lr_sum`` (the learning rates summed over the steps) times it. Ignores the feedback of
    weight differences into later gradients, which is small over the few steps a unit test runs.
    In float32 this bound is useless (larger than the weights): Adam normalises away a gradient's
    scale, so an element whose gradient cancels to near zero turns rounding into lr-sized steps.
    Compare trained weights in float64, where it is ~1e-8 and the observed differences ~1e-14.
    """
    return c * torch.finfo(dtype).eps * math.sqrt(reduction) * grad_scale * lr_sum / adam_eps


def transformer_reduction(*, d_model: int, ff_width: int, n_layer: int, n_head: int, seq_len: int) -> int:
    """Terms summed along the path of one transformer output, the ``reduction`` of ``assert_close``.

    Per block: layer norms (2 x d_model), the qkv projection (d_model), the q.k dot product
    (d_model / n_head), the attention average (seq_len), the output projection (d_model), the MLP
    (d_model, then ff_width); then the output head (d_model). Roundings of consecutive reductions
    add like those of one long sum, so their sizes add.
    """
    block = 2 * d_model + d_model + d_model // n_head + seq_len + d_model + d_model + ff_width
    return n_layer * block + d_model
