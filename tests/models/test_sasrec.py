"""SASRec on the shared core: causal, padding-safe, grouped encoding exact, both losses learn."""

from __future__ import annotations

import pytest
import torch

from guimo.models.sasrec import SASRec, SASRecConfig, pad_right


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
    grouped = m._hidden_at(seq, real, m.item_vectors(seq), group=2)
    assert torch.allclose(grouped, m.encode(seq)[real], atol=1e-5)


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


@pytest.mark.parametrize("loss", ["ce", "sampled"])
def test_learns_a_deterministic_successor(loss):
    m = model(loss=loss, n_negatives=8).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for _ in range(80):
        seq, tgt = _cycle_batch(20, 32, 6, g)
        opt.zero_grad()
        m(seq, tgt).backward()
        opt.step()
    m.eval()
    seq, tgt = _cycle_batch(20, 64, 6, g)
    pred = m.score_next(seq, torch.full((64,), 6)).argmax(1)
    assert (pred == tgt[:, -1]).float().mean() > 0.9


def test_sampled_loss_masks_accidental_hits():
    m = model(n_items=3, loss="sampled", n_negatives=50).train()
    loss = m(torch.tensor([[1, 2]]), torch.tensor([[2, 3]]))
    assert torch.isfinite(loss)
