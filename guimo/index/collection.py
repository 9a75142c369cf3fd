"""A search collection: documents in one folder, searchable by BM25, by embeddings, or both fused.

What a user creates with ``guimo index create`` and the server serves at ``/v1/search``. One folder
holds everything a search needs, saved together as one version (``guimo.index.store``)::

    NAME/CURRENT              names the committed version (rewritten atomically, last)
    NAME/WRITER               the writers' lock (one writer per collection, across processes)
    NAME/v-<hex>/collection.json   settings: fields, encoder, counts, format
    NAME/v-<hex>/records.jsonl     id, text and metadata of every document
    NAME/v-<hex>/sparse/           the BM25 index (``SparseIndex``)
    NAME/v-<hex>/dense/            the vector index (``DenseIndex``), unless created without one

Why one version for all three: records, BM25 and vectors must agree on which documents exist; a
save that committed the BM25 index but died before the vectors would answer a hybrid query with
ids the other half does not know. A kill at any point leaves the last committed version readable.
Every save rewrites the whole collection (O(size) per add); fine for the small and mid-sized
collections a folder of JSON lines serves, and the price of never having torn state.

Concurrency. Writers (``add``, ``delete``) hold an exclusive ``flock`` on ``WRITER`` for their
whole read-modify-write, and first reload the folder if another process committed since this
object last read it, so the CLI and the server never overwrite each other's changes. Searches take
no file lock and pick up a newer committed version on their next call (``refresh``). Within one
process a lock keeps searches off the indexes while a writer changes them; embedding the new
documents, the slow part of an add, happens before that lock is taken.

Filters are ``field: value`` equalities, ANDed, applied in every mode inside each index (not after
the top k, which would return fewer than k hits). A value given as a string also matches a number
or boolean whose JSON spelling it is (``year=2020`` matches ``"year": 2020``), because a command
line has only strings.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from guimo.errors import GuimoError
from guimo.index import store
from guimo.index.fusion import FUSIONS, normalized_fusion
from guimo.index.records import Record, to_record
from guimo.index.sparse import Hit, SparseIndex
from guimo.io import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    import numpy as np

    from guimo.models.text_encoder import TextEncoder

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: writers are not serialised across processes
    fcntl = None  # type: ignore[assignment]

FORMAT = "guimo-collection/1"
WRITER = "WRITER"
DEFAULT_ENCODER = "minilm"  # the packaged all-MiniLM-L6-v2 (guimo.models.text_encoder)
MODES = ("hybrid", "bm25", "dense")
DEFAULT_POOL = 100  # candidates per retriever before fusion
HOME_ENV = "GUIMO_INDEXES"  # where named collections live; default ./indexes
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
ENCODE_CHUNK = 256  # texts per progress step when embedding documents
READ_ATTEMPTS = 20  # a reader that keeps losing the race to commits retries with each newer version

_encoders: dict[str, "TextEncoder"] = {}
_encoders_lock = threading.Lock()


def load_encoder(spec: str) -> "TextEncoder":
    """The text encoder named by ``spec``, loaded once per process (the server shares it).

    ``minilm`` is the packaged all-MiniLM-L6-v2; otherwise a folder with ``tokenizer.json`` (a
    sentence-transformers model or one the search scenario wrote), or a run directory of the
    search scenario when ``TextEncoder.from_run`` exists.
    """
    with _encoders_lock:
        if spec in _encoders:
            return _encoders[spec]
        from guimo.models.text_encoder import TextEncoder

        if spec == DEFAULT_ENCODER:
            encoder = TextEncoder()
        else:
            path = Path(spec)
            if (path / "tokenizer.json").is_file():
                encoder = TextEncoder(path)
            elif path.is_dir() and hasattr(TextEncoder, "from_run"):
                encoder = TextEncoder.from_run(path)
            else:
                raise GuimoError(f"encoder {spec!r}: not {DEFAULT_ENCODER!r}, nor a folder with tokenizer.json, "
                                 "nor a search run directory")
        _encoders[spec] = encoder
        return encoder


def _encoder_spec(encoder: str | os.PathLike | None) -> str:
    if encoder is None or str(encoder) == DEFAULT_ENCODER:
        return DEFAULT_ENCODER
    path = Path(encoder)
    if not path.exists():
        raise GuimoError(f"encoder {str(encoder)!r}: no such folder (or use {DEFAULT_ENCODER!r}, the packaged MiniLM)")
    return str(path.resolve())  # a collection may be opened from another working directory


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Collection:
    """Documents with a BM25 index and (optionally) a vector index, saved atomically in one folder."""

    def __init__(self, folder: Path, settings: dict[str, Any], version: str, records: dict[str, Record],
                 sparse: SparseIndex, dense: Any | None, *, lock_timeout: float = 30.0) -> None:
        # Use Collection.create or Collection.open; this only assembles loaded parts.
        self.folder = folder
        self.settings = settings
        self.lock_timeout = lock_timeout
        self._version = version
        self._records = records
        self._sparse = sparse
        self._dense = dense
        self._fields: dict[str, _FieldValues] | None = None  # metadata values per field, built on demand
        self._state = threading.RLock()  # indexes vs searches, within this process
        self._writing = threading.Lock()  # one writer at a time within this process

    # -- creating and opening ------------------------------------------------------------------

    @classmethod
    def create(cls, folder: str | os.PathLike, *, encoder: str | os.PathLike | None = None,
               text_field: str = "text", id_field: str = "id", dense: bool = True) -> "Collection":
        """Make an empty collection in ``folder`` (created; must not hold a collection already).

        ``encoder`` (dense collections only): ``minilm`` (default, the packaged all-MiniLM-L6-v2),
        a sentence-transformers folder, or a search run directory; it is loaded here, so a wrong
        one fails now and not at the first add. ``dense=False`` makes a BM25-only collection.
        """
        folder = Path(folder)
        if (folder / store.CURRENT).exists():
            raise GuimoError(f"{folder}: a collection already exists there (add to it with `guimo index add`)")
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise GuimoError(f"{folder}: exists and is not an empty folder")
        if not text_field or not id_field or text_field == id_field:
            raise GuimoError(f"text field {text_field!r} and id field {id_field!r} must be two different names")
        settings: dict[str, Any] = {"format": FORMAT, "text_field": text_field, "id_field": id_field,
                                    "encoder": None, "dim": None, "created": _now()}
        index = None
        if dense:
            spec = _encoder_spec(encoder)
            settings["encoder"], settings["dim"] = spec, int(load_encoder(spec).dim)
            index = _new_dense(settings["dim"])
        elif encoder is not None:
            raise GuimoError("an encoder was given for a collection without a dense index (--no-dense, dense=False)")
        coll = cls(folder, settings, "", {}, SparseIndex(), index)
        with coll._write_lock():
            coll._save()
        return coll

    @classmethod
    def open(cls, folder: str | os.PathLike, *, lock_timeout: float = 30.0) -> "Collection":
        """Read the committed version of the collection in ``folder``."""
        folder = Path(folder)
        version, settings, records, sparse, dense = store.read_version(folder, _read_version, what="collection", attempts=READ_ATTEMPTS)
        return cls(folder, settings, version, records, sparse, dense, lock_timeout=lock_timeout)

    # -- what it holds -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def has_dense(self) -> bool:
        return self._dense is not None

    @property
    def text_field(self) -> str:
        return self.settings["text_field"]

    @property
    def id_field(self) -> str:
        return self.settings["id_field"]

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, doc_id: object) -> bool:
        return str(doc_id) in self._records

    def get(self, doc_id: str) -> Record | None:
        """The stored document with this id, or None."""
        return self._records.get(str(doc_id))

    def info(self) -> dict[str, Any]:
        """Settings and counts as plain data (``guimo index info``, ``/v1/collections``)."""
        fields = self._field_values()
        return {"name": self.name, "path": str(self.folder), "documents": len(self._records),
                "text_field": self.text_field, "id_field": self.id_field,
                "modes": [m for m in MODES if self.has_dense or m == "bm25"],
                "encoder": self.settings["encoder"], "dim": self.settings["dim"],
                "metadata_fields": sorted(fields), "created": self.settings.get("created"),
                "updated": self.settings.get("updated"), "version": self._version}

    # -- writing -------------------------------------------------------------------------------

    def add(self, records: Iterable[Mapping[str, Any]], *,
            on_progress: Callable[[int, int], None] | None = None, batch_size: int = 32) -> int:
        """Add documents (mappings with the collection's id and text fields; other fields become
        metadata); an id already in the collection is replaced. Returns how many were written.

        A repeated id within ``records`` is an error (which copy is meant?). ``on_progress(done,
        total)`` is called as documents are embedded, for a progress bar.
        """
        batch: dict[str, Record] = {}
        for i, obj in enumerate(records):
            origin = f"record {i + 1}"
            rec = obj if isinstance(obj, Record) else to_record(obj, text_field=self.text_field,
                                                                id_field=self.id_field, origin=origin)
            if rec.id in batch:
                raise GuimoError(f"{origin}: id {rec.id!r} given twice in one add")
            batch[rec.id] = rec
        if not batch:
            return 0
        docs = list(batch.values())
        vectors = self._embed([r.text for r in docs], on_progress, batch_size) if self.has_dense else None
        with self._write_lock():
            self.refresh(locked=True)
            try:
                with self._state:
                    self._records = _without(self._records, batch)
                    self._records.update(batch)
                    self._fields = None
                    self._sparse.add((r.id, r.text, r.metadata) for r in docs)
                    if self._dense is not None:  # re-adding an id replaces its vector
                        self._dense.add([r.id for r in docs], vectors, [r.metadata for r in docs])
                self._save()  # searches go on meanwhile: a save only reads, and we are the only writer
            except BaseException:
                self._reload()  # memory back to what is on disk
                raise
        return len(docs)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove documents by id; returns how many were present (unknown ids are ignored)."""
        wanted = {str(i) for i in ids}
        with self._write_lock():
            self.refresh(locked=True)
            drop = wanted & self._records.keys()
            if not drop:
                return 0
            try:
                with self._state:
                    self._records = _without(self._records, drop)
                    self._fields = None
                    self._sparse.delete(drop)
                    if self._dense is not None:
                        self._dense.delete(sorted(drop))
                self._save()
            except BaseException:
                self._reload()
                raise
        return len(drop)

    # -- searching -----------------------------------------------------------------------------

    def search(self, query: str, k: int = 10, mode: str | None = None,
               filters: Mapping[str, Any] | None = None, *, fusion: str = "rrf",
               pool: int = DEFAULT_POOL, weights: Sequence[float] | None = None) -> list[Hit]:
        """The ``k`` best documents for ``query``, best first. See ``search_many``."""
        return self.search_many([query], k, mode, filters, fusion=fusion, pool=pool, weights=weights)[0]

    def search_many(self, queries: Sequence[str], k: int = 10, mode: str | None = None,
                    filters: Mapping[str, Any] | None = None, *, fusion: str = "rrf",
                    pool: int = DEFAULT_POOL, weights: Sequence[float] | None = None) -> list[list[Hit]]:
        """Search many queries at once (one BM25 call, one embedding batch).

        ``mode``: ``bm25`` (keywords), ``dense`` (embeddings) or ``hybrid`` (both, each asked
        for ``max(pool, k)`` candidates, fused by ``fusion``: ``rrf`` or ``normalized``); None
        is hybrid when the collection has a dense index, else bm25. ``filters``: ``{field:
        value}`` equalities on metadata, all of which must hold. ``weights`` (bm25, dense) weigh
        the two retrievers in normalized fusion (default equal). A hit's score is the
        retriever's (BM25, cosine) or the fused score in hybrid mode.
        """
        mode = mode or ("hybrid" if self.has_dense else "bm25")
        if mode not in MODES:
            raise GuimoError(f"unknown search mode {mode!r}; choose one of {', '.join(MODES)}")
        if mode != "bm25" and not self.has_dense:
            raise GuimoError(f"collection {self.name!r} has no dense index (created without one); use mode bm25")
        if fusion not in FUSIONS:
            raise GuimoError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
        if weights is not None and (mode != "hybrid" or fusion != "normalized"):
            raise GuimoError("weights apply to hybrid search with normalized fusion only")
        if k < 1 or pool < 1:
            raise GuimoError(f"k and pool must be >= 1, got k={k}, pool={pool}")
        if isinstance(queries, str):
            raise GuimoError("search_many takes a list of queries; use search for one")
        for q in queries:
            if not isinstance(q, str) or not q.strip():
                raise GuimoError(f"a query must be a non-empty string, got {q!r}")
        if not queries:
            return []
        self.refresh()
        depth = k if mode != "hybrid" else max(pool, k)
        vectors = self._embed(list(queries), None, 32) if mode != "bm25" else None
        with self._state:
            if not self._records:
                return [[] for _ in queries]
            where = self._resolve_filters(filters)
            sparse = self._sparse.search_many(queries, depth, where) if mode != "dense" else None
            dense = self._dense.search(vectors, depth, where or None) if mode != "bm25" else None
        if mode == "bm25":
            return sparse
        if mode == "dense":
            return [list(hits) for hits in dense]
        if weights is not None:
            return [normalized_fusion([s, d], weights=weights, top=k) for s, d in zip(sparse, dense)]
        fuse = FUSIONS[fusion]
        return [fuse([s, d], top=k) for s, d in zip(sparse, dense)]

    def _resolve_filters(self, filters: Mapping[str, Any] | None) -> dict[str, Any]:
        """Filters with each string value turned into the stored value it spells (``"2020"`` -> 2020).

        A stored string equal to the value wins; otherwise the stored number, boolean or null whose
        JSON spelling it is. A value nothing spells stays as given (and matches nothing).
        """
        fields = self._field_values()
        out: dict[str, Any] = {}
        for name, value in (filters or {}).items():
            known = fields.get(name)
            if isinstance(value, str) and known is not None and value not in known.strings:
                value = known.spelled.get(value, value)
            out[name] = value
        return out

    def _field_values(self) -> dict[str, "_FieldValues"]:
        """Per metadata field, the string values and the JSON spellings of the others (cached
        until the next change: ``info`` and every filtered search read it)."""
        with self._state:
            if self._fields is None:
                fields: dict[str, _FieldValues] = {}
                for r in self._records.values():
                    for name, value in r.metadata.items():
                        known = fields.setdefault(name, _FieldValues())
                        if isinstance(value, str):
                            known.strings.add(value)
                        else:
                            known.spelled.setdefault(json.dumps(value, ensure_ascii=False), value)
                self._fields = fields
            return self._fields

    # -- internals -----------------------------------------------------------------------------

    def _embed(self, texts: list[str], on_progress: Callable[[int, int], None] | None,
               batch_size: int) -> "np.ndarray":
        import numpy as np

        encoder = load_encoder(self.settings["encoder"])
        out = np.empty((len(texts), self.settings["dim"]), dtype=np.float32)
        for s in range(0, len(texts), ENCODE_CHUNK):
            chunk = texts[s : s + ENCODE_CHUNK]
            out[s : s + len(chunk)] = encoder.encode(chunk, batch_size=batch_size).numpy()
            if on_progress is not None:
                on_progress(s + len(chunk), len(texts))
        return out

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        """This process's writer lock, then the folder's (waiting up to ``lock_timeout`` s)."""
        with self._writing:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / WRITER, "a+", encoding="utf-8") as f:
                if fcntl is not None:
                    deadline = time.monotonic() + self.lock_timeout
                    while True:
                        try:
                            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                            break
                        except BlockingIOError:
                            if time.monotonic() >= deadline:
                                f.seek(0)
                                holder = f.read().strip() or "another process"
                                raise GuimoError(f"{self.folder}: being written by {holder}; waited "
                                                 f"{self.lock_timeout:g} s (one writer per collection)") from None
                            time.sleep(0.05)
                f.seek(0)
                f.truncate()
                f.write(f"pid {os.getpid()}\n")
                f.flush()
                try:
                    yield
                finally:
                    if fcntl is not None:
                        fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def refresh(self, *, locked: bool = False) -> bool:
        """Reload if another process committed a newer version; True when it did.

        ``locked``: the caller holds the writer lock (so nothing can commit meanwhile).
        """
        if not locked and self._writing.locked():
            return False  # this process is writing: its memory is the newest state (it may be mid-commit)
        try:
            latest = store.current_version(self.folder, what="collection").name
        except GuimoError:
            if locked:
                raise
            return False  # the folder is gone or being replaced; keep answering from memory
        if latest == self._version:
            return False
        self._reload()
        return True

    def _reload(self) -> None:
        version, settings, records, sparse, dense = store.read_version(self.folder, _read_version, what="collection", attempts=READ_ATTEMPTS)
        with self._state:
            self._version, self.settings, self._records = version, settings, records
            self._fields = None
            self._sparse, self._dense = sparse, dense

    def _save(self) -> None:
        """Write records, both indexes and settings as one new version (caller holds the writer lock)."""
        self.settings["updated"] = _now()
        self.settings["documents"] = len(self._records)
        with store.new_version(self.folder) as target:
            atomic_write_text(target / "records.jsonl", "".join(
                json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in self._records.values()))
            self._sparse.save(target / "sparse")
            if self._dense is not None:
                self._dense.save(target / "dense")
            atomic_write_json(target / "collection.json", self.settings)  # last: marks the version whole
        self._version = target.name


@dataclass
class _FieldValues:
    strings: set[str] = field(default_factory=set)  # string values present
    spelled: dict[str, Any] = field(default_factory=dict)  # JSON spelling -> a non-string value present


def _without(records: dict[str, Record], ids: Iterable[str]) -> dict[str, Record]:
    drop = set(ids)
    return {i: r for i, r in records.items() if i not in drop}


def _new_dense(dim: int) -> Any:
    from guimo.index.dense import DenseIndex

    return DenseIndex(dim, metric="ip")  # unit-norm embeddings: inner product is the cosine


def _read_version(version: Path) -> tuple[str, dict[str, Any], dict[str, Record], SparseIndex, Any | None]:
    """Read one committed version; FileNotFoundError if a commit swept it meanwhile (the caller,
    ``store.read_version``, then reads the newer one)."""
    try:
        return _read_parts(version)
    except FileNotFoundError:
        raise
    except Exception:
        # A newer commit removes older version folders while a reader may still be inside one;
        # what fails then (a sub-index without its CURRENT, a vanished file) is that race, not damage.
        if not version.is_dir() or _committed(version.parent) != version.name:
            raise FileNotFoundError(version) from None
        raise


def _committed(folder: Path) -> str | None:
    try:
        return store.current_version(folder, what="collection").name
    except GuimoError:
        return None


def _read_parts(version: Path) -> tuple[str, dict[str, Any], dict[str, Record], SparseIndex, Any | None]:
    path = version / "collection.json"
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise  # store.read_version retries: a concurrent save may have swept this version
    except (OSError, json.JSONDecodeError) as e:
        raise GuimoError(f"{path}: unreadable ({e})") from e
    if settings.get("format") != FORMAT:
        raise GuimoError(f"{path}: format {settings.get('format')!r}, expected {FORMAT!r}")
    records: dict[str, Record] = {}
    rpath = version / "records.jsonl"
    with open(rpath, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            try:
                obj = json.loads(line)
                records[obj["id"]] = Record(obj["id"], obj["text"], obj["metadata"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise GuimoError(f"{rpath}:{line_no}: malformed record ({e})") from e
    if len(records) != settings.get("documents", len(records)):
        raise GuimoError(f"{rpath}: {len(records)} records, {path.name} says {settings['documents']}")
    sparse = SparseIndex.load(version / "sparse")
    dense = None
    if settings.get("encoder"):
        from guimo.index.dense import DenseIndex

        dense = DenseIndex.load(version / "dense")
    return version.name, settings, records, sparse, dense


# -- named collections (the CLI's NAME) --------------------------------------------------------

def home(path: str | os.PathLike | None = None) -> Path:
    """Where named collections live: ``path``, else ``$GUIMO_INDEXES``, else ``./indexes``."""
    return Path(path or os.environ.get(HOME_ENV) or "indexes")


def resolve(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder of collection ``name``: a path when it has a separator or starts with '.', else
    ``home(root)/name``."""
    if os.sep in name or "/" in name or name.startswith("."):
        return Path(name)
    if not NAME.match(name):
        raise GuimoError(f"collection name {name!r}: use letters, digits, '.', '_' and '-' (or give a path)")
    return home(root) / name


def list_collections(root: str | os.PathLike | None = None) -> list[Path]:
    """Collection folders directly under ``home(root)``, by name."""
    base = home(root)
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / store.CURRENT).is_file())


def open_named(name: str, root: str | os.PathLike | None = None, **kwargs: Any) -> Collection:
    """Open collection ``name`` (see ``resolve``); a missing one names those that exist."""
    folder = resolve(name, root)
    if not (folder / store.CURRENT).is_file():
        names = [p.name for p in list_collections(root)]
        known = f"collections under {home(root)}: {', '.join(names)}" if names else f"no collections under {home(root)}"
        raise GuimoError(f"no collection {name!r} at {folder} ({known}; create one with `guimo index create`)")
    return Collection.open(folder, **kwargs)
