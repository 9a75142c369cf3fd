"""FAQ data for the FAQ answerer: entries (question + answer) and user queries that rephrase them.

An ``FaqEntry`` is one answerable item; ``group`` ties together entries that answer the same
need (a StackExchange thread with several answers is one group of several entries). A
``FaqQuery`` is a user's wording of a need; the entries of its ``group`` are the relevant ones.

Sources:
- ``read_faq_jsonl``: one ``{"id", "question", "answer"}`` object per line, optionally
  ``"queries": [...]`` (paraphrases users wrote; used to fine-tune and to choose the no-answer
  threshold) and ``"group"``. Errors name file and line.
- ``read_stackfaq``: the StackFAQ XML (Karan & Šnajder 2018): 125 threads, each a question,
  1-13 answers and ~11 crowd rephrasings (``*`` placeholders dropped).
- ``embedded_faq``: a small online-shop FAQ with paraphrased queries, the default data.

Queries are split by ``split_queries`` *within* each group (stratified): every need has
training, validation and test wordings, and a test wording is never seen in training.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from guimo.errors import GuimoError, where
from guimo.io import iter_jsonl

STACKFAQ_FILE = "stackExchange-FAQ.xml"


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ item: what ``search`` returns and ``answer`` quotes."""

    id: str
    question: str
    answer: str
    group: str  # entries of one group answer the same need (one StackExchange thread)

    @property
    def text(self) -> str:
        """What retrieval reads: the question, then the answer."""
        return f"{self.question}\n{self.answer}"


@dataclass(frozen=True)
class FaqQuery:
    """A user's wording of a need; relevant entries are those of ``group``."""

    text: str
    group: str


@dataclass
class FaqSet:
    entries: list[FaqEntry]
    queries: list[FaqQuery] = field(default_factory=list)

    def relevant(self) -> dict[str, set[str]]:
        """group -> the ids of its entries."""
        out: dict[str, set[str]] = defaultdict(set)
        for e in self.entries:
            out[e.group].add(e.id)
        return dict(out)


def _text(value: object, path: Path, line: int, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GuimoError(f"{where(path, line)}: '{key}' must be a non-empty string")
    return value.strip()


def read_faq_jsonl(path: str | Path) -> FaqSet:
    """FAQ entries from JSONL ``{"id", "question", "answer", "queries"?, "group"?}``; ids must be unique."""
    path = Path(path)
    entries: list[FaqEntry] = []
    queries: list[FaqQuery] = []
    seen: dict[str, int] = {}
    for line, rec in iter_jsonl(path):
        missing = [k for k in ("id", "question", "answer") if k not in rec]
        if missing:
            raise GuimoError(f"{where(path, line)}: missing {', '.join(repr(m) for m in missing)}; "
                             f"the fields there are: {', '.join(rec) or '(none)'}")
        entry_id = str(rec["id"]).strip()
        if not entry_id:
            raise GuimoError(f"{where(path, line)}: empty 'id'")
        if entry_id in seen:
            raise GuimoError(f"{where(path, line)}: id {entry_id!r} repeats line {seen[entry_id]}")
        seen[entry_id] = line
        group = str(rec.get("group", entry_id))
        entries.append(FaqEntry(entry_id, _text(rec["question"], path, line, "question"),
                                _text(rec["answer"], path, line, "answer"), group))
        extra = rec.get("queries", [])
        if not isinstance(extra, list):
            raise GuimoError(f"{where(path, line)}: 'queries' must be a list of strings")
        queries.extend(FaqQuery(_text(q, path, line, "queries[]"), group) for q in extra)
    if not entries:
        raise GuimoError(f"{path}: no FAQ entries")
    return FaqSet(entries, queries)


def read_stackfaq(path: str | Path) -> FaqSet:
    """StackFAQ's XML (or its folder): entry ``t{thread}-a{k}`` per answer, queries from ``<rephr>``.

    Read with the standard library's expat parser: a local, trusted benchmark file (expat >= 2.4.1
    refuses entity-expansion bombs anyway).
    """
    import xml.etree.ElementTree as ET

    path = Path(path)
    if path.is_dir():
        path = path / STACKFAQ_FILE
    if not path.is_file():
        raise GuimoError(f"{path}: file not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise GuimoError(f"{where(path, e.position[0])}: malformed XML ({e})") from None
    entries: list[FaqEntry] = []
    queries: list[FaqQuery] = []
    for t, pair in enumerate(root.iter("qapair")):
        group = f"t{t}"
        question = " ".join((pair.findtext("question") or "").split())
        answers = [" ".join((a.text or "").split()) for a in pair.findall("answer")]
        if not question or not any(answers):
            raise GuimoError(f"{path}: thread {t} (<qapair> number {t + 1}) has no question or no answer")
        entries.extend(FaqEntry(f"{group}-a{k}", question, a, group) for k, a in enumerate(answers) if a)
        for r in pair.findall("rephr"):
            text = " ".join((r.text or "").split())
            if text and text != "*":  # '*': a placeholder where a crowd worker wrote nothing
                queries.append(FaqQuery(text, group))
    if not entries:
        raise GuimoError(f"{path}: no <qapair> elements")
    return FaqSet(entries, queries)


def split_queries(queries: Sequence[FaqQuery], *, val_fraction: float = 0.2, test_fraction: float = 0.3,
                  seed: int = 0) -> dict[str, list[FaqQuery]]:
    """Split each group's queries (stratified by group), seeded: train/val/test.

    Within a group the queries are shuffled and cut by the fractions (rounded, at least one
    test and one validation query whenever the group has three or more), so every need is
    tested on wordings that training never saw.
    """
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 or val_fraction + test_fraction >= 1:
        raise GuimoError(f"split fractions must be in (0, 1) and sum below 1, got val={val_fraction}, test={test_fraction}")
    by_group: dict[str, list[FaqQuery]] = defaultdict(list)
    for q in queries:
        by_group[q.group].append(q)
    rng = random.Random(seed)
    out: dict[str, list[FaqQuery]] = {"train": [], "val": [], "test": []}
    for group in sorted(by_group):
        qs = list(by_group[group])
        rng.shuffle(qs)
        n = len(qs)
        n_test = max(1, round(n * test_fraction)) if n >= 3 else (1 if n == 2 else 0)
        n_val = max(1, round(n * val_fraction)) if n >= 3 and val_fraction > 0 else 0
        n_val = min(n_val, n - n_test)
        out["test"].extend(qs[:n_test])
        out["val"].extend(qs[n_test : n_test + n_val])
        out["train"].extend(qs[n_test + n_val :])
    return out


# -- the embedded default: an online shop's FAQ ----------------------------------------------

# (question, answer, user wordings). Wordings avoid the question's own words where people would.
_SHOP_FAQ: list[tuple[str, str, list[str]]] = [
    ("How do I track my order?", "Open Orders in your account and choose Track parcel; the courier's tracking link is also in your dispatch email.",
     ["where is my parcel", "has my package shipped yet", "I want to see where my delivery is", "can I follow my shipment",
      "status of my purchase", "when will my stuff arrive"]),
    ("How do I return an item?", "Start a return from Orders within 30 days, print the label and drop the parcel at any post office.",
     ["I want to send something back", "how can I send back a product", "the shoes do not fit, can I give them back",
      "process for sending goods back", "I need a return label", "can I bring back what I bought"]),
    ("When will I get my refund?", "Refunds reach your card 3-5 working days after the returned parcel arrives at our warehouse.",
     ["how long until my money comes back", "I sent the item back but have not been paid", "money back timing",
      "when is the reimbursement paid", "still waiting for the cash from my return", "how many days for the refund to appear"]),
    ("How do I reset my password?", "Choose Forgot password on the sign-in page and follow the link we email you; it is valid for one hour.",
     ["I forgot my login", "can't sign in, lost my pass", "change my forgotten password", "locked out of my account",
      "how do I get a new password", "password not working anymore"]),
    ("Which payment methods do you accept?", "We accept Visa, Mastercard, American Express, PayPal, Apple Pay and bank transfer.",
     ["can I pay with paypal", "do you take credit cards", "ways to pay", "is apple pay possible",
      "can I pay by bank transfer", "what cards can I use at checkout"]),
    ("How much does delivery cost?", "Standard delivery is free on orders over 50 euros; below that it costs 4.95. Express is 9.95.",
     ["what are the shipping fees", "is postage free", "price of sending the order", "how much is express shipping",
      "do I pay for shipping", "delivery charge for small orders"]),
    ("Do you ship abroad?", "We deliver to all EU countries, the UK, Norway and Switzerland; customs duties outside the EU are paid on delivery.",
     ["can you send to another country", "international shipping", "do you deliver to switzerland", "shipping outside the EU",
      "can I order from the UK", "worldwide delivery available?"]),
    ("How do I cancel my order?", "You can cancel in Orders until the parcel is handed to the courier; after that, return it instead.",
     ["I ordered by mistake, stop it", "undo my purchase", "can I call off my order", "I changed my mind before it shipped",
      "withdraw an order I just placed", "stop the order from being sent"]),
    ("Can I change my delivery address?", "Edit the address in Orders before dispatch; once shipped, ask the courier to redirect the parcel.",
     ["I moved, send it somewhere else", "wrong address on my order", "update where my parcel goes", "ship to a different house",
      "typo in my street name", "deliver to my office instead"]),
    ("How do I use a discount code?", "Enter the code in the Voucher field at checkout; one code per order, not valid on gift cards.",
     ["where do I put my coupon", "promo code not applied", "how to redeem a voucher", "apply my promotion",
      "I have a code for 10 percent off", "where is the coupon box"]),
    ("What is your warranty?", "Every product has a two-year warranty; contact us with your order number and a photo of the fault.",
     ["my item broke after a month", "is there a guarantee", "product stopped working, what now", "defective item repair",
      "how long are goods covered", "broken after six months, can you fix it"]),
    ("How do I contact customer service?", "Chat with us from the Help page, 8:00-20:00 every day, or email help@example-shop.com.",
     ["talk to a human", "phone number for support", "how can I reach you", "I need to speak to someone",
      "email address for help", "opening hours of your helpdesk"]),
    ("How do I delete my account?", "Go to Settings, Privacy, Delete account; we erase your data within 30 days, except invoices we must keep.",
     ["remove my profile", "close my customer account", "I want you to erase my data", "get rid of my account",
      "stop having an account with you", "GDPR erase my information"]),
    ("Can I buy a gift card?", "Gift cards from 10 to 500 euros are sold on the Gift cards page and sent by email; they never expire.",
     ["present voucher for a friend", "do you sell vouchers", "gift certificate", "give someone shop credit",
      "buy credit as a birthday present", "e-gift for my sister"]),
    ("How do I unsubscribe from emails?", "Click Unsubscribe at the bottom of any newsletter, or untick Marketing emails in Settings.",
     ["stop sending me newsletters", "too much spam from you", "opt out of marketing mail", "no more promotional emails",
      "remove me from the mailing list", "how to stop the offers in my inbox"]),
    ("Is my item in stock?", "The product page shows stock per size; Notify me sends an email when a sold-out size is back.",
     ["when will this be available again", "sold out, restock date?", "do you have it in size 42", "back in stock alert",
      "is this product available", "can I get told when it returns"]),
]


def embedded_faq() -> FaqSet:
    """The default FAQ: 16 online-shop entries, each its own group, with 6 user wordings apiece."""
    entries, queries = [], []
    for i, (q, a, wordings) in enumerate(_SHOP_FAQ):
        entries.append(FaqEntry(f"shop-{i}", q, a, f"shop-{i}"))
        queries.extend(FaqQuery(w, f"shop-{i}") for w in wordings)
    return FaqSet(entries, queries)


# Questions no support FAQ answers: validation and test halves choose and check the no-answer
# threshold (``out_of_domain(split)``). Kept general so they are out of domain for the shop and
# for StackFAQ's web applications alike.
_OUT_OF_DOMAIN = [
    "what is the capital of australia", "how many calories are in a banana", "who won the football world cup in 2014",
    "recipe for vegetable lasagne", "how tall is mount everest", "what is the boiling point of water at altitude",
    "best time to plant tomatoes", "how do I tie a tie", "translate good morning into italian", "why is the sky blue",
    "what's the weather like tomorrow in paris", "how long do cats live", "what is the square root of 169",
    "who painted the mona lisa", "how to train for a marathon", "when did the roman empire fall",
    "how do vaccines work", "what should I name my dog", "how to fix a flat bicycle tyre", "tips for a job interview",
    "how many players are on a rugby team", "what is photosynthesis", "how do I cook rice in a pot",
    "what is the speed of light", "how to learn to play guitar", "which planet has the most moons",
    "how to remove a red wine stain from a carpet", "what does a mortgage broker do", "how to grow basil indoors",
    "what is the population of japan", "how far is the moon from earth", "how do I change a car tyre",
    "how to make sourdough bread", "what are the symptoms of the flu", "who wrote pride and prejudice",
    "how to meditate for beginners", "what is the tallest building in the world", "how to knit a scarf",
    "what is the difference between a virus and bacteria", "how do solar panels work",
]


def out_of_domain(split: str) -> list[str]:
    """Out-of-domain questions: ``"val"`` (first half, to choose thresholds) or ``"test"`` (second half)."""
    half = len(_OUT_OF_DOMAIN) // 2
    if split == "val":
        return _OUT_OF_DOMAIN[:half]
    if split == "test":
        return _OUT_OF_DOMAIN[half:]
    raise GuimoError(f"out-of-domain split must be 'val' or 'test', got {split!r}")
