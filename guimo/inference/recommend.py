"""Top-K next items for histories of original item ids: what `guimo recommend` and the server call.

``top_k`` is the pure function (internal ids in, internal ids out, no I/O); ``RecPredictor``
wraps it with the run's item vocabulary, the known users' histories and popularity for an
empty history (a brand-new visitor), so callers only ever see the dataset's ids.

Item ids that the model never saw cannot be scored. They are left out of the history, but never
silently: every result names them under ``unknown_items``, ``unknown_message`` says what known ids
look like, and the callers (``guimo recommend``, ``/v1/recommendations``) refuse a history none of
whose items is known unless asked to fall back to popularity (a typo such as ``12`` for ``i00012``
would otherwise quietly return the most popular items).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from guimo.errors import GuimoError


def top_k(model, histories: list[np.ndarray], k: int, exclude_seen: bool = True, chunk: int = 1024,
          fallback: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Internal item ids (B, k) and scores (B, k), best first, for histories of internal ids.

    An empty history is scored by ``fallback`` (N + 1,) (e.g. popularity) when given. Padding and,
    with ``exclude_seen``, history items never appear; rows with fewer than k candidates end
    with score -inf (callers drop those).
    """
    from guimo.evaluate.ranking import mask_seen
    from guimo.models.sasrec import pad_right

    n = model.cfg.n_items
    k = max(1, min(k, n))
    device = next(model.parameters()).device
    ids_out, scores_out = [], []
    for start in range(0, len(histories), chunk):
        hs = histories[start : start + chunk]
        known = [i for i, h in enumerate(hs) if len(h)]
        if known:
            seq, lengths = pad_right([hs[i] for i in known], model.cfg.max_len)
            with torch.no_grad():
                scored = model.score_next(seq.to(device), lengths.to(device)).float().cpu()
        if len(known) == len(hs):  # the usual case: no (B, N + 1) table to fill and copy
            scores = scored
        else:
            scores = torch.full((len(hs), n + 1), float("-inf"))
            if known:
                scores[known] = scored
        if fallback is not None and len(known) < len(hs):
            empty = [i for i, h in enumerate(hs) if not len(h)]
            scores[empty] = fallback.float()[None, :]
        if exclude_seen:
            mask_seen(scores, hs)
        scores[:, 0] = float("-inf")
        top = scores.topk(k, dim=1)
        ids_out.append(top.indices)
        scores_out.append(top.values)
    if not ids_out:
        return torch.zeros(0, k, dtype=torch.long), torch.zeros(0, k)
    return torch.cat(ids_out), torch.cat(scores_out)


# -- approximate top-k over large catalogues ---------------------------------------------------------

TopKMode = Literal["auto", "exact", "ann"]
TOPK_MODES = ("auto", "exact", "ann")
ANN_INDEXES = ("int8", "pq", "hnsw")
# auto: the exact path below this many items, the item index from there on. Measured on Beauty's SASRec (54,542
# items, 64 wide, 1 thread, bench/recommend_ann.py, docs/benchmarks/recommend.md): the int8 block scan with 2 spare
# blocks kept recall@10 0.9998 against exact scoring (test NDCG@10 equal to 4 decimals) and ran 2.8x exact's
# rows/s at batch 64 (2.5x on real test histories), 4.8x at 163,626 items; PQ fast-scan (fetch 100): recall 0.995,
# 2.8x / 2.3x / 4.4x, and faster at batches 1-8; HNSW needed ef_search 1024 for 0.99 and ran 0.23x. Smaller
# catalogues were not measured.
ANN_MIN_ITEMS = 50_000
ANN_CACHE = "ann_index"  # RUN/ann_index/<key>/: the built index (a versioned atomic save) and info.json


@dataclass
class AnnSettings:
    """How recommendations choose and run approximate top-k: the recommend config's ``serve`` section.

    Three item indexes, each followed by exact rescoring of its candidates (so the scores a caller
    sees are the model's own dot products):

    - ``int8`` (default): ``guimo.inference.blockscan.BlockScan``, an int8 scan of every item that keeps
      each block's maximum and hands every item of the best ``k + spare_blocks`` blocks to the rescoring;
      built in ~0.1 s (nothing cached), no FAISS, the same candidates on every machine; the default for
      its recall margin (0.9998 on Beauty).
    - ``pq``: FAISS's 4-bit product-quantisation fast-scan (``IndexPQFastScan``, inner product) over
      every item, its top ``fetch`` rescored; as fast as int8 at batch 64, faster at batches of 1-8
      (low traffic), recall 0.995 on Beauty.
    - ``hnsw``: a graph walk (``guimo.index.dense.DenseIndex``); sub-linear per query, but on SASRec's
      item vectors it needed ef_search 1024 to reach recall@10 0.99 and then ran slower than exact
      scoring at 54k items (its build took 85 s).

    All were measured on Beauty by bench/recommend_ann.py (docs/benchmarks/recommend.md, section
    recommend-ann): recall@10 against exact scoring rises with ``spare_blocks`` (int8), ``fetch`` (pq)
    or ``ef_search`` (hnsw) while the speed falls, so each is written beside every figure there.
    """

    topk: TopKMode = field(default="auto", metadata={"help": "top-k over the catalogue: exact (score every item), ann (the item index, then exact rescoring of its candidates) or auto (ann from min_items up)"})
    min_items: int = field(default=ANN_MIN_ITEMS, metadata={"help": "auto: catalogues with at least this many items use the item index (measured: docs/benchmarks/recommend.md)"})
    index: str = field(default="int8", metadata={"help": "the item index of the ann path: int8 (a block-max scan of int8 codes over every item), pq (4-bit PQ fast-scan over every item) or hnsw (graph)"})
    pq_m: int = field(default=0, metadata={"help": "pq: sub-quantizers (0: one per 2 dimensions); more = finer codes, slower scan"})
    fetch: int = field(default=100, metadata={"help": "pq: candidates per row rescored exactly (plus the history's items); on Beauty recall@10 0.9952 at 100, 0.9985 at 200"})
    block: int = field(default=16, metadata={"help": "int8: items per block of the scan (every item of a row's best blocks is rescored exactly)"})
    spare_blocks: int = field(default=2, metadata={"help": "int8: blocks rescored beyond k (2 chosen on Beauty's validation histories); on its test split recall@10 0.9987 at 1, 0.9998 at 2, 1.0 at 4"})
    m: int = field(default=32, metadata={"help": "hnsw: neighbours per node (memory and recall)"})
    ef_construction: int = field(default=200, metadata={"help": "hnsw: build candidate list; a better graph gives higher recall at the same ef_search"})
    ef_search: int = field(default=1024, metadata={"help": "hnsw: search candidate list (raised to the over-fetched k when larger); on Beauty recall@10 0.9896 at 512, 0.9945 at 1024"})
    cache: bool = field(default=True, metadata={"help": "keep the built index in RUN/ann_index/ (atomic, versioned) so the next load reads it instead of rebuilding"})


def ann_choice(n_items: int, settings: AnnSettings) -> tuple[str, str]:
    """("exact" | "ann", why) for a catalogue of ``n_items`` under ``settings.topk``."""
    if settings.topk not in TOPK_MODES:
        raise GuimoError(f"serve.topk must be one of {', '.join(TOPK_MODES)}, got {settings.topk!r}")
    if settings.index not in ANN_INDEXES:
        raise GuimoError(f"serve.index must be one of {', '.join(ANN_INDEXES)}, got {settings.index!r}")
    if settings.topk != "auto":
        return settings.topk, f"serve.topk={settings.topk}"
    if n_items >= settings.min_items:
        return "ann", f"auto: {n_items:,} items >= serve.min_items {settings.min_items:,}"
    return "exact", f"auto: {n_items:,} items < serve.min_items {settings.min_items:,}"


def last_states(model, histories: list[np.ndarray]) -> torch.Tensor:
    """The model's state after each non-empty history (B, C) in fp32: what ``score_next`` dots with every item."""
    from guimo.models.sasrec import pad_right

    device = next(model.parameters()).device
    seq, lengths = pad_right(histories, model.cfg.max_len)
    with torch.no_grad():
        return model.last_state(seq.to(device), lengths.to(device)).float().cpu()


class ItemIndex:
    """The catalogue's item vectors in an index for approximate top-k (``AnnSettings.index``).

    ``int8``: a ``BlockScan`` (guimo/inference/blockscan.py, where the why is written) over the item
    vectors; every item of each row's best ``k + spare_blocks`` blocks is a candidate.

    ``pq``: a FAISS ``IndexPQFastScan`` (inner product, 4-bit codes) over the item vectors, padded
    to an even width; its top ``fetch`` items per row are the candidates. Why PQ fast-scan: SASRec's
    item vectors are not clustered around the queries, so partitioned indexes (IVF) and graph walks
    (HNSW) had to visit most of the catalogue to reach recall@10 0.99 on Beauty; a scan of 4-bit
    codes visits all of it, but at a small fraction of the cost of exact fp32 scoring, and the exact
    rescoring of 100 candidates repairs the codes' error (recall@10 0.995).

    ``hnsw``: a ``guimo.index.dense.DenseIndex`` graph. SASRec ranks items by the inner product of
    the history's state with each item vector, and item norms differ (0.30 to 1.19 on Beauty). A graph
    over inner products walks less reliably than over distances, so the vectors are stored with one
    extra coordinate ``sqrt(R^2 - |x|^2)`` (R the largest norm) and queries with 0 there: then the
    squared L2 distance is ``|q|^2 + R^2 - 2 q.x``, and the nearest items are exactly the
    highest-scoring ones (Bachrach et al., RecSys 2014). On Beauty (M 32, ef_construction 200,
    ef_search 256, 2,000 test users) this lifted recall@10 against exact scoring from 0.949 to 0.981.

    Either way the candidates are rescored exactly, so the scores a caller sees are the model's own
    dot products, ordered by them. Padding id 0 is never indexed.
    """

    def __init__(self, vectors: np.ndarray, settings: AnnSettings, index=None, *, key: str | None = None) -> None:
        """``vectors`` (N + 1, C) fp32, row 0 the padding; ``index`` a loaded index over them (else built)."""
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.settings = settings
        self.key = key or table_key(self.vectors, settings)
        self.build_s = 0.0
        if index is None:
            t0 = time.perf_counter()
            build = {"int8": self._build_int8, "pq": self._build_pq, "hnsw": self._build_hnsw}[settings.index]
            index = build()
            self.build_s = time.perf_counter() - t0
        self.index = index

    @property
    def kind(self) -> str:
        return self.settings.index

    @property
    def n_items(self) -> int:
        return len(self.vectors) - 1

    def pq_m(self) -> int:
        """Sub-quantizers of the pq index: ``settings.pq_m``, or one per 2 dimensions of the padded width."""
        width = pq_width(self.vectors.shape[1])
        m = self.settings.pq_m or width // 2
        if width % m:
            raise GuimoError(f"serve.pq_m={m} must divide the item vectors' width {width} (padded to even)")
        return m

    def _build_int8(self):
        from guimo.inference.blockscan import BlockScan

        return BlockScan(self.vectors[1:], block=self.settings.block)

    def _build_pq(self):
        import faiss

        index = faiss.IndexPQFastScan(pq_width(self.vectors.shape[1]), self.pq_m(), 4, faiss.METRIC_INNER_PRODUCT)
        items = self._padded(self.vectors[1:])
        index.train(items)  # k-means per sub-quantizer with FAISS's fixed seed: the same codes on every build
        index.add(items)
        return index

    def _build_hnsw(self):
        from guimo.index.dense import DenseIndex, HNSWParams

        s = self.settings
        norms = np.linalg.norm(self.vectors[1:], axis=1)
        radius = float(norms.max()) if len(norms) else 0.0
        index = DenseIndex(self.vectors.shape[1] + 1, metric="l2", kind="hnsw",
                           hnsw=HNSWParams(m=s.m, ef_construction=s.ef_construction, ef_search=s.ef_search))
        extra = np.sqrt(np.maximum(radius**2 - norms**2, 0.0))[:, None]
        index.add([str(i) for i in range(1, len(self.vectors))], np.hstack([self.vectors[1:], extra]))
        return index

    def _padded(self, x: np.ndarray) -> np.ndarray:
        width = pq_width(x.shape[1])
        if width == x.shape[1]:
            return np.ascontiguousarray(x, dtype=np.float32)
        return np.ascontiguousarray(np.hstack([x, np.zeros((len(x), width - x.shape[1]), np.float32)]))

    def info(self) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {"items": self.n_items, "kind": self.kind, "build_s": round(self.build_s, 3)}
        if self.kind == "int8":
            out["int8"] = {"block": s.block, "spare_blocks": s.spare_blocks, "scales": "one per block of items sorted by norm"}
        elif self.kind == "pq":
            out["pq"] = {"m": self.pq_m(), "bits": 4, "fetch": s.fetch}
        else:
            out["hnsw"] = {"m": s.m, "ef_construction": s.ef_construction, "ef_search": s.ef_search}
            out["transform"] = "MIPS -> L2 (one extra coordinate)"
        return out

    def candidates(self, states: np.ndarray, fetch: int, seen: list[np.ndarray], k: int) -> np.ndarray:
        """Internal item ids (B, F) per state row, unordered by exact score; 0 where the index had fewer.

        int8 returns every item of the ``k + spare_blocks`` best blocks (with exact scores the k best items
        lie in the k best blocks; the spare ones absorb int8's rounding near the cut) and leaves the rows'
        ``seen`` ids out of its scan, so no block is spent on them; it ignores ``fetch``. The other indexes
        are asked for more (``top_k``)."""
        if self.kind == "int8":
            n_blocks = k + self.settings.spare_blocks
            return self.index.candidates(states, n_blocks, [s - 1 for s in seen]) + 1  # padding rows (-1) -> 0
        if self.kind == "pq":
            return self.index.search(self._padded(states), fetch)[1] + 1  # FAISS's -1 (no more) -> 0
        q = np.hstack([states, np.zeros((len(states), 1), np.float32)])
        found = [[int(h.id) for h in row] for row in self.index.search(q, k=fetch)]
        cand = np.zeros((len(found), max((len(f) for f in found), default=0)), np.int64)
        for r, f in enumerate(found):
            cand[r, : len(f)] = f
        return cand

    def top_k(self, states: np.ndarray, histories: list[np.ndarray], k: int, exclude_seen: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Internal ids (B, k), exact scores (B, k) and a (B,) flag of rows that came back short.

        The index is asked for ``k`` (pq: at least ``settings.fetch``; int8: ``k + spare_blocks`` blocks)
        plus, with ``exclude_seen`` and except for int8 (whose scan skips them), the longest history's
        distinct items, so removing a row's history never leaves it with fewer than ``k`` items while the
        catalogue has them.
        """
        seen = [np.unique(h) if exclude_seen else np.zeros(0, np.int64) for h in histories]
        want = max(k, self.settings.fetch) if self.kind == "pq" else k
        extra = 0 if self.kind == "int8" else max((len(s) for s in seen), default=0)
        cand = self.candidates(states, min(self.n_items, want + extra), seen, k)
        b = len(states)
        if cand.shape[1] < k:
            cand = np.hstack([cand, np.zeros((b, k - cand.shape[1]), np.int64)])
        valid = cand > 0
        if exclude_seen and b:  # one membership test for the batch: (row, item) pairs as row * (N + 1) + item, sorted
            keys = np.sort(np.concatenate([r * (self.n_items + 1) + h for r, h in enumerate(seen)]))
            if len(keys):
                pairs = np.arange(b)[:, None] * (self.n_items + 1) + cand
                valid &= keys[np.searchsorted(keys, pairs).clip(max=len(keys) - 1)] != pairs
        vecs = self.index.vectors_of(cand - 1) if self.kind == "int8" else self.vectors[cand]  # (B, F, C)
        exact = np.einsum("bfc,bc->bf", vecs, states)  # (B, F) the model's own scores
        exact[~valid] = -np.inf
        order = top_columns(exact, k)
        scores = np.take_along_axis(exact, order, 1).astype(np.float32)
        ids = np.where(np.isfinite(scores), np.take_along_axis(cand, order, 1), 0)
        unseen = self.n_items - np.array([len(s) for s in seen], np.int64)
        short = np.isfinite(scores).sum(1) < np.minimum(k, unseen)
        return ids, scores, short

    def save(self, folder: Path) -> None:
        """A versioned atomic save (``guimo.index.store``): a kill mid-save leaves the last committed index."""
        if self.kind == "hnsw":
            self.index.save(folder)
            return
        import faiss

        from guimo.index.store import fsync_file, new_version

        with new_version(folder) as version:
            faiss.write_index(self.index, str(version / "items.faiss"))
            fsync_file(version / "items.faiss")

    @staticmethod
    def load_index(folder: Path, settings: AnnSettings):
        """The index saved by ``save`` for these settings (GuimoError or OSError when it cannot be read)."""
        if settings.index == "hnsw":
            from guimo.index.dense import DenseIndex

            index = DenseIndex.load(folder)
            index.hnsw = dataclasses.replace(index.hnsw, ef_search=settings.ef_search)  # a search setting, not the graph's
            return index
        import faiss

        from guimo.index.store import read_version

        return read_version(folder, lambda v: faiss.read_index(str(v / "items.faiss")), what="item index")


def top_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices (B, k) of each row's k highest ``scores`` (B, F), best first (a partition, then a sort of k)."""
    if scores.shape[1] > k:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        return np.take_along_axis(part, np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable"), 1)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def pq_width(dim: int) -> int:
    """The pq index's vector width: the item vectors' padded to even (each sub-quantizer covers whole dimensions)."""
    return dim + dim % 2


def table_key(vectors: np.ndarray, settings: AnnSettings) -> str:
    """What a cached index must match: the item vectors' bytes and the index's build settings."""
    import hashlib

    h = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    if settings.index == "pq":
        h.update(f"pq;m={settings.pq_m};bits=4;v=1".encode())
    else:
        h.update(f"m={settings.m};efc={settings.ef_construction};v=1".encode())
    return h.hexdigest()


def load_item_index(model, settings: AnnSettings, run_path: Path | None = None) -> tuple[ItemIndex, str]:
    """The model's ``ItemIndex`` and where it came from ("built", "built, cached in ...", "read from ...").

    With ``settings.cache`` and a run directory, the index lives in ``RUN/ann_index/<key>/``, the key a
    hash of the item vectors and the index's build settings: an index is only ever read back for the
    weights it was built from (new weights get a folder of their own), and its save is versioned and
    atomic, so a kill mid-save leaves the folder unreadable-as-cache (rebuilt) or complete, never
    torn. A run directory that cannot be written is not an error: the index is then built on every load.
    """
    from guimo.index.store import CURRENT
    from guimo.io import atomic_write_json

    with torch.no_grad():
        vectors = model.item_vectors().float().cpu().numpy()
    if settings.index == "int8":  # quantising the table takes milliseconds: nothing worth caching
        return ItemIndex(vectors, settings), "built"
    key = table_key(vectors, settings)
    folder = run_path / ANN_CACHE / key[:16] if run_path is not None and settings.cache else None
    if folder is not None and (folder / "index" / CURRENT).exists():
        try:
            t0 = time.perf_counter()
            index = ItemIndex.load_index(folder / "index", settings)
            size = index.ntotal if settings.index == "pq" else len(index)
            if size == len(vectors) - 1:
                item_index = ItemIndex(vectors, settings, index, key=key)
                item_index.build_s = time.perf_counter() - t0
                return item_index, f"read from {folder}"
        except (GuimoError, OSError, RuntimeError, ValueError):
            pass  # a damaged cache: rebuild below (FAISS reports an unreadable file as RuntimeError)
    item_index = ItemIndex(vectors, settings, key=key)
    if folder is None:
        return item_index, "built"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        item_index.save(folder / "index")
        atomic_write_json(folder / "info.json", {"key": key, **item_index.info()})
        return item_index, f"built, cached in {folder}"
    except OSError as e:
        return item_index, f"built (not cached: {e.strerror or e})"


def ann_top_k(model, item_index: ItemIndex, histories: list[np.ndarray], k: int, exclude_seen: bool = True,
              chunk: int = 1024, fallback: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``top_k`` with the catalogue searched through ``item_index``: same arguments, same (B, k) outputs.

    Non-empty histories are encoded and searched in the index; empty ones (popularity) and any row
    the index left short go through the exact ``top_k``, so the contract (padding and, with
    ``exclude_seen``, history items never appear; -inf only when the catalogue runs out) holds.
    """
    n = model.cfg.n_items
    k = max(1, min(k, n))
    ids = torch.zeros(len(histories), k, dtype=torch.long)
    scores = torch.full((len(histories), k), float("-inf"))
    for start in range(0, len(histories), chunk):
        hs = histories[start : start + chunk]
        known = [i for i, h in enumerate(hs) if len(h)]
        exact = [i for i, h in enumerate(hs) if not len(h)]
        if known:
            states = last_states(model, [hs[i] for i in known]).numpy()
            got_ids, got_scores, short = item_index.top_k(states, [hs[i] for i in known], k, exclude_seen)
            rows = torch.as_tensor(known, dtype=torch.long) + start
            ids[rows], scores[rows] = torch.from_numpy(got_ids), torch.from_numpy(got_scores)
            exact += [known[j] for j in np.flatnonzero(short)]
        if exact:
            e_ids, e_scores = top_k(model, [hs[i] for i in exact], k, exclude_seen, fallback=fallback)
            rows = torch.as_tensor(exact, dtype=torch.long) + start
            ids[rows], scores[rows] = e_ids, e_scores
    return ids, scores


class RecPredictor:
    """Recommendations in the dataset's own item ids over one finished run."""

    def __init__(self, model, item_ids: list[str], user_ids: list[str], sequences, popularity: np.ndarray, name: str = "recommend",
                 serve: AnnSettings | None = None, run_path: Path | None = None) -> None:
        self.model, self.item_ids, self.name = model, item_ids, name
        self.serve = serve or AnnSettings()
        self.topk, self.topk_reason = ann_choice(len(item_ids), self.serve)
        self.item_index: ItemIndex | None = None
        self.index_source: str | None = None
        if self.topk == "ann":
            self.item_index, self.index_source = load_item_index(model, self.serve, run_path)
        self.index = {item: i + 1 for i, item in enumerate(item_ids)}
        self._user_ids, self._seqs = user_ids, sequences
        self._user_index: dict[str, int] | None = None
        self.popularity = torch.as_tensor(np.log1p(popularity.astype(np.float32)))

    @classmethod
    def from_run(cls, run, device: str = "cpu", topk: str | None = None) -> "RecPredictor":
        """The run's predictor; ``topk`` ("auto", "exact", "ann") overrides the run's ``serve.topk``."""
        from guimo.config import from_dict
        from guimo.data.recdata import Prepared
        from guimo.models.load import load_run_model
        from guimo.models.sasrec import SASRec, SASRecConfig

        prep = Prepared.load(run.data_dir)
        counts = np.bincount(np.concatenate(prep.train_sequences()), minlength=prep.n_items + 1)
        model = load_run_model(run, SASRecConfig, SASRec, device=device)
        serve = from_dict(AnnSettings, run.config.get("serve") or {}, _prefix="serve.")
        if topk is not None:
            serve = dataclasses.replace(serve, topk=topk)
        return cls(model, prep.seqs.item_ids, prep.seqs.user_ids, prep.seqs, counts, name=run.path.name,
                   serve=serve, run_path=run.path)

    def info(self) -> dict[str, Any]:
        """How this predictor ranks the catalogue: the top-k path, why, and the index's settings and load."""
        out: dict[str, Any] = {"topk": self.topk, "why": self.topk_reason, "items": self.n_items}
        if self.item_index is not None:
            out["index"] = {**self.item_index.info(), "source": self.index_source}
        return out

    def top_k(self, encoded: list[np.ndarray], k: int, exclude_seen: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Internal ids and scores (B, k) through the chosen path (exact or the item index)."""
        if self.item_index is None:
            return top_k(self.model, encoded, k, exclude_seen, fallback=self.popularity)
        return ann_top_k(self.model, self.item_index, encoded, k, exclude_seen, fallback=self.popularity)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def encode(self, history: list) -> np.ndarray:
        """Internal ids of a history's known items (unknown ones are skipped: see ``unknown``), oldest first."""
        return np.array([self.index[str(i)] for i in history if str(i) in self.index], dtype=np.int64)

    def unknown(self, history: list) -> list[str]:
        """The ids of ``history`` that are not in the catalogue, in order (each once)."""
        return list(dict.fromkeys(str(i) for i in history if str(i) not in self.index))

    def id_examples(self, n: int = 3) -> list[str]:
        """The ``n`` smallest catalogue ids (a stable, readable sample), to show what a known item id looks like."""
        import heapq

        return heapq.nsmallest(n, self.item_ids)

    def unknown_message(self, unknown: list[str], total: int) -> str:
        """'2 of 3 items are not in the catalogue of RUN: 12, 7 (known item ids look like i00001, ...)'."""
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        return (f"{len(unknown)} of {total} items are not in the catalogue of {self.name} ({self.n_items} items): {shown} "
                f"(known item ids look like {', '.join(self.id_examples())})")

    def _users(self) -> dict[str, int]:
        if self._user_index is None:  # built on first use: 40k+ users cost ~10 ms
            self._user_index = {u: j for j, u in enumerate(self._user_ids)}
        return self._user_index

    def knows_user(self, uid: str) -> bool:
        return str(uid) in self._users()

    def users(self, ids: list[str]) -> list[list[str]]:
        """Full known histories (original item ids, oldest first) of known users; unknown -> GuimoError."""
        out = []
        for uid in ids:
            j = self._users().get(str(uid))
            if j is None:
                raise GuimoError(f"unknown user '{uid}' (pass their history instead)")
            out.append([self.item_ids[i - 1] for i in self._seqs.seq(j)])
        return out

    def recommend(self, histories: list[list[str]], k: int = 10, exclude_seen: bool = True) -> list[dict[str, Any]]:
        """One ``{"items", "scores", "unknown_items"}`` per history: the top items best first and the
        history's ids that are not in the catalogue (left out of the scoring), all in original ids.

        A history with no known item is scored like an empty one, by popularity; callers that must
        not answer a typo with the popular items check ``unknown`` first (the CLI and server do).
        """
        if k < 1:
            raise GuimoError("k must be at least 1")
        ids, scores = self.top_k([self.encode(h) for h in histories], k, exclude_seen)
        out = []
        for history, row_ids, row_scores in zip(histories, ids.tolist(), scores.tolist()):
            keep = [(i, s) for i, s in zip(row_ids, row_scores) if s != float("-inf")]
            out.append({"items": [self.item_ids[i - 1] for i, _ in keep], "scores": [round(s, 6) for _, s in keep],
                        "unknown_items": self.unknown(history)})
        return out
