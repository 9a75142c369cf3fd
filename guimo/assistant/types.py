"""The assistant's shared vocabulary: intents, slots, a parsed command, an action, one turn.

Every part of the assistant speaks these types, so that the NLU model (guimo.inference.nlu), the
device layer (guimo.assistant.actions), the ASR grammar and the data generator agree on names
without importing each other. Word segmentation lives here for the same reason: BIO tags are per
word, and a "word" must mean the same thing to the generator, the loaders, the model and the
grammar (whitespace tokens; each CJK character is its own word, as in Chinese NER corpora).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

# intent -> the slots it may carry (required ones are decided by the device layer)
INTENTS: dict[str, tuple[str, ...]] = {
    "turn_on": ("room", "device", "scope"),  # "start the vacuum cleaner" too
    "turn_off": ("room", "device", "scope"),
    "set_brightness": ("room", "device", "scope", "brightness"),
    "set_color": ("room", "device", "scope", "color"),
    "set_temperature": ("room", "device", "temperature"),
    "set_volume": ("room", "device", "volume"),
    "increase": ("room", "device", "scope", "attribute"),  # "turn up the heat", "make the lights brighter"
    "decrease": ("room", "device", "scope", "attribute"),  # "dim the living room lights", "turn down the volume"
    "open": ("room", "device", "scope", "position"),  # curtains, blinds, a garage door (position: percent open, optional)
    "close": ("room", "device", "scope"),
    "lock": ("room", "device", "scope"),
    "unlock": ("room", "device"),
    "query_state": ("room", "device", "attribute"),  # "what is the temperature in the bedroom"
}
# scope: "all" / "every" / "所有" (which devices a plural command covers); attribute: the quantity a
# relative or query command is about ("heat", "volume", "brighter", "温度"), mapped by the device layer
SLOTS: tuple[str, ...] = ("room", "device", "scope", "brightness", "color", "temperature", "volume", "position", "attribute")
OUT_OF_SCOPE = "out_of_scope"  # the label a parse carries when no intent clears the threshold

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")


def words(text: str) -> list[str]:
    """Split an utterance into the words BIO tags are attached to.

    Whitespace-separated tokens, with every CJK ideograph a word of its own ("打开客厅的灯" -> 6
    words), so Chinese needs no segmenter and mixed input ("把 bedroom 的灯打开") still works.
    """
    return _WORD.findall(text)


def bio_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """(slot, start, end) word spans of a BIO sequence (end exclusive); an I- without its B- opens a span
    (conlleval's rule), so the spans scored are the spans a lenient reader would see."""
    spans: list[tuple[str, int, int]] = []
    slot, start = None, 0
    for i, tag in enumerate([*tags, "O"]):
        kind, _, name = tag.partition("-")
        if slot is not None and (kind != "I" or name != slot):
            spans.append((slot, start, i))
            slot = None
        if kind == "B" or (kind == "I" and slot is None and name):
            slot, start = name, i
    return spans


@dataclass
class Command:
    """One parsed command: what the NLU model read in (a segment of) an utterance."""

    text: str  # the segment of the utterance this command was read from
    intent: str  # a key of INTENTS, or OUT_OF_SCOPE
    confidence: float  # calibrated probability of the intent
    slots: dict[str, str] = field(default_factory=dict)  # slot -> the words as spoken ("twenty one", "客厅")
    slot_confidences: dict[str, float] = field(default_factory=dict)
    out_of_scope: bool = False
    language: str = "en"  # "en" or "zh"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Action:
    """What the device layer did (or refused to do) for one command."""

    command: Command
    status: str  # "done" | "clarify" | "rejected" (out of scope) | "dry_run"
    device: str | None = None  # device id in home.toml
    changes: dict[str, Any] = field(default_factory=dict)  # attribute -> new value
    state: dict[str, Any] = field(default_factory=dict)  # the device's state after the action
    reply: str = ""  # what the assistant says about this command
    # a command that covers several devices ("turn off all the lights", "make the lights brighter"): one
    # Action per device here (each with its device, changes and state), and device None, changes {} above
    group: list["Action"] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Turn:
    """One input end to end: transcript, parsed commands, actions, reply."""

    transcript: str
    commands: list[Command]
    actions: list[Action]
    reply: str
    asr: dict[str, Any] = field(default_factory=dict)  # {"mode": "grammar"|"lm", "ms": ..., "confidence": ...} for speech input
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"transcript": self.transcript, "commands": [c.to_dict() for c in self.commands],
                "actions": [a.to_dict() for a in self.actions], "reply": self.reply, "asr": self.asr,
                "timings_ms": self.timings_ms}
