"""Generated smart-home commands in English and Chinese with BIO slot tags: the assistant's default training data.

Each example expands one command pattern (``guimo.assistant.patterns.PATTERNS``) with the words of
one real device of the home: the device is chosen first (one that can carry out the intent), then
every slot is filled from it, so "set the bedroom to 21 degrees" only names a room that has a
thermostat and "change the kitchen light to blue" only a colour the light takes. Numbers come as
digits and as words ("21", "twenty one", "二十一", "百分之五十"), some outside the devices' ranges
(the model must tag "200 degrees" so the device layer can ask back). Politeness fillers ("could
you", "帮我") and several commands joined by a connector ("... and then ...", "...然后...") give
the variety real requests have. Tags are per word as ``guimo.assistant.types.words`` splits them.

Generalisation is measured on held-out *patterns*: ``guimo.assistant.patterns.split`` divides them,
and ``generate(..., patterns=held_out)`` writes utterances in wordings training never saw.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from functools import lru_cache

from guimo.assistant.home import ATTRIBUTE_WORDS, RELATIVE, SCOPE_WORDS, TYPES, Device, Home, can_serve, comparative
from guimo.assistant.normalize import COLORS, spell
from guimo.assistant.patterns import CONNECTORS, FILLERS, PATTERNS, Slot, parse, sample
from guimo.assistant.types import OUT_OF_SCOPE, words
from guimo.data.nlu import NluExample
from guimo.errors import GuimoError

# Requests no device of a home serves, for training a rejection class where a scenario wants one
# ("make me a cup of coffee" is deliberately absent: it is a held-out test of rejection).
OUT_OF_SCOPE_EXAMPLES: dict[str, list[str]] = {
    "en": ["what's the weather like today", "tell me a joke", "what time is it", "order a pizza", "call my mother",
           "how tall is mount everest", "remind me to buy milk", "book a table for two", "translate hello into french",
           "what's on my calendar tomorrow", "who won the game last night", "send a text to john",
           "how do i get to the airport", "add eggs to my shopping list", "what is the capital of france"],
    "zh": ["今天天气怎么样", "讲个笑话", "现在几点了", "帮我订一份披萨", "给妈妈打电话", "提醒我买牛奶", "明天有什么安排",
           "珠穆朗玛峰有多高", "把你好翻译成英文", "帮我订一张机票", "去机场怎么走", "法国的首都是哪里"],
}
FILLER_RATE = 0.25  # chance of a filler before (and, separately, after) a command


def generate(home: Home, *, n: int, languages: tuple[str, ...] | list[str] = ("en", "zh"), multi_command_rate: float = 0.15,
             seed: int = 0, patterns: dict[str, dict[str, list[str]]] | None = None,
             out_of_scope_rate: float = 0.0) -> list[NluExample]:
    """``n`` labelled utterances (seeded: the same arguments give the same list).

    languages: "en" and/or "zh", drawn uniformly per utterance. multi_command_rate: the share of
    utterances with two commands (a tenth of those with three), joined by ``CONNECTORS``; their
    ``intents`` and ``segments`` say where each command lies. patterns: language -> intent -> patterns
    (default ``PATTERNS``; pass one side of ``patterns.split`` for held-out wordings).
    out_of_scope_rate: the share of single-command utterances drawn from ``OUT_OF_SCOPE_EXAMPLES``
    with intent ``out_of_scope`` and no slots.
    """
    patterns = PATTERNS if patterns is None else patterns
    languages = tuple(languages)
    if n < 0:
        raise GuimoError(f"generate: n must be >= 0 (got {n})")
    if not 0 <= multi_command_rate <= 1 or not 0 <= out_of_scope_rate <= 1:
        raise GuimoError("generate: multi_command_rate and out_of_scope_rate are shares in [0, 1]")
    for lang in languages:
        if lang not in ("en", "zh"):
            raise GuimoError(f"generate: unknown language {lang!r} (languages: en, zh)")
        if not patterns.get(lang):
            raise GuimoError(f"generate: no patterns for language {lang!r}")
    rng = random.Random(seed)
    writer = _Writer(home, rng)
    out: list[NluExample] = []
    while len(out) < n:
        lang = rng.choice(languages)
        if out_of_scope_rate and rng.random() < out_of_scope_rate:
            ws = words(rng.choice(OUT_OF_SCOPE_EXAMPLES[lang]))
            out.append(NluExample(ws, ["O"] * len(ws), OUT_OF_SCOPE, lang))
            continue
        count = 1 if rng.random() >= multi_command_rate else (3 if rng.random() < 0.1 else 2)
        commands = [writer.command(patterns[lang], lang) for _ in range(count)]
        if rng.random() < FILLER_RATE:
            ws = words(rng.choice(FILLERS[lang]["before"]))
            commands[0] = (commands[0][0], ws + commands[0][1], ["O"] * len(ws) + commands[0][2])
        if rng.random() < FILLER_RATE:
            ws = words(rng.choice(FILLERS[lang]["after"]))
            commands[-1] = (commands[-1][0], commands[-1][1] + ws, commands[-1][2] + ["O"] * len(ws))
        all_words: list[str] = []
        all_tags: list[str] = []
        segments: list[tuple[int, int]] = []
        for i, (_, ws, tags) in enumerate(commands):
            if i:
                joint = words(rng.choice(CONNECTORS[lang]))
                all_words += joint
                all_tags += ["O"] * len(joint)
            segments.append((len(all_words), len(all_words) + len(ws)))
            all_words += ws
            all_tags += tags
        intents = [intent for intent, _, _ in commands]
        out.append(NluExample(all_words, all_tags, intents[0], lang, intents, segments))
    return out


class _Writer:
    """Fills one pattern with one device's words."""

    def __init__(self, home: Home, rng: random.Random):
        self.home, self.rng = home, rng

    def command(self, by_intent: dict[str, list[str]], lang: str) -> tuple[str, list[str], list[str]]:
        """(intent, words, tags) of one command; retries patterns the home cannot fill (no device for it)."""
        intents = sorted(by_intent)
        for _ in range(200):
            intent = self.rng.choice(intents)
            pattern = self.rng.choice(by_intent[intent])
            filled = self.fill(intent, pattern, lang)
            if filled is not None:
                return intent, *filled
        raise GuimoError(f"generate: the home ({self.home.source}) has no device for the patterns given")

    def fill(self, intent: str, pattern: str, lang: str) -> tuple[list[str], list[str]] | None:
        path = sample(_parsed(pattern), self.rng)
        # in the pattern's order: iterating a set of strings follows PYTHONHASHSEED, which differs between processes,
        # and the values below draw from the seeded rng in this order (the same seed gave other data in another process)
        slots = list(dict.fromkeys(p.name for p in path if isinstance(p, Slot)))
        attribute = None
        if "attribute" in slots:
            wanted = RELATIVE if intent in ("increase", "decrease") else ("brightness", "temperature", "volume", "position")
            words_for = [(w, a) for w, a in ATTRIBUTE_WORDS[lang].items() if a in wanted]
            if not words_for:
                return None
            attribute_word, attribute = self.rng.choice(words_for)
        literal = " ".join(p for p in path if isinstance(p, str))
        if attribute is None and intent in ("increase", "decrease"):
            attribute = comparative(literal)  # "make the {device} louder" only names a device with a volume
        need = _query_need(literal) if intent == "query_state" else None
        devices = [d for d in self.home.devices.values()
                   if can_serve(d, intent, attribute) and (need is None or need in d.capabilities) and self._fits(d, slots, lang)]
        if not devices:
            return None
        device = self.rng.choice(devices)
        values: dict[str, str] = {}
        for slot in slots:
            if slot == "attribute":
                values[slot] = attribute_word
            else:
                values[slot] = self._value(slot, device, slots, lang)
        percent = next((s for s in ("brightness", "position", "volume") if s in values), None)
        if lang == "en" and percent and values[percent].isdigit() and "percent" not in literal and self.rng.random() < 0.3:
            values[percent] += "%"  # typed input: "set the lights to 40%"
        ws: list[str] = []
        tags: list[str] = []
        for piece in path:
            if isinstance(piece, Slot):
                part = words(values[piece.name])
                ws += part
                tags += [f"B-{piece.name}"] + [f"I-{piece.name}"] * (len(part) - 1)
            else:
                part = words(piece)
                ws += part
                tags += ["O"] * len(part)
        return ws, tags

    def _fits(self, d: Device, slots: Collection[str], lang: str) -> bool:
        """Whether every slot of the pattern can be said about device ``d`` in ``lang``."""
        if "room" in slots and not self.home.rooms[d.room].names.get(lang):
            return False
        if "color" in slots and not any(c in d.capabilities.get("color", {}).get("values", []) for c in COLORS[lang].values()):
            return False
        if "device" in slots and not any(self._device_words(d, "room" in slots, "scope" in slots, lang)):
            return False
        return True

    def _device_words(self, d: Device, with_room: bool, plural: bool, lang: str) -> tuple[list[str], list[str]]:
        """(the device's own names, its type's words) that can name ``d`` here. They are drawn as two halves
        (``_value``): pooled, a garage door's one name "door" lost to its type's four ("curtains", "shades", ...),
        so a trained assistant had seen "open the garage door" 5 times and "open the garage blinds" 37."""
        kind = TYPES[d.type]
        if plural:
            return [], list(kind.plural.get(lang) or kind.words.get(lang, ()))
        # plurals without a scope word only for lights ("turn off the kitchen lights"); "unlock the locks" is rare
        type_words = list(kind.words.get(lang, ())) + (list(kind.plural.get(lang, ())) if d.type == "light" else [])
        own = d.names.get(lang, [])
        room_names = sorted((n for r in self.home.rooms.values() for n in r.names.get(lang, [])), key=len, reverse=True)
        if not with_room:
            # a name that starts with a room ("porch light") is always tagged room + device, never as one device
            return [n for n in own if not any(n.startswith(r) for r in room_names)], type_words
        # after a room word: its type words, and its own names without a leading room name ("bedroom lamp" -> "lamp")
        names = []
        for name in own:
            prefix = next((r for r in room_names if name.startswith(r)), None)
            if prefix is None:
                names.append(name)
            elif prefix in self.home.rooms[d.room].names.get(lang, []) and name[len(prefix):].strip():
                names.append(name[len(prefix):].strip())
        return names, type_words

    def _value(self, slot: str, d: Device, slots: Collection[str], lang: str) -> str:
        rng = self.rng
        if slot == "room":
            return rng.choice(self.home.rooms[d.room].names[lang])
        if slot == "device":
            own, kind = self._device_words(d, "room" in slots, "scope" in slots, lang)
            return rng.choice(own if own and (not kind or rng.random() < 0.5) else kind)
        if slot == "scope":
            return rng.choice(SCOPE_WORDS[lang])
        if slot == "color":
            return rng.choice([w for w, c in COLORS[lang].items() if c in d.capabilities["color"]["values"]])
        cap = d.capabilities[slot]
        if slot == "temperature":
            lo, hi = cap["min"], cap["max"]
            r = rng.random()
            if r < 0.1 and lang == "en":  # the Fahrenheit reading of the range (a Celsius thermostat reads them, see actions.py)
                value: float = rng.randint(round(lo * 9 / 5 + 32), round(hi * 9 / 5 + 32))
            elif r < 0.15:
                value = rng.choice([0, 5, 35, 40, 45, 90, 100, 150, 200])  # out of range: tagged, then asked back
            else:
                value = rng.randint(int(lo), int(hi)) + (0.5 if rng.random() < 0.1 else 0)
        else:
            r = rng.random()
            if r < 0.05:
                value = rng.choice([101, 110, 120, 150, 200, 300])
            elif r < 0.6:
                value = rng.choice(range(0, 101, 10)) if rng.random() < 0.5 else rng.choice(range(5, 100, 10))
            else:
                value = rng.randint(int(cap["min"]), int(cap["max"]))
        return _say_number(value, slot, lang, rng)


def _query_need(literal: str) -> str | None:
    """The capability a state question's own words ask about ("is the {device} locked" -> "locked")."""
    for needle, capability in (("locked", "locked"), ("锁", "locked"), ("open", "position"), ("closed", "position"),
                               ("warm", "temperature"), ("hot", "temperature"), ("cold", "temperature"),
                               (" on", "on"), (" off", "on"), ("开着", "on"), ("关了", "on")):
        if needle in f" {literal}":
            return capability
    return None


def _say_number(value: float, slot: str, lang: str, rng: random.Random) -> str:
    """A number as a speaker says it: digits or words; percentages in Chinese often as "百分之五十"."""
    as_words = rng.random() < 0.5
    if lang == "zh":
        text = spell(value, "zh") if as_words else _digits(value)
        if slot in ("brightness", "position") and rng.random() < 0.4:
            text = "百分之" + text
        return text
    return spell(value, "en") if as_words else _digits(value)


def _digits(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@lru_cache(maxsize=None)
def _parsed(pattern: str):
    return parse(pattern)
