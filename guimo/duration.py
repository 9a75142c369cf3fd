"""One way to write a duration on the command line, for every command that takes one.

The rule set (``parse_duration``): a positive number, optionally followed by one unit,
``s`` (seconds), ``m`` (minutes), ``h`` (hours) or ``d`` (days); a bare number is seconds.
Decimals are allowed ("1.5h"), whitespace around the parts is ignored ("20 m"), and nothing
else is: no signs, no exponents, no compound forms ("1h30m"), no zero. `guimo scale --budget`
and `guimo keys --expires-in/--grace` used to parse durations with two different rules (one
without days, one without bare seconds); a user should not have to know which flag is which.
"""

from __future__ import annotations

import math
import re

from guimo.errors import GuimoError

UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*")


def parse_duration(text: str | None, what: str = "duration") -> float:
    """Seconds in ``text`` ('90s', '20m', '1.5h', '2d' or plain seconds such as '90').

    ``what`` names the option in the error (e.g. '--budget'), so the message says which input was wrong.
    Raises ``GuimoError`` for anything outside the rule set above, and for zero.
    """
    m = _PATTERN.fullmatch(text or "")
    if not m:
        raise GuimoError(f"{what}: bad duration {text!r}; use a positive number of seconds or a number with s, m, h or d "
                         "(e.g. 90, 90s, 20m, 1.5h, 2d)")
    seconds = float(m.group(1)) * UNITS[m.group(2)]
    if not (seconds > 0 and math.isfinite(seconds)):
        raise GuimoError(f"{what}: duration {text!r} must be more than zero")
    return seconds
