"""FAQ data: the JSONL reader, the StackFAQ XML reader and the query split stratified by need."""

from __future__ import annotations

from collections import Counter

import pytest

from guimo.data.faq import FaqQuery, embedded_faq, out_of_domain, read_faq_jsonl, read_stackfaq, split_queries
from guimo.errors import GuimoError
from tests.conftest import shared_data


def test_jsonl_entries_queries_and_groups(tmp_path):
    p = tmp_path / "faq.jsonl"
    p.write_text('{"id": 1, "question": "How do I pay?", "answer": "By card.", "queries": ["payment options"]}\n\n'
                 '{"id": "b", "question": "Refunds?", "answer": "In 5 days.", "group": "money"}\n')
    faq = read_faq_jsonl(p)
    assert [(e.id, e.group) for e in faq.entries] == [("1", "1"), ("b", "money")]
    assert faq.queries == [FaqQuery("payment options", "1")]
    assert faq.entries[0].text == "How do I pay?\nBy card."


@pytest.mark.parametrize("body, match", [
    ('{"id": 1, "question": "q", "answer": "a"}\n{"id": 2, "question": "q"\n', r"faq\.jsonl:2: not valid JSON"),
    ('{"id": 1, "question": "q"}\n', r"faq\.jsonl:1: missing 'answer'; the fields there are: id, question"),
    ('{"id": 1, "question": "q", "answer": "a"}\n{"id": 1, "question": "r", "answer": "b"}\n', r"faq\.jsonl:2: id '1' repeats line 1"),
    ('{"id": 1, "question": " ", "answer": "a"}\n', r"faq\.jsonl:1: 'question' must be a non-empty string"),
    ('{"id": 1, "question": "q", "answer": "a", "queries": "x"}\n', r"faq\.jsonl:1: 'queries' must be a list"),
    ('\n', r"no FAQ entries"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, body, match):
    p = tmp_path / "faq.jsonl"
    p.write_text(body)
    with pytest.raises(GuimoError, match=match):
        read_faq_jsonl(p)


def test_xml_reader_and_its_errors(tmp_path):
    p = tmp_path / "s.xml"
    p.write_text("<root>\n<qapair>\n<rephr>\nhow to x\n</rephr>\n<rephr>\n*\n</rephr>\n<question>\nX?\n</question>\n"
                 "<answer>\n  do &lt;x&gt;  \n</answer>\n<answer>\nor y\n</answer>\n</qapair>\n</root>\n")
    faq = read_stackfaq(p)
    assert [(e.id, e.question, e.answer) for e in faq.entries] == [("t0-a0", "X?", "do <x>"), ("t0-a1", "X?", "or y")]
    assert faq.queries == [FaqQuery("how to x", "t0")]  # the '*' placeholder is dropped
    bad = tmp_path / "bad.xml"
    bad.write_text("<root>\n<qapair>\n<question>q</question>\n</root>\n")
    with pytest.raises(GuimoError, match=r"bad\.xml:4: malformed XML"):
        read_stackfaq(bad)


def test_split_is_stratified_seeded_and_disjoint():
    faq = embedded_faq()
    split = split_queries(faq.queries, val_fraction=0.2, test_fraction=0.3, seed=0)
    assert split == split_queries(faq.queries, val_fraction=0.2, test_fraction=0.3, seed=0)
    assert sorted(q.text for p in split.values() for q in p) == sorted(q.text for q in faq.queries)
    for part in split.values():  # every need in every split
        assert set(Counter(q.group for q in part)) == {e.group for e in faq.entries}
    assert not {q.text for q in split["train"]} & {q.text for q in split["test"]}


def test_out_of_domain_halves_are_disjoint():
    assert out_of_domain("val") and not set(out_of_domain("val")) & set(out_of_domain("test"))
    with pytest.raises(GuimoError):
        out_of_domain("train")


def test_stackfaq_counts():
    faq = read_stackfaq(shared_data("stackfaq"))
    assert len({e.group for e in faq.entries}) == 125 and len(faq.entries) == 719
    assert len(faq.queries) == 1249  # 1,375 <rephr> entries less the '*' placeholders
    split = split_queries(faq.queries, seed=0)
    assert all(len({q.group for q in part}) == 125 for part in split.values())
