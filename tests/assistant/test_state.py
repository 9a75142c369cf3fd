"""HomeState: SQLite device states that persist, change atomically and survive a killed writer."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guimo.assistant.home import Home
from guimo.assistant.state import HomeState
from guimo.errors import GuimoError


@pytest.fixture(scope="module")
def home() -> Home:
    return Home.load()


def test_starts_from_the_defaults_and_persists_between_opens(tmp_path: Path, home):
    db = tmp_path / "state.sqlite"
    with HomeState(db, home) as state:
        assert state.all() == {d.id: d.default for d in home.devices.values()}
        new = state.apply("kitchen_light", {"on": True, "brightness": 35})
        assert new == {"on": True, "brightness": 35, "color": "white"}
    with HomeState(db, home) as again:
        assert again.get("kitchen_light") == new
        assert again.get("front_door") == {"locked": False}
        again.reset()
        assert again.get("kitchen_light") == home.devices["kitchen_light"].default


def test_bad_changes_are_refused_and_change_nothing(tmp_path: Path, home):
    with HomeState(tmp_path / "s.sqlite", home) as state:
        before = state.all()
        for device, change, message in [
            ("thermostat", {"temperature": 200}, "outside what it takes (10..30)"),
            ("kitchen_light", {"color": "gold"}, "outside what it takes"),
            ("kettle", {"brightness": 10}, "has no 'brightness'"),
            ("toaster", {"on": True}, "unknown device 'toaster'"),
            ("front_door", {"locked": "yes"}, "true or false"),
        ]:
            with pytest.raises(GuimoError, match=re.escape(message)):
                state.apply(device, change)
        # one bad device in a group change: no device of the group changes
        with pytest.raises(GuimoError):
            state.apply_many({"kitchen_light": {"on": True}, "thermostat": {"temperature": 99}})
        assert state.all() == before


def test_a_new_device_in_home_toml_joins_an_existing_state_file(tmp_path: Path, home):
    db = tmp_path / "s.sqlite"
    small = Home({k: v for k, v in home.rooms.items()}, {k: v for k, v in home.devices.items() if k != "kettle"})
    with HomeState(db, small) as state:
        state.apply("kitchen_light", {"on": True})
        assert "kettle" not in state.all()
    with HomeState(db, home) as state:
        assert state.get("kettle") == {"on": False} and state.get("kitchen_light")["on"] is True


def test_a_narrower_home_toml_brings_out_of_range_values_back_to_defaults(tmp_path: Path, home):
    db = tmp_path / "s.sqlite"
    with HomeState(db, home) as state:
        state.apply("thermostat", {"temperature": 29.5})
        state.apply("kitchen_light", {"color": "purple", "brightness": 10})
    raw = {"rooms": {"hallway": {"en": ["hallway"]}, "kitchen": {"en": ["kitchen"]}},
           "devices": {"thermostat": {"room": "hallway", "type": "thermostat", "en": ["thermostat"],
                                      "capabilities": {"temperature": {"min": 15, "max": 25}}, "state": {"temperature": 19}},
                       "kitchen_light": {"room": "kitchen", "type": "light", "en": ["kitchen light"],
                                         "capabilities": {"color": {"values": ["white", "red"]}}}}}
    with HomeState(db, Home.from_dict(raw)) as state:
        assert state.get("thermostat") == {"on": True, "temperature": 19}
        assert state.get("kitchen_light") == {"on": False, "brightness": 10, "color": "white"}


def test_not_a_database_is_a_clear_error(tmp_path: Path, home):
    bad = tmp_path / "state.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GuimoError, match=f"{bad}: not a usable device-state database"):
        HomeState(bad, home)


WRITER = """
import sys
from guimo.assistant.home import Home
from guimo.assistant.state import HomeState
state = HomeState(sys.argv[1], Home.load())
i = 0
while True:
    i = i % 100 + 1
    state.apply_many({"kitchen_light": {"brightness": i}, "bedroom_light": {"brightness": i}, "thermostat": {"temperature": 10 + i / 5}})
    if i == 1:
        print("writing", flush=True)
"""


def test_a_writer_killed_mid_way_leaves_the_last_committed_state(tmp_path: Path, home):
    db = tmp_path / "state.sqlite"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        time.sleep(0.3)  # hundreds of transactions in flight
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    with HomeState(db, home) as state:
        s = state.all()
    k, b, t = s["kitchen_light"]["brightness"], s["bedroom_light"]["brightness"], s["thermostat"]["temperature"]
    # equal brightnesses are no default state (80 and 60): the writer's last whole transaction is there
    assert k == b and t == pytest.approx(10 + k / 5), "a group change was torn by the kill"
