"""Reading documents and queries for search from JSON lines, with errors that name file and line.

A document is one JSON object per line: an id field, a text field, and any other fields, which
become its metadata (what ``--filter field=value`` matches). Field names are the caller's
(``--id-field``, ``--text-field``), so a user's export does not have to be renamed first.

Why strict: an index silently built without half its documents (a missing text field, an id
given twice so one copy vanishes) returns plausible but wrong results, so every such line is an
error that says where it is and what the file does hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from guimo.errors import GuimoError, where
from guimo.io import iter_jsonl


@dataclass(frozen=True)
class Record:
    """One document: its id, its text, and its other fields as metadata."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "metadata": self.metadata}


@dataclass(frozen=True)
class Query:
    """One query of a batch: its text and the id it came with (None when the line had none)."""

    text: str
    id: str | None = None
    line: int | None = None


def _id(value: Any, origin: str, id_field: str) -> str:
    # bool is an int subclass; True as an id is almost surely a wrong field.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise GuimoError(f"{origin}: {id_field!r} must be a string or an integer, got {value!r}")
    doc_id = str(value)
    if not doc_id.strip():
        raise GuimoError(f"{origin}: {id_field!r} is empty")
    return doc_id


def to_record(obj: Mapping[str, Any], *, text_field: str = "text", id_field: str = "id",
              origin: str = "record") -> Record:
    """Split a mapping into id, text and metadata; ``origin`` (e.g. ``file:line``) prefixes errors."""
    if not isinstance(obj, Mapping):
        raise GuimoError(f"{origin}: expected a JSON object, got {type(obj).__name__}")
    for name in (id_field, text_field):
        if name not in obj:
            fields = ", ".join(map(repr, obj)) or "none"
            raise GuimoError(f"{origin}: no field {name!r} (fields present: {fields}); "
                             f"name the right one with --{'id' if name == id_field else 'text'}-field")
    text = obj[text_field]
    if not isinstance(text, str):
        raise GuimoError(f"{origin}: {text_field!r} must be a string, got {type(text).__name__}")
    metadata = {k: v for k, v in obj.items() if k not in (id_field, text_field)}
    return Record(_id(obj[id_field], origin, id_field), text, metadata)


def read_records(path: str | os.PathLike, *, text_field: str = "text", id_field: str = "id") -> Iterator[Record]:
    """Yield the documents of a JSONL file in order; a bad line or a repeated id raises GuimoError.

    A repeated id names both lines: within one file it is a mistake (which copy should win?), while
    adding an id that a collection already holds replaces it, which is how a document is updated.
    """
    first_line: dict[str, int] = {}
    for line, obj in iter_jsonl(path):
        origin = where(path, line)
        record = to_record(obj, text_field=text_field, id_field=id_field, origin=origin)
        if record.id in first_line:
            raise GuimoError(f"{origin}: id {record.id!r} repeats line {first_line[record.id]} "
                             "(ids must be unique within a file)")
        first_line[record.id] = line
        yield record


def read_queries(path: str | os.PathLike) -> list[Query]:
    """Queries of a batch file: one ``{"id"?: ..., "query" | "text": "..."}`` object per line."""
    out = []
    for line, obj in iter_jsonl(path):
        origin = where(path, line)
        key = "query" if "query" in obj else "text" if "text" in obj else None
        if key is None:
            fields = ", ".join(map(repr, obj)) or "none"
            raise GuimoError(f"{origin}: no 'query' or 'text' field (fields present: {fields})")
        text = obj[key]
        if not isinstance(text, str) or not text.strip():
            raise GuimoError(f"{origin}: {key!r} must be a non-empty string, got {text!r}")
        qid = _id(obj["id"], origin, "id") if obj.get("id") is not None else None
        out.append(Query(text, qid, line))
    return out
