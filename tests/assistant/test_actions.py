"""The device layer: the asr_smoke commands reach the right device and state; bad commands ask back."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from guimo.assistant.actions import apply, plan, reply
from guimo.assistant.home import Home
from guimo.assistant.state import HomeState
from guimo.assistant.types import OUT_OF_SCOPE, Command
from tests.conftest import shared_data

LIGHTS = ["kitchen_light", "living_room_light", "bedroom_light", "bathroom_light", "porch_light", "hallway_light"]


def cmd(text: str, intent: str, lang: str = "en", **slots: str) -> Command:
    return Command(text, intent, 0.99, slots, out_of_scope=intent == OUT_OF_SCOPE, language=lang)


# The 20 commands of ../shared/data/asr_smoke/transcripts.tsv, parsed by hand as the NLU model should,
# and the state each leaves when run alone on the default home: {device: {attribute: value}}.
ASR_SMOKE = {
    "turn on the kitchen lights": (cmd("", "turn_on", room="kitchen", device="lights"), {"kitchen_light": {"on": True}}),
    "turn off the kitchen lights": (cmd("", "turn_off", room="kitchen", device="lights"), {"kitchen_light": {"on": False}}),
    "switch off the bedroom lamp": (cmd("", "turn_off", room="bedroom", device="lamp"), {"bedroom_light": {"on": False}}),
    "dim the living room lights": (cmd("", "decrease", room="living room", device="lights"), {"living_room_light": {"brightness": 50}}),
    # 72 is outside the Celsius thermostat's 10-30 and inside 50-86 F: read as Fahrenheit, 22.2 C rounded to the 0.5 step
    "set the thermostat to seventy two degrees": (cmd("", "set_temperature", device="thermostat", temperature="seventy two"),
                                                  {"thermostat": {"temperature": 22, "on": True}}),
    "turn up the heat in the bathroom": (cmd("", "increase", attribute="heat", room="bathroom"), {"bathroom_heater": {"temperature": 23}}),
    "lock the front door": (cmd("", "lock", device="front door"), {"front_door": {"locked": True}}),
    "unlock the back door": (cmd("", "unlock", device="back door"), {"back_door": {"locked": False}}),
    "open the garage door": (cmd("", "open", room="garage", device="door"), {"garage_door": {"position": 100}}),
    "close the living room blinds": (cmd("", "close", room="living room", device="blinds"), {"living_room_blinds": {"position": 0}}),
    "turn on the ceiling fan": (cmd("", "turn_on", device="ceiling fan"), {"ceiling_fan": {"on": True}}),
    "turn off the tv": (cmd("", "turn_off", device="tv"), {"tv": {"on": False}}),
    # plural, no room: every light that is on (living room 70, bedroom 60 by default) goes up a step of 20
    "make the lights brighter": (cmd("", "increase", device="lights"),
                                 {"living_room_light": {"brightness": 90}, "bedroom_light": {"brightness": 80}}),
    "change the bedroom lights to blue": (cmd("", "set_color", room="bedroom", device="lights", color="blue"), {"bedroom_light": {"color": "blue"}}),
    "start the vacuum cleaner": (cmd("", "turn_on", device="vacuum cleaner"), {"vacuum": {"on": True}}),
    "make me a cup of coffee": (cmd("", OUT_OF_SCOPE), {}),
    "turn on the porch light": (cmd("", "turn_on", room="porch", device="light"), {"porch_light": {"on": True}}),
    "set the lights to fifty percent": (cmd("", "set_brightness", device="lights", brightness="fifty"),
                                        {d: {"brightness": 50, "on": True} for d in LIGHTS}),
    "turn off all the lights": (cmd("", "turn_off", scope="all", device="lights"), {d: {"on": False} for d in LIGHTS}),
    # no device word: volume devices that are on (the speaker; the tv is off by default)
    "turn down the volume": (cmd("", "decrease", attribute="volume"), {"speaker": {"volume": 30}}),
}


@pytest.fixture(scope="module")
def home() -> Home:
    return Home.load()


@pytest.fixture
def state(tmp_path: Path, home: Home) -> HomeState:
    with HomeState(tmp_path / "state.sqlite", home) as s:
        yield s


def test_the_hand_parses_cover_every_asr_smoke_transcript():
    folder = shared_data("asr_smoke")
    with open(folder / "transcripts.tsv", encoding="utf-8") as f:
        transcripts = [row[1] for row in csv.reader(f, delimiter="\t")]
    assert len(transcripts) == 20 and set(transcripts) == set(ASR_SMOKE)


@pytest.mark.parametrize("text", list(ASR_SMOKE))
def test_asr_smoke_command_reaches_the_right_device_and_state(text, home, state):
    command, expected = ASR_SMOKE[text]
    command.text = text
    before = state.all()
    action = apply(plan(command, home, state), state)
    if not expected:
        assert action.status == "rejected" and "can't" in action.reply and state.all() == before
        return
    assert action.status == "done", action.reply
    touched = {a.device: a for a in (action.group or [action])}
    assert set(touched) == set(expected)
    after = state.all()
    for device, change in expected.items():
        assert {k: after[device][k] for k in change} == change, device
        assert touched[device].state == after[device]
    for device in set(after) - set(expected):
        assert after[device] == before[device], f"{device} changed"


def test_fahrenheit_policy_and_out_of_range_values_ask_back(home, state):
    a = plan(cmd("set the thermostat to 200 degrees", "set_temperature", device="thermostat", temperature="200"), home, state)
    assert a.status == "clarify" and "from 10 to 30 °C" in a.reply and "200" in a.reply
    a = plan(cmd("set the thermostat to 21.5", "set_temperature", device="thermostat", temperature="21.5"), home, state)
    assert a.changes["temperature"] == 21.5 and "°F" not in a.reply
    a = plan(cmd("set the thermostat to 68 fahrenheit", "set_temperature", device="thermostat", temperature="68 fahrenheit"), home, state)
    assert a.changes["temperature"] == 20 and "(68 °F)" in a.reply
    a = plan(cmd("set the thermostat to 40", "set_temperature", device="thermostat", temperature="40"), home, state)
    assert a.status == "clarify"  # 40 is neither 10-30 C nor 50-86 F
    a = plan(cmd("set the kitchen lights to 150 percent", "set_brightness", room="kitchen", device="lights", brightness="150"), home, state)
    assert a.status == "clarify" and "from 0 to 100%" in a.reply
    a = plan(cmd("set the thermostat to hot", "set_temperature", device="thermostat", temperature="hot"), home, state)
    assert a.status == "clarify" and "'hot'" in a.reply
    a = plan(cmd("set the lights", "set_brightness", room="kitchen", device="lights"), home, state)
    assert a.status == "clarify" and a.reply == "What brightness would you like for the kitchen light?"


@pytest.mark.parametrize("command, expected", [
    (cmd("turn on the garage light", "turn_on", room="garage", device="light"), "I don't know a 'garage light'; the garage has: garage door."),
    (cmd("turn on the attic light", "turn_on", room="attic", device="light"), "I don't know a room called 'attic'."),
    (cmd("turn on the toaster", "turn_on", device="toaster"), "I don't know a device called 'toaster'."),
    (cmd("turn off the light", "turn_off", device="light"), "Which one do you mean: the living room light or the bedroom lamp?"),
    (cmd("turn on the front door", "turn_on", device="front door"), "I can't turn on the front door."),
    (cmd("change the kitchen light to cyan", "set_color", room="kitchen", device="light", color="cyan"), "can't be cyan; it can be white"),
    (cmd("turn up the heat in the garage", "increase", attribute="heat", room="garage"), "There is nothing in the garage I can turn up"),
    (cmd("turn up the spin", "increase", attribute="spin"), "I don't know what 'spin' is"),
    (cmd("turn on", "turn_on"), "What should I turn on?"),
    (cmd("turn on the ceiling fan", "turn_on", device="ceiling"), "Which one do you mean: the kitchen light or the ceiling fan in the bedroom?"),
    (cmd("关掉", "turn_off", "zh"), "您要关闭什么？"),
])
def test_unknown_ambiguous_or_impossible_commands_ask_back(command, expected, home, state):
    before = state.all()
    action = apply(plan(command, home, state), state)
    assert action.status == "clarify" and expected in action.reply, action.reply
    assert state.all() == before


def test_singular_words_narrow_by_state_then_primary(home, state):
    # two thermostats are on: "turn up the heat" names neither, and the primary one is meant
    a = plan(cmd("turn up the heat", "increase", attribute="heat"), home, state)
    assert a.device == "thermostat" and a.changes == {"temperature": 21}
    state.apply("living_room_light", {"on": False})  # now only the bedroom lamp is on
    a = plan(cmd("turn off the light", "turn_off", device="light"), home, state)
    assert a.device == "bedroom_light"


def test_relative_changes_clamp_at_the_range(home, state):
    state.apply("speaker", {"volume": 95})
    a = apply(plan(cmd("turn up the speaker", "increase", device="speaker"), home, state), state)
    assert a.state["volume"] == 100
    a = apply(plan(cmd("turn up the speaker", "increase", device="speaker"), home, state), state)
    assert a.changes == {"volume": 100} and "already at its highest volume" in a.reply


def test_chinese_commands_act_and_reply_in_chinese(home, state):
    a = apply(plan(cmd("打开客厅的灯", "turn_on", "zh", room="客厅", device="灯"), home, state), state)
    assert a.device == "living_room_light" and a.reply == "好的，已打开客厅的落地灯。"
    a = apply(plan(cmd("把卧室的温度调到二十一度", "set_temperature", "zh", room="卧室", temperature="二十一"), home, state), state)
    assert a.device == "bedroom_ac" and state.get("bedroom_ac")["temperature"] == 21 and a.reply.startswith("好的")
    a = apply(plan(cmd("关掉所有灯", "turn_off", "zh", scope="所有", device="灯"), home, state), state)
    assert len(a.group) == 6 and not any(s["on"] for d, s in state.all().items() if d in LIGHTS)
    a = plan(cmd("把空调调到两百度", "set_temperature", "zh", device="空调", temperature="两百"), home, state)
    assert a.status == "clarify" and "16到30度" in a.reply
    a = plan(cmd("把阁楼的灯打开", "turn_on", "zh", room="阁楼", device="灯"), home, state)
    assert a.status == "clarify" and "阁楼" in a.reply and "厨房" in a.reply
    a = plan(cmd("给我讲个笑话", OUT_OF_SCOPE, "zh"), home, state)
    assert a.status == "rejected" and a.reply.startswith("抱歉")


def test_query_answers_from_the_state(home, state):
    state.apply("bedroom_ac", {"temperature": 18.5})
    a = apply(plan(cmd("what is the temperature in the bedroom", "query_state", attribute="temperature", room="bedroom"), home, state), state)
    assert a.status == "done" and a.changes == {} and "18.5 °C" in a.reply
    a = plan(cmd("is the front door locked", "query_state", device="front door"), home, state)
    assert a.reply == "The front door in the hallway is unlocked."


def test_plan_changes_nothing_and_reply_joins_in_the_language(home, state):
    before = state.all()
    first = plan(cmd("turn off all the lights", "turn_off", scope="all", device="lights"), home, state)
    second = plan(cmd("lock the front door", "lock", device="front door"), home, state)
    assert state.all() == before  # planned only: a dry run stops here
    assert reply([first, second], "en") == "Turned off 6 lights. Locked the front door."
    assert reply([], "zh") == "抱歉，我没听懂。"
    applied = [apply(first, state), apply(second, state)]
    assert all(not s["on"] for d, s in state.all().items() if d in LIGHTS) and state.get("front_door")["locked"]
    assert [g.state["on"] for g in applied[0].group] == [False] * 6


def test_a_group_acts_on_the_devices_that_can_and_names_the_others(home, state):
    a = apply(plan(cmd("change all the lights to yellow", "set_color", scope="all", device="lights", color="yellow"), home, state), state)
    assert a.status == "done" and [g.device for g in a.group] == ["kitchen_light", "living_room_light", "bedroom_light"]
    assert a.reply == ("Changed 3 lights to yellow. The bathroom light, the porch light and the hallway light can't do that, "
                       "so I left them as they were.")
    assert state.get("bathroom_light")["color"] == "white" and state.get("kitchen_light") == {"on": True, "brightness": 80, "color": "yellow"}
    a = plan(cmd("change the porch light to yellow", "set_color", room="porch", device="light", color="yellow"), home, state)
    assert a.status == "clarify" and "it can be white" in a.reply
