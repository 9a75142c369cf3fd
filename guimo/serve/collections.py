"""Each tenant's search collections on disk, for /v1/collections and /v1/search.

A collection (``guimo.index.collection.Collection``: records, BM25 and, when dense, a vector
index, saved together as one atomic version) lives in ``<root>/<tenant id>/<name>``, so it
survives restarts and one tenant can never name another's folder: the tenant comes from the API
key, never from the request. A name another tenant uses is simply absent here, so it answers the
same 404 as a name nobody uses.

Concurrency: the routes call ``add``, ``delete`` and ``drop`` from a worker thread. The collection
embeds new documents before it takes its in-memory lock and saves after releasing it, so searches
go on answering during a write; writers queue on the collection's writer lock (across processes
too). ``drop`` also takes this store's per-collection lock, so a drop never races a write of this
process into a half-deleted folder. Open collections are cached per process; each search picks up
a version another process (a second worker, `guimo index add`) committed meanwhile.

Encoders: a dense collection stores its encoder's spec (``minilm`` or a folder path); the server
maps it to the name it serves that encoder under, and both share one loaded model
(``guimo.index.collection.load_encoder`` loads each spec once per process).
"""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from guimo.errors import GuimoError
from guimo.serve.errors import ApiError
from guimo.serve.schemas import NAME_PATTERN

NAME = re.compile(NAME_PATTERN)
WRITER_THREADS = 4  # concurrent collection writes per process (each mostly embeds documents)
CURRENT = "CURRENT"  # guimo.index.store.CURRENT: present once a collection is committed


@dataclass
class Handle:
    """An open collection and the lock this process's writers and ``drop`` share."""

    name: str
    folder: Path
    collection: Any  # guimo.index.collection.Collection
    write_lock: threading.Lock = field(default_factory=threading.Lock)


def not_found(name: str) -> ApiError:
    return ApiError(404, f"The collection '{name}' does not exist.", code="collection_not_found", param="collection")


class CollectionStore:
    """The collections of every tenant under ``root``.

    ``encoders`` maps the names of served encoders to their collection specs (``minilm``, or a
    resolved folder path); ``default_encoder`` (a name) is what a dense collection gets when the
    request names none.
    """

    def __init__(self, root: str | Path, encoders: Mapping[str, str] | None = None, default_encoder: str | None = None) -> None:
        self.root = Path(root)
        self.encoders = dict(encoders or {})
        if default_encoder is not None and default_encoder not in self.encoders:
            raise GuimoError(f"default encoder '{default_encoder}' is not served (served: {', '.join(self.encoders) or 'none'})")
        self.default_encoder = default_encoder or next(iter(self.encoders), None)
        self._names = {spec: name for name, spec in self.encoders.items()}
        self._lock = threading.Lock()
        self._open: dict[tuple[int, str], Handle] = {}
        # Writes get threads of their own: writers queued on a busy collection's lock must not take
        # the event loop's default threads, which searches run on.
        self.writer = ThreadPoolExecutor(max_workers=WRITER_THREADS, thread_name_prefix="collection-write")

    def close(self) -> None:
        """Wait for the writes in progress (shutdown): a write either commits or never started."""
        self.writer.shutdown(wait=True)

    def folder(self, tenant_id: int, name: str) -> Path:
        """``<root>/<tenant id>/<name>``; a name that could leave that folder ('..', '/') cannot exist: 404."""
        if not NAME.fullmatch(name):
            raise not_found(name)
        return self.root / str(int(tenant_id)) / name

    def encoder_name(self, handle: Handle) -> str | None:
        """The served name of the collection's encoder (its spec when this server does not serve it)."""
        spec = handle.collection.settings.get("encoder")
        return None if spec is None else self._names.get(spec, spec)

    # -- collections -----------------------------------------------------------------------

    def create(self, tenant_id: int, name: str, *, text_field: str = "text", id_field: str = "id", dense: bool = True,
               encoder: str | None = None) -> Handle:
        """A new, empty collection; 409 if the tenant already has one of this name."""
        Collection = _collection_class()
        if text_field == id_field:
            raise ApiError(400, f"text_field and id_field are both '{text_field}'; they must differ.", code="invalid_value", param="id_field")
        if encoder is not None and not dense:
            raise ApiError(400, "an encoder is for dense search; drop 'encoder' or set dense to true.", code="invalid_value", param="encoder")
        spec = None
        if dense:
            encoder = encoder or self.default_encoder
            if encoder is None:
                raise ApiError(400, "this server serves no text encoder, so a collection can only be keyword-only: set dense to false "
                                    "(or start the server with --encoder all-minilm-l6-v2).", code="no_encoder", param="dense")
            if encoder not in self.encoders:
                served = ", ".join(sorted(self.encoders)) or "none"
                raise ApiError(400, f"'{encoder}' is not an encoder this server serves (it serves: {served}).",
                               code="invalid_value", param="encoder")
            spec = self.encoders[encoder]
        folder = self.folder(tenant_id, name)
        with self._lock:
            if folder.exists():
                raise ApiError(409, f"You already have a collection named '{name}'.", code="collection_exists", param="name")
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = folder.parent / f".new-{name}-{uuid.uuid4().hex[:8]}"  # renamed into place once committed
            try:
                Collection.create(staging, text_field=text_field, id_field=id_field, dense=dense, encoder=spec)
                staging.rename(folder)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            handle = Handle(name, folder, Collection.open(folder))
            self._open[(tenant_id, name)] = handle
            return handle

    def get(self, tenant_id: int, name: str) -> Handle:
        """The open collection (one stat to see it still exists); 404 if absent."""
        folder = self.folder(tenant_id, name)
        key = (tenant_id, name)
        if not (folder / CURRENT).is_file():
            self._open.pop(key, None)
            raise not_found(name)
        handle = self._open.get(key)
        if handle is not None:
            return handle
        with self._lock:
            handle = self._open.get(key)
            if handle is None:
                try:
                    handle = Handle(name, folder, _collection_class().open(folder))
                except GuimoError as e:
                    raise ApiError(500, f"The collection '{name}' cannot be read: {e}", code="collection_unreadable") from None
                self._open[key] = handle
            return handle

    def list(self, tenant_id: int) -> list[Handle]:
        base = self.root / str(int(tenant_id))
        if not base.is_dir():
            return []
        return [self.get(tenant_id, p.name) for p in sorted(base.iterdir()) if NAME.fullmatch(p.name) and (p / CURRENT).is_file()]

    def drop(self, tenant_id: int, name: str) -> None:
        """Delete a collection: renamed out of the way first (atomic), then removed from disk."""
        handle = self.get(tenant_id, name)
        with handle.write_lock, self._lock:
            folder = self.folder(tenant_id, name)
            if not (folder / CURRENT).is_file():
                raise not_found(name)
            trash = folder.parent / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
            folder.rename(trash)
            self._open.pop((tenant_id, name), None)
        shutil.rmtree(trash, ignore_errors=True)

    # -- documents (call these from a worker thread: they embed and save) ---------------------

    def add(self, handle: Handle, records: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """Add or replace documents; returns (documents written, documents in the collection)."""
        with handle.write_lock:
            self._still_there(handle)
            try:
                added = handle.collection.add(records)
            except GuimoError as e:
                raise ApiError(400, str(e), code="invalid_value", param="records") from None
            return added, len(handle.collection)

    def delete(self, handle: Handle, ids: Sequence[str]) -> tuple[int, int]:
        """Delete documents by id; returns (documents deleted, documents left)."""
        with handle.write_lock:
            self._still_there(handle)
            deleted = handle.collection.delete([str(i) for i in ids])
            return deleted, len(handle.collection)

    def search(self, handle: Handle, queries: Sequence[str], *, k: int, mode: str, filters: Mapping[str, Any] | None,
               include_text: bool = False) -> list[list[dict[str, Any]]]:
        """Hits as plain dicts (id, score, metadata, and text when asked), one list per query.

        A filter on a field no document has is a 400 naming it: it would match nothing, which
        looks like a working filter over an empty result rather than the typo it almost always is.
        """
        coll = handle.collection
        if filters:
            known = set(coll.info()["metadata_fields"])
            for f in filters:
                if f not in known:
                    fields = ", ".join(sorted(known)) or "none (the documents have no metadata)"
                    raise ApiError(400, f"filter: no document of '{handle.name}' has the field '{f}'; its metadata fields: {fields}.",
                                   code="unknown_field", param=f"filter.{f}")
        try:
            results = coll.search_many(list(queries), k=k, mode=mode, filters=filters or None)
        except GuimoError as e:
            raise ApiError(400, str(e), code="invalid_value") from None
        out = []
        for hits in results:
            rows = []
            for h in hits:
                row = {"id": h.id, "score": float(h.score), "metadata": dict(h.metadata)}
                if include_text:
                    rec = coll.get(h.id)
                    row["text"] = rec.text if rec is not None else None
                rows.append(row)
            out.append(rows)
        return out

    def _still_there(self, handle: Handle) -> None:
        if not (handle.folder / CURRENT).is_file():  # dropped while this write waited for the lock
            raise not_found(handle.name)


def _collection_class():
    try:
        from guimo.index.collection import Collection
    except ImportError as e:
        raise ApiError(501, f"search collections need the 'search' extra on the server: pip install 'guimo[search]' ({e.name} missing)",
                       code="not_installed") from None
    return Collection


def metered_as(name: str):
    """What a collection call is recorded as in the ledger: model = the collection's name, scenario
    ``collections`` (priced by ``[requests.per_1k_units]`` search and collections in guimo/prices.toml)."""
    from guimo.serve.registry import ServedModel

    return ServedModel(name, "collections", "collection", None)
