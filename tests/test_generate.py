"""Sampling with the KV cache: same tokens as re-encoding everything, seeds, top-k/top-p filters,
and `guimo generate` on a real (tiny) run."""

from __future__ import annotations

import math

import pytest
import torch

from guimo.generate import filter_logits, sample
from guimo.models.transformer import Transformer, TransformerConfig




def _model(max_len: int = 32) -> Transformer:
    """A random model with large weights: peaked logits, so greedy choices have no near-ties."""
    torch.manual_seed(0)
    m = Transformer(TransformerConfig(vocab_size=64, max_len=max_len, n_layer=2, n_head=2, d_model=32))
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
    return m.eval()


def _greedy_by_reencoding(model, prompt: list[int], n: int) -> list[int]:
    """Reference decoder: a full forward pass over the whole context for every new token, with
    the same window policy as `sample` (past max_len tokens, keep the most recent half)."""
    ctx, out, max_len = list(prompt), [], model.cfg.max_len
    with torch.no_grad():
        for _ in range(n):
            t = int(model(torch.tensor([ctx]))[0, -1].argmax())
            out.append(t)
            ctx.append(t)
            if len(ctx) > max_len:
                ctx = ctx[-(max_len // 2) :]
    return out


def test_kv_cache_greedy_matches_full_reencoding_within_the_window():
    model = _model(max_len=32)
    prompt = [3, 14, 15, 9, 2]
    cached = list(sample(model, prompt, max_new_tokens=27, temperature=0))  # fills the window exactly
    assert cached == _greedy_by_reencoding(model, prompt, 27)
    assert len(set(cached)) >= 3  # not a constant output


def test_kv_cache_greedy_matches_reencoding_across_window_slides():
    model = _model(max_len=16)
    prompt = list(range(1, 11))
    cached = list(sample(model, prompt, max_new_tokens=40, temperature=0))
    assert len(cached) == 40
    assert cached == _greedy_by_reencoding(model, prompt, 40)


def test_cached_logits_equal_full_forward_logits():
    model = _model()
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        full = model(ids)  # (1, 6, V)
        cache = model.new_cache(1)
        first = model(ids[:, :4], cache=cache)
        step5 = model(ids[:, 4:5], cache=cache)
        step6 = model(ids[:, 5:6], cache=cache)
    from tests.numerics import assert_close, transformer_reduction

    c = model.cfg  # float32 rounding over the reductions on a logit's path (tests/numerics.py)
    n = transformer_reduction(d_model=c.d_model, ff_width=c.ff_width, n_layer=c.n_layer, n_head=c.n_head, seq_len=6)
    assert_close(torch.cat([first, step5, step6], dim=1), full, dtype=torch.float32, reduction=n, name="cached logits")


def test_seed_reproduces_and_different_seeds_differ():
    model = _model()
    a = list(sample(model, [1, 2, 3], max_new_tokens=20, temperature=1.5, seed=7))
    b = list(sample(model, [1, 2, 3], max_new_tokens=20, temperature=1.5, seed=7))
    c = list(sample(model, [1, 2, 3], max_new_tokens=20, temperature=1.5, seed=8))
    assert a == b and a != c


def test_top_k_one_is_greedy():
    model = _model()
    greedy = list(sample(model, [4, 5], max_new_tokens=15, temperature=0))
    assert list(sample(model, [4, 5], max_new_tokens=15, temperature=1.0, top_k=1, seed=0)) == greedy


LOGITS = torch.tensor([[2.0, 1.0, 0.0, -1.0]])  # softmax = 0.6439, 0.2369, 0.0871, 0.0321


def _kept(filtered: torch.Tensor) -> list[int]:
    return [i for i, v in enumerate(filtered[0].tolist()) if v != -math.inf]


@pytest.mark.parametrize(("top_p", "kept"), [(1.0, [0, 1, 2, 3]), (0.9, [0, 1, 2]), (0.8, [0, 1]), (0.6, [0]), (0.01, [0])])
def test_top_p_keeps_the_smallest_set_reaching_p(top_p, kept):
    # cumulative: 0.6439, 0.8808, 0.9679, 1.0 -> the first token whose cumulative mass reaches p is kept
    assert _kept(filter_logits(LOGITS, top_p=top_p)) == kept


@pytest.mark.parametrize(("top_k", "kept"), [(1, [0]), (2, [0, 1]), (3, [0, 1, 2]), (4, [0, 1, 2, 3]), (None, [0, 1, 2, 3])])
def test_top_k_keeps_the_k_largest(top_k, kept):
    assert _kept(filter_logits(LOGITS, top_k=top_k)) == kept


def test_top_k_and_top_p_combine_and_keep_values():
    shuffled = torch.tensor([[0.0, 2.0, -1.0, 1.0]])
    out = filter_logits(shuffled, top_k=3, top_p=0.8)
    assert _kept(out) == [1, 3]
    assert out[0, 1] == 2.0 and out[0, 3] == 1.0  # surviving logits are unchanged
    probs = torch.softmax(out, dim=-1)[0]
    assert probs[1] == pytest.approx(math.e / (math.e + 1.0))  # renormalised over the kept two


def test_bad_sampling_arguments_are_refused():
    model = _model()
    with pytest.raises(ValueError):
        next(sample(model, [1], max_new_tokens=1, temperature=-1))
    with pytest.raises(ValueError):
        next(sample(model, [1], max_new_tokens=1, top_p=0))


def test_generate_command_streams_the_predictor_output(tiny_lm_run, capsys):
    from guimo.cli import main
    from guimo.pipeline.rundir import RunDir
    from guimo.scenarios.lm import SCENARIO

    expected = SCENARIO.load_predictor(RunDir.open(tiny_lm_run)).complete("def ", max_tokens=12, temperature=0).text
    assert main(["generate", str(tiny_lm_run), "--prompt", "def ", "--max-tokens", "12", "--temperature", "0"]) == 0
    assert capsys.readouterr().out == expected + "\n"
    args = ["generate", str(tiny_lm_run), "--prompt", "import ", "--max-tokens", "12", "--seed", "3", "--top-k", "20"]
    main(args)
    first = capsys.readouterr().out
    main(args)
    assert capsys.readouterr().out == first and first.strip()
