"""Synthetic personal data with known positions, to measure a PII detector's precision and recall.

``planted_table(n_rows, seed)`` returns a table whose cells hold valid e-mails, phones (international
and Chinese mobile), card numbers (Luhn-valid, network prefixes), IBANs (mod-97), IPv4/IPv6 addresses,
Chinese resident IDs (MOD 11-2) and names, some inside free-text notes, beside **look-alikes** that a
detector must leave alone: card numbers failing Luhn, IBANs with a wrong check, resident IDs with a
wrong check digit, impossible IPs, order numbers, ``name@localhost``. Every planted value is listed with
its row, column and kind, so ``score_detection`` can count hits, misses and false alarms.

No value here belongs to anyone: the names are common given/family names, the domains are reserved
(``example.com``/``.org``/``.net``), the numbers random with valid checksums.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Callable

    import pandas as pd

    from guimo.privacy.anonymize import Finding

FIRST = ["Alice", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Gustav", "Hana", "Ivan", "Jia", "Karin", "Luis", "Mei",
         "Noor", "Olga", "Pedro", "Qiang", "Rosa", "Sven", "Tariq", "Wei", "Xiu", "Yusuf", "Zoe"]
LAST = ["Smith", "Müller", "Wang", "Li", "Garcia", "Okafor", "Kowalski", "Rossi", "Zhang", "Dubois", "Nakamura", "Silva"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "example.co.uk"]
PHONE_REGIONS = ["GB", "US", "DE", "FR", "JP", "IN", "BR"]
CN_REGIONS = ["110105", "310104", "440305", "510107", "330106", "420102"]


@dataclass(frozen=True)
class Planted:
    row: int
    column: str
    kind: str  # a KINDS entry, or "lookalike" for a value no detector may flag
    value: str  # as written in the cell


class _Maker:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def digits(self, n: int) -> str:
        return "".join(self.r.choice("0123456789") for _ in range(n))

    def name(self) -> str:
        return f"{self.r.choice(FIRST)} {self.r.choice(LAST)}"

    def email(self) -> str:
        first, last = self.r.choice(FIRST).lower(), self.r.choice(LAST).lower().replace("ü", "u")
        return f"{first}.{last}{self.r.randint(1, 999)}@{self.r.choice(DOMAINS)}"

    def card(self, valid: bool = True) -> str:
        from stdnum import luhn

        prefix, length = self.r.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16), ("62", 16), ("4", 13)])
        body = prefix + self.digits(length - len(prefix) - 1)
        check = luhn.calc_check_digit(body)
        if not valid:
            check = str((int(check) + self.r.randint(1, 9)) % 10)
        number = body + check
        if length == 16 and self.r.random() < 0.5:
            return " ".join(number[i:i + 4] for i in range(0, 16, 4))
        return number

    def iban(self, valid: bool = True) -> str:
        from stdnum import iban

        country, bban = self.r.choice([("DE", lambda: self.digits(18)),
                                        ("GB", lambda: self.r.choice(["NWBK", "BARC", "HBUK"]) + self.digits(14)),
                                        ("NL", lambda: self.r.choice(["ABNA", "INGB", "RABO"]) + self.digits(10))])
        while True:
            b = bban()
            number = country + iban.calc_check_digits(country + "00" + b) + b
            if iban.is_valid(number):  # some countries check their account numbers too (NL's eleven test)
                break
        if not valid:
            i = self.r.randrange(len(number) - 6, len(number))
            number = number[:i] + str((int(number[i]) + 1) % 10) + number[i + 1:]
        if self.r.random() < 0.5:
            return " ".join(number[i:i + 4] for i in range(0, len(number), 4))
        return number

    def cn_id(self, valid: bool = True) -> str:
        from stdnum.cn import ric

        birth = f"{self.r.randint(1950, 2005)}{self.r.randint(1, 12):02d}{self.r.randint(1, 28):02d}"
        body = self.r.choice(CN_REGIONS) + birth + self.digits(3)
        check = ric.calc_check_digit(body + "0")  # stdnum expects a number with a (placeholder) check digit
        if not valid:
            check = self.r.choice([c for c in "0123456789X" if c != check])
        return body + check

    def phone(self) -> str:
        import phonenumbers as pn

        if self.r.random() < 0.4:  # Chinese mobile, with or without +86
            number = f"1{self.r.choice('3456789')}{self.digits(9)}"
            return self.r.choice([number, "+86" + number, f"+86 {number[:3]} {number[3:7]} {number[7:]}"])
        region = self.r.choice(PHONE_REGIONS)
        example = pn.example_number_for_type(region, pn.PhoneNumberType.MOBILE)
        while True:
            national = str(example.national_number)
            candidate = pn.PhoneNumber(country_code=example.country_code,
                                       national_number=int(national[:-4] + self.digits(4)))
            if pn.is_valid_number(candidate):
                written = pn.format_number(candidate, pn.PhoneNumberFormat.INTERNATIONAL)
                return "00" + written[1:] if self.r.random() < 0.2 else written  # "0044 ...": dialled, not "+44"

    def ip(self, valid: bool = True) -> str:
        if not valid:
            return self.r.choice([f"{self.r.randint(256, 999)}.{self.r.randint(0, 255)}.{self.r.randint(0, 255)}.{self.r.randint(0, 255)}",
                                  f"v{self.r.randint(1, 9)}.{self.r.randint(0, 20)}.{self.r.randint(0, 99)}"])
        if self.r.random() < 0.7:
            return ".".join(str(self.r.randint(1, 254)) for _ in range(4))
        import ipaddress

        return ipaddress.IPv6Address(self.r.getrandbits(128)).compressed


def planted_table(n_rows: int, seed: int = 0, lookalike_share: float = 0.3) -> tuple["pd.DataFrame", list[Planted]]:
    """A table of ``n_rows`` with one planted value (or a look-alike, ``lookalike_share`` of the time) per
    PII column and row, a free-text ``note`` mixing PII into prose, and clean columns (amount, order
    number, city). Returns the table (all cells text, as read from a CSV) and the list of planted values."""
    import pandas as pd

    m = _Maker(seed)
    r = m.r
    rows, planted = [], []

    def put(i, column, kind, value, cells):
        cells[column] = value
        planted.append(Planted(i, column, kind, value))

    for i in range(n_rows):
        cells: dict[str, str] = {}
        put(i, "customer", "name", m.name(), cells)
        look = r.random() < lookalike_share
        if look:
            put(i, "email", "lookalike", r.choice([f"{r.choice(FIRST).lower()}@localhost", "no email given",
                                                   f"@{r.choice(FIRST).lower()}_{m.digits(3)}"]), cells)
        else:
            put(i, "email", "email", m.email(), cells)
        if r.random() < lookalike_share:
            put(i, "phone", "lookalike", r.choice([f"ORD-{m.digits(7)}", f"{m.digits(4)}-{m.digits(2)}-{m.digits(2)}", m.digits(6)]), cells)
        else:
            put(i, "phone", "phone", m.phone(), cells)
        valid = r.random() >= lookalike_share
        put(i, "card", "credit_card" if valid else "lookalike", m.card(valid), cells)
        valid = r.random() >= lookalike_share
        put(i, "iban", "iban" if valid else "lookalike", m.iban(valid), cells)
        valid = r.random() >= lookalike_share
        put(i, "ip", "ip" if valid else "lookalike", m.ip(valid), cells)
        valid = r.random() >= lookalike_share
        put(i, "resident_id", "cn_resident_id" if valid else "lookalike", m.cn_id(valid), cells)
        # free text: one real value of some kind, one look-alike, and numbers that are no one's
        kind, make = r.choice([("email", m.email), ("phone", m.phone), ("credit_card", m.card), ("ip", m.ip)])
        real, fake = make(), r.choice([m.card(False), m.cn_id(False), m.iban(False)])
        note = r.choice(["Customer wrote from {real} about order {order}; old ref {fake}.",
                         "{real} — refund of {amount} EUR pending (ticket {fake}), order {order}",
                         "call back re order {order}: {real}. Do not use {fake}."])
        order = m.digits(9)
        cells["note"] = note.format(real=real, fake=fake, order=order, amount=f"{r.uniform(5, 900):.2f}")
        planted.append(Planted(i, "note", kind, real))
        planted.append(Planted(i, "note", "lookalike", fake))
        cells["amount"] = f"{r.uniform(1, 5000):.2f}"
        cells["order_no"] = order
        cells["city"] = r.choice(["Berlin", "Shanghai", "Lyon", "Leeds", "Osaka"])
        rows.append(cells)
    return pd.DataFrame(rows, dtype="string"), planted


def score_detection(find: "Callable[[str], list[Finding]]", df: "pd.DataFrame", planted: list[Planted],
                    name_columns: tuple[str, ...] = ("customer",)) -> dict[str, dict[str, float]]:
    """Per kind: ``planted``, ``found`` (a finding of that kind covering the planted value), ``false_alarms``
    (findings of that kind over anything else: look-alikes, clean text), ``precision``, ``recall``. ``find`` is
    a detector (``Anonymizer(...).find``, or another tool's findings mapped to these kinds); names count as found
    when their column is a name column (the anonymiser replaces every value there)."""
    from collections import defaultdict

    from guimo.privacy.anonymize import KINDS

    by_cell = defaultdict(list)
    for p in planted:
        by_cell[(p.row, p.column)].append(p)
    stats = {k: {"planted": 0, "found": 0, "false_alarms": 0} for k in (*KINDS, "other")}  # other: kinds we do not plant
    for p in planted:
        if p.kind in stats:
            stats[p.kind]["planted"] += 1
    for (row, column), items in by_cell.items():
        if column in name_columns:
            stats["name"]["found"] += sum(p.kind == "name" for p in items)
            continue
        text = str(df.at[row, column])
        for f in find(text):
            hit = any(p.kind == f.kind and (k := text.find(p.value)) >= 0 and f.start <= k + len(p.value) and f.end >= k
                      for p in items)
            stats[f.kind]["found" if hit else "false_alarms"] += 1
    for column in [c for c in df.columns if c not in {p.column for p in planted}]:  # clean columns: any finding is false
        for text in df[column].astype(str):
            for f in find(text):
                stats[f.kind]["false_alarms"] += 1
    for s in stats.values():
        s["precision"] = s["found"] / (s["found"] + s["false_alarms"]) if s["found"] + s["false_alarms"] else 1.0
        s["recall"] = s["found"] / s["planted"] if s["planted"] else 1.0
    return stats
