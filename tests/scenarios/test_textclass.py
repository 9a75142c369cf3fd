"""The shared text classification core: reading labelled files, the generator, grouped stratified splits."""

from __future__ import annotations

from collections import Counter

import pytest

from guimo.data.intents import OOS_LABEL, IntentGeneratorConfig, generate_queries, read_labelled
from guimo.errors import GuimoError
from guimo.scenarios.textclass import TextDataConfig, keep_fraction, oos_label_of, read_source, split_rows
from tests.conftest import shared_data


def test_generator_is_seeded_and_has_out_of_scope_rows():
    a = generate_queries(IntentGeneratorConfig(per_intent=20, out_of_scope=30, seed=3))
    b = generate_queries(IntentGeneratorConfig(per_intent=20, out_of_scope=30, seed=3))
    c = generate_queries(IntentGeneratorConfig(per_intent=20, out_of_scope=30, seed=4))
    assert a == b and a != c
    counts = Counter(r.label for r in a)
    assert counts[OOS_LABEL] == 30 and len(counts) == 15 and all(n == 20 for l, n in counts.items() if l != OOS_LABEL)
    assert all(r.group.startswith(r.label + "/") for r in a)


def test_split_keeps_groups_whole_and_each_label_on_both_sides():
    rows = [dict(r._asdict()) for r in generate_queries(IntentGeneratorConfig(per_intent=40, out_of_scope=40))]
    kept, held = split_rows(rows, 0.2, seed=0)
    assert sorted(kept + held) == list(range(len(rows)))
    g_kept, g_held = {rows[i]["group"] for i in kept}, {rows[i]["group"] for i in held}
    assert not g_kept & g_held  # no paraphrase template on both sides
    assert {rows[i]["label"] for i in kept} == {rows[i]["label"] for i in held} == {r["label"] for r in rows}
    assert 0.1 < len(held) / len(rows) < 0.35


def test_split_without_groups_is_stratified():
    rows = [{"text": f"t{i}", "label": "ab"[i % 2] if i < 800 else "c", "group": None} for i in range(1000)]
    kept, held = split_rows(rows, 0.1, seed=0)
    per = Counter(rows[i]["label"] for i in held)
    assert per["a"] == pytest.approx(40, abs=2) and per["b"] == pytest.approx(40, abs=2) and per["c"] == pytest.approx(20, abs=2)


def test_keep_fraction_is_nested_and_per_label():
    rows = [{"text": f"t{i}", "label": "abc"[i % 3]} for i in range(300)]
    idx = list(range(300))
    quarter, half = keep_fraction(rows, idx, 0.25, 0), keep_fraction(rows, idx, 0.5, 0)
    assert set(quarter) < set(half)
    assert Counter(rows[i]["label"] for i in quarter) == {"a": 25, "b": 25, "c": 25}


def test_oos_label_detection():
    assert oos_label_of(["a", "oos", "b"], "auto") == "oos"
    assert oos_label_of(["a", "b"], "auto") is None
    assert oos_label_of(["a", "oos"], "none") is None
    with pytest.raises(GuimoError, match="not a label"):
        oos_label_of(["a", "b"], "nope")


def test_csv_reader_detects_columns_and_names_bad_lines(tmp_path):
    good = tmp_path / "q.csv"
    good.write_text('text,category\n"where is, my card",card_arrival\n"two\nlines",other\n', encoding="utf-8")
    rows = read_labelled(good)
    assert [(r.text, r.label) for r in rows] == [("where is, my card", "card_arrival"), ("two\nlines", "other")]

    empty = tmp_path / "empty_text.csv"
    empty.write_text("text,label\nfine,a\n\"a\nb\",b\n ,c\n", encoding="utf-8")
    with pytest.raises(GuimoError, match=r"empty_text.csv:5: empty"):  # the row after a two-line text starts on line 5
        read_labelled(empty)

    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\nok,a\nnot,quoted,b\n", encoding="utf-8")
    with pytest.raises(GuimoError, match=r"ragged.csv:3: 3 fields"):
        read_labelled(ragged)

    with pytest.raises(GuimoError, match=r"no column 'intent'.*columns are: text, category"):
        read_labelled(good, label_field="intent")
    odd = tmp_path / "odd.csv"
    odd.write_text("body,tag\nx,y\n", encoding="utf-8")
    with pytest.raises(GuimoError, match=r"cannot tell which column.*body, tag.*data.text_field"):
        read_labelled(odd)


def test_jsonl_reader_names_the_bad_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\nnot json\n', encoding="utf-8")
    with pytest.raises(GuimoError, match=r"q.jsonl:3: not valid JSON"):
        read_labelled(path)
    path.write_text('{"text": "a", "label": "x"}\n{"body": "b", "label": "y"}\n', encoding="utf-8")
    with pytest.raises(GuimoError, match=r"q.jsonl:2: no field 'text' \(fields: body, label\)"):
        read_labelled(path)


def test_banking77_folder_reads_train_and_test():
    folder = shared_data("banking77")
    rows = read_source(TextDataConfig(path=str(folder)))
    train = [r for r in rows if r["split"] is None]
    test = [r for r in rows if r["split"] == "test"]
    assert len(train) == 10_003 and len(test) == 3_080
    assert len({r["label"] for r in train}) == 77
