"""Slot values: numbers in English and Chinese words and digits, units, colours; unreadable values give a reply."""

from __future__ import annotations

import pytest

from guimo.assistant.normalize import SlotValueError, normalize_slot, number, spell, stated_unit
from guimo.errors import GuimoError


@pytest.mark.parametrize("text, lang, value", [
    ("21", "en", 21), ("21.5", "en", 21.5), ("seventy two", "en", 72), ("twenty-one", "en", 21),
    ("fifty percent", "en", 50), ("50%", "en", 50), ("one hundred and five", "en", 105), ("a hundred", "en", 100),
    ("twenty one point five", "en", 21.5), ("two hundred degrees", "en", 200), ("72 F", "en", 72), ("zero", "en", 0),
    ("二十一", "zh", 21), ("二十一度", "zh", 21), ("百分之五十", "zh", 50), ("三十", "zh", 30), ("十", "zh", 10),
    ("十五", "zh", 15), ("一百零五", "zh", 105), ("两百", "zh", 200), ("一百五", "zh", 150), ("二十一点五", "zh", 21.5),
    ("25度", "zh", 25), ("２５", "zh", 25), ("百分之70", "zh", 70),
])
def test_numbers_in_words_and_digits(text, lang, value):
    assert number(text, lang) == value


@pytest.mark.parametrize("text, lang", [("hot", "en"), ("", "en"), ("twenty blue", "en"), ("热", "zh"), ("百分之", "zh"), ("and", "en")])
def test_no_number_is_none(text, lang):
    assert number(text, lang) is None


@pytest.mark.parametrize("value", [0, 7, 10, 13, 20, 21, 72, 99, 100, 105, 120, 21.5])
def test_spell_reads_back(value):
    assert number(spell(value, "en"), "en") == value
    assert number(spell(value, "zh"), "zh") == value


def test_units_said_are_read_apart():
    assert stated_unit("72 fahrenheit") == "F" and stated_unit("72°F") == "F" and stated_unit("华氏七十二度") == "F"
    assert stated_unit("21 celsius") == "C" and stated_unit("摄氏二十一度") == "C"
    assert stated_unit("seventy two degrees") is None and stated_unit("twenty one") is None


@pytest.mark.parametrize("slot, text, lang, value", [
    ("temperature", "seventy two", "en", 72), ("brightness", "fifty percent", "en", 50), ("brightness", "max", "en", 100),
    ("volume", "half", "en", 50), ("position", "一半", "zh", 50), ("brightness", "百分之五十", "zh", 50),
    ("color", "Blue", "en", "blue"), ("color", "warm white", "en", "warm white"), ("color", "蓝色", "zh", "blue"),
    ("color", "红", "zh", "red"), ("color", "violet", "en", "purple"), ("color", "红色", "en", "red"),
    ("room", "  The Kitchen ", "en", "the kitchen"), ("temperature", "21.5", "en", 21.5),
    ("color", "蓝 色", "zh", "blue"), ("room", "客 厅", "zh", "客厅"), ("temperature", "二 十 一", "zh", 21),  # words joined by spaces
])
def test_normalize_slot(slot, text, lang, value):
    assert normalize_slot(slot, text, lang) == value


def test_bad_values_raise_a_reply_in_the_commands_language():
    with pytest.raises(SlotValueError) as e:
        normalize_slot("temperature", "hot", "en")
    assert isinstance(e.value, GuimoError) and e.value.slot == "temperature"
    assert e.value.reply == "I didn't understand 'hot' as a temperature. Please say a number, like 'twenty one degrees'."
    with pytest.raises(SlotValueError, match="没听懂亮度"):
        normalize_slot("brightness", "很亮", "zh")
    with pytest.raises(SlotValueError, match="I don't know the colour 'gold'"):
        normalize_slot("color", "gold", "en")
    with pytest.raises(SlotValueError, match="我不认识“金色”这个颜色"):
        normalize_slot("color", "金色", "zh")
