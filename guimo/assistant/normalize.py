"""Slot values as spoken ("seventy two", "百分之五十", "蓝色") to values a device takes (72.0, 50, "blue").

The NLU model tags words; this module reads them. Numbers come as digits ("21.5") or words in
English ("twenty one", "one hundred and five", "twenty one point five") and Chinese ("二十一",
"一百零五", "二十一点五", "两百"), with units around them ("度", "percent", "%", "degrees") ignored
here: the unit a user *stated* is read apart (``stated_unit``), because a Celsius thermostat told
"72 degrees" decides what that means (``guimo.assistant.actions``). Colours map to the canonical
English names home.toml uses. A value that cannot be read raises ``SlotValueError``, whose message
is a reply the assistant can say as it is, in the command's language.
"""

from __future__ import annotations

import re
import unicodedata

from guimo.errors import GuimoError

COLORS: dict[str, dict[str, str]] = {  # lang -> spoken colour -> canonical English name
    "en": {c: c for c in ("white", "warm white", "cool white", "red", "green", "blue", "yellow", "orange",
                          "purple", "pink", "cyan", "magenta")} | {"violet": "purple", "daylight": "cool white"},
    "zh": {"白色": "white", "白": "white", "暖白色": "warm white", "暖白": "warm white", "暖光": "warm white",
           "冷白色": "cool white", "冷白": "cool white", "红色": "red", "红": "red", "绿色": "green", "绿": "green",
           "蓝色": "blue", "蓝": "blue", "黄色": "yellow", "黄": "yellow", "橙色": "orange", "橘色": "orange",
           "紫色": "purple", "紫": "purple", "粉色": "pink", "粉红色": "pink", "青色": "cyan", "品红": "magenta"},
}
COLOR_NAMES_ZH = {canon: zh for zh, canon in reversed(list(COLORS["zh"].items()))}  # canonical -> "红色"

_EN_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                        "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_EN_UNITS["oh"] = 0
_EN_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i >= 2}
_EN_SKIP = {"and", "a", "percent", "per", "cent", "degrees", "degree", "celsius", "centigrade", "fahrenheit", "c", "f",
            "point"}  # "point" is handled before skipping
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_ZH_SKIP = "度摄氏华氏左右大概约个"

SLOT_NAMES = {"en": {"brightness": "brightness", "volume": "volume", "position": "position", "temperature": "temperature",
                     "color": "colour"},
              "zh": {"brightness": "亮度", "volume": "音量", "position": "位置", "temperature": "温度", "color": "颜色"}}
_EXAMPLES = {"en": {"brightness": "fifty percent", "volume": "thirty", "position": "half way or fifty percent",
                    "temperature": "twenty one degrees"},
             "zh": {"brightness": "百分之五十", "volume": "三十", "position": "百分之五十", "temperature": "二十一度"}}
_MAX = {"en": ("max", "maximum", "full", "highest", "brightest", "loudest", "all the way"),
        "zh": ("最大", "最亮", "最高", "全开")}
_MIN = {"en": ("min", "minimum", "lowest", "darkest", "quietest"), "zh": ("最小", "最暗", "最低")}
_HALF = {"en": ("half", "half way", "halfway"), "zh": ("一半", "半")}


_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")


def squeeze(text: str) -> str:
    """Lower case, NFKC, single spaces and none between CJK characters ("客 厅" -> "客厅": the model's words joined)."""
    return _CJK_GAP.sub("", " ".join(unicodedata.normalize("NFKC", str(text or "")).lower().split()))


class SlotValueError(GuimoError):
    """A slot value that cannot be read; ``str(error)`` (also ``.reply``) is what the assistant says back."""

    def __init__(self, reply: str, slot: str, text: str):
        super().__init__(reply)
        self.reply, self.slot, self.text = reply, slot, text


def number(text: str, lang: str = "en") -> float | None:
    """A number said as digits or words, in English or Chinese; None when ``text`` holds no number.

    Units and "percent" around it are ignored ("50%", "fifty percent", "百分之五十", "二十一度").
    """
    if text is None:
        return None
    text = unicodedata.normalize("NFKC", str(text)).strip().lower()
    if not text:
        return None
    bare = " ".join(re.sub(r"百分之|per ?cent|percent|degrees?|celsius|centigrade|fahrenheit|[%°度]|\b[cf]\b", " ", text).split())
    if re.fullmatch(r"[-+]?\d+(?:\.\d+)?", bare):
        return float(bare)
    if re.search(r"[\u4e00-\u9fff]", text):
        return _zh_number(text)
    return _en_number(text)


def _en_number(text: str) -> float | None:
    tokens = re.findall(r"[a-z]+|\d+(?:\.\d+)?", text.replace("-", " "))
    if "point" in tokens:
        i = tokens.index("point")
        whole = _en_number(" ".join(tokens[:i])) if i else 0.0
        decimals = [_EN_UNITS.get(t) for t in tokens[i + 1:] if t not in _EN_SKIP]
        if whole is None or not decimals or any(d is None or d > 9 for d in decimals):
            return None
        return whole + float("0." + "".join(str(d) for d in decimals))
    total, current, seen = 0, 0, False
    for t in tokens:
        if t in _EN_UNITS:
            current += _EN_UNITS[t]
        elif t in _EN_TENS:
            current += _EN_TENS[t]
        elif t == "hundred":
            current = (current or 1) * 100
        elif t == "thousand":
            total += (current or 1) * 1000
            current = 0
        elif t.replace(".", "", 1).isdigit():
            current += float(t)
        elif t in _EN_SKIP:
            continue
        else:
            return None
        seen = True
    return float(total + current) if seen else None


def _zh_number(text: str) -> float | None:
    text = text.replace("百分之", "")
    text = "".join(ch for ch in text if ch not in _ZH_SKIP and not ch.isspace() and ch not in "%°")
    if not text:
        return None
    whole, _, frac = text.partition("点")
    value = _zh_integer(whole) if whole else 0
    if value is None:
        return None
    if frac:
        digits = [_ZH_DIGITS.get(ch, int(ch) if ch.isdigit() else None) for ch in frac]
        if any(d is None for d in digits):
            return None
        return value + float("0." + "".join(str(d) for d in digits))
    return float(value)


def _zh_integer(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    total, digit, last_unit, zero_seen = 0, None, None, False
    for ch in text:
        if ch in _ZH_DIGITS:
            digit = _ZH_DIGITS[ch]
            zero_seen |= digit == 0
        elif ch in _ZH_UNITS:
            total += (1 if digit is None else digit) * _ZH_UNITS[ch]
            digit, last_unit, zero_seen = None, _ZH_UNITS[ch], False
        else:
            return None
    if digit is not None:
        # colloquial "一百五" = 150 and "两千三" = 2300: a bare digit after a unit means the next unit down
        total += digit * (last_unit // 10) if last_unit and last_unit >= 100 and not zero_seen else digit
    return total


def spell(value: float, lang: str = "en") -> str:
    """A number in words, as a speaker would say it ("twenty one", "二十一", "twenty one point five")."""
    whole = int(value)
    frac = round(value - whole, 6)
    out = _spell_en(whole) if lang == "en" else _spell_zh(whole)
    if frac:
        decimals = f"{frac:.6f}".split(".")[1].rstrip("0")
        if lang == "en":
            names = {v: k for k, v in _EN_UNITS.items() if k != "oh"}
            out += " point " + " ".join(names[int(d)] for d in decimals)
        else:
            out += "点" + "".join("零一二三四五六七八九"[int(d)] for d in decimals)
    return out


def _spell_en(n: int) -> str:
    names = {v: k for k, v in _EN_UNITS.items() if k != "oh"}
    tens = {v: k for k, v in _EN_TENS.items()}
    if n < 20:
        return names[n]
    if n < 100:
        return tens[n // 10 * 10] + (f" {names[n % 10]}" if n % 10 else "")
    if n < 1000:
        rest = n % 100
        return f"{names[n // 100]} hundred" + (f" {_spell_en(rest)}" if rest else "")
    return f"{_spell_en(n // 1000)} thousand" + (f" {_spell_en(n % 1000)}" if n % 1000 else "")


def _spell_zh(n: int) -> str:
    d = "零一二三四五六七八九"
    if n < 10:
        return d[n]
    if n < 20:
        return "十" + (d[n % 10] if n % 10 else "")
    if n < 100:
        return d[n // 10] + "十" + (d[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        head = d[n // 100] + "百"
        if not rest:
            return head
        return head + ("零" + d[rest] if rest < 10 else d[rest // 10] + "十" + (d[rest % 10] if rest % 10 else ""))
    return str(n)


def stated_unit(text: str | None) -> str | None:
    """The temperature unit a user said, if any: "F" ("72 fahrenheit", "华氏"), "C" ("celsius", "摄氏") or None."""
    if not text:
        return None
    t = unicodedata.normalize("NFKC", text).lower()
    if "fahrenheit" in t or "华氏" in t or re.search(r"(\d|°)\s*f\b", t):
        return "F"
    if "celsius" in t or "centigrade" in t or "摄氏" in t or re.search(r"(\d|°)\s*c\b", t):
        return "C"
    return None


def normalize_slot(slot: str, text: str, lang: str = "en") -> object:
    """The value of one slot as a device takes it.

    brightness, volume, position: a number (percent; "max" 100, "half" 50); temperature: a number
    in the unit said (see ``stated_unit``); color: a canonical English colour name; room, device,
    scope, attribute: the words, cleaned. Raises SlotValueError with a reply in ``lang``.
    """
    raw = text
    text = squeeze(text)
    if slot in ("room", "device", "scope", "attribute"):
        return text
    if slot == "color":
        bare = text.removesuffix(" color").removesuffix(" colour").removesuffix(" light")
        for table in (COLORS.get(lang, {}), *COLORS.values()):
            if bare in table:
                return table[bare]
            if bare + "色" in table:
                return table[bare + "色"]
        known = sorted(set(COLORS["en"].values())) if lang == "en" else sorted(set(COLOR_NAMES_ZH.values()))
        raise SlotValueError(_say(lang, f"I don't know the colour '{raw}'. I know: {', '.join(known)}.",
                                  f"我不认识“{raw}”这个颜色。我认识：{'、'.join(known)}。"), slot, raw)
    if slot in ("brightness", "volume", "position", "temperature"):
        if slot != "temperature":
            if any(w in text for w in _MAX.get(lang, ()) + _MAX["en"]):
                return 100
            if any(w in text for w in _MIN.get(lang, ()) + _MIN["en"]):
                return 0
            if text in _HALF.get(lang, ()) + _HALF["en"]:
                return 50
        value = number(text, lang)
        if value is None:
            name, example = SLOT_NAMES[lang if lang in SLOT_NAMES else "en"][slot], _EXAMPLES.get(lang, _EXAMPLES["en"])[slot]
            raise SlotValueError(_say(lang, f"I didn't understand '{raw}' as a {name}. Please say a number, like '{example}'.",
                                      f"没听懂{name}“{raw}”。请说一个数字，比如“{example}”。"), slot, raw)
        return int(value) if float(value).is_integer() else value
    raise SlotValueError(_say(lang, f"I don't know the slot '{slot}'.", f"不认识的槽位“{slot}”。"), slot, raw)


def _say(lang: str, en: str, zh: str) -> str:
    return zh if lang == "zh" else en
