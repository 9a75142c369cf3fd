"""Nearest-neighbour search over vectors keyed by string id, on FAISS: exact (flat) or HNSW.

Why FAISS: a maintained C++ library with exact BLAS search, HNSW, id selectors for filtered
search, and plain-file persistence; ``faiss-cpu`` is numpy-only (no torch). It is in the
``search`` extra and imported on first use.

Layout. The searchable state is an immutable ``_Snapshot``: one *main* part (flat or HNSW) built
in bulk, plus a few small flat *delta* parts, one per ``add`` since main was built. ``add`` builds
a new delta part and publishes a new snapshot by swapping one reference; a search reads the
reference once and works on that snapshot to the end, so searches never wait for an add and
never see half of one. Writers (``add``, ``delete``, ``save``) are serialised by a lock that
readers never take, except the first search that filters on a given field (it builds that
field's postings under the lock, so it waits for a write in progress). When the deltas pass ``_delta_cap`` vectors (1/8 of main, clamped to
[1,024, 16,384]) or 8 parts, they are merged into a copy of main off to the side (the old main
keeps answering meanwhile; memory peaks at two mains). FAISS HNSW cannot remove vectors, so
``delete`` (and re-adding an id) only clears the label's bit in the snapshot's live bitmap, and
every search excludes dead labels through an ``IDSelectorBitmap``; when dead vectors pass
``TOMBSTONE_SHARE`` (25 %) of those stored, everything is rebuilt from the live vectors.

Kinds. ``kind="auto"`` builds main flat up to ``flat_max`` (20,000) live vectors and HNSW above;
``"flat"`` and ``"hnsw"`` force one. Flat is exact; at 10k x 384 a query took 1.4 ms (p50, one
thread) against HNSW's 0.55 ms at recall@10 0.989, at 100k 29 ms against 0.65 ms
(docs/benchmarks/index.md). Below ~20k the few milliseconds saved do not pay for HNSW's build
(7 s at 10k on 2 threads) and its recall loss; above, flat's cost grows linearly.

Metrics. ``"ip"``: score = inner product (cosine similarity for unit-norm vectors, which is what
``TextEncoder.encode`` returns). ``"l2"``: score = minus the squared Euclidean distance. In both,
higher is better.

Filters. ``filters={"field": value, ...}`` keeps vectors whose metadata equals every value
(a missing field equals ``None``; numbers compare by value, so 1 == 1.0). Matching labels come
from per-field postings built the first time a field is filtered on. The allowed set goes into
the search itself, so k hits come back whenever k vectors match: a flat part scans with the
selector; an HNSW part searches the matches exactly when they are few (at most
``EXACT_FILTER_MAX`` or 2 % of the part), otherwise walks the graph with the selector and an
``efSearch`` raised in proportion to the filter's selectivity, and falls back to exact search for
any query that came back short.

HNSW parameters (``HNSWParams``): ``m=32`` neighbours per node, ``ef_construction=80``,
``ef_search=128``. ``bench/index_bench.py`` (docs/benchmarks/index.md), on a unit-norm Gaussian
mixture of dim 384, ef_search 16 / 32 / 64 / 128 gave recall@10 0.79 / 0.93 / 0.988 / 0.999 at
100k (p50 0.28 / 0.33 / 0.55 / 0.71 ms) but 0.65 / 0.81 / 0.918 / 0.975 at 1M (p50 0.33 / 0.40 /
0.54 / 0.74 ms, flat 178 ms): 128 is the cheapest tried that keeps recall@10 >= 0.95 at every size.
``m`` and ``ef_construction`` were not swept (FAISS's usual range; the 1M build alone took 34 min
on this shared 2-core machine).

Threads: ``threads`` (default: torch's intra-op setting when torch is loaded, else
``OMP_NUM_THREADS``, else all cores) is capped at the cores this process may use and passed to
``faiss.omp_set_num_threads``, which is process-wide.
"""

from __future__ import annotations

import errno
import json
import math
import os
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from guimo.errors import GuimoError
from guimo.index import store
from guimo.index.sparse import Hit
from guimo.io import atomic_write_json, atomic_write_text

FORMAT = "guimo-dense/1"
METRICS = ("ip", "l2")
KINDS = ("auto", "flat", "hnsw")
FLAT_MAX = 20_000  # auto: flat main up to this many live vectors, HNSW above
DELTA_MIN, DELTA_MAX = 1_024, 16_384  # deltas merge into main past clamp(main / 8, DELTA_MIN, DELTA_MAX)
DELTA_PARTS = 8  # ... or past this many delta parts
TOMBSTONE_SHARE = 0.25  # rebuild from live vectors when dead ones pass this share of those stored
EXACT_FILTER_MAX = 4_096  # an HNSW part searches a filter's matches exactly up to this many (or 2 %)


@dataclass(frozen=True)
class HNSWParams:
    """HNSW graph settings; defaults measured in docs/benchmarks/index.md (see module docstring)."""

    m: int = 32  # neighbours per node: more = better recall, more memory (~8 * m bytes of links per vector)
    ef_construction: int = 80  # candidate list while building: more = better graph, slower build
    ef_search: int = 128  # candidate list while searching (raised to k when k is larger)

    def __post_init__(self) -> None:
        for name, low in (("m", 2), ("ef_construction", 1), ("ef_search", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise GuimoError(f"HNSWParams.{name} must be an integer >= {low}, got {value!r}")


def resolve_threads(threads: int | None = None) -> int:
    """The FAISS thread count: ``threads``, else torch's, else OMP_NUM_THREADS, else all cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if threads is None:
        if "torch" in sys.modules:
            threads = sys.modules["torch"].get_num_threads()
        elif os.environ.get("OMP_NUM_THREADS", "").isdigit():
            threads = int(os.environ["OMP_NUM_THREADS"])
        else:
            threads = cores
    if threads < 1:
        raise GuimoError(f"threads must be >= 1, got {threads}")
    return min(threads, cores)


def _faiss():
    try:
        import faiss
    except ImportError:
        raise GuimoError("the vector index needs faiss: pip install 'guimo[search]'") from None
    return faiss


def _value_key(value: Any) -> str:
    """The postings key of a metadata value: its JSON text, with integral floats as ints (1 == 1.0)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class _Part:
    """One immutable FAISS index over vectors at positions 0..n-1, whose labels ascend with position."""

    index: Any  # faiss.IndexFlat or faiss.IndexHNSWFlat; never changed after it is published
    labels: np.ndarray  # (n,) int64, ascending: position -> label
    kind: str  # "flat" or "hnsw"

    @property
    def xb(self) -> np.ndarray:
        """(n, dim) float32 view of the stored vectors (no copy; valid while the part lives)."""
        faiss = _faiss()
        flat = self.index if self.kind == "flat" else faiss.downcast_index(self.index.storage)
        n, d = flat.ntotal, flat.d
        if n == 0:
            return np.zeros((0, d), np.float32)
        return faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d)

    def positions(self, labels: np.ndarray) -> np.ndarray:
        """Positions of those of ``labels`` (any order) that this part holds."""
        pos = np.searchsorted(self.labels, labels)
        inside = pos < len(self.labels)
        pos, labels = pos[inside], labels[inside]
        return pos[self.labels[pos] == labels]


@dataclass
class _Tables:
    """Label -> id and label -> metadata (grow only; a rebuild makes new tables), per-field postings."""

    ids: dict[int, str] = field(default_factory=dict)
    meta: dict[int, dict[str, Any]] = field(default_factory=dict)
    postings: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # field -> value -> labels

    def index_field(self, name: str) -> None:
        by_value: dict[str, list[int]] = {}
        for label in list(self.ids):
            by_value.setdefault(_value_key(self.meta.get(label, {}).get(name)), []).append(label)
        self.postings[name] = by_value

    def record(self, label: int, doc_id: str, metadata: dict[str, Any]) -> None:
        self.ids[label] = doc_id
        self.meta[label] = metadata
        for name, by_value in self.postings.items():
            by_value.setdefault(_value_key(metadata.get(name)), []).append(label)


@dataclass(frozen=True)
class _Snapshot:
    """What a search reads: immutable parts, the live bitmap over labels and the tables."""

    main: _Part | None
    deltas: tuple[_Part, ...]
    alive: np.ndarray  # (capacity,) bool over labels; copied, never changed, when a write publishes
    live: int
    tables: _Tables
    cache: dict[int, Any] = field(default_factory=dict, compare=False, repr=False)  # see live_in

    @property
    def parts(self) -> tuple[_Part, ...]:
        return ((self.main,) if self.main is not None else ()) + self.deltas

    @property
    def stored(self) -> int:
        return sum(len(p.labels) for p in self.parts)

    def live_in(self, n: int) -> tuple[np.ndarray | None, int, np.ndarray | None]:
        """Part ``n``'s live mask (None when all live), live count and packed bitmap; computed once.

        Searches call this on every query, and at 1M vectors the mask costs ~1 ms to compute, more
        than an HNSW query; the snapshot never changes, so the first search caches it.
        """
        cached = self.cache.get(n)
        if cached is None:
            part = self.parts[n]
            live = self.alive[part.labels]
            count = int(live.sum())
            cached = (None, count, None) if count == len(live) else \
                (live, count, np.packbits(live, bitorder="little"))
            self.cache[n] = cached
        return cached


class DenseIndex:
    """Vectors keyed by string id, with metadata filters; searches run alongside adds (see module doc).

    Args:
        dim: vector length.
        metric: "ip" (inner product; cosine for unit vectors) or "l2" (score = -squared distance).
        kind: "auto" (flat up to ``flat_max`` live vectors, HNSW above), "flat" or "hnsw".
        hnsw: HNSW settings (``HNSWParams``), used whenever main is HNSW.
        flat_max: the auto threshold.
        threads: FAISS threads (see ``resolve_threads``).
    """

    def __init__(self, dim: int, metric: str = "ip", kind: str = "auto", *,
                 hnsw: HNSWParams | None = None, flat_max: int = FLAT_MAX,
                 threads: int | None = None) -> None:
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
            raise GuimoError(f"dim must be a positive integer, got {dim!r}")
        if metric not in METRICS:
            raise GuimoError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
        if kind not in KINDS:
            raise GuimoError(f"unknown index kind {kind!r}: use one of {', '.join(KINDS)}")
        self.dim, self.metric, self.kind = int(dim), metric, kind
        self.hnsw = hnsw or HNSWParams()
        self.flat_max = flat_max
        self.threads = resolve_threads(threads)
        _faiss().omp_set_num_threads(self.threads)
        self._label: dict[str, int] = {}  # id -> live label (writers only)
        self._next_label = 0
        self._write = threading.Lock()  # serialises writers; searches never take it
        self._snap = _Snapshot(None, (), np.zeros(0, bool), 0, _Tables())

    # -- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._snap.live

    def __contains__(self, doc_id: object) -> bool:
        return str(doc_id) in self._label

    def ids(self) -> list[str]:
        """The live ids, in insertion order."""
        snap = self._snap
        return [snap.tables.ids[lab] for lab in np.flatnonzero(snap.alive).tolist()]

    def info(self) -> dict[str, Any]:
        """Sizes and settings, for ``Collection.info`` and the bench."""
        snap = self._snap
        return {"dim": self.dim, "metric": self.metric, "kind": self.kind,
                "main": snap.main.kind if snap.main is not None else None,
                "vectors": snap.live, "stored": snap.stored, "delta_parts": len(snap.deltas),
                "hnsw": asdict(self.hnsw), "threads": self.threads}

    def search(self, queries: np.ndarray, k: int = 10,
               filters: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """The ``k`` best hits per query row, best first (fewer only when fewer vectors match).

        ``queries`` is (Q, dim) (a single (dim,) vector counts as Q=1); ``filters`` keeps vectors
        whose metadata equals every ``field: value``.
        """
        snap, scores, labels = self._search(queries, k, filters)
        tables = snap.tables
        return [[Hit(tables.ids[lab], s, dict(tables.meta[lab]))
                 for s, lab in zip(row_s, row_l) if lab >= 0]
                for row_s, row_l in zip(scores.tolist(), labels.tolist())]

    def search_arrays(self, queries: np.ndarray, k: int = 10,
                      filters: Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``search`` as arrays, for callers that rank many rows (no ``Hit`` or metadata copies).

        Returns ``ids`` (Q, k) object array of str, ``None`` where a row has fewer than k hits,
        and ``scores`` (Q, k) float32, best first, ``-inf`` in those slots.
        """
        snap, scores, labels = self._search(queries, k, filters)
        lookup = snap.tables.ids
        ids = np.full(labels.shape, None, dtype=object)
        for r, row in enumerate(labels.tolist()):
            ids[r, : len(row)] = [lookup[lab] if lab >= 0 else None for lab in row]
        return ids, scores

    def _search(self, queries: np.ndarray, k: int, filters: Mapping[str, Any] | None
                ) -> tuple[_Snapshot, np.ndarray, np.ndarray]:
        """The snapshot searched, and (Q, <=k) scores (-inf pads) and labels (-1 pads), best first."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise GuimoError(f"k must be a positive integer, got {k!r}")
        q = self._as_matrix(queries, "queries")
        snap = self._snap  # one read: everything below sees the same snapshot
        empty = (snap, np.full((len(q), 0), -np.inf, np.float32), np.zeros((len(q), 0), np.int64))
        if snap.live == 0 or len(q) == 0:
            return empty
        allowed = None if not filters else self._matching(snap, filters)
        if allowed is not None and len(allowed) == 0:
            return empty
        found = [self._search_part(n, snap, q, k, allowed) for n in range(len(snap.parts))]
        scores = np.hstack([s for s, _ in found])
        labels = np.hstack([lab for _, lab in found])
        if len(found) > 1 or scores.shape[1] > k:
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            scores, labels = np.take_along_axis(scores, order, 1), np.take_along_axis(labels, order, 1)
        labels = np.where(np.isfinite(scores), labels, -1)
        return snap, scores, labels

    def _matching(self, snap: _Snapshot, filters: Mapping[str, Any]) -> np.ndarray:
        """Sorted live labels whose metadata equals every filter value."""
        tables = snap.tables
        result: np.ndarray | None = None
        for name, value in filters.items():
            if name not in tables.postings:
                with self._write:  # first filter on this field: index it once
                    if name not in tables.postings:
                        tables.index_field(name)
            found = tables.postings[name].get(_value_key(value), [])
            arr = np.array(found[: len(found)], np.int64)  # a slice: writers may append meanwhile
            result = arr if result is None else np.intersect1d(result, arr)
        assert result is not None
        result = np.unique(result)
        result = result[result < len(snap.alive)]
        return result[snap.alive[result]]

    def _search_part(self, part_no: int, snap: _Snapshot, q: np.ndarray, k: int,
                     allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(Q, <=k) scores and labels from one part; -inf / -1 pad missing slots."""
        faiss = _faiss()
        part = snap.parts[part_no]
        n = len(part.labels)
        if allowed is None:
            keep, count, bitmap = snap.live_in(part_no)
        else:
            keep = np.zeros(n, bool)
            keep[part.positions(allowed)] = True
            count = int(keep.sum())
            bitmap = np.packbits(keep, bitorder="little") if count else None
        if count == 0:
            return np.full((len(q), 0), -np.inf, np.float32), np.zeros((len(q), 0), np.int64)
        kk = min(k, count)
        small = count <= max(EXACT_FILTER_MAX, n // 50)
        if part.kind == "hnsw" and allowed is not None and small:
            return self._exact(part, q, kk, np.flatnonzero(keep))
        params = faiss.SearchParametersHNSW() if part.kind == "hnsw" else faiss.SearchParameters()
        if bitmap is not None:  # the array lives (in the cache or here) until the search returns
            params.sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
        if part.kind == "hnsw":
            share = count / n
            params.efSearch = int(min(max(self.hnsw.ef_search, kk) / share, max(4096, kk)))
        dist, pos = part.index.search(q, kk, params=params)
        short = (pos < 0).any(axis=1)
        scores = self._scores(dist, pos)
        labels = np.where(pos >= 0, part.labels[np.maximum(pos, 0)], -1)
        if short.any() and part.kind == "hnsw":  # the graph walk came back short: exact for those rows
            cand = np.flatnonzero(keep) if keep is not None else np.arange(n)
            s2, l2 = self._exact(part, q[short], kk, cand)
            scores[short], labels[short] = s2, l2
        return scores, labels

    def _scores(self, dist: np.ndarray, pos: np.ndarray) -> np.ndarray:
        scores = dist.astype(np.float32) if self.metric == "ip" else -dist.astype(np.float32)
        return np.where(pos >= 0, scores, -np.inf).astype(np.float32)

    def _exact(self, part: _Part, q: np.ndarray, k: int, positions: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k of ``q`` over the part's vectors at ``positions`` (numpy, no graph)."""
        x = part.xb[positions]
        s = q @ x.T
        if self.metric == "l2":
            s = 2 * s - (q * q).sum(1, keepdims=True) - (x * x).sum(1)[None, :]
        k = min(k, len(positions))
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        top_s = np.take_along_axis(s, top, 1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        return np.take_along_axis(s, top, 1).astype(np.float32), part.labels[positions[top]]

    # -- writing -------------------------------------------------------------------------------

    def add(self, ids: Sequence[str], vectors: np.ndarray,
            metadata: Sequence[Mapping[str, Any] | None] | None = None) -> None:
        """Add vectors under ``ids``; an id already present (or repeated here) is replaced: the last wins."""
        ids = [str(i) for i in ids]
        x = self._as_matrix(vectors, "vectors")
        if len(ids) != len(x):
            raise GuimoError(f"add: {len(ids)} ids but {len(x)} vectors")
        if metadata is not None and len(metadata) != len(ids):
            raise GuimoError(f"add: {len(ids)} ids but {len(metadata)} metadata entries")
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        if len(bad):
            raise GuimoError(f"add: vector {int(bad[0])} (id {ids[int(bad[0])]!r}) is not finite "
                             f"({len(bad)} such rows)")
        last = {doc_id: row for row, doc_id in enumerate(ids)}  # a repeated id: the last row wins
        rows = np.fromiter(sorted(last.values()), np.int64, len(last))
        if len(rows) == 0:
            return
        metas: list[dict[str, Any]] = []
        for r in rows.tolist():
            m = metadata[r] if metadata is not None else None
            if m is not None and not isinstance(m, Mapping):
                raise GuimoError(f"add: metadata of id {ids[r]!r} must be a mapping, got {type(m).__name__}")
            metas.append(dict(m or {}))
        batch = x if len(rows) == len(x) else x[rows]  # no repeats: no copy of a large batch
        with self._write:
            snap = self._snap
            labels = np.arange(self._next_label, self._next_label + len(rows), dtype=np.int64)
            self._next_label += len(rows)
            capacity = max(len(snap.alive), 1024)
            while capacity < self._next_label:
                capacity *= 2
            alive = np.zeros(capacity, bool)  # a copy: the published bitmap never changes
            alive[: len(snap.alive)] = snap.alive
            for label, row, m in zip(labels.tolist(), rows.tolist(), metas):
                old = self._label.get(ids[row])
                if old is not None:
                    alive[old] = False
                self._label[ids[row]] = label
                snap.tables.record(label, ids[row], m)
            alive[labels] = True
            live = len(self._label)
            if snap.main is None:
                main, deltas = self._build(batch, labels, self._main_kind(live)), ()
            else:
                main, deltas = snap.main, snap.deltas + (self._build(batch, labels, "flat"),)
            self._snap = self._maintain(_Snapshot(main, deltas, alive, live, snap.tables))

    def delete(self, ids: Iterable[str]) -> int:
        """Remove vectors by id; returns how many were present. Unknown ids are ignored."""
        with self._write:
            snap = self._snap
            gone = [self._label.pop(str(i)) for i in dict.fromkeys(map(str, ids)) if str(i) in self._label]
            if not gone:
                return 0
            alive = snap.alive.copy()
            alive[np.array(gone, np.int64)] = False
            self._snap = self._maintain(_Snapshot(snap.main, snap.deltas, alive, len(self._label),
                                                  snap.tables))
            return len(gone)

    def _main_kind(self, live: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "hnsw" if live > self.flat_max else "flat"

    def _delta_cap(self, main: _Part | None) -> int:
        return int(np.clip((len(main.labels) if main is not None else 0) // 8, DELTA_MIN, DELTA_MAX))

    def _maintain(self, snap: _Snapshot) -> _Snapshot:
        """Merge deltas into main or rebuild from live vectors when the policy says so (writer only)."""
        stored = snap.stored
        if stored and (stored - snap.live) / stored > TOMBSTONE_SHARE:
            return self._rebuild(snap)
        delta = sum(len(p.labels) for p in snap.deltas)
        if not snap.deltas or (delta <= self._delta_cap(snap.main) and len(snap.deltas) <= DELTA_PARTS):
            return snap
        kind = self._main_kind(snap.live)
        assert snap.main is not None
        if kind != snap.main.kind:
            return self._rebuild(snap)
        x = np.concatenate([p.xb for p in snap.deltas])
        labels = np.concatenate([p.labels for p in snap.deltas])
        faiss = _faiss()
        index = faiss.clone_index(snap.main.index)  # the published main keeps answering meanwhile
        index.add(x)
        main = _Part(index, np.concatenate([snap.main.labels, labels]), kind)
        return _Snapshot(main, (), snap.alive, snap.live, snap.tables)

    def _rebuild(self, snap: _Snapshot) -> _Snapshot:
        """A new main from the live vectors only, with fresh tables (drops tombstones)."""
        xs, labs = [], []
        for part in snap.parts:
            keep = snap.alive[part.labels]
            xs.append(part.xb[keep])
            labs.append(part.labels[keep])
        labels = np.concatenate(labs) if labs else np.zeros(0, np.int64)
        order = np.argsort(labels, kind="stable")
        x = np.concatenate(xs)[order] if xs else np.zeros((0, self.dim), np.float32)
        labels = labels[order]
        tables = _Tables()
        for lab in labels.tolist():
            tables.ids[lab] = snap.tables.ids[lab]
            tables.meta[lab] = snap.tables.meta[lab]
        for name in snap.tables.postings:
            tables.index_field(name)
        main = self._build(x, labels, self._main_kind(len(labels))) if len(labels) else None
        return _Snapshot(main, (), snap.alive, snap.live, tables)

    def _build(self, x: np.ndarray, labels: np.ndarray, kind: str) -> _Part:
        faiss = _faiss()
        metric = faiss.METRIC_INNER_PRODUCT if self.metric == "ip" else faiss.METRIC_L2
        if kind == "flat":
            index = faiss.IndexFlat(self.dim, metric)
        else:
            index = faiss.IndexHNSWFlat(self.dim, self.hnsw.m, metric)
            index.hnsw.efConstruction = self.hnsw.ef_construction
            index.hnsw.efSearch = self.hnsw.ef_search
        if len(x):
            index.add(np.ascontiguousarray(x, dtype=np.float32))
        return _Part(index, np.asarray(labels, np.int64), kind)

    def _as_matrix(self, a: Any, what: str) -> np.ndarray:
        if hasattr(a, "detach"):  # a torch tensor
            a = a.detach().cpu().float().numpy()
        try:
            x = np.asarray(a, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise GuimoError(f"{what}: not a numeric array ({e})") from None
        if x.ndim == 1 and what == "queries":
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise GuimoError(f"{what}: shape {tuple(x.shape)}, expected (N, {self.dim}) "
                             f"(this index has dim {self.dim})")
        if what == "queries" and not np.isfinite(x).all():
            raise GuimoError(f"{what}: row {int(np.flatnonzero(~np.isfinite(x).all(1))[0])} is not finite")
        return np.ascontiguousarray(x)

    # -- persistence ---------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the index into ``folder`` atomically (``guimo.index.store``: versions + CURRENT).

        Writers wait for the save; searches do not. Files: ``index.json`` (settings), one FAISS
        file and one label array per part, ``ids.jsonl`` (label, id, metadata of live vectors).
        """
        folder = Path(folder)
        faiss = _faiss()
        with self._write:
            snap = self._snap
            with store.new_version(folder) as target:
                parts = []
                for n, part in enumerate(snap.parts):
                    name = f"part-{n}"
                    faiss.write_index(part.index, str(target / f"{name}.faiss"))
                    store.fsync_file(target / f"{name}.faiss")
                    with open(target / f"{name}.labels.npy", "wb") as f:
                        np.save(f, part.labels)
                        f.flush()
                        os.fsync(f.fileno())
                    parts.append({"name": name, "kind": part.kind, "vectors": len(part.labels)})
                live = np.flatnonzero(snap.alive)
                lines = "".join(json.dumps({"label": int(lab), "id": snap.tables.ids[lab],
                                            "metadata": snap.tables.meta[lab]}, ensure_ascii=False) + "\n"
                                for lab in live.tolist())
                atomic_write_text(target / "ids.jsonl", lines)
                atomic_write_json(target / "index.json", {
                    "format": FORMAT, "dim": self.dim, "metric": self.metric, "kind": self.kind,
                    "hnsw": asdict(self.hnsw), "flat_max": self.flat_max, "parts": parts,
                    "next_label": self._next_label, "vectors": len(live)})
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, *, threads: int | None = None) -> "DenseIndex":
        """Read the version that ``folder/CURRENT`` names."""
        return store.read_version(folder, lambda v: cls._load_version(v, threads), what="vector index")

    @classmethod
    def _load_version(cls, version: Path, threads: int | None) -> "DenseIndex":
        faiss = _faiss()
        path = version / "index.json"
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise GuimoError(f"{path}: unreadable ({e})") from e
        if meta.get("format") != FORMAT:
            raise GuimoError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
        try:
            index = cls(meta["dim"], meta["metric"], meta["kind"], hnsw=HNSWParams(**meta["hnsw"]),
                        flat_max=meta["flat_max"], threads=threads)
            parts = []
            for p in meta["parts"]:
                labels = np.load(version / f"{p['name']}.labels.npy")
                fpath = version / f"{p['name']}.faiss"
                if not fpath.is_file():  # store.read_version retries if a save swept this version
                    raise FileNotFoundError(errno.ENOENT, "no such file", str(fpath))
                fx = faiss.read_index(str(fpath))
                if fx.ntotal != len(labels) or fx.d != index.dim:
                    raise GuimoError(f"{version / p['name']}.faiss: {fx.ntotal} vectors of dim {fx.d}, "
                                     f"expected {len(labels)} of dim {index.dim}")
                parts.append(_Part(fx, labels, p["kind"]))
        except (KeyError, TypeError) as e:
            raise GuimoError(f"{path}: missing or bad field ({e})") from e
        except RuntimeError as e:  # faiss read errors
            raise GuimoError(f"{version}: unreadable FAISS file ({e})") from e
        tables = _Tables()
        ids_path = version / "ids.jsonl"
        with open(ids_path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                try:
                    rec = json.loads(line)
                    label, doc_id, m = int(rec["label"]), str(rec["id"]), dict(rec["metadata"])
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                    raise GuimoError(f"{ids_path}:{line_no}: malformed index record ({e})") from e
                tables.record(label, doc_id, m)
                index._label[doc_id] = label
        if len(index._label) != meta["vectors"]:
            raise GuimoError(f"{ids_path}: {len(index._label)} vectors, index.json says {meta['vectors']}")
        index._next_label = int(meta["next_label"])
        alive = np.zeros(max(index._next_label, 1024), bool)
        alive[np.fromiter(index._label.values(), np.int64, len(index._label))] = True
        main, deltas = (parts[0], tuple(parts[1:])) if parts else (None, ())
        index._snap = _Snapshot(main, deltas, alive, len(index._label), tables)
        return index
