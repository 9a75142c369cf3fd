"""The command patterns parse, use only their intent's slots, render as JSGF, and split by pattern."""

from __future__ import annotations

import random

import pytest

from guimo.assistant import patterns as P
from guimo.assistant.types import INTENTS
from guimo.errors import GuimoError


def test_every_shipped_pattern_parses_and_uses_only_its_intents_slots():
    P.check()  # raises on the first bad pattern
    for lang in ("en", "zh"):
        assert set(P.PATTERNS[lang]) == set(INTENTS), f"{lang}: every intent needs patterns"
        for intent, items in P.PATTERNS[lang].items():
            assert len(items) >= 4, f"{lang}/{intent}: paraphrase variety needs several patterns"


def test_parse_and_sample_cover_alternatives_optionals_and_slots():
    seq = P.parse("(turn | switch) off [the] {room} {device}")
    seen = set()
    rng = random.Random(0)
    for _ in range(200):
        path = P.sample(seq, rng)
        text = " ".join(x if isinstance(x, str) else f"<{x.name}>" for x in path)
        seen.add(text)
    assert seen == {"turn off <room> <device>", "switch off <room> <device>",
                    "turn off the <room> <device>", "switch off the <room> <device>"}
    assert P.slots_of(P.parse("turn [the] {attribute} down [in the {room}]")) == {"attribute", "room"}


def test_jsgf_rendering_keeps_structure_and_empty_alternatives():
    assert P.jsgf("(turn | switch) on [the] {room} {device}") == "(turn | switch) on [the] <room> <device>"
    assert P.jsgf("把{device}(的 | )音量调到{volume}", rule=lambda s: f"<{s}_zh>") == "把 <device_zh> (的 | <NULL>) 音量调到 <volume_zh>"


@pytest.mark.parametrize("bad, message", [
    ("(turn | switch on [the] {device}", "missing ')'"),
    ("turn on the {lamp}", "unknown slot"),
    ("turn on ] the {device}", "unbalanced"),
])
def test_malformed_patterns_are_named(bad, message):
    with pytest.raises(GuimoError) as e:
        P.parse(bad)
    assert bad in str(e.value) and message in str(e.value), str(e.value)


def test_check_names_a_slot_outside_the_intent():
    with pytest.raises(GuimoError, match=r"'color'.*not a slot of lock"):
        P.check({"en": {"lock": ["lock the {device} in {color}"]}})


def test_split_holds_out_whole_patterns_per_intent_and_is_seeded():
    train, held = P.split(holdout=0.25, seed=3)
    for lang in ("en", "zh"):
        for intent, items in P.PATTERNS[lang].items():
            assert held[lang][intent], f"{lang}/{intent} holds out nothing"
            assert train[lang][intent], f"{lang}/{intent} keeps nothing to train on"
            assert sorted(train[lang][intent] + held[lang][intent]) == sorted(items)
            assert not set(train[lang][intent]) & set(held[lang][intent])
    assert P.split(seed=3) == (train, held)
    assert P.split(seed=4) != (train, held)
