"""The home: rooms, devices, what each device can do, and which devices a spoken name means.

``home.toml`` (a packaged default, or the user's own file) is read once and validated here, so every
later step can trust it: a device's type is known, its capabilities belong to that type, its room
exists, its first state is within its ranges, and no two rooms or two devices of one room share a
name. Every error names the file and the key.

Name resolution policy (``Home.match``), the one place that decides which devices a command means:

1. A room word must name a room; a room word that is not a room is read together with the device
   word as one device name ("front" + "door" -> the "front door"), else it is unknown.
2. A device word matches the devices that carry it as one of their own names ("thermostat",
   "ceiling fan"); only when none does, it matches the devices whose *type* answers to it ("lights",
   "lamp", "灯"). A room narrows both, and a device name that starts with the room's name also
   matches without it ("bedroom" + "lamp" -> "bedroom lamp"). Device words that hold a room ("kitchen
   lights", "客厅的灯") are read as room + device, and an English plural of an own name as that name;
   last, a word that is part of own names ("ceiling" of "ceiling fan") names those devices.
3. A plural type word ("lights", "doors") or a scope word ("all", "所有") covers every matching
   device; a singular word with several candidates asks back (the device layer does that).
4. No device word: the devices of the room (or of the home) that can serve the command's
   attribute; several are narrowed by the device layer (those switched on, then ``primary``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guimo.assistant.normalize import COLORS, spell, squeeze
from guimo.errors import GuimoError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LANGUAGES = ("en", "zh")
DEFAULT_HOME = Path(__file__).with_name("home.toml")

# Numeric capabilities: their default range and step when home.toml gives none.
NUMERIC = {
    "brightness": {"min": 0, "max": 100, "unit": "%", "step": 1},
    "volume": {"min": 0, "max": 100, "unit": "", "step": 1},
    "position": {"min": 0, "max": 100, "unit": "%", "step": 1},
    "temperature": {"min": 10, "max": 30, "unit": "C", "step": 0.5},
}


@dataclass(frozen=True)
class DeviceType:
    """What every device of a type can do and the words that name any of them."""

    capabilities: tuple[str, ...]  # attributes of its state
    main: str  # the attribute a relative command ("turn up the tv") changes
    words: dict[str, tuple[str, ...]]  # lang -> words naming any device of the type (singular)
    plural: dict[str, tuple[str, ...]] = field(default_factory=dict)  # lang -> plural words (cover all)


TYPES: dict[str, DeviceType] = {
    "light": DeviceType(("on", "brightness", "color"), "brightness",
                        {"en": ("light", "lamp"), "zh": ("灯", "灯光", "电灯")}, {"en": ("lights", "lamps")}),
    "thermostat": DeviceType(("on", "temperature"), "temperature",
                             {"en": ("thermostat", "heating", "heater"), "zh": ("温控器", "暖气")}, {"en": ("thermostats", "heaters")}),
    "speaker": DeviceType(("on", "volume"), "volume", {"en": ("speaker", "music"), "zh": ("音箱", "音响", "音乐")}, {"en": ("speakers",)}),
    "tv": DeviceType(("on", "volume"), "volume", {"en": ("tv", "television"), "zh": ("电视",)}),
    "plug": DeviceType(("on",), "on", {"en": ("plug", "socket"), "zh": ("插座",)}, {"en": ("plugs", "sockets")}),
    "curtain": DeviceType(("position",), "position", {"en": ("curtain", "curtains", "blinds", "shades"), "zh": ("窗帘",)}),
    "lock": DeviceType(("locked",), "locked", {"en": ("lock", "door"), "zh": ("门", "锁", "门锁")}, {"en": ("locks", "doors")}),
    "vacuum": DeviceType(("on",), "on", {"en": ("vacuum", "vacuum cleaner"), "zh": ("扫地机器人", "吸尘器")}),
}

# Words for the attribute slot (the quantity a relative or query command is about), per language.
ATTRIBUTE_WORDS: dict[str, dict[str, str]] = {
    # (no word that also names a device: "light", "music", "暖气" are devices)
    "en": {"brightness": "brightness", "heat": "temperature", "temperature": "temperature", "volume": "volume",
           "sound": "volume", "position": "position"},
    "zh": {"亮度": "brightness", "温度": "temperature", "音量": "volume", "声音": "volume"},
}
# Comparatives in the words of a relative command ("make the bedroom warmer", "客厅太冷了", "把灯调亮"): the
# attribute it changes when no attribute word is tagged; the device layer and the generator both read it.
COMPARATIVES: dict[str, str] = {
    "brighter": "brightness", "dimmer": "brightness", "darker": "brightness", "dim": "brightness", "brighten": "brightness", "louder": "volume", "quieter": "volume",
    "softer": "volume", "warmer": "temperature", "hotter": "temperature", "cooler": "temperature", "colder": "temperature",
    "冷": "temperature", "热": "temperature", "暖": "temperature", "亮": "brightness", "暗": "brightness",
    "声音": "volume", "大声": "volume", "小声": "volume",
}
SCOPE_WORDS: dict[str, tuple[str, ...]] = {"en": ("all",), "zh": ("所有", "全部")}  # before a plural ("all the lights")


# intent -> the capability a device needs to carry it out (increase/decrease/query: decided by the attribute)
INTENT_CAPABILITY: dict[str, str | None] = {
    "turn_on": "on", "turn_off": "on", "set_brightness": "brightness", "set_color": "color",
    "set_temperature": "temperature", "set_volume": "volume", "open": "position", "close": "position",
    "lock": "locked", "unlock": "locked", "increase": None, "decrease": None, "query_state": None,
}
RELATIVE = ("brightness", "temperature", "volume", "position")  # what increase/decrease can change


def can_serve(device: "Device", intent: str, attribute: str | None = None) -> bool:
    """Whether ``device`` can carry out ``intent`` (on ``attribute`` for increase/decrease)."""
    need = INTENT_CAPABILITY.get(intent)
    if intent in ("increase", "decrease"):
        need = attribute or TYPES[device.type].main
        return need in RELATIVE and need in device.capabilities
    if intent == "query_state":
        return attribute is None or attribute in device.capabilities
    return need is not None and need in device.capabilities


def comparative(text: str) -> str | None:
    """The attribute a comparative in ``text`` is about ("make it warmer" -> "temperature"), or None."""
    lowered = text.lower()
    for word, attribute in COMPARATIVES.items():
        if re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", lowered):
            return attribute
    return None


@dataclass
class Room:
    id: str
    names: dict[str, list[str]]  # lang -> names, the first one used in replies


@dataclass
class Device:
    id: str
    room: str  # room id
    type: str  # a key of TYPES
    names: dict[str, list[str]]  # lang -> its own names, the first one used in replies
    capabilities: dict[str, dict[str, Any]]  # attribute -> spec ({"min", "max", "unit", "step"} or {"values"} or {})
    default: dict[str, Any]  # the first state, every capability set
    primary: bool = False

    def name(self, lang: str = "en") -> str:
        return (self.names.get(lang) or self.names.get("en") or [self.id])[0]


@dataclass
class Match:
    """What a (room, device) pair of words names; the device layer turns problems into questions."""

    devices: list[Device]  # candidates, before narrowing by capability
    room: Room | None = None
    unknown_room: str | None = None  # a room word that names no room
    unknown_device: str | None = None  # a device word that names nothing (in the room)
    plural: bool = False  # a plural word: every candidate is meant


def clean(text: str | None) -> str:
    """Lower case, single spaces, no leading article: how names are compared."""
    if not text:
        return ""
    text = squeeze(text)
    for article in ("the ", "my ", "all the ", "all "):
        if text.startswith(article):
            text = text[len(article):]
    return text.strip()


class Home:
    """A validated home description (see home.toml for the format)."""

    def __init__(self, rooms: dict[str, Room], devices: dict[str, Device], source: str = "<memory>"):
        self.rooms = rooms
        self.devices = devices
        self.source = source

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None) -> "Home":
        """Read and validate a home.toml (None: the packaged default)."""
        path = Path(path) if path is not None else DEFAULT_HOME
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GuimoError(f"{path}: home file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise GuimoError(f"{path}: cannot read the home file ({e.__class__.__name__}: {e})") from None
        except tomllib.TOMLDecodeError as e:
            raise GuimoError(f"{path}: not valid TOML ({e})") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<memory>") -> "Home":
        def fail(key: str, message: str) -> GuimoError:
            return GuimoError(f"{source}: {key}: {message}")

        unknown = set(raw) - {"rooms", "devices"}
        if unknown:
            raise fail(sorted(unknown)[0], "unknown section (sections: rooms, devices)")
        rooms: dict[str, Room] = {}
        seen: dict[tuple[str, str], str] = {}
        for rid, spec in (raw.get("rooms") or {}).items():
            if not isinstance(spec, dict):
                raise fail(f"rooms.{rid}", "must be a table with en/zh name lists")
            names = _names(spec, f"rooms.{rid}", fail, allowed=set(LANGUAGES))
            for lang, items in names.items():
                for n in items:
                    if (lang, clean(n)) in seen:
                        raise fail(f"rooms.{rid}.{lang}", f"duplicate name {n!r} (also rooms.{seen[lang, clean(n)]})")
                    seen[lang, clean(n)] = rid
            rooms[rid] = Room(rid, names)
        if not rooms:
            raise fail("rooms", "a home needs at least one room")
        devices: dict[str, Device] = {}
        for did, spec in (raw.get("devices") or {}).items():
            key = f"devices.{did}"
            if not isinstance(spec, dict):
                raise fail(key, "must be a table")
            extra = set(spec) - {"room", "type", "capabilities", "state", "primary", *LANGUAGES}
            if extra:
                raise fail(f"{key}.{sorted(extra)[0]}", "unknown key (keys: room, type, en, zh, capabilities, state, primary)")
            if spec.get("room") not in rooms:
                raise fail(f"{key}.room", f"room {spec.get('room')!r} is not in [rooms] (rooms: {', '.join(rooms)})")
            kind = spec.get("type")
            if kind not in TYPES:
                raise fail(f"{key}.type", f"unknown device type {kind!r} (types: {', '.join(TYPES)})")
            names = _names({k: v for k, v in spec.items() if k in LANGUAGES}, key, fail, allowed=set(LANGUAGES))
            caps = _capabilities(spec.get("capabilities") or {}, kind, f"{key}.capabilities", fail)
            default = _default_state(spec.get("state") or {}, caps, f"{key}.state", fail)
            if not isinstance(spec.get("primary", False), bool):
                raise fail(f"{key}.primary", f"must be true or false (got {spec['primary']!r})")
            devices[did] = Device(did, spec["room"], kind, names, caps, default, spec.get("primary", False))
        if not devices:
            raise fail("devices", "a home needs at least one device")
        for room in rooms.values():  # two devices of one room must not share a name
            owner: dict[tuple[str, str], str] = {}
            for d in devices.values():
                if d.room != room.id:
                    continue
                for lang, items in d.names.items():
                    for n in items:
                        if (lang, clean(n)) in owner:
                            raise fail(f"devices.{d.id}.{lang}", f"duplicate name {n!r} in room {room.id} (also devices.{owner[lang, clean(n)]})")
                        owner[lang, clean(n)] = d.id
        return cls(rooms, devices, source)

    # -- vocabulary ----------------------------------------------------------------------------
    def vocabulary(self, lang: str) -> dict[str, list[str]]:
        """Every word a user may say for each slot, in ``lang`` (for the generator and the ASR grammar).

        Numeric slots list the numbers of their ranges as digits and (EN, ZH) words; the units
        ("percent", "degrees", "度") are pattern words, not slot words.
        """
        rooms = sorted({n for r in self.rooms.values() for n in r.names.get(lang, [])})
        devices = {n for d in self.devices.values() for n in d.names.get(lang, [])}
        for t in {d.type for d in self.devices.values()}:
            devices |= set(TYPES[t].words.get(lang, ())) | set(TYPES[t].plural.get(lang, ()))
        colors = {w for w, canon in COLORS.get(lang, {}).items()
                  if any(canon in d.capabilities.get("color", {}).get("values", []) for d in self.devices.values())}
        vocab = {"room": rooms, "device": sorted(devices), "scope": list(SCOPE_WORDS.get(lang, ())),
                 "color": sorted(colors), "attribute": sorted(ATTRIBUTE_WORDS.get(lang, {}))}
        for slot in ("brightness", "volume", "position", "temperature"):
            lo, hi = self.range_of(slot)
            if lo is None:
                vocab[slot] = []
                continue
            values = set(range(int(lo), int(hi) + 1))
            if slot == "temperature":  # a Celsius thermostat reads 50-86 as Fahrenheit (actions.py), so they are sayable
                for d in self.devices.values():
                    cap = d.capabilities.get("temperature")
                    if cap and cap["unit"] == "C":
                        values |= set(range(int(cap["min"] * 9 / 5 + 32), int(cap["max"] * 9 / 5 + 32) + 1))
            vocab[slot] = sorted({str(v) for v in values} | {spell(v, lang) for v in values})
        return vocab

    def range_of(self, attribute: str) -> tuple[float | None, float | None]:
        """The union of every device's range for a numeric attribute (None, None when no device has it)."""
        specs = [d.capabilities[attribute] for d in self.devices.values() if attribute in d.capabilities]
        if not specs:
            return None, None
        return min(s["min"] for s in specs), max(s["max"] for s in specs)

    # -- resolution ----------------------------------------------------------------------------
    def find_room(self, word: str | None, lang: str = "en") -> Room | None:
        word = clean(word)
        for room in self.rooms.values():
            for names in (room.names.get(lang, []), *room.names.values()):
                if word in (clean(n) for n in names):
                    return room
        return None

    def match(self, room: str | None, device: str | None, lang: str = "en", scope: str | None = None) -> Match:
        """The devices a (room word, device word) pair names, with what went wrong (module docstring)."""
        room_word, device_word = clean(room), clean(device)
        found_room = self.find_room(room_word, lang) if room_word else None
        if room_word and found_room is None:
            joined = f"{room_word} {device_word}".strip() if lang == "en" else room_word + device_word
            own = self._own(joined, None, lang) if device_word else []
            if own:
                return Match(own)
            return Match([], unknown_room=room or room_word)
        plural = bool(clean(scope)) or self._is_plural(device_word, lang)
        if not device_word:
            pool = [d for d in self.devices.values() if found_room is None or d.room == found_room.id]
            return Match(pool, found_room, plural=plural)
        own = self._own(device_word, found_room, lang)
        if own:
            return Match(own, found_room, plural=plural)
        typed = [d for d in self.devices.values()
                 if (found_room is None or d.room == found_room.id) and self._type_word(d.type, device_word, lang)]
        if typed:
            return Match(typed, found_room, plural=plural)
        if found_room is None:  # the room inside the device words: "kitchen lights", "客厅的灯"
            for r in self.rooms.values():
                for rn in sorted((clean(n) for items in r.names.values() for n in items), key=len, reverse=True):
                    rest = device_word[len(rn):].strip().removeprefix("的") if device_word.startswith(rn) else ""
                    if rest:
                        inner = self.match(rn, rest, lang, scope)
                        if inner.devices:
                            return inner
        if lang == "en" and device_word.endswith("s"):  # "kitchen lights" for the "kitchen light", "fans"
            inner = self.match(room, device_word[:-1], lang, scope)
            if inner.devices:
                return Match(inner.devices, inner.room, plural=True)
        # a part of an own name ("ceiling" of "ceiling fan" and "ceiling light", as a recogniser may cut it):
        # candidates, so that one acts and several are asked about, rather than "I don't know"
        part = [d for d in self.devices.values() if (found_room is None or d.room == found_room.id)
                and any(_has_part(clean(n), device_word) for items in d.names.values() for n in items)]
        if part:
            return Match(part, found_room, plural=plural)
        return Match([], found_room, unknown_device=device or device_word)

    def resolve(self, room: str | None, device: str | None, intent: str, lang: str = "en") -> list[Device]:
        """Candidate devices for a command: those the words name that can carry out ``intent``."""
        return [d for d in self.match(room, device, lang).devices if can_serve(d, intent)]

    def _own(self, word: str, room: Room | None, lang: str) -> list[Device]:
        out = []
        for d in self.devices.values():
            if room is not None and d.room != room.id:
                continue
            names = {clean(n) for items in d.names.values() for n in items}  # any language: "把 bedroom 的灯打开"
            if word in names:
                out.append(d)
            elif room is not None:  # "bedroom" + "lamp" -> "bedroom lamp"
                for rn in room.names.get(lang, []):
                    if (f"{clean(rn)} {word}" if lang == "en" else clean(rn) + word) in names:
                        out.append(d)
                        break
        return out

    @staticmethod
    def _type_word(kind: str, word: str, lang: str) -> bool:
        t = TYPES[kind]
        return any(word in words for words in (*t.words.values(), *t.plural.values()))

    @staticmethod
    def _is_plural(word: str, lang: str) -> bool:
        return any(word in t.plural.get(lang, ()) for t in TYPES.values())

    def room_name(self, room_id: str, lang: str = "en") -> str:
        room = self.rooms[room_id]
        return (room.names.get(lang) or room.names.get("en") or [room_id])[0]

    def display(self, device: Device, lang: str = "en") -> str:
        """How replies name a device: its first own name, with its room in Chinese ("卧室的台灯")."""
        name = device.name(lang)
        if lang == "zh":
            room = self.room_name(device.room, "zh")
            return name if name.startswith(room) else f"{room}的{name}"
        return name


def _has_part(name: str, word: str) -> bool:
    """Whether ``word`` is whole words of ``name`` (EN) or a run of its characters (ZH), and not all of it."""
    if name == word or not word:
        return False
    if re.search(r"[\u3400-\u9fff]", word):
        return len(word) >= 2 and word in name
    return re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", name) is not None


def _names(spec: dict[str, Any], key: str, fail, allowed: set[str]) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for lang in allowed:
        value = spec.get(lang)
        if value is None:
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(f"{key}.{lang}", "must be a non-empty list of names")
        names[lang] = [" ".join(v.split()) for v in value]
    if "en" not in names:
        raise fail(f"{key}.en", "every room and device needs at least one English name")
    extra = set(spec) - allowed - {"room", "type", "capabilities", "state", "primary"}
    if extra:
        raise fail(f"{key}.{sorted(extra)[0]}", f"unknown key (languages: {', '.join(LANGUAGES)})")
    return names


def _capabilities(spec: dict[str, Any], kind: str, key: str, fail) -> dict[str, dict[str, Any]]:
    allowed = TYPES[kind].capabilities
    for attr in spec:
        if attr not in allowed:
            raise fail(f"{key}.{attr}", f"a {kind} has no {attr!r} (a {kind} has: {', '.join(allowed)})")
    caps: dict[str, dict[str, Any]] = {}
    for attr in allowed:
        given = dict(spec.get(attr) or {})
        if attr in NUMERIC:
            merged = {**NUMERIC[attr], **given}
            bad = set(given) - set(NUMERIC[attr])
            if bad:
                raise fail(f"{key}.{attr}.{sorted(bad)[0]}", "unknown key (keys: min, max, unit, step)")
            if not all(isinstance(merged[k], (int, float)) and not isinstance(merged[k], bool) for k in ("min", "max", "step")):
                raise fail(f"{key}.{attr}", "min, max and step must be numbers")
            if merged["min"] >= merged["max"] or merged["step"] <= 0:
                raise fail(f"{key}.{attr}", f"needs min < max and step > 0 (got {merged['min']}..{merged['max']}, step {merged['step']})")
            if attr == "temperature" and merged["unit"] not in ("C", "F"):
                raise fail(f"{key}.{attr}.unit", f"must be \"C\" or \"F\" (got {merged['unit']!r})")
            caps[attr] = merged
        elif attr == "color":
            values = given.get("values", ["white"])
            if set(given) - {"values"} or not isinstance(values, list) or not values:
                raise fail(f"{key}.color", "must be { values = [colour names] }")
            for v in values:
                if v not in COLORS["en"]:
                    raise fail(f"{key}.color.values", f"unknown colour {v!r} (colours: {', '.join(sorted(set(COLORS['en'].values())))})")
            caps[attr] = {"values": list(values)}
        else:  # on, locked: booleans
            if given:
                raise fail(f"{key}.{attr}", f"{attr!r} is a switch and takes no settings")
            caps[attr] = {}
    return caps


def _default_state(spec: dict[str, Any], caps: dict[str, dict[str, Any]], key: str, fail) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for attr, cap in caps.items():
        if attr in ("on", "locked"):
            state[attr] = attr == "locked"
        elif "values" in cap:
            state[attr] = cap["values"][0]
        else:
            state[attr] = cap["min"] if attr != "temperature" else (cap["min"] + cap["max"]) / 2
    for attr, value in spec.items():
        if attr not in caps:
            raise fail(f"{key}.{attr}", f"not a capability of this device (it has: {', '.join(caps)})")
        cap = caps[attr]
        if attr in ("on", "locked"):
            if not isinstance(value, bool):
                raise fail(f"{key}.{attr}", f"must be true or false (got {value!r})")
        elif "values" in cap:
            if value not in cap["values"]:
                raise fail(f"{key}.{attr}", f"{value!r} is not one of its colours ({', '.join(cap['values'])})")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not cap["min"] <= value <= cap["max"]:
            raise fail(f"{key}.{attr}", f"must be a number in {cap['min']}..{cap['max']} (got {value!r})")
        state[attr] = value
    return state
