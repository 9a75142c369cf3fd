"""The one duration rule set shared by `guimo scale --budget` and `guimo keys --expires-in/--grace`."""

from __future__ import annotations

import datetime as dt

import pytest

from guimo.duration import parse_duration
from guimo.errors import GuimoError


@pytest.mark.parametrize("text, seconds", [
    ("90", 90.0), ("90s", 90.0), ("20m", 1200.0), ("1.5h", 5400.0), ("2d", 172800.0),
    (" 20 m ", 1200.0), ("0.5", 0.5), (".5m", 30.0), ("3.", 3.0),
])
def test_the_rules(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "+5m", "1h30m", "5 min", "5M", "1e3", "inf", "nan", "m", "0", "0.0h", "5w"])
def test_everything_else_is_refused_naming_the_option(text):
    with pytest.raises(GuimoError, match=r"^--budget: "):
        parse_duration(text, "--budget")


def test_none_is_refused():
    with pytest.raises(GuimoError, match="bad duration None"):
        parse_duration(None)


def test_keys_and_scale_share_the_rules():
    """Days for a sweep budget and bare seconds for a key's grace: both were refused by one of the two old parsers."""
    from guimo.cli.keys import parse_duration as key_duration

    assert key_duration("90") == dt.timedelta(seconds=90)
    assert key_duration("2d") == dt.timedelta(days=2)
    with pytest.raises(GuimoError, match="^--grace: "):
        key_duration("2 weeks", "--grace")
