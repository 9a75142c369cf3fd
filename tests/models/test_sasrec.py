"""SASRec on the shared core: causal, padding-safe, grouped encoding exact, both losses learn."""

from __future__ import annotations

import pytest
import torch

from guimo.models.sasrec import SASRec, SASRecConfig, length_groups, pad_right, sampled_softmax_loss


def model(**kw) -> SASRec:
    torch.manual_seed(0)
    cfg = SASRecConfig(**{"n_items": 20, "max_len": 8, "d_model": 16, "n_blocks": 2, "n_heads": 2, "dropout": 0.0, **kw})
    return SASRec(cfg).eval()


def test_causal_and_right_padding_safe():
    m = model()
    a = torch.tensor([[3, 4, 5, 6, 0, 0]])
    b = torch.tensor([[3, 4, 9, 1, 2, 7]])
    ha, hb = m.encode(a), m.encode(b)
    assert torch.allclose(ha[0, :2], hb[0, :2], atol=1e-6)  # later items never leak backwards
    assert not torch.allclose(ha[0, 2], hb[0, 2])
    short = m.encode(torch.tensor([[3, 4, 5, 6]]))
    assert torch.allclose(short[0], ha[0, :4], atol=1e-6)  # padding after a row changes nothing


def test_grouped_encoding_equals_one_pass():
    m = model()
    g = torch.Generator().manual_seed(0)
    lengths = [7, 2, 5, 1, 3, 7, 4]
    seq = torch.zeros(len(lengths), 7, dtype=torch.long)
    tgt = torch.zeros_like(seq)
    for i, n in enumerate(lengths):
        seq[i, :n] = torch.randint(1, 21, (n,), generator=g)
        tgt[i, :n] = torch.randint(1, 21, (n,), generator=g)
    real = tgt > 0
    grouped = m._hidden_at(seq, real, m.item_vectors(seq), slack=1.0)
    assert torch.allclose(grouped, m.encode(seq)[real], atol=1e-5)


def test_last_state_in_length_groups_equals_one_padded_pass_and_keeps_the_row_order():
    m = model()
    g = torch.Generator().manual_seed(1)
    lengths = [1, 7, 3, 8, 2, 8, 5, 1]
    seq, lens = pad_right([torch.randint(1, 21, (n,), generator=g).tolist() for n in lengths], max_len=8)
    with torch.no_grad():
        whole = m.encode(seq)[torch.arange(len(seq)), lens - 1]
        grouped = m.last_state(seq, lens, slack=1.0)  # slack 1: one group per distinct length
    assert grouped.shape == (8, m.cfg.d_model)
    torch.testing.assert_close(grouped, whole, atol=1e-5, rtol=1e-5)


def test_score_next_uses_each_rows_last_item_and_masks_padding():
    m = model()
    seq, lengths = pad_right([[1, 2, 3], [4]], max_len=8)
    assert seq.tolist() == [[1, 2, 3], [4, 0, 0]] and lengths.tolist() == [3, 1]
    s = m.score_next(seq, lengths)
    assert s.shape == (2, 21) and torch.isinf(s[:, 0]).all()
    alone = m.score_next(torch.tensor([[4]]), torch.tensor([1]))
    assert torch.allclose(s[1, 1:], alone[0, 1:], atol=1e-5)
    seq, lengths = pad_right([list(range(1, 13))], max_len=8)
    assert seq.tolist() == [list(range(5, 13))]  # keeps the most recent max_len items


def test_category_side_feature():
    m = model(n_categories=2, item_categories=[0] + [1] * 10 + [2] * 10)
    with torch.no_grad():
        m.core.tok_emb.weight[:] = 0.0
    v = m.item_vectors()
    assert torch.allclose(v[1], v[10]) and not torch.allclose(v[1], v[11])
    with pytest.raises(ValueError, match="item_categories"):
        model(n_categories=2, item_categories=[0, 1])


def _cycle_batch(n_items: int, rows: int, length: int, g: torch.Generator):
    start = torch.randint(0, n_items, (rows, 1), generator=g)
    ids = (start + torch.arange(length + 1)) % n_items + 1  # item i is always followed by i + 1
    return ids[:, :-1], ids[:, 1:]


def _train_successor(m: SASRec, steps: int, g: torch.Generator) -> torch.optim.Optimizer:
    """Train ``m`` on the cycle task (item i is followed by i + 1); leaves it in eval mode, returns its optimizer."""
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    m.train()
    for _ in range(steps):
        seq, tgt = _cycle_batch(20, 32, 6, g)
        opt.zero_grad()
        m(seq, tgt).backward()
        opt.step()
    m.eval()
    return opt


@pytest.mark.parametrize("loss", ["ce", "sampled"])
def test_learns_a_deterministic_successor(loss):
    m = model(loss=loss, n_negatives=8)
    g = torch.Generator().manual_seed(1)
    _train_successor(m, 80, g)
    seq, tgt = _cycle_batch(20, 64, 6, g)
    pred = m.score_next(seq, torch.full((64,), 6)).argmax(1)
    assert (pred == tgt[:, -1]).float().mean() > 0.9


F32_EPS = torch.finfo(torch.float32).eps


def _ragged_batch(n_items: int, lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, T) inputs and targets with random real items and 0 after each row's length."""
    g = torch.Generator().manual_seed(seed)
    seq = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    tgt = torch.zeros_like(seq)
    for i, n in enumerate(lengths):
        seq[i, :n] = torch.randint(1, n_items + 1, (n,), generator=g)
        tgt[i, :n] = torch.randint(1, n_items + 1, (n,), generator=g)
    return seq, tgt


@pytest.mark.parametrize("loss", ["ce", "sampled"])
def test_padded_positions_add_nothing_to_the_loss(loss):
    """The batch loss is the mean over real positions only: it equals the rows' own losses, each
    computed alone without any padding, weighted by their lengths; and whatever ids sit in the padded
    positions (inputs or targets beyond a row's length) the loss is the same."""
    m = model(n_items=30, loss=loss, n_negatives=30).double()  # n_negatives = N: the sampled loss is exact too
    tol = dict(rtol=16 * F32_EPS, atol=0.0)  # float64 model; the logits (and so the loss) are float32
    lengths = [7, 2, 5, 1, 3]
    seq, tgt = _ragged_batch(30, lengths, seed=4)
    whole = m(seq, tgt)
    alone = torch.stack([m(seq[i : i + 1, :n], tgt[i : i + 1, :n]) for i, n in enumerate(lengths)])
    weighted = (alone * torch.tensor(lengths, dtype=alone.dtype)).sum() / sum(lengths)
    torch.testing.assert_close(whole, weighted, **tol)
    junk = seq.clone()
    pad = tgt == 0
    junk[pad] = torch.randint(1, 31, (int(pad.sum()),), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(m(junk, tgt), whole, **tol)


def test_no_position_reads_a_later_one_in_training_or_scoring():
    """Causality by gradient: the hidden state at position t depends on the inputs at <= t (non-zero
    gradient) and on nothing after t (exactly zero, float64), through the grouped training path too;
    and changing a later item leaves every earlier position's output as it was."""
    m = model().double()
    seq, tgt = _ragged_batch(20, [6, 4], seed=6)
    x = m._input(m.item_vectors(seq)).detach().requires_grad_(True)  # (B, T, C)
    h = m._hidden_at(seq, tgt > 0, x, slack=100.0)  # (M, C): row 0's 6 positions, then row 1's 4
    t = 2
    h[t].sum().backward()  # row 0, position 2
    grad = x.grad.abs().sum(-1)  # (B, T)
    assert (grad[0, : t + 1] > 0).all(), grad
    assert grad[0, t + 1 :].max() == 0 and grad[1].max() == 0, grad
    later = seq.clone()
    later[0, 4] = seq[0, 4] % 20 + 1  # another item at position 4
    before, after = m.encode(seq), m.encode(later)
    torch.testing.assert_close(after[0, :4], before[0, :4], rtol=1e-12, atol=1e-12)
    assert (after[0, 4] - before[0, 4]).abs().max() > 1e-3


def test_sampled_loss_over_the_whole_catalogue_is_the_full_softmax():
    """With every item a candidate (n_negatives >= N) and in-batch negatives on, each candidate's
    inclusion probability is 1, so the logQ correction is 0 and the sampled loss must equal the full
    softmax; the target's own column among the negatives (an accidental hit) must be dropped, or the
    two differ. Uniform negatives alone give the same loss."""
    n = 25
    full = model(n_items=n, loss="ce").double()
    seq, tgt = _ragged_batch(n, [7, 3, 5, 1], seed=8)
    freq = torch.bincount(tgt[tgt > 0], minlength=n + 1).double() / int((tgt > 0).sum())
    want = full(seq, tgt)
    for in_batch in (True, False):
        sampled = model(n_items=n, loss="sampled", n_negatives=n, in_batch_negatives=in_batch).double()
        sampled.load_state_dict(full.state_dict())
        torch.testing.assert_close(sampled(seq, tgt, freq).double(), want.double(), rtol=16 * F32_EPS, atol=0.0)  # float32 logits
    fewer = model(n_items=n, loss="sampled", n_negatives=5, in_batch_negatives=True).double()
    fewer.load_state_dict(full.state_dict())
    assert abs(fewer(seq, tgt, freq).item() - want.item()) > 1e-3  # the check above can fail


def test_length_groups_cover_every_real_row_once_within_slack():
    lengths = [50, 31, 12, 9, 9, 8, 5, 4, 4, 3, 2, 2, 1, 1, 1, 0, 0]
    groups = length_groups(lengths, slack=1.25)
    covered = [r for i, j, _ in groups for r in range(i, j)]
    assert covered == list(range(15))  # contiguous, in order, zero-length rows left out
    for i, j, t in groups:
        assert t == lengths[i] == max(lengths[i:j])
        assert (j - i) * t <= 1.25 * sum(lengths[i:j]) or j - i == 1
    assert length_groups(lengths, slack=100.0) == [(0, 15, 50)]  # one pass when padding is free
    assert length_groups([0, 0], 1.25) == []


def _padded_sampled_loss(m: SASRec, seq: torch.Tensor, tgt: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """The textbook version: encode the padded (B, T) batch, score every position, mask, average."""
    h = m.encode(seq)  # (B, T, C)
    pos = (h * m.item_vectors(tgt)).sum(-1, keepdim=True)  # (B, T, 1)
    negs = (h @ m.item_vectors(neg).T).masked_fill(neg == tgt[..., None], float("-inf"))  # (B, T, K)
    nll = -torch.log_softmax(torch.cat([pos, negs], -1), -1)[..., 0]  # (B, T)
    real = tgt > 0
    return nll[real].mean()


def test_sampled_loss_on_gathered_positions_equals_the_padded_loss():
    m = model(n_items=30, loss="sampled", n_negatives=12)
    g = torch.Generator().manual_seed(3)
    lengths = [7, 2, 5, 1, 3, 7, 4, 6]
    seq = torch.zeros(len(lengths), 7, dtype=torch.long)
    tgt = torch.zeros_like(seq)
    for i, n in enumerate(lengths):
        seq[i, :n] = torch.randint(1, 31, (n,), generator=g)
        tgt[i, :n] = torch.randint(1, 31, (n,), generator=g)
    torch.manual_seed(7)
    drawn = m.negatives()
    assert drawn.tolist() == sorted(set(drawn.tolist())) and len(drawn) == 12 and 1 <= drawn.min() <= drawn.max() <= 30
    neg = torch.tensor([1, 5, 8, 13, 21, 29])  # sorted, distinct; includes a target (an accidental hit)
    tgt[0, 0] = 5
    m.negatives = lambda device="cpu": neg  # type: ignore[method-assign]
    assert torch.allclose(m(seq, tgt), _padded_sampled_loss(m, seq, tgt, neg), atol=1e-5)


def test_emb_lr_scale_keeps_the_initial_vectors_and_scales_adams_step_on_them():
    a, b = model(), model(emb_lr_scale=10.0)
    start = a.item_vectors().detach().clone()
    assert torch.allclose(b.item_vectors(), start, atol=1e-7)
    seq, tgt = _cycle_batch(20, 8, 5, torch.Generator().manual_seed(2))
    moved = []
    for m in (a, b):
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        m(seq, tgt).backward()
        opt.step()
        moved.append((m.item_vectors().detach() - start).abs().amax())
    assert 9.0 < float(moved[1] / moved[0]) < 11.0


def test_in_batch_negatives_need_frequencies_and_learn():
    m = model(loss="sampled", n_negatives=4, in_batch_negatives=True).train()
    seq, tgt = _cycle_batch(20, 32, 6, torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="item_freq"):
        m(seq, tgt)
    freq = torch.full((21,), 1 / 20)
    freq[0] = 0.0
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for _ in range(80):
        seq, tgt = _cycle_batch(20, 32, 6, g)
        opt.zero_grad()
        m(seq, tgt, freq).backward()
        opt.step()
    m.eval()
    seq, tgt = _cycle_batch(20, 64, 6, g)
    assert (m.score_next(seq, torch.full((64,), 6)).argmax(1) == tgt[:, -1]).float().mean() > 0.9


def test_sampled_softmax_loss_subtracts_log_q_and_drops_accidental_hits():
    g = torch.Generator().manual_seed(0)
    h, table = torch.randn(4, 8, generator=g), torch.randn(10, 8, generator=g)
    y, neg = torch.tensor([2, 5, 7, 5]), torch.tensor([1, 2, 3, 9])  # row 0 meets its target among the negatives
    log_q = torch.randn(10, generator=g)
    got = sampled_softmax_loss(h, y, table[y], table[neg], neg, log_q[y], log_q[neg])
    pos = (h * table[y]).sum(-1) - log_q[y]
    negs = (h @ table[neg].T - log_q[neg]).masked_fill(neg[None, :] == y[:, None], float("-inf"))
    want = torch.nn.functional.cross_entropy(torch.cat([pos[:, None], negs], 1), torch.zeros(4, dtype=torch.long))
    assert torch.allclose(got, want, atol=1e-6)


def test_input_scale_scales_what_the_encoder_reads_not_what_scores():
    plain, scaled = model(), model(input_scale=True)
    seq = torch.tensor([[3, 4, 5, 0]])
    assert torch.allclose(plain.item_vectors(), scaled.item_vectors())  # same tables, same scoring vectors
    want = plain.core.encode(seq, inputs_embeds=plain.item_vectors(seq) * 16**0.5)
    assert torch.allclose(scaled.encode(seq), want, atol=1e-6)
    assert not torch.allclose(scaled.encode(seq), plain.encode(seq), atol=1e-3)
    real = torch.tensor([[True, True, True, False]])  # the training path reads the same scaled input
    assert torch.allclose(scaled._hidden_at(seq, real, scaled._input(scaled.item_vectors(seq))), want[real], atol=1e-5)


def test_bf16_scoring_ranks_like_fp32_and_never_serves_stale_weights():
    """score_precision=bf16 scores the catalogue in bf16: the same top items as fp32 on a trained model, a copy of
    the table kept while weights stay put, and a fresh one after an optimizer step or a state load."""
    m = model(n_items=20)
    g = torch.Generator().manual_seed(1)
    opt = _train_successor(m, 60, g)
    seq, _ = _cycle_batch(20, 64, 6, g)
    lengths = torch.full((64,), 6)
    fp32 = m.score_next(seq, lengths)
    m.cfg.score_precision = "bf16"
    bf16 = m.score_next(seq, lengths)
    assert m.scoring_table().dtype == torch.bfloat16 and m.scoring_table() is m.scoring_table()  # kept, not rebuilt
    assert (bf16.argmax(1) == fp32.argmax(1)).all()
    assert torch.allclose(bf16[:, 1:], fp32[:, 1:], rtol=0.02, atol=0.05)
    # weights change -> the table follows (an in-place optimizer step, then a state load)
    before = m.scoring_table().clone()
    m.train()
    opt.zero_grad()
    m(*_cycle_batch(20, 32, 6, g)).backward()
    opt.step()
    m.eval()
    assert not torch.equal(m.scoring_table(), before)
    with torch.no_grad():
        m.core.tok_emb.weight.mul_(2.0)  # in place, in eval mode: the version counter moves
    torch.testing.assert_close(m.scoring_table().float(), m.item_vectors().detach(), rtol=0.01, atol=1e-3)
    other = model(n_items=20)
    m.load_state_dict(other.state_dict())
    torch.testing.assert_close(m.scoring_table().float(), other.item_vectors().detach(), rtol=0.01, atol=1e-3)
