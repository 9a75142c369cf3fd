"""Labelled utterances for joint intent + slot models: the example type and the SNIPS / HWU64 readers.

An ``NluExample`` is one utterance split into ``words`` (``guimo.assistant.types.words``: whitespace
tokens, every CJK character a word of its own) with one BIO tag per word and the intent. The
smart-home generator (``guimo.data.smarthome``), the SNIPS and HWU64 loaders and the model all speak
it, so the model never needs to know where an example came from.

An utterance with several commands ("turn off the lights and then lock the door") lists every
intent in ``intents`` and the word span of each command in ``segments`` (the connector words
between them belong to no segment); ``intent`` is the first command's. The trainer cuts such an
example into its commands, so the intent head only ever learns one intent per input and the
predictor splits utterances at connectors instead.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from guimo.errors import GuimoError, where


@dataclass
class NluExample:
    words: list[str]
    tags: list[str]  # one BIO tag per word: "O", "B-room", "I-room", ...
    intent: str
    language: str = "en"
    intents: list[str] = field(default_factory=list)  # every command's intent (multi-command); [] means [intent]
    segments: list[tuple[int, int]] = field(default_factory=list)  # word span (start, end) of each command; [] means the whole

    def __post_init__(self) -> None:
        if len(self.words) != len(self.tags):
            raise ValueError(f"{len(self.words)} words but {len(self.tags)} tags")
        if not self.intents:
            self.intents = [self.intent]
        if not self.segments:
            self.segments = [(0, len(self.words))]
        self.segments = [tuple(s) for s in self.segments]  # JSON gives lists
        if len(self.segments) != len(self.intents):
            raise ValueError(f"{len(self.intents)} intents but {len(self.segments)} segments")
        for start, end in self.segments:
            if not 0 <= start < end <= len(self.words):
                raise ValueError(f"segment ({start}, {end}) outside the {len(self.words)} words")

    @property
    def text(self) -> str:
        return join_words(self.words)

    def commands(self) -> list["NluExample"]:
        """The example cut into one example per command (itself when it has one)."""
        if len(self.intents) == 1 and self.segments[0] == (0, len(self.words)):
            return [self]
        return [NluExample(self.words[s:e], _clean_bio(self.tags[s:e]), intent, self.language)
                for intent, (s, e) in zip(self.intents, self.segments)]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"words": self.words, "tags": self.tags, "intent": self.intent, "language": self.language}
        if len(self.intents) > 1:
            d["intents"], d["segments"] = self.intents, [list(s) for s in self.segments]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NluExample":
        return cls(list(d["words"]), list(d["tags"]), str(d["intent"]), str(d.get("language", "en")),
                   list(d.get("intents") or []), [tuple(s) for s in d.get("segments") or []])


def join_words(words: list[str]) -> str:
    """Words back to text: spaces between words except around CJK characters ("打开 客厅" stays "打开客厅")."""
    out = ""
    for w in words:
        if out and not (_is_cjk(out[-1]) or _is_cjk(w[0])):
            out += " "
        out += w
    return out


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _clean_bio(tags: list[str]) -> list[str]:
    """A cut may start inside a span: its leading I-x becomes B-x."""
    out = list(tags)
    if out and out[0].startswith("I-"):
        out[0] = "B-" + out[0][2:]
    return out


def check_bio(tags: list[str], path: object, line: int) -> None:
    """A tag that is not O, B-x or I-x is a malformed line (I-x after O is allowed: conlleval reads it as B-x)."""
    for tag in tags:
        if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
            raise GuimoError(f"{where(path, line)}: '{tag}' is not a BIO tag (O, B-slot or I-slot)")


# ---------------------------------------------------------------- format detection


def detect_format(path: str | Path) -> str:
    """"snips" (split folders with seq.in / seq.out / label), "hwu64" (CSV per intent with [slot : value]
    markup, possibly under trainset/ testset/) or "jsonl" (NluExample records, one per line)."""
    path = Path(path)
    if not path.exists():
        raise GuimoError(f"{path}: not found")
    if path.is_file():
        if path.suffix in (".jsonl", ".json"):
            return "jsonl"
        raise GuimoError(f"{path}: an NLU data file must be .jsonl (NluExample records); SNIPS and HWU64 are folders")
    if (path / "seq.in").exists() or any((path / s / "seq.in").exists() for s in ("train", "valid", "dev", "test")):
        return "snips"
    if any(path.glob("*.csv")) or any((path / s).is_dir() and any((path / s).glob("*.csv")) for s in ("trainset", "testset")):
        return "hwu64"
    if path.name != "kfold1" and (path / "kfold1").is_dir():
        return "hwu64"
    raise GuimoError(f"{path}: neither a SNIPS folder (train/seq.in, seq.out, label) nor an HWU64 folder (CSV files "
                     "per intent with [slot : value] markup)")


def load_splits(path: str | Path) -> dict[str, list[NluExample]]:
    """Every split a dataset folder or file has: SNIPS -> train/val/test, HWU64 -> train/test, jsonl -> train."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "jsonl":
        return {"train": read_jsonl(path)}
    if fmt == "snips":
        if (path / "seq.in").exists():
            return {"train": read_snips(path)}
        splits = {}
        for name, alias in (("train", "train"), ("valid", "val"), ("dev", "val"), ("test", "test")):
            if (path / name / "seq.in").exists():
                splits[alias] = read_snips(path / name)
        return splits
    root = path / "kfold1" if (path / "kfold1").is_dir() and not any(path.glob("*.csv")) else path
    if any(root.glob("*.csv")):
        return {"train": read_hwu64(root)}
    splits = {}
    for name, alias in (("trainset", "train"), ("testset", "test")):
        if (root / name).is_dir():
            splits[alias] = read_hwu64(root / name)
    return splits


# ---------------------------------------------------------------- SNIPS


def read_snips(folder: str | Path) -> list[NluExample]:
    """One SNIPS split folder: ``seq.in`` (words), ``seq.out`` (BIO tags), ``label`` (intent), line by line.

    Words are split on any whitespace (2,470 train lines end with a space). A line whose word and tag
    counts differ, a bad tag, or files of different lengths are errors naming the file and line.
    """
    folder = Path(folder)
    files = {name: folder / name for name in ("seq.in", "seq.out", "label")}
    for name, p in files.items():
        if not p.exists():
            raise GuimoError(f"{p}: missing (a SNIPS split folder has seq.in, seq.out and label)")
    lines = {name: _read_lines(p) for name, p in files.items()}
    n = {name: len(v) for name, v in lines.items()}
    if len(set(n.values())) != 1:
        shortest = min(n, key=n.get)
        raise GuimoError(f"{where(files[shortest], n[shortest] + 1)}: ends early ({', '.join(f'{k} has {v} lines' for k, v in n.items())})")
    out = []
    for i, (text, tagline, label) in enumerate(zip(lines["seq.in"], lines["seq.out"], lines["label"]), start=1):
        words, tags, intent = text.split(), tagline.split(), label.strip()
        if not words:
            raise GuimoError(f"{where(files['seq.in'], i)}: empty utterance")
        if len(words) != len(tags):
            raise GuimoError(f"{where(files['seq.out'], i)}: {len(tags)} tags for the {len(words)} words of "
                             f"{files['seq.in'].name} line {i} ('{text.strip()[:60]}')")
        if not intent:
            raise GuimoError(f"{where(files['label'], i)}: empty intent label")
        check_bio(tags, files["seq.out"], i)
        out.append(NluExample(words, tags, intent))
    return out


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise GuimoError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# ---------------------------------------------------------------- HWU64

_MARK = re.compile(r"\[([^\[\]:]*):([^\[\]]*)\]")


def parse_markup(annotation: str, path: object = "<text>", line: int | None = None) -> tuple[list[str], list[str]]:
    """``"turn off [house_place : bedroom] light"`` -> words and BIO tags (B-house_place on "bedroom").

    Text outside brackets is O; each ``[type : value]`` tags its words B-type, I-type, ... A stray or
    nested bracket, an empty slot type or value is a malformed line.
    """
    words: list[str] = []
    tags: list[str] = []
    pos = 0
    for m in _MARK.finditer(annotation):
        _plain(annotation[pos:m.start()], words, tags, path, line)
        slot, value = m.group(1).strip(), m.group(2).split()
        if not slot or " " in slot or not value:
            raise GuimoError(f"{where(path, line)}: bad slot markup '{m.group(0)}' (expected [type : value])")
        words += value
        tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(value) - 1)
        pos = m.end()
    _plain(annotation[pos:], words, tags, path, line)
    return words, tags


def _plain(text: str, words: list[str], tags: list[str], path: object, line: int | None) -> None:
    if "[" in text or "]" in text:
        raise GuimoError(f"{where(path, line)}: unbalanced or malformed slot markup near '{text.strip()[:40]}' "
                         "(expected [type : value])")
    for w in text.split():
        words.append(w)
        tags.append("O")


def read_hwu64(folder: str | Path) -> list[NluExample]:
    """HWU64 CSV files (one per intent, ``;``-separated, header ``answerid;scenario;intent;answer_annotation;...``).

    The intent is ``scenario_intent`` (``iot_hue_lightoff``), the words and tags come from the
    ``answer_annotation`` markup. Rows are read in file-name order, so the list is the same on every
    machine. A malformed row names its file and line.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise GuimoError(f"{folder}: no .csv files (HWU64 has one per intent)")
    out = []
    for path in files:
        out += _read_hwu64_file(path)
    return out


def _read_hwu64_file(path: Path) -> list[NluExample]:
    out = []
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter=";")
            header = next(reader, None)
            if header is None:
                return []
            header = [h.strip().lstrip("\ufeff") for h in header]
            missing = [c for c in ("scenario", "intent", "answer_annotation") if c not in header]
            if missing:
                raise GuimoError(f"{where(path, 1)}: header lacks {', '.join(missing)} (HWU64 CSVs are ';'-separated "
                                 "with answerid;scenario;intent;answer_annotation;...)")
            start = reader.line_num + 1
            for values in reader:
                if values and any(v.strip() for v in values):
                    if len(values) != len(header):
                        raise GuimoError(f"{where(path, start)}: {len(values)} fields, the header has {len(header)}")
                    row = dict(zip(header, values))
                    scenario, intent = row["scenario"].strip(), row["intent"].strip()
                    if not scenario or not intent:
                        raise GuimoError(f"{where(path, start)}: empty scenario or intent")
                    words, tags = parse_markup(row["answer_annotation"], path, start)
                    if not words:
                        raise GuimoError(f"{where(path, start)}: empty utterance")
                    out.append(NluExample(words, tags, f"{scenario}_{intent}"))
                start = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise GuimoError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise GuimoError(f"{path}: malformed CSV ({e})") from None
    return out


# ---------------------------------------------------------------- JSONL (new examples, generated sets)


def read_jsonl(path: str | Path) -> list[NluExample]:
    """NluExample records, one JSON object per line: ``{"words": [...], "tags": [...], "intent": ...}``, or
    ``{"text": ..., "intent": ...}`` with tags all O (intent-only examples), or ``{"text": ..., "tags": [...]}``
    with tags for ``words(text)``. A bad record names the file and line."""
    from guimo.assistant.types import words as split_words
    from guimo.io import iter_jsonl

    out = []
    for line, rec in iter_jsonl(path):
        try:
            if "words" not in rec and "text" in rec:
                ws = split_words(str(rec["text"]))
                rec = {**rec, "words": ws, "tags": rec.get("tags") or ["O"] * len(ws)}
            ex = NluExample.from_dict(rec)
        except KeyError as e:
            raise GuimoError(f"{where(path, line)}: missing key {e} (need words+tags or text, and intent)") from None
        except (TypeError, ValueError) as e:
            raise GuimoError(f"{where(path, line)}: {e}") from None
        if not ex.words:
            raise GuimoError(f"{where(path, line)}: empty utterance")
        check_bio(ex.tags, path, line)
        out.append(ex)
    return out


def write_jsonl(path: str | Path, examples: Iterable[NluExample]) -> Path:
    import json

    from guimo.io import atomic_write_text

    return atomic_write_text(path, "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in examples))


def iot_intents(intents: Iterable[str]) -> list[str]:
    """HWU64's smart-home intents (scenario ``iot``)."""
    return sorted(i for i in set(intents) if i.startswith("iot_"))
