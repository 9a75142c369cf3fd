"""The NLU example type and the SNIPS / HWU64 / JSONL readers: the real files parse, bad lines are named."""

from __future__ import annotations

import json

import pytest

from guimo.data.nlu import (NluExample, check_bio, detect_format, join_words, load_splits, parse_markup, read_hwu64, read_jsonl,
                            read_snips, write_jsonl)
from guimo.errors import GuimoError
from tests.conftest import shared_data


def test_snips_standard_split_parses_with_aligned_tags():
    splits = load_splits(shared_data("snips"))
    assert {k: len(v) for k, v in splits.items()} == {"train": 13084, "val": 700, "test": 700}
    first = splits["train"][0]
    assert first.words[:3] == ["listen", "to", "westbam"] and first.tags[2] == "B-artist" and first.intent == "PlayMusic"
    assert all(len(e.words) == len(e.tags) and e.words for part in splits.values() for e in part)
    assert {e.intent for e in splits["test"]} == {"AddToPlaylist", "BookRestaurant", "GetWeather", "PlayMusic", "RateBook",
                                                  "SearchCreativeWork", "SearchScreeningEvent"}
    # lines ending in a space (2,470 in train) give no empty word
    assert not any("" in e.words for e in splits["train"])


def test_hwu64_fold1_markup_becomes_bio_with_scenario_intents():
    splits = load_splits(shared_data("hwu64"))
    assert len(splits["train"]) == 9960 and len(splits["test"]) == 1076
    intents = {e.intent for e in splits["train"]}
    assert len(intents) == 64 and "iot_hue_lightoff" in intents
    assert sum(e.intent.startswith("iot_") for e in splits["test"]) == 118
    ex = next(e for e in splits["train"] if e.words == "turn off bedroom light at nine thirty pm".split())
    assert ex.tags == ["O", "O", "B-house_place", "O", "O", "B-time", "I-time", "I-time"]


def test_markup_parser_and_its_errors():
    words, tags = parse_markup("wake me at [time : five am] in the [house_place : kitchen]")
    assert words == "wake me at five am in the kitchen".split()
    assert tags == ["O", "O", "O", "B-time", "I-time", "O", "O", "B-house_place"]
    for bad in ("turn on [house_place : kitchen light", "turn on [ : kitchen] light", "turn on [room : ] light", "x ] y"):
        with pytest.raises(GuimoError, match="f.csv:7"):
            parse_markup(bad, "f.csv", 7)


def test_snips_length_mismatch_is_named_by_file_and_line(tmp_path):
    (tmp_path / "seq.in").write_text("play some jazz\nbook a table\n")
    (tmp_path / "seq.out").write_text("O O B-genre\nO O\n")
    (tmp_path / "label").write_text("PlayMusic\nBookRestaurant\n")
    with pytest.raises(GuimoError, match=r"seq.out:2: 2 tags for the 3 words"):
        read_snips(tmp_path)
    (tmp_path / "seq.out").write_text("O O B-genre\nO O X-thing\n")
    (tmp_path / "seq.in").write_text("play some jazz\nbook a table\n")
    with pytest.raises(GuimoError, match=r"seq.out:2: 'X-thing' is not a BIO tag"):
        read_snips(tmp_path)
    (tmp_path / "label").write_text("PlayMusic\n")
    with pytest.raises(GuimoError, match=r"label:2: ends early"):
        read_snips(tmp_path)
    (tmp_path / "label").unlink()
    with pytest.raises(GuimoError, match="label: missing"):
        read_snips(tmp_path)


def test_hwu64_bad_row_is_named_by_file_and_line(tmp_path):
    header = "answerid;scenario;intent;answer_annotation;answer_from_anno;answer_from_user\n"
    (tmp_path / "iot_hue_lighton.csv").write_text(header + '1;iot;hue_lighton;"lights on in the [house_place : hall]";"a";"a"\n'
                                                  '2;iot;hue_lighton;"lights on [house_place hall]";"b";"b"\n')
    with pytest.raises(GuimoError, match=r"iot_hue_lighton.csv:3: .*markup"):
        read_hwu64(tmp_path)
    (tmp_path / "iot_hue_lighton.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(GuimoError, match=r"iot_hue_lighton.csv:1: header lacks"):
        read_hwu64(tmp_path)


def test_multi_command_example_cuts_into_its_commands_and_round_trips(tmp_path):
    ex = NluExample("turn off the lights and then lock the front door".split(),
                    ["O", "O", "O", "B-device", "O", "O", "O", "O", "B-device", "I-device"], "turn_off", "en",
                    ["turn_off", "lock"], [(0, 4), (6, 10)])
    a, b = ex.commands()
    assert (a.words, a.intent, a.tags[-1]) == (["turn", "off", "the", "lights"], "turn_off", "B-device")
    assert (b.words, b.intent, b.tags) == (["lock", "the", "front", "door"], "lock", ["O", "O", "B-device", "I-device"])
    write_jsonl(tmp_path / "x.jsonl", [ex])
    assert read_jsonl(tmp_path / "x.jsonl")[0] == ex
    with pytest.raises(ValueError):
        NluExample(["a", "b"], ["O"], "x")
    with pytest.raises(ValueError):
        NluExample(["a", "b"], ["O", "O"], "x", intents=["x", "y"], segments=[(0, 1), (1, 3)])


def test_jsonl_accepts_text_records_and_names_bad_lines(tmp_path):
    p = tmp_path / "more.jsonl"
    p.write_text(json.dumps({"text": "打开客厅的灯", "intent": "turn_on", "tags": ["O", "O", "B-room", "I-room", "O", "B-device"],
                             "language": "zh"}, ensure_ascii=False) + "\n" + json.dumps({"text": "hello", "tags": ["O", "O"], "intent": "x"}) + "\n")
    with pytest.raises(GuimoError, match="more.jsonl:2"):
        read_jsonl(p)
    p.write_text(json.dumps({"text": "打开客厅的灯", "intent": "turn_on"}, ensure_ascii=False) + "\n")
    (ex,) = read_jsonl(p)
    assert ex.words == ["打", "开", "客", "厅", "的", "灯"] and ex.tags == ["O"] * 6
    assert detect_format(p) == "jsonl"


def test_join_words_keeps_chinese_unspaced():
    assert join_words(["打", "开", "the", "客", "厅"]) == "打开the客厅"
    assert join_words(["turn", "on", "the", "light"]) == "turn on the light"
    with pytest.raises(GuimoError):
        check_bio(["O", "B-"], "f", 1)
