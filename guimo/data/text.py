"""Text corpora for the language model: the embedded default and user data.

A corpus is a list of documents ``(name, text)``; splits are made per document so that no file
crosses splits. Sources: the Python standard library found on this machine (embedded default,
~12 MB of real text), a text file, a folder of text files, or a JSONL file with a ``text`` field.
"""

from __future__ import annotations

import hashlib
import sysconfig
from pathlib import Path

from guimo.errors import GuimoError, where
from guimo.io import iter_jsonl, read_text_strict

TEXT_SUFFIXES = {".txt", ".md", ".rst", ".py", ".json", ".csv", ".tex", ".html", ".xml", ".c", ".h", ".js", ".ts"}
SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}


def stdlib_documents() -> list[tuple[str, str]]:
    """Every ``*.py`` file of the standard library, test folders excluded, in a stable order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if SKIP_DIRS.intersection(rel.parts):
            continue
        try:
            docs.append((str(rel), path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, OSError):
            continue  # a handful of stdlib files are deliberately not UTF-8
    if not docs:
        raise GuimoError(f"no Python files found under {root}; pass --data PATH")
    return docs


def read_documents(source: str | Path) -> list[tuple[str, str]]:
    """Documents from a text file, a folder of text files, or a ``.jsonl`` with a ``text`` field."""
    path = Path(source)
    if not path.exists():
        raise GuimoError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise GuimoError(f"{path}: folder holds no text files ({', '.join(sorted(TEXT_SUFFIXES))})")
        docs = [(str(p.relative_to(path)), read_text_strict(p)) for p in files]
    elif path.suffix.lower() == ".jsonl":
        docs = []
        for line, record in iter_jsonl(path):
            text = record.get("text")
            if not isinstance(text, str):
                raise GuimoError(f"{where(path, line)}: expected a string field 'text'")
            docs.append((f"{path.name}:{line}", text))
    else:
        docs = [(path.name, read_text_strict(path))]
    docs = [(n, t) for n, t in docs if t.strip()]
    if not docs:
        raise GuimoError(f"{path}: corpus is empty")
    return docs


def cap_bytes(docs: list[tuple[str, str]], max_bytes: int, spread: bool = False) -> list[tuple[str, str]]:
    """The leading documents up to ``max_bytes`` of UTF-8, the last one cut at a character boundary.

    Counted in bytes, not characters: a character cap kept ~3x the asked size of Chinese text.
    ``spread`` first keeps every k-th document (k = all bytes // max_bytes) and then cuts: an
    ordered corpus (the stdlib, sorted by module path) is then sampled across, instead of ending
    after its first modules (asyncio, collections, ... the encodings/ codec tables).
    """
    if spread:
        docs = docs[:: max(1, sum(len(t.encode()) for _, t in docs) // max_bytes)]
    kept, total = [], 0
    for name, text in docs:
        if total >= max_bytes:
            break
        raw = text.encode()
        if total + len(raw) > max_bytes:  # the last document: cut, dropping a split multi-byte character
            kept.append((name, raw[: max_bytes - total].decode("utf-8", errors="ignore")))
            break
        kept.append((name, text))
        total += len(raw)
    return kept


def split_of(name: str, val_fraction: float, test_fraction: float) -> str:
    """Deterministic split of a document by the hash of its name (stable across machines)."""
    u = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def split_single(docs: list[tuple[str, str]], val_fraction: float, test_fraction: float) -> dict[str, list[tuple[str, str]]]:
    """Split into train/val/test by document; a single document is cut by characters instead."""
    if len(docs) >= 20:
        out: dict[str, list] = {"train": [], "val": [], "test": []}
        for name, text in docs:
            out[split_of(name, val_fraction, test_fraction)].append((name, text))
        if out["val"] and out["test"] and out["train"]:
            return out
    text = "\n".join(t for _, t in docs)  # few documents: contiguous character ranges
    n = len(text)
    a, b = int(n * (1 - val_fraction - test_fraction)), int(n * (1 - test_fraction))
    return {"train": [("train", text[:a])], "val": [("val", text[a:b])], "test": [("test", text[b:])]}
