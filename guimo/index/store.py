"""Versioned, atomic saves of an index folder: one version subfolder per save, a CURRENT pointer.

Why versions rather than renaming files over each other: an index is several files (vectors, ids,
metadata, settings) that must change together. A save writes every file into a fresh ``v-<hex>``
subfolder, fsyncs it, and only then atomically rewrites ``CURRENT`` to name it; older versions are
removed afterwards. A process killed at any point leaves ``CURRENT`` naming the last complete
version (a torn version folder may be left behind; the next save sweeps it). Both indexes
(``sparse.SparseIndex`` and ``dense.DenseIndex``) and the collections built on them save this way.

Concurrent savers of one folder are serialised by an exclusive ``flock`` on ``folder/LOCK`` (POSIX;
without ``fcntl`` saves are not serialised). Readers take no lock: a reader that finds the version
named by ``CURRENT`` already swept (a save committed between its two reads) reads ``CURRENT``
again (``read_version`` retries).
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from guimo.errors import GuimoError
from guimo.io import atomic_write_text, fsync_dir

try:  # POSIX only; the lock is a courtesy between savers, not needed for a reader's safety
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

CURRENT = "CURRENT"  # names the committed version folder; written atomically, last
LOCK = "LOCK"
PREFIX = "v-"
T = TypeVar("T")


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a file a library wrote itself (e.g. ``faiss.write_index``) to disk before the commit."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _save_lock(folder: Path) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    with open(folder / LOCK, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextmanager
def new_version(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh, empty version folder inside ``folder``; commit it when the block ends cleanly.

    The caller writes its files into the yielded folder (they need not be atomic one by one, but
    must be flushed: ``guimo.io.atomic_write_*`` or ``fsync_file``). On a clean exit the folder is
    fsynced, ``CURRENT`` is atomically pointed at it, and every other version folder is removed.
    If the block raises, nothing is committed and the partial folder is left for the next save
    to sweep, exactly as a kill would leave it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _save_lock(folder):
        version = f"{PREFIX}{uuid.uuid4().hex[:12]}"
        target = folder / version
        target.mkdir()
        yield target
        fsync_dir(target)
        fsync_dir(folder)
        atomic_write_text(folder / CURRENT, version + "\n")
        for old in folder.iterdir():  # earlier versions and folders of killed saves
            if old.is_dir() and old.name.startswith(PREFIX) and old.name != version:
                shutil.rmtree(old, ignore_errors=True)


def current_version(folder: str | os.PathLike, *, what: str) -> Path:
    """The committed version folder of ``folder``; ``what`` names the kind of index in errors."""
    folder = Path(folder)
    current = folder / CURRENT
    try:
        name = current.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise GuimoError(f"{folder}: not a saved {what} (no {CURRENT} file)") from None
    if not name.startswith(PREFIX) or "/" in name or "\\" in name:
        raise GuimoError(f"{current}: names {name!r}, not a version folder ({PREFIX}...)")
    return folder / name


def read_version(folder: str | os.PathLike, read: Callable[[Path], T], *, what: str,
                 attempts: int = 3) -> T:
    """``read(current_version(folder))``, retried if a concurrent save swept that version meanwhile."""
    version = current_version(folder, what=what)
    for _ in range(attempts - 1):
        try:
            return read(version)
        except FileNotFoundError:
            latest = current_version(folder, what=what)
            if latest == version:  # not a race: the committed version itself lacks a file
                break
            version = latest
    if not version.is_dir():
        raise GuimoError(f"{folder}: {CURRENT} names {version.name}, which does not exist")
    try:
        return read(version)
    except FileNotFoundError as e:
        raise GuimoError(f"{e.filename or e}: missing from the committed version of {folder}") from None
