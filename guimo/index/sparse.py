"""BM25 keyword retrieval over (id, text, metadata) documents, through bm25s.

Why bm25s: a maintained, numpy-only BM25 (sparse CSC scores, no JVM, no torch) whose SciFact
nDCG@10 matches Anserini's. Its index is immutable, so ``add`` and ``delete`` change the document
list and mark the index stale; the next ``search`` rebuilds it from the stored tokens (bm25s has
no in-place update). Rebuild cost is not measured yet.

Parameters (``BM25Params``): ``method="lucene"``, ``k1=1.2``, ``b=0.75``. Lucene's variant
(idf = ln(1 + (N - df + 0.5) / (df + 0.5)), never negative) is what Anserini's published BEIR
baselines use, so our figures compare with theirs; k1=1.2 and b=0.75 are the Robertson/Anserini
defaults (k1: how fast term frequency saturates; b: how much long documents are penalised). They
have not been tuned on any of our sets yet.

Tokenisation (``tokenize``): runs of CJK characters are segmented by jieba (Chinese has no
spaces); other word runs are lowercased, English stopwords dropped and Snowball-stemmed with
PyStemmer, so "running" matches "run". Documents and queries go through the same function.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from guimo.errors import GuimoError
from guimo.index import store
from guimo.index.store import CURRENT  # noqa: F401  (re-exported: the pointer file's name)
from guimo.io import atomic_write_json, atomic_write_text

FORMAT = "guimo-bm25/1"

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+", re.UNICODE)
_CJK_RUN = re.compile(rf"[{_CJK}]")
_lock = threading.Lock()
_stemmer = None
_jieba = None


def _english_stemmer():
    global _stemmer
    if _stemmer is None:
        import Stemmer  # PyStemmer

        _stemmer = Stemmer.Stemmer("english")
    return _stemmer


def _chinese_segmenter():
    """jieba's default tokenizer, loaded once and silently.

    jieba logs "Building prefix dict..." to stderr on first use and caches the dictionary in the
    temp folder; we silence its logger and initialise it once under a lock, so concurrent first
    searches do not race to build the cache.
    """
    global _jieba
    with _lock:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into BM25 terms: jieba words for Chinese, stemmed lowercase words otherwise."""
    out: list[str] = []
    stop = _stopwords()
    for run in _RUNS.findall(text):
        if _CJK_RUN.match(run):
            out.extend(w for w in _chinese_segmenter().lcut(run) if w.strip())
        else:
            word = run.lower()
            if word not in stop:
                out.append(_english_stemmer().stemWord(word))
    return out


@dataclass(frozen=True)
class BM25Params:
    """BM25 scoring parameters; see the module docstring for why these values."""

    k1: float = 1.2  # term-frequency saturation
    b: float = 0.75  # document-length normalisation (0: none, 1: full)
    method: str = "lucene"  # bm25s variant: lucene (Anserini), robertson, atire, bm25l, bm25+


@dataclass(frozen=True)
class Hit:
    """One search result: the document id, its BM25 score (higher is better) and its metadata."""

    id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)


class SparseIndex:
    """A BM25 index over documents keyed by string id, with metadata equality filters.

    Not thread-safe for concurrent writers; searches after a change rebuild the bm25s index once.
    """

    def __init__(self, params: BM25Params | None = None) -> None:
        self.params = params or BM25Params()
        self._ids: list[str] = []
        self._tokens: list[list[str]] = []
        self._metadata: list[dict[str, Any]] = []
        self._row: dict[str, int] = {}
        self._bm25 = None  # bm25s.BM25, or None when stale

    @classmethod
    def build(cls, docs: Iterable[tuple[str, str, Mapping[str, Any] | None]],
              params: BM25Params | None = None) -> "SparseIndex":
        """Index ``(id, text, metadata)`` triples; ids must be unique."""
        index = cls(params)
        index.add(docs)
        return index

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self._row

    def add(self, docs: Iterable[tuple[str, str, Mapping[str, Any] | None]]) -> None:
        """Add documents; an id already present (or repeated in ``docs``) is replaced: the last wins."""
        batch: dict[str, tuple[list[str], dict[str, Any]]] = {}
        for doc_id, text, metadata in docs:
            doc_id = str(doc_id)
            if not isinstance(text, str):
                raise GuimoError(f"document {doc_id!r}: text must be a string, got {type(text).__name__}")
            batch.pop(doc_id, None)  # a repeat moves to the end, as a fresh add would
            batch[doc_id] = (tokenize(text), dict(metadata or {}))
        self.delete(batch)  # one pass over the rows, not one per replaced id
        for doc_id, (tokens, metadata) in batch.items():
            self._row[doc_id] = len(self._ids)
            self._ids.append(doc_id)
            self._tokens.append(tokens)
            self._metadata.append(metadata)
        self._bm25 = None

    def delete(self, ids: Iterable[str]) -> int:
        """Remove documents by id; returns how many were present. Unknown ids are ignored."""
        drop = {str(i) for i in ids} & self._row.keys()
        if not drop:
            return 0
        keep = [r for r, i in enumerate(self._ids) if i not in drop]
        self._ids = [self._ids[r] for r in keep]
        self._tokens = [self._tokens[r] for r in keep]
        self._metadata = [self._metadata[r] for r in keep]
        self._row = {i: r for r, i in enumerate(self._ids)}
        self._bm25 = None
        return len(drop)

    def _retriever(self):
        if self._bm25 is None:
            import bm25s

            bm25 = bm25s.BM25(k1=self.params.k1, b=self.params.b, method=self.params.method)
            # An empty token list would make bm25s drop the row's alignment; keep one placeholder.
            bm25.index([t or [""] for t in self._tokens], show_progress=False)
            self._bm25 = bm25
        return self._bm25

    def search(self, query: str, k: int = 10, filters: Mapping[str, Any] | None = None) -> list[Hit]:
        """The top ``k`` documents for ``query`` with a positive score, best first.

        ``filters`` keeps only documents whose metadata equals every given ``field: value``.
        """
        return self.search_many([query], k, filters)[0]

    def search_many(self, queries: Sequence[str], k: int = 10,
                    filters: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """``search`` for many queries at once (one bm25s call)."""
        if k < 1:
            raise GuimoError(f"k must be >= 1, got {k}")
        if not self._ids:
            return [[] for _ in queries]
        import numpy as np

        mask = None
        if filters:
            mask = np.array([all(m.get(f) == v for f, v in filters.items()) for m in self._metadata],
                            dtype=np.float32)
            if not mask.any():
                return [[] for _ in queries]
        rows, scores = self._retriever().retrieve(
            [tokenize(q) for q in queries], k=min(k, len(self._ids)), show_progress=False,
            weight_mask=mask, n_threads=1)
        return [[Hit(self._ids[r], float(s), dict(self._metadata[r]))
                 for r, s in zip(rrow, srow) if s > 0]
                for rrow, srow in zip(rows.tolist(), scores.tolist())]

    # -- persistence ---------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the index into ``folder`` atomically.

        Through ``guimo.index.store.new_version``: a fresh version subfolder, then ``CURRENT``
        rewritten atomically to name it, then older versions removed. A save killed at any point
        leaves ``CURRENT`` naming the last complete version, which ``load`` reads.
        """
        folder = Path(folder)
        docs = "".join(json.dumps({"id": i, "tokens": t, "metadata": m}, ensure_ascii=False) + "\n"
                       for i, t, m in zip(self._ids, self._tokens, self._metadata))
        with store.new_version(folder) as target:
            atomic_write_text(target / "docs.jsonl", docs)
            atomic_write_json(target / "index.json", {"format": FORMAT, "params": asdict(self.params),
                                                      "documents": len(self._ids)})
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "SparseIndex":
        """Read the version that ``folder/CURRENT`` names; the bm25s index is rebuilt on first search."""
        return store.read_version(folder, cls._load_version, what="BM25 index")

    @classmethod
    def _load_version(cls, version: Path) -> "SparseIndex":
        try:
            meta = json.loads((version / "index.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise  # store.read_version retries: a concurrent save may have swept this version
        except (OSError, json.JSONDecodeError) as e:
            raise GuimoError(f"{version / 'index.json'}: unreadable ({e})") from e
        if meta.get("format") != FORMAT:
            raise GuimoError(f"{version / 'index.json'}: format {meta.get('format')!r}, expected {FORMAT!r}")
        index = cls(BM25Params(**meta["params"]))
        path = version / "docs.jsonl"
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                try:
                    rec = json.loads(line)
                    doc_id, tokens, metadata = rec["id"], rec["tokens"], rec["metadata"]
                except (json.JSONDecodeError, KeyError) as e:
                    raise GuimoError(f"{path}:{line_no}: malformed index record ({e})") from e
                index._row[doc_id] = len(index._ids)
                index._ids.append(doc_id)
                index._tokens.append(tokens)
                index._metadata.append(metadata)
        if len(index) != meta["documents"]:
            raise GuimoError(f"{path}: {len(index)} documents, index.json says {meta['documents']}")
        return index
