"""The device layer: a parsed command -> a checked action -> new device states -> what to say back.

``plan`` validates a command against the home and the current states without changing anything:
it finds the devices (``Home.match``), checks that they can do what is asked and that the value is
one they take, and computes the change. What it cannot do safely becomes a question
(status ``"clarify"``): an unknown room or device (naming what exists), a singular device word
with several candidates, a value out of range ("200 degrees" states the range), a missing value.
Out-of-scope input is ``"rejected"`` politely. ``apply`` writes a planned change in one transaction
and fills the new state; ``reply`` joins the replies in the command's language (EN or ZH).

Policies (documented here because users meet them):

- Several candidates. A plural word ("lights") or a scope word ("all", "所有") covers every
  candidate; a relative command over a plural ("make the lights brighter") covers the lit ones when
  any is on. A singular word, or no device word ("turn down the volume"), is narrowed first to the
  devices whose state makes the command meaningful (on ones for "turn off", volume and relative
  changes; off ones for "turn on"), then to the ``primary`` device of home.toml; still several -> ask.
- Relative steps: brightness and position 20 points, volume 10, temperature 1 degree, clamped to
  the device's range ("already at its highest" when it cannot move).
- Temperatures. A number with no unit in the thermostat's range is read in its unit. A Celsius
  thermostat told a number outside its range that is inside the Fahrenheit equivalent of its range
  ("seventy two degrees" for 10-30 C: 50-86 F) reads it as Fahrenheit, converts (72 F -> 22 C,
  rounded to the device's step) and says so in the reply; an F thermostat reads C the same way. A
  stated unit ("72 fahrenheit", "华氏") is converted. Anything else asks back with the range.
- Setting a brightness above 0, a colour or a temperature also switches the device on.
"""

from __future__ import annotations

import dataclasses

from guimo.assistant.home import ATTRIBUTE_WORDS, TYPES, Device, Home, can_serve, clean, comparative
from guimo.assistant.normalize import COLOR_NAMES_ZH, SlotValueError, normalize_slot, spell, stated_unit
from guimo.assistant.state import HomeState
from guimo.assistant.types import INTENTS, OUT_OF_SCOPE, Action, Command

STEPS = {"brightness": 20, "position": 20, "volume": 10, "temperature": 1}
ATTR_NAMES = {"en": {"brightness": "brightness", "temperature": "temperature", "volume": "volume", "position": "position"},
              "zh": {"brightness": "亮度", "temperature": "温度", "volume": "音量", "position": "开合度"}}
VERBS = {  # what a command does, for "I can't ..." replies
    "en": {"turn_on": "turn on", "turn_off": "turn off", "set_brightness": "dim", "set_color": "change the colour of",
           "set_temperature": "set a temperature on", "set_volume": "set the volume of", "increase": "turn up",
           "decrease": "turn down", "open": "open", "close": "close", "lock": "lock", "unlock": "unlock",
           "query_state": "check"},
    "zh": {"turn_on": "打开", "turn_off": "关闭", "set_brightness": "调亮度", "set_color": "换颜色", "set_temperature": "调温度",
           "set_volume": "调音量", "increase": "调高", "decrease": "调低", "open": "打开", "close": "关上", "lock": "锁上",
           "unlock": "解锁", "query_state": "查看"},
}


def plan(command: Command, home: Home, state: HomeState) -> Action:
    """Check ``command`` against the home and the states; the Action to take (status "done") or the question to ask."""
    lang = "zh" if command.language == "zh" else "en"
    say = _Say(lang, home)
    if command.out_of_scope or command.intent == OUT_OF_SCOPE or command.intent not in INTENTS:
        return Action(command, "rejected", reply=say.rejected())
    intent, slots = command.intent, {k: v for k, v in command.slots.items() if v and k in INTENTS[command.intent]}
    attribute = None
    if slots.get("attribute"):
        word = clean(slots["attribute"])
        attribute = next((t[word] for t in (ATTRIBUTE_WORDS.get(lang, {}), *ATTRIBUTE_WORDS.values()) if word in t), None)
        if attribute is None:
            return _clarify(command, say.unknown_attribute(slots["attribute"]))
    elif intent in ("increase", "decrease"):
        attribute = comparative(command.text)  # "make the bedroom warmer", "把灯调亮": else the device's main attribute

    if attribute is None and not set(slots) & {"room", "device", "scope", "brightness", "color", "temperature", "volume", "position"}:
        return _clarify(command, say.what(intent))  # "turn on": of everything in the home, which? ("set the volume to 30" is clear)
    match = home.match(slots.get("room"), slots.get("device"), lang, slots.get("scope"))
    if match.unknown_room:
        return _clarify(command, say.unknown_room(match.unknown_room))
    if match.unknown_device:
        return _clarify(command, say.unknown_device(match.unknown_device, match.room.id if match.room else None))
    candidates = [d for d in match.devices if can_serve(d, intent, attribute)]
    if not candidates:
        if slots.get("device") and match.devices:
            return _clarify(command, say.cannot(intent, match.devices[0]))
        return _clarify(command, say.nothing_can(intent, match.room.id if match.room else None))
    if match.plural and intent in ("increase", "decrease"):
        lit = [d for d in candidates if state.get(d.id).get("on", True)]
        candidates = lit or candidates
    elif not match.plural and len(candidates) > 1:
        candidates = _narrow(candidates, intent, state)
        if len(candidates) > 1 and intent != "query_state":
            return _clarify(command, say.which(candidates))

    if intent == "query_state":
        return Action(command, "done", candidates[0].id if len(candidates) == 1 else None,
                      state=state.get(candidates[0].id) if len(candidates) == 1 else {},
                      reply=" ".join(say.describe(d, state.get(d.id), attribute) for d in candidates))
    planned: list[Action] = []
    refused: list[tuple[Device, str]] = []  # in a group, devices that cannot take the value ("all the lights" to a colour)
    for device in candidates:
        try:
            changes, note = _changes(command, intent, slots, attribute, device, state.get(device.id), say)
        except _Ask as ask:
            if len(candidates) == 1:
                return _clarify(command, str(ask))
            refused.append((device, str(ask)))
            continue
        new = {**state.get(device.id), **changes}
        planned.append(Action(command, "done", device.id, changes, new, say.done(intent, [device], new, attribute, note)))
    if not planned:
        return _clarify(command, refused[0][1])
    if len(planned) == 1 and not refused:
        return planned[0]
    done = [home.devices[a.device] for a in planned]
    text = say.done(intent, done, planned[0].state, attribute, "") + say.left_out([d for d, _ in refused])
    return Action(command, "done", reply=text, group=planned)


def apply(action: Action, state: HomeState) -> Action:
    """Write a planned action ("done") in one transaction and fill the new states; others come back unchanged."""
    if action.status != "done":
        return action
    if action.group:
        new = state.apply_many({a.device: a.changes for a in action.group if a.changes})
        group = [dataclasses.replace(a, state=new.get(a.device, state.get(a.device))) for a in action.group]
        return dataclasses.replace(action, group=group)
    if action.device is None:
        return action  # a query about several devices: nothing to write
    new = state.apply(action.device, action.changes) if action.changes else state.get(action.device)
    return dataclasses.replace(action, state=new)


def reply(actions: list[Action], lang: str = "en") -> str:
    """One reply for a whole utterance, in ``lang``."""
    if not actions:
        return "抱歉，我没听懂。" if lang == "zh" else "Sorry, I didn't catch a command."
    return ("" if lang == "zh" else " ").join(a.reply for a in actions if a.reply)


# -- the parts of plan ---------------------------------------------------------------------------
class _Ask(Exception):
    """A value plan cannot act on; its message is the question to ask back."""


def _clarify(command: Command, text: str) -> Action:
    return Action(command, "clarify", reply=text)


def _narrow(candidates: list[Device], intent: str, state: HomeState) -> list[Device]:
    """Several candidates for a singular or missing device word: those the command makes sense for, then primary."""
    want_on = {"turn_on": False, "turn_off": True}.get(intent, True)
    if intent in ("turn_on", "turn_off", "set_volume", "increase", "decrease"):
        fitting = [d for d in candidates if "on" in d.capabilities and state.get(d.id).get("on") is want_on]
        if len(fitting) == 1:
            return fitting
        candidates = fitting or candidates
    primary = [d for d in candidates if d.primary]
    return primary if len(primary) == 1 else candidates


def _changes(command: Command, intent: str, slots: dict[str, str], attribute: str | None, device: Device,
             current: dict, say: "_Say") -> tuple[dict, str]:
    """The state change for one device, and a note for the reply; raises _Ask for a value to ask about."""
    if intent in ("turn_on", "turn_off"):
        return {"on": intent == "turn_on"}, ""
    if intent in ("lock", "unlock"):
        return {"locked": intent == "lock"}, ""
    if intent == "close":
        return {"position": device.capabilities["position"]["min"]}, ""
    if intent == "open":
        if not slots.get("position"):
            return {"position": device.capabilities["position"]["max"]}, ""
        return {"position": _value(slots, "position", device, say)}, ""
    if intent == "set_color":
        if not slots.get("color"):
            raise _Ask(say.missing("color", device))
        try:
            color = normalize_slot("color", slots["color"], say.lang)
        except SlotValueError as e:
            raise _Ask(e.reply) from None
        if color not in device.capabilities["color"]["values"]:
            raise _Ask(say.no_such_color(device, color))
        return {"color": color, "on": True}, ""
    if intent == "set_brightness":
        value = _value(slots, "brightness", device, say)
        return {"brightness": value, "on": value > 0}, ""
    if intent == "set_volume":
        return {"volume": _value(slots, "volume", device, say)}, ""
    if intent == "set_temperature":
        value, note = _temperature(slots, command.text, device, say)
        return {"temperature": value, "on": True}, note
    # increase / decrease
    attr = attribute or TYPES[device.type].main
    cap = device.capabilities[attr]
    sign = 1 if intent == "increase" else -1
    value = _fit(current[attr] + sign * STEPS[attr], cap)
    changes = {attr: value}
    if attr == "brightness" and intent == "increase":
        changes["on"] = True
    return changes, ("limit" if value == current[attr] else "")


def _value(slots: dict[str, str], slot: str, device: Device, say: "_Say") -> float:
    if not slots.get(slot):
        raise _Ask(say.missing(slot, device))
    try:
        value = normalize_slot(slot, slots[slot], say.lang)
    except SlotValueError as e:
        raise _Ask(e.reply) from None
    cap = device.capabilities[slot]
    if not cap["min"] <= value <= cap["max"]:
        raise _Ask(say.out_of_range(slot, device, value))
    return _fit(value, cap)


def _temperature(slots: dict[str, str], text: str, device: Device, say: "_Say") -> tuple[float, str]:
    if not slots.get("temperature"):
        raise _Ask(say.missing("temperature", device))
    try:
        value = float(normalize_slot("temperature", slots["temperature"], say.lang))
    except SlotValueError as e:
        raise _Ask(e.reply) from None
    cap = device.capabilities["temperature"]
    unit, said = cap["unit"], stated_unit(f"{slots['temperature']} {text}")
    other = "F" if unit == "C" else "C"
    if said is not None and said != unit:  # "72 fahrenheit" to a Celsius thermostat
        reading, note = _convert(value, said, unit), f"{_fmt(value)} °{said}"
    elif said is None and not cap["min"] <= value <= cap["max"] and cap["min"] <= _convert(value, other, unit) <= cap["max"]:
        reading, note = _convert(value, other, unit), f"{_fmt(value)} °{other}"  # "seventy two degrees": Fahrenheit
    else:
        reading, note = value, ""
    if not cap["min"] <= reading <= cap["max"]:
        raise _Ask(say.out_of_range("temperature", device, value))
    return _fit(reading, cap), note


def _convert(value: float, source: str, target: str) -> float:
    if source == target:
        return value
    return (value - 32) * 5 / 9 if source == "F" else value * 9 / 5 + 32


def _fit(value: float, cap: dict) -> float:
    """Clamp to the range and round to the step (an int where the step is whole)."""
    step = cap.get("step", 1) or 1
    value = min(max(value, cap["min"]), cap["max"])
    value = round(round(value / step) * step, 6)
    return int(value) if float(value).is_integer() else value


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


class _Say:
    """Every sentence the device layer says, in English and Chinese."""

    def __init__(self, lang: str, home: Home):
        self.lang, self.home = lang, home

    def _en(self) -> bool:
        return self.lang != "zh"

    def name(self, d: Device) -> str:
        return f"the {d.name('en')}" if self._en() else self.home.display(d, "zh")

    def where(self, d: Device) -> str:
        """A device named with its room when the name alone may not say which ("the heater in the bathroom")."""
        if not self._en():
            return self.home.display(d, "zh")
        room = self.home.room_name(d.room, "en")
        return self.name(d) if room in d.name("en") else f"{self.name(d)} in the {room}"

    def _list(self, items: list[str]) -> str:
        if not self._en():
            return "、".join(items[:-1]) + ("还是" if len(items) > 1 else "") + items[-1]
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]

    def rejected(self) -> str:
        return ("抱歉，这个我做不到。我可以开关、调节和锁上家里的设备。" if not self._en() else
                "Sorry, I can't help with that. I can switch, dim, colour, set, open and lock the devices in your home.")

    def unknown_attribute(self, word: str) -> str:
        return (f"我不知道“{word}”指的是什么，可以说亮度、温度或音量。" if not self._en() else
                f"I don't know what '{word}' is; I can change brightness, temperature and volume.")

    def unknown_room(self, word: str) -> str:
        rooms = [self.home.room_name(r, self.lang) for r in self.home.rooms]
        return (f"我不知道“{word}”这个房间。家里有：{'、'.join(rooms)}。" if not self._en() else
                f"I don't know a room called '{word}'. Your rooms are: {', '.join(rooms)}.")

    def unknown_device(self, word: str, room: str | None) -> str:
        if room is not None:
            here = [d.name(self.lang) for d in self.home.devices.values() if d.room == room]
            rname = self.home.room_name(room, self.lang)
            return (f"{rname}里没有“{word}”。{rname}有：{'、'.join(here)}。" if not self._en() else
                    f"I don't know a '{rname} {word}'; the {rname} has: {', '.join(here)}.")
        names = [d.name(self.lang) for d in self.home.devices.values()]
        return (f"我不知道“{word}”这个设备。家里有：{'、'.join(names)}。" if not self._en() else
                f"I don't know a device called '{word}'. Your devices are: {', '.join(names)}.")

    def cannot(self, intent: str, d: Device) -> str:
        return (f"{self.name(d)}不能{VERBS['zh'][intent]}。" if not self._en() else
                f"I can't {VERBS['en'][intent]} {self.name(d)}.")

    def nothing_can(self, intent: str, room: str | None) -> str:
        if room is None:
            return ("家里没有可以这样操作的设备。" if not self._en() else
                    f"There is nothing in your home I can {VERBS['en'][intent]} that way.")
        rname = self.home.room_name(room, self.lang)
        return (f"{rname}里没有可以{VERBS['zh'][intent]}的设备。" if not self._en() else
                f"There is nothing in the {rname} I can {VERBS['en'][intent]} that way.")

    def what(self, intent: str) -> str:
        return f"您要{VERBS['zh'][intent]}什么？" if not self._en() else f"What should I {VERBS['en'][intent]}?"

    def which(self, devices: list[Device]) -> str:
        named = [self.where(d) for d in devices[:6]]
        if len(devices) > 6:
            named.append(f"其他{len(devices) - 6}个之一" if not self._en() else f"one of {len(devices) - 6} others")
        options = self._list(named)
        return f"您是指哪一个：{options}？" if not self._en() else f"Which one do you mean: {options}?"

    def missing(self, slot: str, d: Device) -> str:
        attr = ATTR_NAMES[self.lang].get(slot, "颜色" if not self._en() else "colour")
        return (f"要把{self.name(d)}的{attr}调到多少？" if not self._en() and slot != "color" else
                f"要把{self.name(d)}调成什么颜色？" if not self._en() else
                f"What {attr} would you like for {self.name(d)}?")

    def out_of_range(self, slot: str, d: Device, value: float) -> str:
        cap = d.capabilities[slot]
        unit = f" °{cap['unit']}" if slot == "temperature" else ("%" if cap.get("unit") == "%" else "")
        zh_unit = "度" if slot == "temperature" else ""
        if not self._en():
            return (f"{self.name(d)}的{ATTR_NAMES['zh'][slot]}只能在{_fmt(cap['min'])}到{_fmt(cap['max'])}{zh_unit}之间，"
                    f"{_fmt(value)}{zh_unit}超出了范围。您想设成多少？")
        return (f"{self.name(d).capitalize()} can be set from {_fmt(cap['min'])} to {_fmt(cap['max'])}{unit}; "
                f"{_fmt(value)} is out of range. What {ATTR_NAMES['en'][slot]} would you like?")

    def no_such_color(self, d: Device, color: str) -> str:
        values = d.capabilities["color"]["values"]
        if not self._en():
            return f"{self.name(d)}没有{COLOR_NAMES_ZH.get(color, color)}。可选：{'、'.join(COLOR_NAMES_ZH.get(v, v) for v in values)}。"
        return f"{self.name(d).capitalize()} can't be {color}; it can be {', '.join(values)}."

    def left_out(self, devices: list[Device]) -> str:
        """The sentence after a group reply that names the devices left as they were."""
        if not devices:
            return ""
        names = [self.name(d) for d in devices]
        if not self._en():
            return f"{'、'.join(names)}不支持，保持不变。"
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f" {listed[0].upper() + listed[1:]} can't do that, so I left {'it' if len(names) == 1 else 'them'} as {'it was' if len(names) == 1 else 'they were'}."

    def _what(self, devices: list[Device], everything: bool = False) -> str:
        if len(devices) == 1:
            return self.name(devices[0])
        kinds = {d.type for d in devices}
        if not self._en():
            noun = TYPES[devices[0].type].words["zh"][0] if len(kinds) == 1 else "设备"
            return f"{len(devices)}个{noun}"
        noun = TYPES[devices[0].type].plural.get("en", ("devices",))[0] if len(kinds) == 1 else "devices"
        return f"{len(devices)} {noun}"

    def _value(self, attr: str, value, d: Device) -> str:
        if attr == "temperature":
            unit = d.capabilities["temperature"]["unit"]
            return f"{_fmt(value)}度" if not self._en() else f"{_fmt(value)} °{unit}"
        if attr in ("brightness", "position"):
            return f"百分之{spell(value, 'zh')}" if not self._en() else f"{_fmt(value)}%"
        if attr == "color":
            return COLOR_NAMES_ZH.get(value, value) if not self._en() else value
        return _fmt(value) if isinstance(value, (int, float)) else str(value)

    def done(self, intent: str, devices: list[Device], new: dict, attribute: str | None, note: str) -> str:
        what, d, zh = self._what(devices), devices[0], not self._en()
        single = len(devices) == 1
        if intent in ("turn_on", "turn_off", "lock", "unlock", "close") or (intent == "open" and new.get("position") == d.capabilities["position"]["max"]):
            verb = {"turn_on": ("打开", "Turned on"), "turn_off": ("关闭", "Turned off"), "lock": ("锁上", "Locked"),
                    "unlock": ("解锁", "Unlocked"), "close": ("关上", "Closed"), "open": ("打开", "Opened")}[intent]
            return f"好的，已{verb[0]}{what}。" if zh else f"{verb[1]} {what}."
        if intent == "open":
            return (f"好的，已把{what}打开到{self._value('position', new['position'], d)}。" if zh else
                    f"Opened {what} to {self._value('position', new['position'], d)}.")
        if intent in ("increase", "decrease"):
            attr = attribute or TYPES[d.type].main
            up = intent == "increase"
            if note == "limit" and single:
                return (f"{what}的{ATTR_NAMES['zh'][attr]}已经是{'最高' if up else '最低'}了（{self._value(attr, new[attr], d)}）。" if zh else
                        f"{what[0].upper() + what[1:]} is already at its {'highest' if up else 'lowest'} {attr} ({self._value(attr, new[attr], d)}).")
            if not single:
                return (f"好的，已{'调高' if up else '调低'}{what}的{ATTR_NAMES['zh'][attr]}。" if zh else
                        f"Turned {'up' if up else 'down'} the {attr} of {what}.")
            return (f"好的，已把{what}的{ATTR_NAMES['zh'][attr]}{'调高' if up else '调低'}到{self._value(attr, new[attr], d)}。" if zh else
                    f"Turned {'up' if up else 'down'} the {attr} of {what} to {self._value(attr, new[attr], d)}.")
        attr = {"set_brightness": "brightness", "set_color": "color", "set_temperature": "temperature", "set_volume": "volume"}[intent]
        value = self._value(attr, new[attr], d)
        if zh:
            extra = f"（{'华氏' if note.endswith('F') else '摄氏'}{note.split()[0]}度）" if note else ""
            return {"brightness": f"好的，已把{what}的亮度调到{value}。", "color": f"好的，已把{what}调成{value}。",
                    "temperature": f"好的，已把{what}调到{value}{extra}。", "volume": f"好的，已把{what}的音量调到{value}。"}[attr]
        extra = f" ({note})" if note else ""
        return {"brightness": f"Set {what} to {value} brightness.", "color": f"Changed {what} to {value}.",
                "temperature": f"Set {what} to {value}{extra}.", "volume": f"Set the volume of {what} to {value}."}[attr]

    def describe(self, d: Device, current: dict, attribute: str | None) -> str:
        """A device's state in one sentence (the answer to query_state)."""
        name, zh = self.where(d), not self._en()
        cap_name = name[0].upper() + name[1:] if not zh else name
        if attribute and attribute in current:
            return (f"{name}的{ATTR_NAMES['zh'].get(attribute, attribute)}是{self._value(attribute, current[attribute], d)}。" if zh else
                    f"The {attribute} of {name} is {self._value(attribute, current[attribute], d)}.")
        parts = []
        if "locked" in current:
            return f"{name}{'已锁上' if current['locked'] else '没有锁'}。" if zh else f"{cap_name} is {'locked' if current['locked'] else 'unlocked'}."
        if "position" in current:
            pos, cap = current["position"], d.capabilities["position"]
            state_zh = "关着" if pos == cap["min"] else "开着" if pos == cap["max"] else f"开了{self._value('position', pos, d)}"
            state_en = "closed" if pos == cap["min"] else "open" if pos == cap["max"] else f"{_fmt(pos)}% open"
            return f"{name}{state_zh}。" if zh else f"{cap_name} is {state_en}."
        on = current.get("on")
        for attr in ("brightness", "color", "temperature", "volume"):
            if attr in current:
                parts.append(f"{ATTR_NAMES['zh'].get(attr, '颜色')}{self._value(attr, current[attr], d)}" if zh else
                             f"{attr} {self._value(attr, current[attr], d)}")
        if zh:
            return f"{name}{'开着' if on else '关着'}" + (f"，{'，'.join(parts)}" if parts else "") + "。"
        return f"{cap_name} is {'on' if on else 'off'}" + (f" ({', '.join(parts)})" if parts else "") + "."
