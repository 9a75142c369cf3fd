"""The int8 block scan: integer scores and block maxima against numpy, masking, padding and the fp32 fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from guimo.inference import blockscan
from guimo.inference.blockscan import BlockScan, int8_matmul


def integer_table(seed: int, n: int = 203, dim: int = 12) -> np.ndarray:
    """Item vectors whose int8 codes are exact: integers in [-127, 127] with 127 present (scale 1)."""
    rng = np.random.default_rng(seed)
    items = rng.integers(-127, 128, size=(n, dim)).astype(np.float32)
    items[0, 0] = 127
    return items


def integer_queries(seed: int, b: int = 9, dim: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = rng.integers(-127, 128, size=(b, dim)).astype(np.float32)
    q[:, 0] = 127  # each row's largest coordinate is 127: its own scale is 1 too
    return q


def test_the_block_maxima_are_numpys_over_integer_scores_across_tiles_and_a_ragged_last_block():
    items, q = integer_table(0), integer_queries(1)
    scan = BlockScan(items, block=8, tile_bytes=4 * 9 * 32)  # 203 items: 26 blocks; 9 rows: tiles of 32, the last block 3 items + padding
    assert scan.scale == 1.0 and scan.n_blocks == 26 and scan.nbytes() == 26 * 8 * 12
    scores = (items.astype(np.int64) @ q.astype(np.int64).T)  # (N, B)
    padded = np.vstack([scores, np.zeros((26 * 8 - 203, len(q)), np.int64)])  # padding rows score 0
    want = padded.reshape(26, 8, -1).max(1)
    assert np.array_equal(scan.block_maxima(q).numpy(), want)


def test_with_exact_codes_the_k_best_blocks_hold_the_k_best_items():
    items, q = integer_table(2, n=500), integer_queries(3, b=16)
    scan = BlockScan(items, block=16, tile_bytes=4 * 16 * 64)
    cand = scan.candidates(q, n_blocks=10)
    assert cand.shape == (16, 160)
    scores = items @ q.T
    for r in range(len(q)):
        best = np.argsort(-scores[:, r], kind="stable")[:10]
        assert set(best) <= set(cand[r].tolist())


def test_masked_items_neither_raise_a_block_nor_hide_the_rest_of_it():
    items = np.zeros((64, 4), np.float32)
    items[:, 0] = np.arange(64) - 32  # item i scores (i - 32) x q0: the last block holds the best items
    q = np.array([[127.0, 0, 0, 0], [127.0, 0, 0, 0]], np.float32)
    scan = BlockScan(items, block=8, tile_bytes=4 * 2 * 16)
    free = scan.candidates(q, n_blocks=1)
    assert free[0].tolist() == list(range(56, 64))
    masked = scan.candidates(q, n_blocks=1, masked=[np.arange(56, 64), np.array([63])])
    assert masked[0].tolist() == list(range(48, 56))  # the whole top block seen: the next block wins
    assert masked[1].tolist() == list(range(56, 64))  # one item of it seen: its others still count


def test_padding_rows_come_back_as_minus_one_and_never_outnumber_the_catalogue():
    items = integer_table(4, n=10, dim=4)
    cand = BlockScan(items, block=8).candidates(integer_queries(5, b=2, dim=4), n_blocks=5)
    assert cand.shape == (2, 16)  # only 2 blocks exist
    for row in cand:
        assert sorted(row[row >= 0].tolist()) == list(range(10)) and (row == -1).sum() == 6


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
