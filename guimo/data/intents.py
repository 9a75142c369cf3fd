"""Labelled texts for the text classifiers: the embedded customer-service generator and a file reader.

A labelled text is ``(text, label, group)``. ``group`` names what must not straddle splits: the
paraphrase template a generated query came from (so the test set asks with wordings the model
never saw, which is what real customers do and what separates an encoder that understands
paraphrases from TF-IDF that matches words), or a product cluster in PriceRunner. ``None``: each
row is its own group.

- ``generate_queries(cfg)``: seeded e-commerce support queries (order status, refunds, password
  reset, ...) from several hand-written paraphrase templates per intent, plus out-of-scope queries
  (weather, jokes, sport, ...) under the label ``out_of_scope``.
- ``read_labelled(path, text_field, label_field, group_field)``: a CSV (any header; BANKING77's
  ``text,category`` is detected) or a JSONL file, every bad row named by file and line.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

from guimo.errors import GuimoError, where
from guimo.io import iter_csv

OOS_LABEL = "out_of_scope"
OOS_NAMES = ("out_of_scope", "oos", "out-of-scope", "outofscope")  # label names taken to mean "none of the intents"
TEXT_COLUMNS = ("text", "query", "utterance", "sentence", "title", "question")  # tried in order when text_field="auto"
LABEL_COLUMNS = ("label", "intent", "category", "class", "target")


class Labelled(NamedTuple):
    text: str
    label: str
    group: str | None = None


@dataclass
class IntentGeneratorConfig:
    per_intent: int = field(default=160, metadata={"help": "generated queries per intent"})
    out_of_scope: int = field(default=400, metadata={"help": "generated out-of-scope queries (label out_of_scope)"})
    seed: int = field(default=0, metadata={"help": "seeds the slot fillers and template choice"})
    typo_rate: float = field(default=0.03, metadata={"help": "chance per word of a dropped or swapped letter (real queries have typos)"})

    def __post_init__(self) -> None:
        if self.per_intent < 2 or self.out_of_scope < 0:
            raise ValueError("per_intent must be at least 2 and out_of_scope non-negative")
        if not 0 <= self.typo_rate < 0.5:
            raise ValueError("typo_rate must be in [0, 0.5)")


# Slot fillers shared by the templates ({item}, {days}, ...).
SLOTS: dict[str, list[str]] = {
    "item": ["shoes", "headphones", "jacket", "phone case", "coffee maker", "backpack", "laptop stand", "lamp",
             "watch", "blender", "sofa cushion", "yoga mat", "keyboard", "dress", "toy car", "kettle"],
    "order": ["order", "purchase", "package", "parcel", "delivery"],
    "days": ["two", "three", "five", "ten", "several", "a few"],
    "time": ["yesterday", "last week", "on Monday", "two days ago", "this morning", "a month ago"],
    "pay": ["credit card", "PayPal", "debit card", "gift card", "Apple Pay", "bank transfer"],
    "city": ["Berlin", "Lyon", "Austin", "Osaka", "Madrid", "Toronto", "Leeds"],
    "topic": ["football", "the election", "the stock market", "cooking", "the weather", "movies"],
}

# intent -> paraphrase templates. Templates of one intent share meaning, not words: the split
# keeps whole templates out of training, so a test query is a wording the classifier never saw.
INTENTS: dict[str, list[str]] = {
    "order_status": [
        "where is my {order}", "what is the status of my {order}", "has my {order} shipped yet",
        "I ordered {item} {time}, any update", "can you check on the {item} I bought", "is my {order} on its way",
        "I still have not received my {item}", "when will my {order} arrive",
        "my tracking number shows nothing", "it has been {days} days and no {order}",
        "did you even send my {item}", "how far away is my delivery", "any news about the {item} I ordered",
    ],
    "cancel_order": [
        "cancel my {order}", "I want to cancel the {item} I ordered {time}", "please stop my {order} from shipping",
        "I changed my mind about the {item}, call it off", "how do I cancel an {order}", "I no longer want the {item}, cancel it",
        "can I still cancel the purchase I made {time}", "kill my order for the {item} please",
        "undo the purchase I just made", "I ordered the {item} by mistake",
        "please void my order before it ships", "abort the checkout I did {time}",
    ],
    "refund": [
        "I want my money back for the {item}", "how do I get a refund", "when will I be refunded for my {order}",
        "refund the {item} please", "I was promised a refund {time} and nothing came", "give me back what I paid for the {item}",
        "the refund for my {order} has not reached my {pay}", "how long do refunds take to show up",
        "I returned the {item} but got no money", "credit my {pay} for the {item}",
        "reimburse me for the broken {order}", "where is the money for my returned {item}",
    ],
    "return_item": [
        "how do I return the {item}", "I need to send the {item} back", "can I return something I bought {time}",
        "what is your return policy", "I would like to ship the {item} back to you", "print a return label for my {item}",
        "the {item} does not fit, can I swap it", "where do I drop off a return",
        "send me a prepaid label for the {item}", "can I mail the {item} back for free",
        "is it too late to bring back the {item}", "what is the deadline for returns",
    ],
    "shipping_cost": [
        "how much is shipping", "do you ship for free", "what does delivery cost to {city}",
        "is there a fee for sending to {city}", "why did I pay so much for postage", "are delivery charges included in the price",
        "what is the minimum order for free delivery", "how expensive is express shipping",
        "will I pay extra for postage to {city}", "what are your delivery rates",
        "is shipping cheaper if I order more", "do I have to pay for delivery on the {item}",
    ],
    "change_address": [
        "change my delivery address", "I moved, update the address on my {order}", "send the {item} to {city} instead",
        "my {order} is going to the wrong address", "can I ship to a different place", "I typed the wrong street for my {order}",
        "please redirect my parcel to my office", "update where my {item} gets delivered",
        "deliver to my new flat please", "my postcode on the {order} is wrong",
        "can the courier bring it to my neighbour", "I need to edit the shipping details",
    ],
    "password_reset": [
        "I forgot my password", "reset my password", "I can't log in to my account",
        "the login keeps saying wrong password", "how do I change my password", "locked out of my account",
        "the password reset email never came", "my sign in does not work anymore",
        "I need a new password", "my account says invalid credentials",
        "how can I get back into my profile", "the app rejects my login every time",
    ],
    "payment_failed": [
        "my payment was declined", "why did my {pay} not go through", "checkout fails when I pay",
        "the payment keeps getting rejected", "I was charged but the order failed", "error when paying with {pay}",
        "my card is refused at checkout", "the transaction did not work {time}",
        "my {pay} got an error at checkout", "why won't you take my money",
        "the bank blocked my purchase of the {item}", "paying fails every time I try",
    ],
    "damaged_item": [
        "my {item} arrived broken", "the {item} is damaged", "the box was crushed and the {item} is cracked",
        "I received a defective {item}", "the {item} stopped working after {days} days", "the {item} came scratched",
        "something in my {order} is broken", "the {item} does not turn on out of the box",
        "the {item} is faulty", "the screen on my {item} is shattered",
        "the {item} came with a dent", "the {item} leaks",
    ],
    "missing_item": [
        "my {order} is missing an item", "the {item} was not in the box", "I only got part of my {order}",
        "one thing from my {order} never came", "the parcel arrived without the {item}", "you forgot to include the {item}",
        "half my items are missing", "I paid for two but got one",
        "the package was short one {item}", "where is the rest of my {order}",
        "my box came incomplete", "the {item} is not among the things delivered",
    ],
    "discount_code": [
        "my promo code does not work", "how do I use a discount code", "the coupon is not accepted",
        "do you have any discounts", "is there a voucher for new customers", "the sale price was not applied",
        "where do I enter my gift code", "can I still get the discount I was emailed",
        "the voucher says expired", "apply my coupon to the {item}",
        "I was supposed to get ten percent off", "is there a student discount",
    ],
    "human_agent": [
        "let me talk to a person", "I want a human", "connect me to customer service",
        "is there a phone number I can call", "get me a real agent", "I need to speak to someone",
        "transfer me to a representative", "stop the bot, I want an operator",
        "can someone call me back", "I would rather chat with staff",
        "put me through to a manager", "are there any humans working there",
    ],
    "delete_account": [
        "delete my account", "close my account permanently", "remove all my data",
        "I want to unsubscribe from everything and leave", "how do I deactivate my profile", "erase my personal information",
        "I don't want an account with you anymore", "terminate my membership",
        "cancel my account, not my order", "I want you to forget me",
        "wipe my profile and history", "how do I quit your service for good",
    ],
    "invoice": [
        "I need an invoice for my {order}", "send me a receipt", "where can I download my bill",
        "can I get a VAT invoice for the {item}", "my company needs a receipt for the purchase {time}", "the invoice has the wrong name",
        "email me proof of purchase", "I need the tax receipt for my {order}",
        "can you reissue my invoice", "my receipt is missing the VAT number",
        "download a PDF of my bill for the {item}", "I need the billing document for my accountant",
    ],
}

OUT_OF_SCOPE: list[str] = [
    "what is the weather in {city}", "tell me a joke", "who won the {topic} game", "what is the capital of France",
    "how many calories in a banana", "play some music", "what time is it in {city}", "recommend a good book",
    "how do I bake bread", "what is two plus two", "translate hello into Spanish", "who is the president",
    "set an alarm for seven", "what is the meaning of life", "what do you think about {topic}", "how tall is Mount Everest",
    "give me a recipe for pasta", "how do I fix my car engine", "find me a flight to {city}", "what is a black hole",
    "who sings this song", "book a table for two tonight", "how old is the universe", "what is the best phone to buy",
    "how do I learn to swim", "is it going to rain tomorrow", "write me a poem", "what is bitcoin worth",
]


def _fill(template: str, rng: random.Random) -> str:
    out = template
    for slot, values in SLOTS.items():
        key = "{" + slot + "}"
        while key in out:
            out = out.replace(key, rng.choice(values), 1)
    return out


def _noise(text: str, rng: random.Random, typo_rate: float) -> str:
    """Casing, punctuation and the odd typo: the surface variation of typed queries."""
    words = text.split()
    for i, w in enumerate(words):
        if len(w) > 3 and rng.random() < typo_rate:
            j = rng.randrange(len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:] if rng.random() < 0.5 else w[:j] + w[j + 1:]
    text = " ".join(words)
    if rng.random() < 0.3:
        text = text.capitalize()
    return text + rng.choice(["", "", "?", ".", "!", " please", " thanks"])


def generate_queries(cfg: IntentGeneratorConfig) -> list[Labelled]:
    """Seeded customer-service queries: ``cfg.per_intent`` per intent over its templates, then
    ``cfg.out_of_scope`` queries labelled ``out_of_scope``. ``group`` is ``"label/template#"``."""
    rng = random.Random(cfg.seed)
    rows: list[Labelled] = []
    table = dict(INTENTS)
    if cfg.out_of_scope:
        table[OOS_LABEL] = OUT_OF_SCOPE
    for label, templates in table.items():
        n = cfg.out_of_scope if label == OOS_LABEL else cfg.per_intent
        for i in range(n):
            t = i % len(templates)  # every template used, evenly
            rows.append(Labelled(_noise(_fill(templates[t], rng), rng, cfg.typo_rate), label, f"{label}/{t}"))
    rng.shuffle(rows)
    return rows


# -- files -------------------------------------------------------------------------------------


def read_labelled(path: str | Path, text_field: str = "auto", label_field: str = "auto",
                  group_field: str | None = None) -> list[Labelled]:
    """Rows of a ``.csv``/``.tsv`` (header row) or ``.jsonl`` file (one object per line).

    ``"auto"`` fields pick the first header among ``TEXT_COLUMNS`` / ``LABEL_COLUMNS``. A missing
    column is an error listing the columns there are; an empty text or label names file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise GuimoError(f"{path}: file not found")
    rows = list(_jsonl_rows(path) if path.suffix == ".jsonl" else iter_csv(path))
    if not rows:
        raise GuimoError(f"{path}: no rows")
    columns = list(rows[0][1])
    text_col = _column(path, columns, text_field, TEXT_COLUMNS, "data.text_field")
    label_col = _column(path, columns, label_field, LABEL_COLUMNS, "data.label_field")
    group_col = _column(path, columns, group_field, (), "data.group_field") if group_field else None
    out = []
    for line, rec in rows:
        missing = [c for c in (text_col, label_col, group_col) if c is not None and c not in rec]
        if missing:
            raise GuimoError(f"{where(path, line)}: no field '{missing[0]}' (fields: {', '.join(map(str, rec))})")
        text, label = rec[text_col], rec[label_col]
        if not isinstance(text, str) or not text.strip():
            raise GuimoError(f"{where(path, line)}: empty or non-text '{text_col}'")
        if label is None or (isinstance(label, str) and not label.strip()) or isinstance(label, (dict, list)):
            raise GuimoError(f"{where(path, line)}: empty or invalid '{label_col}' ({label!r})")
        group = None if group_col is None else str(rec[group_col])
        out.append(Labelled(text.strip(), str(label).strip(), group))
    return out


def _column(path: Path, columns: list[str], wanted: str | None, candidates: tuple[str, ...], key: str) -> str:
    if wanted and wanted != "auto":
        if wanted not in columns:
            raise GuimoError(f"{path}: no column '{wanted}' ({key}); the columns are: {', '.join(columns)}")
        return wanted
    lower = {c.lower(): c for c in columns}
    for c in candidates:
        if c in lower:
            return lower[c]
    raise GuimoError(f"{path}: cannot tell which column is meant ({key}); the columns are: {', '.join(columns)}; "
                     f"set {key}=NAME")



def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    from guimo.io import iter_jsonl

    yield from iter_jsonl(path)
