"""guimo.models.int8: the int8 Linear computes the exact integer product of 8-bit inputs and 7-bit weights, on
whatever kernel this CPU dispatches to (FBGEMM's AVX2 int16 sums saturate with 8-bit weights; VNNI's do not)."""

from __future__ import annotations

import pytest
import torch

from guimo.models.int8 import WEIGHT_QMAX, WEIGHT_QMIN, Int8Linear, is_quantized, module_mapping, quantize_modules


def _worst_case_linear(d_in: int = 64, d_out: int = 8) -> torch.nn.Linear:
    """Rows of large equal-signed weights: the int8 levels sit at the range's ends, where the pairwise int16 sums
    of 8-bit inputs x 8-bit weights would overflow (255 x 128 x 2 = 65,280 > 32,767)."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(d_in, d_out)
    with torch.no_grad():
        lin.weight.copy_(-(0.9 + 0.1 * torch.rand(d_out, d_in)))  # all negative, close to each row's max |w|
        lin.weight[1] *= -1.0  # and one all-positive row
    return lin.eval()


@pytest.mark.numerics
def test_int8_linear_is_the_exact_integer_product_of_8_bit_inputs_and_7_bit_weights():
    lin = _worst_case_linear()
    (q,) = [m for m in quantize_modules(torch.nn.Sequential(lin), ["0"]).modules() if isinstance(m, Int8Linear)]
    w = q.weight()
    w_int, w_scale = w.int_repr().double(), w.q_per_channel_scales().double()
    assert WEIGHT_QMIN <= int(w_int.min()) and int(w_int.max()) <= WEIGHT_QMAX and int(w_int.min()) == WEIGHT_QMIN  # 7-bit, range used
    # inputs on an exact 8-bit grid: levels 0..255 of step s, both ends present, so the dynamic scale is s and the
    # zero point 0; most inputs at 255, the largest level, to meet the weights' ends in every pair
    s = 0.01
    levels = torch.full((16, lin.in_features), 255.0)
    levels[:, 0], levels[1] = 0.0, torch.arange(lin.in_features) * 4 % 256
    x = (levels * s).float()
    want = (levels.double() @ w_int.T) * s * w_scale + lin.bias.double()
    with torch.no_grad():
        got = q(x).double()
    # the only rounding left is float32's: the outputs (|y| ~ 1e2) to 24 bits, the int32 sums scaled once
    worst = (got - want).abs().max().item()
    assert worst <= 1e-4 * want.abs().max().item(), f"int8 Linear off the exact integer product by {worst:.3g}"
    # 7-bit inputs (torch's stock module) would round every odd level: an error of half a step per input
    stock = torch.ao.nn.quantized.dynamic.Linear.from_float(_with_qconfig(lin))
    with torch.no_grad():
        assert (stock(x).double() - want).abs().max().item() > 100 * max(worst, 1e-6)


def _with_qconfig(lin: torch.nn.Linear) -> torch.nn.Linear:
    from guimo.models.int8 import linear_qconfig

    lin.qconfig = linear_qconfig(8)
    return lin


def test_quantize_modules_converts_only_the_named_layers():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    q = quantize_modules(model, ["2"])
    assert isinstance(q[2], Int8Linear) and isinstance(q[0], torch.nn.Linear) and is_quantized(q) and not is_quantized(model)
    assert module_mapping(7)[torch.nn.Linear] is torch.ao.nn.quantized.dynamic.Linear  # older files: the stock module
    with pytest.raises(ValueError, match="7 or 8"):
        module_mapping(6)
