"""The command patterns a user may say, in English and Chinese: one source for the data generator and the grammar.

The training-data generator (``guimo.data.smarthome``) expands these patterns into labelled
utterances, and the ASR grammar (``guimo.assistant.grammar``) turns the English ones into JSGF, so
the speech recogniser and the NLU model are trained on the same language.

Pattern syntax (a JSGF-like mini language):

- ``(turn | switch) on``: alternatives, nestable;
- ``[the]``: an optional part;
- ``{room}``, ``{device}``, ``{brightness}``, ``{color}``, ``{temperature}``, ``{volume}``,
  ``{position}``, ``{attribute}``, ``{scope}``: a slot filled from the home's vocabulary
  (``Home.vocabulary``); the filled words carry the slot's BIO tags;
- any other text is literal. In Chinese patterns literal text needs no spaces ("打开{room}的{device}"):
  words are split by ``guimo.assistant.types.words`` (every CJK character a word).

Conventions the device layer relies on: units ("degrees", "percent", "度") are literals outside the
number slots; comparatives ("brighter", "调亮") are literal words of increase/decrease patterns, so
such a command names a device (whose main attribute is meant) or an ``{attribute}`` noun ("heat",
"volume", "温度").

``parse`` and ``sample`` are the only readers of the syntax; ``jsgf`` renders one pattern as a JSGF
rule body for the grammar.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable, Union

from guimo.assistant.types import INTENTS, SLOTS
from guimo.errors import GuimoError

PATTERNS: dict[str, dict[str, list[str]]] = {
    "en": {
        "turn_on": [
            "(turn | switch) on [the] {device}",
            "(turn | switch) on [the] {room} {device}",
            "(turn | switch) [the] {room} {device} on",
            "(turn | switch) on [the] {device} in the {room}",
            "(turn | switch) on {scope} [the] {device}",
            "(turn | switch) on {scope} [the] {room} {device}",
            "(start | power on) [the] {device}",
            "i want [the] {room} {device} on",
            "(put | get) [the] {room} {device} on",
            "(turn | switch) [the] {device} on",
            "{room} {device} on",
        ],
        "turn_off": [
            "(turn | switch) off [the] {device}",
            "(turn | switch) off [the] {room} {device}",
            "(turn | switch) [the] {room} {device} off",
            "(turn | switch) off [the] {device} in the {room}",
            "(turn | switch) off {scope} [the] {device}",
            "(turn | switch) off {scope} [the] {room} {device}",
            "(stop | power off | shut off | kill) [the] {device}",
            "i (want | need) [the] {room} {device} off",
            "(turn | switch) [the] {device} off",
            "{room} {device} off",
        ],
        "set_brightness": [
            "set [the] {device} to {brightness} [percent]",
            "set [the] {room} {device} to {brightness} [percent]",
            "set {scope} [the] {device} to {brightness} percent",
            "(dim | brighten) [the] {room} {device} to {brightness} percent",
            "set [the] brightness of [the] {room} {device} to {brightness} [percent]",
            "{room} {device} (at | to) {brightness} percent",
            "change [the] {device} in the {room} to {brightness} percent [brightness]",
        ],
        "set_color": [
            "(change | set | turn) [the] {device} to {color}",
            "(change | set | turn) [the] {room} {device} to {color}",
            "(change | set | turn) {scope} [the] {device} to {color}",
            "make [the] {room} {device} {color}",
            "set [the] {device} in the {room} to {color} [light]",
            "i want [the] {room} {device} in {color}",
        ],
        "set_temperature": [
            "set [the] {device} to {temperature} [degrees]",
            "set [the] {room} {device} to {temperature} degrees",
            "set [the] {room} to {temperature} degrees",
            "set [the] temperature in the {room} to {temperature} [degrees]",
            "(make | heat) [the] {room} (to | at) {temperature} degrees",
            "i want [it] {temperature} degrees in the {room}",
            "change [the] {device} to {temperature} degrees",
        ],
        "set_volume": [
            "set [the] volume to {volume}",
            "set [the] {device} volume to {volume} [percent]",
            "set [the] volume of [the] {room} {device} to {volume}",
            "change [the] volume on [the] {device} to {volume}",
            "{device} volume {volume}",
        ],
        "increase": [
            "turn up [the] {attribute}",
            "turn up [the] {attribute} in the {room}",
            "turn [the] {attribute} up [in the {room}]",
            "turn up [the] {device}",
            "turn up [the] {room} {device}",
            "increase [the] {attribute} [in the {room}]",
            "increase [the] {room} {device} {attribute}",
            "make [the] {device} (brighter | louder | warmer)",
            "make [the] {room} {device} (brighter | louder | warmer)",
            "brighten [the] {room} {device}",
            "raise [the] {attribute} [of [the] {device}]",
            "make {scope} [the] {device} brighter",
        ],
        "decrease": [
            "turn down [the] {attribute}",
            "turn down [the] {attribute} in the {room}",
            "turn [the] {attribute} down [in the {room}]",
            "turn down [the] {device}",
            "turn down [the] {room} {device}",
            "(decrease | lower | reduce) [the] {attribute} [in the {room}]",
            "(decrease | lower | reduce) [the] {room} {device} {attribute}",
            "dim [the] {device}",
            "dim [the] {room} {device}",
            "dim {scope} [the] {device}",
            "make [the] {room} {device} (dimmer | darker | quieter | cooler)",
        ],
        "open": [
            "open [the] {device}",
            "open [the] {room} {device}",
            "open [the] {device} in the {room}",
            "open [the] {room} {device} (to | at) {position} percent",
            "raise [the] {room} {device}",
            "open {scope} [the] {device}",
        ],
        "close": [
            "close [the] {device}",
            "close [the] {room} {device}",
            "close [the] {device} in the {room}",
            "(shut | lower) [the] {room} {device}",
            "close {scope} [the] {device}",
        ],
        "lock": [
            "lock [the] {device}",
            "lock [the] {room} {device}",
            "lock up [the] {device}",
            "make sure [the] {device} is locked",
            "lock {scope} [the] {device}",
        ],
        "unlock": [
            "unlock [the] {device}",
            "unlock [the] {room} {device}",
            "open the lock (of | on) [the] {device}",
            "let me in through [the] {device}",
        ],
        "query_state": [
            "is [the] {device} on",
            "is [the] {room} {device} (on | off)",
            "is [the] {device} (locked | open | closed)",
            "is [the] {room} {device} (locked | open | closed)",
            "what is [the] {attribute} in the {room}",
            "what's [the] {attribute} [in the {room}]",
            "what is [the] {device} set to",
            "what is [the] {room} {device} {attribute}",
            "how (warm | hot | cold) is [it in] the {room}",
            "(tell me | show me) [the] {attribute} of [the] {room} {device}",
        ],
    },
    "zh": {
        "turn_on": [
            "打开{device}",
            "打开{room}的{device}",
            "打开{room}{device}",
            "把{room}的{device}打开",
            "把{device}打开",
            "开{room}的{device}",
            "(打开 | 开启) {scope}{device}",
            "把{scope}的{device}都打开",
            "启动{device}",
            "开{device}",
        ],
        "turn_off": [
            "关掉{device}",
            "(关闭 | 关掉 | 关上) {room}的{device}",
            "关{room}{device}",
            "把{room}的{device}关(掉 | 上 | 了)",
            "把{device}关掉",
            "(关闭 | 关掉) {scope}{device}",
            "把{scope}的{device}都关掉",
            "停止{device}",
            "关{device}",
        ],
        "set_brightness": [
            "把{device}亮度调到{brightness}",
            "把{room}的{device}亮度调到{brightness}",
            "{room}{device}亮度{brightness}",
            "把{room}的{device}调到{brightness}",
            "{device}亮度设(为 | 成){brightness}",
        ],
        "set_color": [
            "把{device}(调成 | 换成 | 变成){color}",
            "把{room}的{device}(调成 | 换成 | 变成){color}",
            "把{scope}{device}都调成{color}",
            "{room}{device}换成{color}",
        ],
        "set_temperature": [
            "把{device}调到{temperature}度",
            "把{room}的{device}调到{temperature}度",
            "把{room}温度(调到 | 设为 | 设成){temperature}度",
            "{room}温度{temperature}度",
            "{device}温度设(为 | 成){temperature}度",
            "把{room}的温度调到{temperature}",
        ],
        "set_volume": [
            "把音量调到{volume}",
            "把{device}(的 | )音量调到{volume}",
            "{device}音量{volume}",
            "音量设(为 | 成){volume}",
        ],
        "increase": [
            "把{attribute}调高(一点 | 一些 | )",
            "把{room}的{attribute}调高(一点 | )",
            "把{device}(调亮 | 调高 | 开大)(一点 | )",
            "把{room}的{device}(调亮 | 调高 | 开大)(一点 | )",
            "{room}(太冷了 | 有点冷)",
            "(调高 | 提高){attribute}",
            "{device}(亮 | 大)一点",
        ],
        "decrease": [
            "把{attribute}调低(一点 | 一些 | )",
            "把{room}的{attribute}调低(一点 | )",
            "把{device}(调暗 | 调低 | 关小)(一点 | )",
            "把{room}的{device}(调暗 | 调低 | 关小)(一点 | )",
            "{room}(太热了 | 有点热)",
            "(调低 | 降低){attribute}",
            "{device}(暗 | 小)一点",
        ],
        "open": [
            "打开{device}",
            "打开{room}的{device}",
            "把{room}的{device}(打开 | 拉开)",
            "把{device}拉开",
            "把{room}的{device}打开到{position}",
        ],
        "close": [
            "关上{device}",
            "关上{room}的{device}",
            "把{room}的{device}(关上 | 拉上)",
            "把{device}拉上",
        ],
        "lock": [
            "锁上{device}",
            "把{device}锁(上 | 好)",
            "锁{room}的{device}",
            "把{scope}{device}都锁上",
        ],
        "unlock": [
            "(打开 | 解开){device}的锁",
            "解锁{device}",
            "把{device}解锁",
            "给{device}开锁",
        ],
        "query_state": [
            "{device}开着吗",
            "{room}的{device}(开着吗 | 关了吗 | 锁了吗)",
            "{room}的{attribute}是多少",
            "现在{attribute}(是 | )多少",
            "{room}{device}的{attribute}是多少",
            "{device}锁(好 | 上)了吗",
        ],
    },
}
# Words that join several commands in one utterance ("turn off the lights and then lock the door").
CONNECTORS: dict[str, list[str]] = {"en": ["and", "and then", "then"], "zh": ["然后", "再", "并且"]}
# Politeness around a command; the generator adds them, the grammar may allow them.
FILLERS: dict[str, dict[str, list[str]]] = {
    "en": {"before": ["please", "could you", "can you", "hey", "would you please", "i'd like you to"],
           "after": ["please", "for me", "now", "right now"]},
    "zh": {"before": ["帮我", "请", "麻烦", "请帮我"], "after": ["吧", "一下", "谢谢"]},
}

_TOKEN = re.compile(r"\s*(\(|\)|\[|\]|\||\{[a-z_]+\}|[^()\[\]|{}]+?(?=\s*[()\[\]|{]|\s*$))")


@dataclass(frozen=True)
class Slot:
    name: str


@dataclass(frozen=True)
class Optional_:
    body: "Seq"


@dataclass(frozen=True)
class Alt:
    options: tuple["Seq", ...]


Node = Union[str, Slot, Optional_, Alt]
Seq = tuple[Node, ...]


def parse(pattern: str) -> Seq:
    """Parse one pattern into a sequence of nodes: literal text, Slot, Optional_ and Alt.

    Raises GuimoError naming the pattern for unbalanced brackets or an unknown slot.
    """
    tokens = [t.strip() for t in _TOKEN.findall(pattern) if t.strip()]
    if "".join(tokens).replace(" ", "") != re.sub(r"\s+", "", pattern):
        raise GuimoError(f"pattern {pattern!r}: unexpected character (braces hold a slot name, e.g. {{room}})")
    pos = 0

    def seq(closers: str) -> Seq:
        nonlocal pos
        out: list[Node] = []
        while pos < len(tokens) and tokens[pos] not in closers:
            tok = tokens[pos]
            pos += 1
            if tok == "(":
                options = [seq(")|")]
                while pos < len(tokens) and tokens[pos] == "|":
                    pos += 1
                    options.append(seq(")|"))
                expect(")")
                out.append(Alt(tuple(options)))
            elif tok == "[":
                body = seq("]")
                expect("]")
                out.append(Optional_(body))
            elif tok in ")]|":
                raise GuimoError(f"pattern {pattern!r}: unbalanced {tok!r}")
            elif tok.startswith("{"):
                name = tok[1:-1]
                if name not in SLOTS:
                    raise GuimoError(f"pattern {pattern!r}: unknown slot {{{name}}} (slots: {', '.join(SLOTS)})")
                out.append(Slot(name))
            else:
                out.append(tok)
        return tuple(out)

    def expect(closer: str) -> None:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos] != closer:
            raise GuimoError(f"pattern {pattern!r}: missing {closer!r}")
        pos += 1

    body = seq("")
    if pos != len(tokens):
        raise GuimoError(f"pattern {pattern!r}: unbalanced {tokens[pos]!r}")
    return body


def sample(seq: Seq, rng: random.Random, optional_rate: float = 0.5) -> list[str | Slot]:
    """One random path through a parsed pattern: literal strings and Slot placeholders, in order."""
    out: list[str | Slot] = []
    for node in seq:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, Slot):
            out.append(node)
        elif isinstance(node, Optional_):
            if rng.random() < optional_rate:
                out.extend(sample(node.body, rng, optional_rate))
        else:
            out.extend(sample(rng.choice(node.options), rng, optional_rate))
    return out


def slots_of(seq: Seq) -> set[str]:
    """Every slot a pattern can contain (on any path)."""
    found: set[str] = set()
    for node in seq:
        if isinstance(node, Slot):
            found.add(node.name)
        elif isinstance(node, Optional_):
            found |= slots_of(node.body)
        elif isinstance(node, Alt):
            for option in node.options:
                found |= slots_of(option)
    return found


def jsgf(pattern: str, rule: Callable[[str], str] = lambda slot: f"<{slot}>") -> str:
    """A pattern as a JSGF rule body: ``(turn | switch) on [the] <room> <device>``.

    ``rule(slot)`` names the rule a slot expands to. An empty alternative ("(的 | )") becomes
    ``<NULL>``, JSGF's empty rule.
    """

    def render(seq: Seq) -> str:
        parts = []
        for node in seq:
            if isinstance(node, str):
                parts.append(node)
            elif isinstance(node, Slot):
                parts.append(rule(node.name))
            elif isinstance(node, Optional_):
                parts.append(f"[{render(node.body)}]")
            else:
                parts.append("(" + " | ".join(render(o) or "<NULL>" for o in node.options) + ")")
        return " ".join(parts)

    return render(parse(pattern))


def check(patterns: dict[str, dict[str, list[str]]] = PATTERNS) -> None:
    """Raise GuimoError if a pattern does not parse, an intent is unknown or a slot is not the intent's."""
    for lang, by_intent in patterns.items():
        for intent, items in by_intent.items():
            if intent not in INTENTS:
                raise GuimoError(f"patterns[{lang!r}]: unknown intent {intent!r}")
            for pattern in items:
                extra = slots_of(parse(pattern)) - set(INTENTS[intent])
                if extra:
                    raise GuimoError(f"patterns[{lang!r}][{intent!r}] {pattern!r}: slot {sorted(extra)} is not a slot of {intent}")


def split(patterns: dict[str, dict[str, list[str]]] = PATTERNS, *, holdout: float = 0.25,
          seed: int = 0) -> tuple[dict[str, dict[str, list[str]]], dict[str, dict[str, list[str]]]]:
    """Split the patterns of every (language, intent) into (train, held out), for testing generalisation.

    Each intent with at least two patterns holds out ``max(1, round(holdout * n))`` of them (chosen
    with ``seed``), so held-out utterances use wordings the model never saw; an intent with one
    pattern keeps it in train only.
    """
    rng = random.Random(seed)
    train: dict[str, dict[str, list[str]]] = {}
    held: dict[str, dict[str, list[str]]] = {}
    for lang, by_intent in patterns.items():
        train[lang], held[lang] = {}, {}
        for intent, items in by_intent.items():
            items = list(items)
            k = 0 if len(items) < 2 else min(len(items) - 1, max(1, round(holdout * len(items))))
            out = set(rng.sample(range(len(items)), k))
            train[lang][intent] = [p for i, p in enumerate(items) if i not in out]
            if out:
                held[lang][intent] = [p for i, p in enumerate(items) if i in out]
    return train, held
