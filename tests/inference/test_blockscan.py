"""The int8 block scan: integer scores and block maxima against numpy, masking, padding and the fp32 fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from guimo.inference import blockscan
from guimo.inference.blockscan import BlockScan, int8_matmul


def test_the_block_maxima_are_numpys_over_the_codes_across_tiles_and_a_ragged_last_block():
    rng = np.random.default_rng(0)
    items, q = rng.normal(size=(203, 12)).astype(np.float32), rng.normal(size=(9, 12)).astype(np.float32)
    scan = BlockScan(items, block=8, tile_bytes=4 * 9 * 32)  # 9 rows: tiles of 32 rows, 7 of them or more
    real = scan.row_item >= 0
    assert sorted(scan.row_item[real].tolist()) == list(range(203)) and scan.nbytes() == scan.n_blocks * 8 * 12
    norms = np.linalg.norm(items, axis=1)
    for rows in scan.row_item.reshape(-1, 8):  # each block: items of neighbouring norms, within 2x of its longest
        inside = norms[rows[rows >= 0]]
        assert (np.diff(inside) <= 0).all() and inside.min() >= inside.max() / 2
    ints = (scan.codes.numpy().astype(np.int64) @ scan.quantize_queries(q).numpy().astype(np.int64)).astype(np.float64)
    ints[~real] = -np.inf  # padding rows never score
    want = ints.reshape(scan.n_blocks, 8, -1).max(1) * scan.block_scale.numpy()[:, None]
    np.testing.assert_allclose(scan.block_maxima(q).numpy(), want, rtol=1e-6)


def test_a_long_vector_gets_a_block_of_its_own_and_blurs_no_other_items_codes():
    rng = np.random.default_rng(2)
    items = rng.normal(size=(2000, 16)).astype(np.float32)
    items[7] *= 1000  # one item 1,000x longer: a single scale for the table would round every other code to 0
    q = rng.normal(size=(40, 16)).astype(np.float32)
    cand = BlockScan(items, block=16).candidates(q, n_blocks=12)
    exact = items @ q.T
    recall = np.mean([len(set(np.argsort(-exact[:, r])[:10]) & set(cand[r].tolist())) / 10 for r in range(len(q))])
    assert recall >= 0.99
    dequantised = scan_table(BlockScan(items, block=16))
    assert np.abs(dequantised - items).max(axis=1)[np.arange(2000) != 7].max() < 0.05  # per-block steps, not 1,000x
    scan = BlockScan(items, block=16)
    (own,) = [rows for rows in scan.row_item.reshape(-1, 16) if 7 in rows]
    assert own[0] == 7 and (own[1:] == -1).all()  # the outlier alone, its block padded


def scan_table(scan: BlockScan) -> np.ndarray:
    """The items as the codes hold them, in the caller's order."""
    rows = scan.codes.numpy().astype(np.float32) * np.repeat(scan.block_scale.numpy(), scan.block)[:, None]
    return rows[scan.row_of]


def test_with_exact_scores_the_k_best_blocks_hold_the_k_best_items():
    rng = np.random.default_rng(3)
    items, q = rng.normal(size=(500, 8)).astype(np.float32), rng.normal(size=(16, 8)).astype(np.float32)
    scan = BlockScan(items, block=16, tile_bytes=4 * 16 * 64)
    cand = scan.candidates(q, n_blocks=12)
    assert cand.shape == (16, 192)
    scores = items @ q.T
    for r in range(len(q)):
        best = np.argsort(-scores[:, r], kind="stable")[:10]
        assert set(best) <= set(cand[r].tolist())


def test_masked_items_neither_raise_a_block_nor_hide_the_rest_of_it():
    items = np.zeros((64, 4), np.float32)
    items[:, 0] = np.arange(64) + 1.0  # item i scores (i + 1) x q0, and norms sort the items by id descending
    q = np.array([[1.0, 0, 0, 0], [1.0, 0, 0, 0]], np.float32)
    scan = BlockScan(items, block=8, tile_bytes=4 * 2 * 16)
    free = scan.candidates(q, n_blocks=1)
    assert sorted(free[0].tolist()) == list(range(56, 64))
    masked = scan.candidates(q, n_blocks=1, masked=[np.arange(56, 64), np.array([63])])
    assert sorted(masked[0].tolist()) == list(range(48, 56))  # the whole top block seen: the next block wins
    assert sorted(masked[1].tolist()) == list(range(56, 64))  # one item of it seen: its others still count
    seen_all = scan.block_maxima(q, [np.arange(56, 64), np.array([63])]).numpy()[:, 0]
    top = scan.row_of[63] // 8  # the block of items 56-63, all seen by row 0
    assert seen_all[top] < np.delete(seen_all, top).min() and not scan.needs_inf  # below every real score, no -inf pass
    wide = items.copy()
    wide[0] *= 1e-6  # scales 10^7 apart: the masked value must then be -inf
    wide_scan = BlockScan(wide, block=8)
    assert wide_scan.needs_inf and np.isneginf(wide_scan.block_maxima(q, [np.arange(56, 64), []]).numpy()[wide_scan.row_of[63] // 8, 0])


def test_padding_rows_come_back_as_minus_one_and_never_outnumber_the_catalogue():
    rng = np.random.default_rng(4)
    items = rng.normal(size=(10, 4)).astype(np.float32)
    cand = BlockScan(items, block=8).candidates(rng.normal(size=(2, 4)).astype(np.float32), n_blocks=5)
    assert cand.shape == (2, 16)  # only 2 blocks exist
    for row in cand:
        assert sorted(row[row >= 0].tolist()) == list(range(10)) and (row == -1).sum() == 6
    assert (BlockScan(np.zeros((0, 4), np.float32)).candidates(np.ones((1, 4), np.float32), 3) == -1).all()


def test_a_row_is_quantised_to_its_own_scale_so_a_scaled_query_finds_the_same_items():
    rng = np.random.default_rng(6)
    items = rng.normal(size=(300, 16)).astype(np.float32)
    q = rng.normal(size=(4, 16)).astype(np.float32)
    scan = BlockScan(items, block=4)
    assert np.array_equal(scan.candidates(q, 12), scan.candidates(q * 1e-3, 12))


def test_the_fp32_fallback_gives_the_same_integers_as_torchs_int8_gemm(monkeypatch):
    g = torch.Generator().manual_seed(0)
    a = torch.randint(-127, 128, (70, 33), generator=g, dtype=torch.int8)
    b = torch.randint(-127, 128, (33, 5), generator=g, dtype=torch.int8)
    want = a.long() @ b.long()
    assert torch.equal(int8_matmul(a, b).long(), want)

    def unavailable(*_):
        raise RuntimeError("_int_mm: not implemented for this device")

    monkeypatch.setattr(blockscan.torch, "_int_mm", unavailable)
    got = int8_matmul(a, b)
    assert got.dtype == torch.int32 and torch.equal(got.long(), want)


def test_a_block_below_one_is_refused():
    with pytest.raises(ValueError, match="block must be >= 1"):
        BlockScan(np.zeros((4, 2), np.float32), block=0)
