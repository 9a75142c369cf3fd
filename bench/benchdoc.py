"""Rewrite one bench script's section of docs/BENCHMARKS.md, between its markers.

Each script owns the text between ``<!-- bench:NAME:start -->`` and ``<!-- bench:NAME:end -->``;
everything else in the file (other scripts' sections, prose) is left as it is. A missing section
is appended under ``heading`` (or refused when no heading is given).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"


def write_section(name: str, body: str, heading: str | None = None, doc: Path = DOC) -> None:
    sys.path.insert(0, str(doc.parents[1]))  # run as `python bench/x.py`: make guimo importable
    from guimo.io import atomic_write_text

    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = doc.read_text(encoding="utf-8")
    if start not in text or end not in text:
        if heading is None:
            sys.exit(f"{doc}: markers {start} ... {end} not found")
        text = text.rstrip("\n") + f"\n\n## {heading}\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    atomic_write_text(doc, f"{head}{start}\n{body.strip(chr(10))}\n{end}{tail}")
