"""Find personal data in tables and replace it by keyed pseudonyms or masks.

Detectors (each a candidate pattern, then a validator, so a look-alike with a wrong checksum stays):

- ``email``: addresses with a dotted domain;
- ``phone``: international numbers written with ``+`` or ``00`` (phonenumbers, ``Leniency.VALID``), Chinese mobile
  numbers ``1[3-9]`` + 9 digits with an optional ``+86`` or ``0086``, and national numbers of ``phone_region``
  when one is given (e.g. ``GB``);
- ``credit_card``: 13-19 digits (spaces or dashes allowed) with a card network's prefix and length
  (``CARD_NETWORKS``) and a valid Luhn check digit;
- ``iban``: country code, check digits and account (python-stdnum: country length and mod-97);
- ``ip``: IPv4 and IPv6 addresses (the standard library's ``ipaddress`` decides);
- ``cn_resident_id``: 18-character Chinese resident ID (province code, birth date, MOD 11-2 check);
- ``name``: every non-empty value of the configured name columns (free-text names are not detected:
  that needs a named-entity model, which no offline install provides).

Replacement (``mode``):

- ``pseudonym``: ``KIND_<16 hex>``, an HMAC-SHA256 of the normalised value (lower-cased e-mail, E.164
  phone, digits of a card, ...) under a secret key. The same value gives the same pseudonym in every
  file anonymised with the same key, so joins across files still work; without the key nobody can
  test a guess. The key comes from the caller (``--key-file`` or ``GUIMO_ANONYMIZE_KEY``); it is never
  generated silently, since pseudonyms under a forgotten key link to nothing.
- ``mask``: ``[KIND]``, irreversible and unlinkable.

Why not Presidio: measured here (``bench/anonymize_bench.py``, DEVELOPERS.md), Presidio 2.2 with a
blank spaCy pipeline adds ~385 MB to a venv, analyses ~140 values/s, tries to download the public
suffix list on start, and has no Chinese mobile or resident-ID recognizer; without an NER model it
finds nothing these checksummed patterns miss.

Values are scanned once per distinct value of a column (tables repeat values), only in text and
integer columns (a float cannot hold a card number exactly).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from guimo.errors import GuimoError

try:  # the privacy extra; imported here, not per value (this module is only imported to anonymise)
    from stdnum import iban, luhn
    from stdnum.cn import ric
    from stdnum.exceptions import ValidationError
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise GuimoError(f'anonymisation needs python-stdnum and phonenumbers: pip install "guimo[privacy]" ({e})') from None

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("email", "iban", "cn_resident_id", "credit_card", "ip", "phone", "name")  # also the order of precedence
MODES = ("pseudonym", "mask")
KEY_ENV = "GUIMO_ANONYMIZE_KEY"
MIN_KEY_BYTES = 16
MEMO_SIZE = 500_000  # distinct values whose outcome an Anonymizer remembers (then it starts over): bounded memory

# Boundaries are ASCII classes, not \w: in Chinese text a number follows a character ("手机13812345678"), and \w
# (Unicode) would count that character as part of the same word.
_EMAIL = re.compile(r"(?<![A-Za-z0-9_.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![A-Za-z0-9_-])", re.ASCII)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])", re.ASCII)
_CARD = re.compile(r"(?<![A-Za-z0-9_+-])\d(?:[ -]?\d){12,18}(?![A-Za-z0-9_])", re.ASCII)  # not inside a code (an IBAN) or after "+" (a phone)
_CN_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])", re.ASCII)
_IPV4 = re.compile(r"(?<!\d)(?<!\d\.)(?:\d{1,3}\.){3}\d{1,3}(?!\d|\.\d)", re.ASCII)  # a sentence's full stop may follow
_IPV6 = re.compile(r"(?<![A-Za-z0-9_:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![A-Za-z0-9_:])", re.ASCII)
_CN_MOBILE = re.compile(r"(?<![A-Za-z0-9+])(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d){8}(?!\d)", re.ASCII)
# Fullwidth forms ("１３８１２３４５６７８", common in Chinese text) to ASCII, one character for one, so positions hold.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
# 00 + a country code set off by a space or dash ("call 0044 20 7946 0958"): the "+" of a dialled number. Not inside
# a number ("+81 90-1234-0035"), not a group of a longer code ("DE37 5557 0092 3080 ...", "RABO 0049 ..."), and not a
# zero-padded id ("0012345678"), which has no separator.
_DIAL_00 = re.compile(r"(?<![A-Za-z0-9_.+/-])(?<![0-9A-Z] )00(?=[1-9][0-9]{0,2}[ -][0-9])", re.ASCII)
# _MAYBE before the fullwidth translation, for a vectorised first pass over a column (pandas/pyarrow regex).
_MAYBE_WIDE = r"[@＠]|[0-9０-９](?:[ ().+\-]{0,2}[0-9０-９]){6,}|[0-9A-Fa-f]*[:：][0-9A-Fa-f]*[:：]|[0-9０-９][.．][0-9０-９]{1,3}[.．][0-9０-９]"
# A cheap test that a value may hold anything at all: '@', a run of 7+ digits (allowing separators), or an address.
_MAYBE = re.compile(r"@|\d(?:[ ().+-]{0,2}\d){6,}|[0-9A-Fa-f]*:[0-9A-Fa-f]*:|\d\.\d{1,3}\.\d", re.ASCII)
# Card networks: leading digits (IIN ranges) and the lengths their numbers have. Checking both, and not the
# Luhn digit alone (which one random number in ten passes), keeps order numbers and IBAN tails out.
CARD_NETWORKS = [
    (r"4", (13, 16, 19)),  # Visa
    (r"5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)", (16,)),  # Mastercard
    (r"3[47]", (15,)),  # American Express
    (r"6011|64[4-9]|65", (16, 19)),  # Discover
    (r"35(?:2[89]|[3-8]\d)", (16, 19)),  # JCB
    (r"30[0-5]|3[689]", (14, 16)),  # Diners Club
    (r"62", (16, 19)),  # UnionPay
    (r"5[06-8]|6[37]", (16, 19)),  # Maestro
]
_CARD_NETWORKS = [(re.compile(prefix), lengths) for prefix, lengths in CARD_NETWORKS]


def _card_network_ok(digits: str) -> bool:
    return any(p.match(digits) and len(digits) in lengths for p, lengths in _CARD_NETWORKS)


def _card_grouping_ok(written: str) -> bool:
    """Printed cards are grouped 4-4-4-4(-3), or 4-6-5 / 4-6-4 (Amex, Diners); a run of digits split some
    other way (the tail of an IBAN printed in fours, ``... 2570 99``) is not a card."""
    sizes = [len(g) for g in re.split(r"[ -]", written)]
    if len(sizes) == 1:
        return True
    return sizes in ([4, 6, 5], [4, 6, 4]) or (all(n == 4 for n in sizes[:-1]) and 3 <= sizes[-1] <= 4)


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: its kind, where it is in the value, and its normalised form (what a
    pseudonym is computed from, so differently written copies of one value agree)."""

    kind: str
    start: int
    end: int
    normalized: str


def _luhn_ok(digits: str) -> bool:
    return luhn.is_valid(digits)


def _find_emails(text: str) -> Iterable[Finding]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        yield Finding("email", m.start(), m.end(), m.group().lower())


def _find_ibans(text: str) -> Iterable[Finding]:
    for m in _IBAN.finditer(text):
        value = m.group()
        # The pattern runs on over spaces, so it may have swallowed a following code ("... 7654 32 EUR"): try the
        # whole match, then each shorter run that ends before a space.
        ends = [len(value)] + [i for i in range(len(value) - 1, 14, -1) if value[i] == " "]
        for end in ends:
            candidate = value[:end]
            if iban.is_valid(candidate):
                yield Finding("iban", m.start(), m.start() + len(candidate), iban.compact(candidate))
                break


def _find_cards(text: str) -> Iterable[Finding]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if _card_network_ok(digits) and _card_grouping_ok(m.group()) and _luhn_ok(digits):
            yield Finding("credit_card", m.start(), m.end(), digits)


def _find_cn_ids(text: str) -> Iterable[Finding]:
    """A province code (11-82), a real birth date and the MOD 11-2 check character. Not python-stdnum's
    ``ric.is_valid``, which also wants the county code to have existed in the birth year: the county is
    where the number was issued, so a real ID of someone born in 1963 in Shenzhen's Nanshan district
    (created 1990) fails it."""
    for m in _CN_ID.finditer(text):
        value = m.group().upper()
        if not 11 <= int(value[:2]) <= 82 or ric.calc_check_digit(value) != value[-1]:
            continue
        try:
            ric.get_birth_date(value)
        except ValidationError:
            continue
        yield Finding("cn_resident_id", m.start(), m.end(), value)


def _find_ips(text: str) -> Iterable[Finding]:
    for pattern in (_IPV4,) * ("." in text) + (_IPV6,) * (":" in text):
        for m in pattern.finditer(text):
            try:
                address = ipaddress.ip_address(m.group())
            except ValueError:
                continue
            yield Finding("ip", m.start(), m.end(), address.compressed)


def _phone_finder(region: str | None) -> Callable[[str], Iterable[Finding]]:
    import phonenumbers as pn

    def find(text: str) -> Iterable[Finding]:
        for m in _CN_MOBILE.finditer(text):
            digits = re.sub(r"\D", "", m.group())[-11:]
            yield Finding("phone", m.start(), m.end(), "+86" + digits)
        # "0044 20 7946 0958": the international call prefix 00 written instead of "+". Read it as " +" (two
        # characters for two, so positions hold) and give the finding back its "00".
        dialled = _DIAL_00.sub(" +", text)
        if "+" in dialled or region:
            for m in pn.PhoneNumberMatcher(dialled, region, leniency=pn.Leniency.VALID):
                start = m.start - 1 if dialled[m.start] == "+" and text[m.start] == "0" else m.start
                yield Finding("phone", start, m.end, pn.format_number(m.number, pn.PhoneNumberFormat.E164))

    return find


@dataclass
class Anonymizer:
    """Find and replace personal data in text cells.

    ``columns``: the columns to scan (None: every text or integer column); ``name_columns``: columns whose
    every value is a person's name; ``mode``: ``pseudonym`` (needs ``key``: bytes, or a str of at least 16
    characters) or ``mask``; ``kinds``: the detectors to run; ``phone_region``: also find national-format
    phone numbers of this country (ISO code such as ``GB``, ``CN``); ``skip``: columns never touched (a
    training target).
    """

    columns: Sequence[str] | None = None
    name_columns: Sequence[str] = ()
    mode: str = "pseudonym"
    key: bytes | str | None = field(default=None, repr=False)
    kinds: Sequence[str] = KINDS
    phone_region: str | None = None
    skip: Sequence[str] = ()

    def __post_init__(self):
        if self.mode not in MODES:
            raise GuimoError(f"unknown anonymisation mode {self.mode!r}; choose one of {', '.join(MODES)}")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise GuimoError(f"unknown PII kinds {', '.join(unknown)}; known: {', '.join(KINDS)}")
        if self.mode == "pseudonym":
            if self.key is None:
                raise GuimoError(f"pseudonyms need a secret key: pass --key-file FILE (make one with --new-key FILE) "
                                 f"or set {KEY_ENV}; or use --mode mask")
            self.key = self.key.encode() if isinstance(self.key, str) else bytes(self.key)
            if len(self.key) < MIN_KEY_BYTES:
                raise GuimoError(f"the pseudonym key is {len(self.key)} bytes; use at least {MIN_KEY_BYTES} "
                                 f"(e.g. the 64 hex characters --new-key writes)")
        if self.phone_region:
            import phonenumbers as pn

            if self.phone_region.upper() not in pn.SUPPORTED_REGIONS:
                raise GuimoError(f"unknown phone region {self.phone_region!r}; use an ISO country code such as GB or CN")
            self.phone_region = self.phone_region.upper()
        finders = {"email": _find_emails, "iban": _find_ibans, "credit_card": _find_cards, "cn_resident_id": _find_cn_ids,
                   "ip": _find_ips, "phone": _phone_finder(self.phone_region)}
        self._finders = [finders[k] for k in KINDS if k in self.kinds and k in finders]
        # value -> (replacement, kinds) or None, kept across calls: a log streamed in chunks repeats its customers
        self._memo: dict[str, tuple[str, frozenset] | None] = {}

    # ------------------------------------------------------------------------------------ values

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings in ``text``, earlier detectors in ``KINDS`` winning an overlap (an
        IBAN's digits are not also a phone number)."""
        text = text.translate(_FULLWIDTH)
        if not _MAYBE.search(text):
            return []
        taken: list[Finding] = []
        for finder in self._finders:
            for f in finder(text):
                if all(f.end <= t.start or f.start >= t.end for t in taken):
                    taken.append(f)
        return sorted(taken, key=lambda f: f.start)

    def replacement(self, kind: str, normalized: str) -> str:
        if self.mode == "mask":
            return f"[{kind.upper()}]"
        digest = hmac.new(self.key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()[:16]
        return f"{kind.upper()}_{digest}"

    def anonymize_text(self, text: str) -> tuple[str, list[Finding]]:
        found = self.find(text)
        if not found:
            return text, []
        out, last = [], 0
        for f in found:
            out.append(text[last:f.start])
            out.append(self.replacement(f.kind, f.normalized))
            last = f.end
        out.append(text[last:])
        return "".join(out), found

    def anonymize_name(self, value: str) -> str:
        return self.replacement("name", " ".join(value.split()).casefold())

    # ------------------------------------------------------------------------------------ tables

    def anonymize_frame(self, df: "pd.DataFrame") -> tuple["pd.DataFrame", dict]:
        """A copy of ``df`` with personal data replaced, and a report ``{"rows", "mode", "columns": {column:
        {kind: cells}}, "cells_changed"}`` (counts only: a report never holds a raw value)."""
        import pandas as pd

        missing = [c for c in list(self.columns or []) + list(self.name_columns) if c not in df.columns]
        if missing:
            raise GuimoError(f"no columns {', '.join(missing)}; the columns are: {', '.join(map(str, df.columns))}")
        out = df.copy()
        report: dict = {"rows": len(df), "mode": self.mode, "columns": {}, "cells_changed": 0}
        for c in df.columns:
            if c in self.skip:
                continue
            s = df[c]
            if c in self.name_columns:
                present = s.notna() & (s.astype(str).str.strip() != "")
                if present.any():
                    uniques = s[present].astype(str).unique()
                    mapping = {v: self.anonymize_name(v) for v in uniques}
                    out[c] = s.astype(object).where(~present, s[present].astype(str).map(mapping))
                    report["columns"][str(c)] = {"name": int(present.sum())}
                    report["cells_changed"] += int(present.sum())
                continue
            if self.columns is not None and c not in self.columns:
                continue
            if not (pd.api.types.is_string_dtype(s) or s.dtype == object or pd.api.types.is_integer_dtype(s)):
                continue
            present = s.notna()
            text = s[present].astype(str)
            counts: dict[str, int] = {}
            mapping = {}
            candidates = pd.Series(text.unique(), dtype="string")
            candidates = candidates[candidates.str.contains(_MAYBE_WIDE, regex=True)]  # vectorised first pass
            memo = self._memo
            for v in candidates:
                if v not in memo:
                    if len(memo) >= MEMO_SIZE:
                        memo.clear()
                    new, found = self.anonymize_text(v)
                    memo[v] = (new, frozenset(f.kind for f in found)) if found else None
                if memo[v] is not None:
                    mapping[v] = memo[v]
            if not mapping:
                continue
            hit = text.isin(mapping.keys())
            for v, n in text[hit].value_counts().items():
                for kind in mapping[v][1]:
                    counts[kind] = counts.get(kind, 0) + int(n)
            new_col = s.astype(object).copy()
            idx = text.index[hit.to_numpy()]
            new_col.loc[idx] = text[hit].map(lambda v: mapping[v][0]).to_numpy()
            out[c] = new_col
            report["columns"][str(c)] = dict(sorted(counts.items()))
            report["cells_changed"] += int(hit.sum())
        return out, report


def merge_reports(a: dict, b: dict) -> dict:
    """Sum two reports (chunks of one file)."""
    out = {"rows": a.get("rows", 0) + b["rows"], "mode": b["mode"], "columns": {k: dict(v) for k, v in a.get("columns", {}).items()},
           "cells_changed": a.get("cells_changed", 0) + b["cells_changed"]}
    for col, kinds in b["columns"].items():
        target = out["columns"].setdefault(col, {})
        for kind, n in kinds.items():
            target[kind] = target.get(kind, 0) + n
    return out


def load_key(key_file: str | os.PathLike | None = None) -> bytes | None:
    """The pseudonym key from ``key_file`` (its text, stripped) or the ``GUIMO_ANONYMIZE_KEY`` variable; None
    when neither is given."""
    from pathlib import Path

    if key_file:
        path = Path(key_file)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise GuimoError(f"{path}: key file not found (make one with --new-key {path})") from None
        if not text:
            raise GuimoError(f"{path}: the key file is empty")
        return text.encode()
    value = os.environ.get(KEY_ENV, "").strip()
    return value.encode() if value else None


def new_key_file(path: str | os.PathLike) -> bytes:
    """Write a fresh random key (64 hex characters, 256 bits) to ``path``, readable by its owner only.
    Refuses to overwrite: replacing a key breaks every join with files pseudonymised under the old one."""
    import secrets
    from pathlib import Path

    path = Path(path)
    key = secrets.token_hex(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise GuimoError(f"{path} exists; pass it as --key-file to reuse it, or choose another path") from None
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key.encode()


def preprocess_anonymize(df: "pd.DataFrame", *, target: str | None = None, name_columns: Sequence[str] = (),
                         mode: str | None = None, key: bytes | str | None = None) -> tuple["pd.DataFrame", dict]:
    """The ``preprocess.anonymize=true`` step of the tabular scenarios: personal data out of the table before
    anything is trained, saved or reported. The target is never touched. ``mode`` defaults to pseudonyms when
    a key is given or set in ``GUIMO_ANONYMIZE_KEY`` (joins with other pseudonymised files keep working), else
    masks (no key needed). Either way the replaced columns become ids or constants, which ``infer_columns``
    then leaves out of the features."""
    key = key if key is not None else load_key()
    mode = mode or ("pseudonym" if key is not None else "mask")
    return Anonymizer(name_columns=name_columns, mode=mode, key=key, skip=(target,) if target else ()).anonymize_frame(df)
