"""The smart-home generator: valid BIO per word, seeded, both languages, several commands, values the home can act on."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from guimo.assistant import patterns as P
from guimo.assistant.actions import plan
from guimo.assistant.home import Home
from guimo.assistant.state import HomeState
from guimo.assistant.types import INTENTS, OUT_OF_SCOPE, Command, bio_spans, words
from guimo.data.nlu import join_words
from guimo.data.smarthome import generate
from guimo.errors import GuimoError


@pytest.fixture(scope="module")
def home() -> Home:
    return Home.load()


@pytest.fixture(scope="module")
def examples(home):
    return generate(home, n=1500, multi_command_rate=0.2, seed=11, out_of_scope_rate=0.03)


def valid_bio(tags: list[str]) -> bool:
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return False
        if tag != "O" and not re.fullmatch(r"[BI]-[a-z_]+", tag):
            return False
        prev = tag
    return True


def test_every_example_is_valid_bio_with_its_intents_slots(examples):
    for e in examples:
        assert valid_bio(e.tags), e
        assert words(join_words(e.words)) == e.words, f"not split as types.words splits: {e.words}"
        for intent, (start, end) in zip(e.intents, e.segments):
            for slot, _, _ in bio_spans(e.tags[start:end]):
                assert slot in INTENTS.get(intent, ()), f"{slot} in a {intent} command: {e.words}"
        covered = {i for s, t in e.segments for i in range(s, t)}
        assert all(e.tags[i] == "O" for i in range(len(e.words)) if i not in covered), "a connector carries a slot"


def test_both_languages_every_intent_several_commands_and_numbers_as_words_and_digits(examples):
    langs = Counter(e.language for e in examples)
    assert abs(langs["en"] - langs["zh"]) < 0.1 * len(examples)
    for lang in ("en", "zh"):
        seen = {i for e in examples if e.language == lang for i in e.intents}
        assert set(INTENTS) <= seen, f"{lang} misses {set(INTENTS) - seen}"
    multi = [e for e in examples if len(e.intents) > 1]
    assert 0.12 < len(multi) / len(examples) < 0.28
    connectors = {" ".join(e.words[a[1]:b[0]]) for e in multi for a, b in zip(e.segments, e.segments[1:])}
    assert {"and", "then", "然 后"} <= connectors
    temps = [join_words(e.words[s:t]) for e in examples for slot, s, t in bio_spans(e.tags) if slot == "temperature"]
    assert any(t.isdigit() for t in temps) and any(re.fullmatch(r"[a-z ]+", t) for t in temps) and any("十" in t for t in temps)
    assert any(w.startswith("百分之") for e in examples if e.language == "zh"
               for slot, s, t in bio_spans(e.tags) if slot == "brightness" for w in [join_words(e.words[s:t])])
    ood = [e for e in examples if e.intent == OUT_OF_SCOPE]
    assert ood and all(set(e.tags) == {"O"} for e in ood)


def test_seeded(home):
    a = generate(home, n=50, seed=3, multi_command_rate=0.3)
    assert [x.to_dict() for x in a] == [x.to_dict() for x in generate(home, n=50, seed=3, multi_command_rate=0.3)]
    assert [x.to_dict() for x in a] != [x.to_dict() for x in generate(home, n=50, seed=4, multi_command_rate=0.3)]


def test_generated_commands_name_devices_the_home_can_act_on(tmp_path, home, examples):
    """Each generated single command, read back through its tags, reaches the device layer as a command it can
    act on: it never names a room or device the home lacks, nor asks a device for what it cannot do. It may ask
    back only where the generator meant it to (a value out of range, a singular word with several candidates)."""
    statuses = Counter()
    with HomeState(tmp_path / "s.sqlite", home) as state:
        for e in examples:
            if len(e.intents) > 1 or e.intent == OUT_OF_SCOPE:
                continue
            slots = {slot: join_words(e.words[s:t]) for slot, s, t in bio_spans(e.tags)}
            action = plan(Command(join_words(e.words), e.intent, 1.0, slots, language=e.language), home, state)
            statuses[action.status] += 1
            if action.status == "clarify":
                asks = ("Which one", "您是指哪一个", "out of range", "超出了范围")
                assert any(a in action.reply for a in asks), f"{join_words(e.words)!r}: {action.reply}"
    assert statuses["done"] > 0.7 * sum(statuses.values()), statuses


def as_regex(seq) -> str:
    """A parsed pattern as a regular expression over a skeleton: words joined by spaces, each slot as "{slot}"."""
    parts = []
    for node in seq:
        if isinstance(node, str):
            parts.append(r"\s*" + r"\s+".join(map(re.escape, node.split())))
        elif isinstance(node, P.Slot):
            parts.append(r"\s*" + re.escape(f"{{{node.name}}}"))
        elif isinstance(node, P.Optional_):
            parts.append(f"(?:{as_regex(node.body)})?")
        else:
            parts.append("(?:" + "|".join(as_regex(o) for o in node.options) + ")")
    return "".join(parts)


def skeleton(e) -> str:
    """An example's words with every slot span replaced by "{slot}" ("lock {scope} the {device}")."""
    out, i = [], 0
    for slot, start, end in bio_spans(e.tags):
        out += e.words[i:start] + [f"{{{slot}}}"]
        i = end
    return " ".join(out + e.words[i:])


def test_held_out_patterns_write_only_their_own_wordings(home):
    train, held = P.split(seed=0)
    intents = ("lock", "set_temperature", "increase")
    fillers = "|".join(re.escape(f) for side in P.FILLERS["en"].values() for f in side)

    def written_by(e, patterns) -> bool:
        return any(re.fullmatch(rf"\s*(?:(?:{fillers})\s+)?{as_regex(P.parse(p))}(?:\s+(?:{fillers}))?\s*", skeleton(e))
                   for p in patterns)

    out = generate(home, n=60, languages=("en",), patterns={"en": {i: held["en"][i] for i in intents}}, multi_command_rate=0, seed=1)
    assert {e.intent for e in out} == set(intents)
    assert all(written_by(e, held["en"][e.intent]) for e in out)
    # the check tells wordings apart: utterances of the training patterns fail it
    trained = generate(home, n=60, languages=("en",), patterns={"en": {i: train["en"][i] for i in intents}}, multi_command_rate=0, seed=1)
    assert not any(written_by(e, held["en"][e.intent]) for e in trained)


def test_bad_arguments_are_clear_errors(home):
    with pytest.raises(GuimoError, match="unknown language 'fr'"):
        generate(home, n=5, languages=("fr",))
    with pytest.raises(GuimoError, match="shares in"):
        generate(home, n=5, multi_command_rate=1.5)
    assert generate(home, n=0) == []


def test_the_asr_smoke_commands_are_wordings_the_generator_writes(home):
    """Every in-scope asr_smoke command, with the slots the device layer needs (tests/assistant/test_actions.py),
    is a path through one of its intent's English patterns, with slot words from the home's vocabulary."""
    from tests.assistant.test_actions import ASR_SMOKE

    vocab = home.vocabulary("en")
    for text, (command, _) in ASR_SMOKE.items():
        if command.intent == OUT_OF_SCOPE:
            continue
        shape = text
        for slot, value in sorted(command.slots.items(), key=lambda kv: -len(kv[1])):
            assert value in vocab[slot], f"{text!r}: {value!r} is not a {slot} word"
            shape = re.sub(rf"\b{re.escape(value)}\b", f"{{{slot}}}", shape, count=1)
        assert any(re.fullmatch(rf"\s*{as_regex(P.parse(p))}\s*", shape) for p in P.PATTERNS["en"][command.intent]), shape


def test_the_same_seed_generates_the_same_commands_in_every_process():
    """String hashing differs between processes (PYTHONHASHSEED): iterating a set of slot names once drew the values
    in another order, so the same seed gave another training set, and another model, in every test worker."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, sys; from guimo.assistant.home import Home; from guimo.data.smarthome import generate; "
            "print(json.dumps([e.to_dict() for e in generate(Home.load(None), n=300, multi_command_rate=0.2, seed=3)]))")
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout for h in (1, 2, 3)]
    assert len(json.loads(outs[0])) >= 300 and outs[0] == outs[1] == outs[2]

