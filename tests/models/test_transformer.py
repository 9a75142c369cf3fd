"""The shared Transformer: masking, KV cache, tying, parameter and FLOP counts."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from guimo.models.transformer import PRESETS, Transformer, TransformerConfig, count_parameters, flops_per_token
from guimo.train.config import TrainConfig
from guimo.train.loop import make_optimizer
from tests.numerics import assert_all_equal, assert_close, assert_equal, transformer_reduction

SMALL = TransformerConfig(vocab_size=50, max_len=24, n_layer=2, n_head=2, d_model=16)


def _model(**overrides) -> Transformer:
    torch.manual_seed(0)
    return Transformer(dataclasses.replace(SMALL, **overrides)).eval()


def _close(got, expected, seq_len, name, cfg=SMALL):
    """Two ways to compute the same outputs (padded or not, cached or not, masked or by is_causal):
    equal to float32 rounding over the reductions on the path (tests.numerics)."""
    n = transformer_reduction(d_model=cfg.d_model, ff_width=cfg.ff_width, n_layer=cfg.n_layer, n_head=cfg.n_head, seq_len=seq_len)
    assert_close(got, expected, dtype=torch.float32, reduction=n, name=name)


def _ids(b=2, t=12, seed=1):
    return torch.randint(0, SMALL.vocab_size, (b, t), generator=torch.Generator().manual_seed(seed))


# -- attention masks ---------------------------------------------------------------------------


@pytest.mark.numerics
def test_causal_future_tokens_do_not_change_past_logits():
    model = _model()
    x = _ids()
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % SMALL.vocab_size
    with torch.no_grad():
        a, b = model(x), model(y)
    assert_equal(a[:, :7], b[:, :7], name="logits before the changed token")
    assert (a[:, 7:] - b[:, 7:]).abs().amax(dim=-1).min() > 1e-4  # every later position sees it


def test_bidirectional_positions_see_the_future():
    model = _model(causal=False)
    x = _ids()
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % SMALL.vocab_size
    with torch.no_grad():
        a, b = model(x), model(y)
    assert (a[:, :7] - b[:, :7]).abs().amax(dim=-1).min() > 1e-4


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.numerics
def test_key_padding_mask_hides_padding(causal):
    """Real positions give the same output whatever the padding holds, and as if unpadded."""
    model = _model(causal=causal)
    real = _ids(b=1, t=6)
    a = torch.cat([real, _ids(b=1, t=4, seed=2)], dim=1)
    b = torch.cat([real, _ids(b=1, t=4, seed=3)], dim=1)
    mask = torch.tensor([[1] * 6 + [0] * 4])
    with torch.no_grad():
        out_a, out_b, alone = model(a, key_mask=mask), model(b, key_mask=mask), model(real)
    _close(out_a[:, :6], out_b[:, :6], 10, "real positions, other padding")
    _close(out_a[:, :6], alone, 10, "real positions, padded against alone")
    if not causal:  # without the mask, padding would leak into real positions
        with torch.no_grad():
            assert (model(a)[:, :6] - alone).abs().max() > 1e-4


@pytest.mark.numerics
def test_left_padded_causal_batch_with_positions_equals_unpadded():
    """Batched generation left-pads prompts: pad rows see no key at all and must not leak NaN."""
    model = _model()
    x = _ids(b=2, t=10)
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, :4] = 0
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        out = model(x, key_mask=mask, positions=positions)
        alone = model(x[1:, 4:])
    assert not out.isnan().any()
    _close(out[1, 4:], alone[0], 10, "left-padded row")
    _close(out[0], model(x[:1])[0], 10, "unpadded row in a padded batch")


@pytest.mark.numerics
def test_explicit_causal_mask_equals_is_causal_kernel():
    model = _model()
    x = _ids()
    with torch.no_grad():
        _close(model(x, key_mask=torch.ones_like(x)), model(x), x.shape[1], "explicit mask against is_causal")


# -- KV cache ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", [(5, 1, 1, 1, 1, 1, 1, 1), (4, 4, 2), (12,)])
@pytest.mark.numerics
def test_kv_cache_matches_full_forward(chunks):
    model = _model(dropout=0.2)  # eval mode: dropout off, cache path must not depend on it
    x = _ids(t=sum(chunks))
    cache = model.new_cache(batch_size=2)
    pieces, start = [], 0
    with torch.no_grad():
        for n in chunks:
            pieces.append(model(x[:, start : start + n], cache=cache))
            start += n
        full = model(x)
    assert cache.pos == x.shape[1]
    _close(torch.cat(pieces, dim=1), full, x.shape[1], "cached logits")


def test_cache_refuses_to_run_past_max_len():
    model = _model()
    cache = model.new_cache(1)
    with torch.no_grad():
        model(_ids(b=1, t=SMALL.max_len), cache=cache)
        with pytest.raises(ValueError, match="exceeds max_len"):
            model(_ids(b=1, t=1), cache=cache)


# -- inputs ------------------------------------------------------------------------------------


@pytest.mark.numerics
def test_inputs_embeds_and_positions_overrides():
    model = _model()
    x = _ids()
    with torch.no_grad():
        base = model(x)
        assert_equal(model(x, inputs_embeds=model.tok_emb(x)), base, name="logits from inputs_embeds")
        shifted = model(x[:, :4], positions=torch.arange(3, 7).expand(2, 4))
        assert (shifted - base[:, :4]).abs().max() > 1e-4  # positions matter


def test_dropout_only_in_training_mode():
    model = _model(dropout=0.3)
    x = _ids()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("overrides", [{"attn_dropout": 0.3}, {"ffn_dropout": 0.3}], ids=["attention", "ffn"])
def test_attention_and_ffn_dropout_each_act_alone(overrides):
    """The FT-Transformer's layout: dropout on the attention weights or inside the MLP, with none on the residual."""
    model = _model(dropout=0.0, **overrides)
    assert model.blocks[0].attn.attn_dropout == overrides.get("attn_dropout", 0.0)
    assert (model.blocks[0].mlp.drop is not None) == ("ffn_dropout" in overrides)
    x = _ids()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))
    plain = _model(dropout=0.0).train()
    with torch.no_grad():
        assert torch.equal(plain(x), plain(x)) and plain.blocks[0].mlp.drop is None  # no dropout: nothing sampled


# -- weight tying ------------------------------------------------------------------------------


def test_weight_tying_shares_one_tensor_and_gets_both_gradients():
    tied, untied = _model(), _model(tie_weights=False)
    assert tied.head.weight is tied.tok_emb.weight
    assert untied.head.weight is not untied.tok_emb.weight
    assert count_parameters(untied.cfg)["total"] - count_parameters(tied.cfg)["total"] == SMALL.vocab_size * SMALL.d_model
    # the shared matrix collects the head's gradient and the embedding's
    x = _ids()
    tied.train()
    tied(x).sum().backward()
    emb_only = tied.tok_emb.weight.grad.clone()
    unused = torch.ones(SMALL.vocab_size, dtype=torch.bool)
    unused[x.unique()] = False
    assert emb_only[unused].abs().sum() > 0  # rows of absent tokens: gradient from the head only


# -- parameter and FLOP counts -----------------------------------------------------------------


def hand_count(c: TransformerConfig) -> tuple[int, int]:
    """(total, non_embedding) from the architecture, written out term by term."""
    C, F, V, T, L = c.d_model, c.ff_width, c.vocab_size, c.max_len, c.n_layer
    ln = 2 * C
    block = ln + (3 * C * C + 3 * C) + (C * C + C) + ln + (C * F + F) + (F * C + C)
    non_emb = L * block + (ln if c.norm_first else 0) + (ln if c.embed_norm else 0)
    emb = V * C + T * C + c.type_vocab_size * C
    head = V * C if c.lm_head and not c.tie_weights else 0
    return non_emb + emb + head, non_emb


@pytest.mark.parametrize(
    "overrides",
    [{}, {"tie_weights": False}, {"d_ff": 24}, {"norm_first": False, "embed_norm": True, "type_vocab_size": 2, "lm_head": False}],
)
def test_parameter_count_matches_hand_formula(overrides):
    cfg = dataclasses.replace(SMALL, **overrides)
    total, non_emb = hand_count(cfg)
    counts = count_parameters(cfg)
    assert counts == {"total": total, "non_embedding": non_emb}
    assert total == sum(p.numel() for p in Transformer(cfg).parameters())  # meta count == real count


def test_parameter_count_literal():
    # C=16, F=64: a block is 4*16^2 + 2*16*64 + 9*16 + 64 = 3280; 2 blocks + ln_f = 6592
    assert count_parameters(SMALL) == {"non_embedding": 6592, "total": 6592 + 50 * 16 + 24 * 16}


def test_flops_per_token_formula():
    # 6 * (non-embedding 6592 + head 16 * 50) + 12 * L=2 * C=16 * T=24
    assert flops_per_token(SMALL) == 6 * (6592 + 800) + 12 * 2 * 16 * 24
    assert flops_per_token(SMALL, seq_len=8) == 6 * (6592 + 800) + 12 * 2 * 16 * 8
    encoder = dataclasses.replace(SMALL, lm_head=False)
    assert flops_per_token(encoder) == 6 * 6592 + 12 * 2 * 16 * 24


@pytest.mark.parametrize(
    "cfg, low, high",
    [
        (TransformerConfig(vocab_size=64, max_len=32, n_layer=1, n_head=2, d_model=24), 8e3, 12e3),
        (TransformerConfig(vocab_size=2048, **PRESETS["tiny"]), 2e5, 3e5),
        (TransformerConfig(vocab_size=2048, **PRESETS["base"]), 1.1e7, 1.3e7),
        (TransformerConfig(vocab_size=8192, **PRESETS["large"]), 0.85e8, 1.0e8),
    ],
)
def test_sizes_from_10k_to_100m_by_config(cfg, low, high):
    assert low <= count_parameters(cfg)["total"] <= high


def test_presets_grow_in_non_embedding_parameters():
    sizes = [count_parameters(TransformerConfig(vocab_size=256, **PRESETS[p]))["non_embedding"] for p in PRESETS]
    assert all(b > 2 * a for a, b in zip(sizes, sizes[1:])), sizes


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"d_model": 30, "n_head": 4}, "divisible"),
        ({"n_layer": 0}, "n_layer must be positive"),
        ({"dropout": 1.0}, "dropout"),
        ({"attn_dropout": -0.1}, "attn_dropout must be in"),
        ({"ffn_dropout": 1.0}, "ffn_dropout must be in"),
        ({"mup_base_width": 30, "n_head": 4}, "or give mup_base_head_dim"),
        ({"mup_base_width": 32, "mup_base_head_dim": 0}, "mup_base_head_dim must be positive"),
        ({"mup_base_width": 32, "mup_output_mult": 0.0}, "mup_output_mult must be positive"),
        ({"mup_base_width": 32, "lm_head": False}, "lm_head"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **overrides)


def _train_steps(width: int, base: int | None, steps: int = 5, lr: float = 1e-2) -> tuple[Transformer, torch.Tensor]:
    """A fresh seeded model after ``steps`` Adam steps at a constant lr, and how its logits moved."""
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=64, max_len=32, n_layer=2, n_head=4, d_model=width, mup_base_width=base))
    x = torch.randint(0, 64, (8, 32), generator=torch.Generator().manual_seed(1))
    opt = make_optimizer(model, TrainConfig(lr=lr, weight_decay=0.0), torch.device("cpu"))
    for group in opt.param_groups:  # what the training loop does at every step
        group["lr"] = lr * group.get("lr_mult", 1.0)
    with torch.no_grad():
        before = model(x)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x[:, :-1]).reshape(-1, 64), x[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        return model, model(x) - before


@pytest.mark.numerics
def test_mup_at_its_base_width_is_the_standard_model_exactly():
    sp, sp_moved = _train_steps(64, None)
    mup, mup_moved = _train_steps(64, 64)
    assert_equal(mup_moved, sp_moved, name="logit updates")
    assert_all_equal(mup.state_dict(), sp.state_dict())


def test_mup_hidden_matrices_train_at_lr_over_width_mult():
    model = Transformer(TransformerConfig(vocab_size=64, max_len=32, n_layer=2, n_head=4, d_model=128, mup_base_width=32))
    opt = make_optimizer(model, TrainConfig(lr=1e-2), torch.device("cpu"))
    scaled = [g for g in opt.param_groups if "lr_mult" in g]
    assert [g["lr_mult"] for g in scaled] == [0.25]
    hidden = {id(p) for p in scaled[0]["params"]}
    names = {n for n, p in model.named_parameters() if id(p) in hidden}
    assert names == {f"blocks.{i}.{w}.weight" for i in range(2) for w in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")}
    assert id(model.tok_emb.weight) not in hidden  # embeddings (and the tied head) keep the full lr


def test_mup_coordinate_check_logit_updates_stay_flat_across_widths():
    """The check muP's authors prescribe: after a few steps at one lr, how far the output moved.

    In the standard parametrization Adam's update grows with the width (here ~4-5x from 32 to 256
    wide), which is why a sweep must retune the lr per size; under muP it stays put.
    """
    sp = [_train_steps(w, None)[1].std().item() for w in (32, 256)]
    mup = [_train_steps(w, 32)[1].std().item() for w in (32, 256)]
    assert sp[1] / sp[0] > 3.0, sp
    assert 0.7 < mup[1] / mup[0] < 1.3, mup


def test_mup_attention_scale_follows_the_head_dimension_not_the_width():
    """muP divides q.k by the head dimension: wider heads get a smaller scale, more heads of the base's width none."""
    wider_heads = Transformer(TransformerConfig(vocab_size=64, max_len=32, n_layer=1, n_head=2, d_model=128, mup_base_width=32))
    assert wider_heads.blocks[0].attn.scale == pytest.approx(16**0.5 / 64)  # base heads 16 wide, these 64
    more_heads = Transformer(TransformerConfig(vocab_size=64, max_len=32, n_layer=1, n_head=4, d_model=128, mup_base_width=32,
                                               mup_base_head_dim=32))
    assert more_heads.blocks[0].attn.scale is None  # SDPA's 1 / sqrt(32), as at the base


@pytest.mark.numerics
def test_mup_output_multiplier_scales_the_logits():
    cfg = TransformerConfig(vocab_size=64, max_len=32, n_layer=1, n_head=4, d_model=128, mup_base_width=32)
    x = torch.randint(0, 64, (2, 16))
    torch.manual_seed(0)
    plain = Transformer(cfg).eval()
    torch.manual_seed(0)
    doubled = Transformer(dataclasses.replace(cfg, mup_output_mult=2.0)).eval()
    with torch.no_grad():
        assert_equal(doubled(x), 2.0 * plain(x), name="logits x 2")  # a power of two scales floats exactly
