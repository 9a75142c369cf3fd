"""Candidate items for a batch of states: an int8 scan of the whole catalogue that keeps only block maxima.

Why this shape (measured on Beauty's 54,542 x 64 SASRec table, batch 64, one thread of an AMD EPYC Zen 4,
bench/recommend_ann.py): exact top-k spends its time writing and re-reading a (B, N) fp32 score table
(the matmul ~0.2 ms a row, ``topk`` ~0.07-0.09 ms). Here the table is never written whole:

1. the items are sorted by norm and cut into blocks of ``block``; each block is quantised to int8 with its
   own scale (so one long vector, a very popular item, cannot coarsen everyone else's codes; a query row gets
   its own scale too, which cannot change the order within the row); the codes are scored by an int8 x int8
   -> int32 matrix product (VNNI on x86-64 CPUs with AVX-512; torch's ``_int_mm``), tile by tile;
2. each tile's scores are reduced at once, while in cache, to each block's maximum, with the row's history
   items masked out first; the block's scale then turns its maximum into a score comparable across blocks
   (one multiply per block, not per item);
3. the ``n_blocks`` best blocks per row hold the candidates: all of their items, which the caller rescores
   exactly in fp32.

With exact scores, the 10 best items lie in at most 10 blocks and the 10 blocks with the highest maxima
hold all of them, so the only error is int8's rounding near the cut, which a few spare blocks absorb
(recall@10 against exact scoring is measured beside every speed figure). Integer arithmetic is exact,
so the candidates are the same on every machine.
"""

from __future__ import annotations

import numpy as np
import torch

INT8_MAX = 127
_MASKED = torch.iinfo(torch.int32).min


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """int32 (M, N) = int8 (M, K) @ int8 (K, N), exactly.

    ``torch._int_mm`` is torch's int8 GEMM (oneDNN/VNNI on CPU). Where a torch build lacks it on this device,
    the same product in fp32 is still exact: |sums| <= K x 127^2 stays far below 2^24 for item vectors
    (K < 1,000), so both paths give identical integers.
    """
    try:
        return torch._int_mm(a, b)
    except (AttributeError, RuntimeError, NotImplementedError):
        return (a.float() @ b.float()).to(torch.int32)


def norm_blocks(sorted_norms: np.ndarray, order: np.ndarray, block: int) -> np.ndarray:
    """Rows of the table: ``order`` (items by descending norm) cut into blocks of ``block``, -1 padding.

    A block also ends early, padded, where an item's norm falls below half of the block's first: with one
    int8 scale per block, no item is then coded with more than one bit fewer than the block's longest, and a
    very long vector (an outlier) gets a block of its own. Each early end halves the block's leading norm, so
    there are at most log2(longest / shortest) + 1 of them.
    """
    rows, pos, n = [], 0, len(order)
    while pos < n:
        end = min(pos + block, n)
        take = pos + max(1, int(np.searchsorted(-sorted_norms[pos:end], -sorted_norms[pos] / 2, side="right")))
        rows += [order[pos:take], np.full(block - (take - pos), -1, np.int64)]
        pos = take
    return np.concatenate(rows) if rows else np.full(block, -1, np.int64)


class BlockScan:
    """int8 codes of item vectors (N, C), scanned in tiles for the best blocks of ``block`` items per query.

    Items are 0..N-1 in the caller's order (it maps them to its ids); inside, row r of ``codes`` is item
    ``row_item[r]`` (norms descending, -1 for a padding row). Padding rows are masked out of every score and
    come back as candidates -1.
    """

    def __init__(self, vectors: np.ndarray, block: int = 16, tile_bytes: int = 2**21) -> None:
        """``tile_bytes``: the int32 scores of one tile (tile x B x 4 bytes), kept within the L2 cache so
        the block maxima read them there; the tile's height follows the batch (8,192 items at B = 64)."""
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        items = np.asarray(vectors, dtype=np.float32)
        self.n_items, self.dim = items.shape
        self.block, self.tile_bytes = block, tile_bytes
        norms = np.linalg.norm(items, axis=1)
        order = np.argsort(-norms, kind="stable")
        blocks = norm_blocks(norms[order], order, block).reshape(-1, block)
        # Blocks in a fixed shuffled order: torch's CPU top-k keeps a heap, and block maxima that rise along the
        # table (long vectors score lower on average on Beauty) made it 2x slower than on maxima in random order.
        self.row_item = blocks[np.random.default_rng(0).permutation(len(blocks))].reshape(-1)  # row -> item, -1 for padding
        self.row_of = np.empty(self.n_items, np.int64)  # item -> row
        real = self.row_item >= 0
        self.row_of[self.row_item[real]] = np.flatnonzero(real)
        self.pad_rows = np.flatnonzero(~real)
        table = np.zeros((len(self.row_item), self.dim), np.float32)
        table[real] = items[self.row_item[real]]
        top = np.abs(table).reshape(len(table) // block, -1).max(axis=1)  # per block
        scale = np.where(top > 0, top / INT8_MAX, 1.0).astype(np.float32)
        self.codes = torch.from_numpy(np.clip(np.rint(table / np.repeat(scale, block)[:, None]), -INT8_MAX, INT8_MAX).astype(np.int8))
        self.table = table  # fp32 in row order: a block's candidates are rescored from contiguous rows
        self.block_scale = torch.from_numpy(scale)  # (n_blocks,)
        # A masked score (int32's minimum) times the smallest scale stays below any real score times the largest
        # (|real| <= dim x 127^2) while the scales span less than ~2^31 / (dim x 127^2), 2,081x at 64 dimensions:
        # then the maxima need no -inf pass (~10% of a scan), only beyond that.
        self.needs_inf = bool(scale.max() * self.dim * INT8_MAX**2 * 2 >= scale.min() * 2.0**31)

    @property
    def n_blocks(self) -> int:
        return len(self.codes) // self.block

    def nbytes(self) -> int:
        """The int8 codes' bytes (the fp32 copy for rescoring comes on top: 4x that)."""
        return self.codes.numel()

    def vectors_of(self, items: np.ndarray) -> np.ndarray:
        """fp32 vectors of ``items`` (any shape; -1 allowed, read as item 0): gathered from the row-ordered table,
        so a block's items come from neighbouring rows instead of all over the catalogue."""
        return self.table[self.row_of[np.maximum(items, 0)]]

    @staticmethod
    def quantize_queries(states: np.ndarray) -> torch.Tensor:
        """(C, B) int8: each row scaled to its own largest coordinate (the order within a row is what counts)."""
        q = np.asarray(states, dtype=np.float32)
        top = np.abs(q).max(axis=1, keepdims=True)
        q = np.clip(np.rint(q / np.where(top > 0, top, 1.0) * INT8_MAX), -INT8_MAX, INT8_MAX).astype(np.int8)
        return torch.from_numpy(np.ascontiguousarray(q.T))

    def block_maxima(self, states: np.ndarray, masked: list[np.ndarray] | None = None) -> torch.Tensor:
        """fp32 (n_blocks, B): each block's highest score per state row (in the row's own units), the items
        ``masked[r]`` left out (where a block has nothing else: a value below every real score, -inf when the
        scales span too widely for that)."""
        q = self.quantize_queries(states)
        b = q.shape[1]
        out = torch.empty(self.n_blocks, b, dtype=torch.int32)
        pairs = None
        if masked is not None and b:
            items = self.row_of[np.concatenate([np.asarray(m, np.int64) for m in masked] + [np.zeros(0, np.int64)])]
            rows = np.repeat(np.arange(b), [len(m) for m in masked])
            order = np.argsort(items, kind="stable")
            pairs = (items[order], rows[order])
        tile = max(1, self.tile_bytes // (4 * max(b, 1) * self.block)) * self.block
        for start in range(0, len(self.codes), tile):
            end = min(start + tile, len(self.codes))
            scores = int8_matmul(self.codes[start:end], q)  # (tile, B)
            lo, hi = np.searchsorted(self.pad_rows, [start, end])
            if hi > lo:
                scores[torch.from_numpy(self.pad_rows[lo:hi] - start)] = _MASKED
            if pairs is not None:
                lo, hi = np.searchsorted(pairs[0], [start, end])
                if hi > lo:
                    scores[torch.from_numpy(pairs[0][lo:hi] - start), torch.from_numpy(pairs[1][lo:hi])] = _MASKED
            torch.amax(scores.view(-1, self.block, b), dim=1, out=out[start // self.block : end // self.block])
        best = out.float().mul_(self.block_scale[:, None])
        return best.masked_fill_(out == _MASKED, float("-inf")) if self.needs_inf else best

    def candidates(self, states: np.ndarray, n_blocks: int, masked: list[np.ndarray] | None = None) -> np.ndarray:
        """(B, n_blocks x block) items, -1 for padding rows: every item of each row's best ``n_blocks`` blocks."""
        maxima = self.block_maxima(states, masked)
        n_blocks = max(1, min(n_blocks, self.n_blocks))
        best = maxima.T.topk(n_blocks, dim=1, sorted=False).indices.numpy()  # (B, n_blocks)
        rows = (best[:, :, None] * self.block + np.arange(self.block)).reshape(len(best), -1)
        return self.row_item[rows]
