"""home.toml: the packaged default loads, bad files are named by file and key, names resolve by the documented policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from guimo.assistant.home import TYPES, Home
from guimo.errors import GuimoError


@pytest.fixture(scope="module")
def home() -> Home:
    return Home.load()


def test_default_home_has_every_device_type_and_chinese_names(home):
    assert {d.type for d in home.devices.values()} == set(TYPES)
    for thing in [*home.rooms.values(), *home.devices.values()]:
        assert thing.names["en"] and thing.names["zh"], thing.id
    t = home.devices["thermostat"].capabilities["temperature"]
    assert (t["min"], t["max"], t["unit"]) == (10, 30, "C")
    assert home.devices["kitchen_light"].default == {"on": False, "brightness": 80, "color": "white"}
    assert home.devices["front_door"].default == {"locked": False}


def test_vocabulary_lists_what_a_user_may_say(home):
    en, zh = home.vocabulary("en"), home.vocabulary("zh")
    assert {"kitchen", "living room", "bedroom"} <= set(en["room"]) and {"厨房", "客厅", "卧室"} <= set(zh["room"])
    assert {"lights", "ceiling fan", "front door", "tv", "vacuum cleaner"} <= set(en["device"])
    assert {"灯", "窗帘", "空调"} <= set(zh["device"])
    assert {"blue", "warm white"} <= set(en["color"]) and "蓝色" in zh["color"]
    assert "cyan" not in en["color"]  # no device of this home takes it
    assert {"twenty one", "21", "seventy two"} <= set(en["temperature"])  # 72: read as Fahrenheit (actions)
    assert {"二十一", "百"} & set(zh["temperature"]) == {"二十一"}
    assert {"fifty", "one hundred", "0"} <= set(en["brightness"])


@pytest.mark.parametrize("room, device, lang, expected, plural", [
    ("kitchen", "lights", "en", ["kitchen_light"], True),
    (None, "lights", "en", ["kitchen_light", "living_room_light", "bedroom_light", "bathroom_light", "porch_light", "hallway_light"], True),
    ("bedroom", "lamp", "en", ["bedroom_light"], False),
    (None, "bedroom lamp", "en", ["bedroom_light"], False),
    ("garage", "door", "en", ["garage_door"], False),  # "garage" + "door" -> the garage door
    ("front", "door", "en", ["front_door"], False),  # "front" is no room: read with the device word
    (None, "thermostat", "en", ["thermostat"], False),  # its own name beats the type word of the other thermostats
    ("bathroom", "thermostat", "en", ["bathroom_heater"], False),  # in the bathroom only the type word matches
    ("客厅", "灯", "zh", ["living_room_light"], False),
    ("客 厅", "灯", "zh", ["living_room_light"], False),  # words joined with spaces
    ("bedroom", "灯", "zh", ["bedroom_light"], False),  # mixed languages
    (None, "blinds", "en", ["living_room_blinds"], False),
    (None, "kitchen lights", "en", ["kitchen_light"], True),  # a room inside the device words
    (None, "客厅的灯", "zh", ["living_room_light"], False),
    ("bedroom", "ceiling fans", "en", ["ceiling_fan"], True),  # a plural of an own name
    (None, "ceiling", "en", ["kitchen_light", "ceiling_fan"], False),  # part of own names: the device layer asks which
    ("bedroom", "ceiling", "en", ["ceiling_fan"], False),
    (None, "扫地", "zh", ["vacuum"], False),
])
def test_match_follows_the_documented_policy(home, room, device, lang, expected, plural):
    m = home.match(room, device, lang)
    assert [d.id for d in m.devices] == expected
    assert m.plural is plural and m.unknown_room is None and m.unknown_device is None


def test_unknown_words_are_reported_not_raised(home):
    assert home.match("attic", "light").unknown_room == "attic"
    m = home.match("garage", "light")
    assert m.unknown_device == "light" and m.room.id == "garage" and m.devices == []
    assert home.match(None, "toaster").unknown_device == "toaster"
    assert home.match(None, "lights", scope="all").plural


def test_resolve_keeps_devices_that_can_serve_the_intent(home):
    assert [d.id for d in home.resolve(None, "door", "lock")] == ["front_door", "back_door"]
    assert [d.id for d in home.resolve(None, "door", "open")] == []  # no door here has a position by that word
    assert [d.id for d in home.resolve("garage", "door", "open")] == ["garage_door"]
    assert [d.id for d in home.resolve("bathroom", None, "set_temperature")] == ["bathroom_heater"]
    assert [d.id for d in home.resolve("kitchen", "light", "lock")] == []


BASE = """
[rooms.kitchen]
en = ["kitchen"]
[devices.lamp]
room = "kitchen"
type = "light"
en = ["lamp"]
"""


@pytest.mark.parametrize("extra, key, message", [
    ('[devices.x]\nroom = "attic"\ntype = "light"\nen = ["x"]\n', "devices.x.room", "room 'attic' is not in"),
    ('[devices.x]\nroom = "kitchen"\ntype = "toaster"\nen = ["x"]\n', "devices.x.type", "unknown device type 'toaster'"),
    ('[devices.x]\nroom = "kitchen"\ntype = "plug"\nen = ["x"]\ncapabilities = { brightness = {} }\n', "devices.x.capabilities.brightness", "a plug has no 'brightness'"),
    ('[devices.x]\nroom = "kitchen"\ntype = "light"\nen = ["lamp"]\n', "devices.x.en", "duplicate name 'lamp'"),
    ('[rooms.k2]\nen = ["Kitchen"]\n', "rooms.k2.en", "duplicate name 'Kitchen'"),
    ('[devices.x]\nroom = "kitchen"\ntype = "thermostat"\nen = ["x"]\nstate = { temperature = 99 }\n', "devices.x.state.temperature", "in 10..30"),
    ('[devices.x]\nroom = "kitchen"\ntype = "light"\nen = ["x"]\nstate = { color = "blue" }\n', "devices.x.state.color", "not one of its colours"),
    ('[devices.x]\nroom = "kitchen"\ntype = "light"\nzh = ["灯"]\n', "devices.x.en", "at least one English name"),
    ('[devices.x]\nroom = "kitchen"\ntype = "light"\nen = ["x"]\nprimary = "yes"\n', "devices.x.primary", "true or false"),
    ('[devices.x]\nroom = "kitchen"\ntype = "light"\nen = ["x"]\nbrightness = 5\n', "devices.x.brightness", "unknown key"),
    ('[devices.x]\nroom = "kitchen"\ntype = "thermostat"\nen = ["x"]\ncapabilities = { temperature = { min = 30, max = 10 } }\n', "devices.x.capabilities.temperature", "min < max"),
])
def test_bad_home_files_name_the_file_and_key(tmp_path: Path, extra, key, message):
    path = tmp_path / "home.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    with pytest.raises(GuimoError) as e:
        Home.load(path)
    assert str(e.value).startswith(f"{path}: {key}: ") and message in str(e.value), str(e.value)


def test_unreadable_home_files_are_named(tmp_path: Path):
    with pytest.raises(GuimoError, match="home file not found"):
        Home.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[rooms\n", encoding="utf-8")
    with pytest.raises(GuimoError, match=f"{bad}: not valid TOML"):
        Home.load(bad)
    with pytest.raises(GuimoError, match=f"{tmp_path}: cannot read the home file"):
        Home.load(tmp_path)  # a folder
    latin = tmp_path / "latin.toml"
    latin.write_bytes("[rooms.küche]\n".encode("latin-1"))
    with pytest.raises(GuimoError, match="cannot read the home file"):
        Home.load(latin)
