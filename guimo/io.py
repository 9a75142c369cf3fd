"""Atomic file writes and strict readers.

Every file a crash could tear is written to a temporary file in the same folder, fsynced and
renamed over the target, so a reader sees either the old or the new content, never half of it.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from guimo.errors import GuimoError, where


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """Write ``path`` through a temporary file beside it, fsynced and renamed over it when the block ends.

    For output streamed in pieces (``guimo anonymize`` writes a large CSV chunk by chunk): an error or a
    kill inside the block leaves the old file (or none), never half of the new one. ``kwargs`` go to
    ``open`` (``encoding``, ``newline``)."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open writes a whole new file: mode must start with 'w', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_save_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Save a flat ``name -> tensor`` dict with safetensors, atomically."""
    from safetensors.torch import save

    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return atomic_write_bytes(path, save(contiguous, metadata=metadata))


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and fsync it (logs survive a kill up to the last whole line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=_json_default) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GuimoError(f"{path}: file not found") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise GuimoError(f"{where(path, e.lineno)}: not valid JSON ({e.msg})") from None


def iter_jsonl(path: str | os.PathLike, *, skip_torn_tail: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, record)`` for each non-blank line; a bad line names file and line.

    ``skip_torn_tail`` tolerates a half-written last line, which is what a killed writer leaves.
    """
    path = Path(path)
    try:
        lines = read_text_strict(path).splitlines()
    except FileNotFoundError:
        raise GuimoError(f"{path}: file not found") from None
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if skip_torn_tail and i == len(lines):
                return
            raise GuimoError(f"{where(path, i)}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise GuimoError(f"{where(path, i)}: expected a JSON object, got {type(record).__name__}")
        yield i, record


def iter_csv(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line, row) pairs of a CSV or TSV file with a header; ``line`` is where the row starts (a quoted
    text may span lines). A row with the wrong number of fields, bad bytes or broken quoting is a
    GuimoError naming the file and line."""
    import csv

    path = Path(path)
    reader = None
    try:
        f = path.open(encoding="utf-8", newline="")
        with f:
            sample = f.read(8192)
            f.seek(0)
            delimiter = "\t" if path.suffix == ".tsv" or (sample.count("\t") > sample.count(",")) else ","
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip().lstrip("\ufeff") for h in header]
            start = reader.line_num + 1
            for values in reader:
                if values and any(v.strip() for v in values):
                    if len(values) != len(header):
                        raise GuimoError(f"{where(path, start)}: {len(values)} fields, the header has {len(header)} "
                                         f"({', '.join(header)}); quote texts that contain '{delimiter}'")
                    yield start, dict(zip(header, values))
                start = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise GuimoError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise GuimoError(f"{where(path, reader.line_num if reader else None)}: malformed CSV ({e})") from None


def read_text_strict(path: str | os.PathLike) -> str:
    """Read UTF-8 text; a decoding error names the file and the line where it happens."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise GuimoError(f"{where(path, line)}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (best effort: some filesystems cannot open a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
