"""Product titles with categories for the `categorize` scenario: generated, user CSV, PriceRunner.

A row is a ``Product``: one merchant's offer title, its category, and the product cluster it
belongs to (the same phone sold by five shops is one cluster, five titles). Splits are made by
cluster (``grouped_split``) so that no product is seen in training and tested again under a
second shop's spelling: a split by row would reward memorising model numbers, and PriceRunner's
own baselines (its SOURCE.md) are measured on a split grouped by ``Cluster ID``.

Sources:
- ``generate_catalogue``: the embedded default. A seeded generator of offers in the style of a
  price-comparison site: categories with brands, model names and specs, several merchants'
  title styles (lower/upper case, brand first or last, SKU codes, colour words in other
  languages, shipping noise), and near-duplicate offers in a cluster. Confusable pairs are
  built in on purpose (fridges vs fridge freezers vs freezers, as in PriceRunner) so that the
  task is not solved by one keyword.
- ``read_pricerunner``: ``pricerunner_aggregate.csv`` (group = ``Cluster ID``).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from guimo.errors import GuimoError

PRICERUNNER_FILE = "pricerunner_aggregate.csv"


@dataclass(frozen=True)
class Product:
    """One offer: its ``title``, its ``category`` (the label) and its product cluster ``group``."""

    title: str
    category: str
    group: str


# -- the generated catalogue ------------------------------------------------------------------

@dataclass
class CatalogueGeneratorConfig:
    """Settings of the embedded catalogue (`guimo run categorize` without --data)."""

    products: int = field(default=1200, metadata={"help": "product clusters generated (each 1..max_offers offer titles; ~3x as many rows)"})
    max_offers: int = field(default=5, metadata={"help": "most offers (merchant titles) per product"})
    seed: int = field(default=0, metadata={"help": "seeds brands, models, specs and title styles"})

    def __post_init__(self) -> None:
        if self.products < 10 or self.max_offers < 1:
            raise ValueError("products must be at least 10 (one per category) and max_offers at least 1")


# category -> (brands, model-name patterns, spec generators, category words a merchant may add).
# Patterns: "{L}" a capital letter, "{N}"/"{NN}"/"{NNN}"/"{NNNN}" digits, other text kept.
_CATEGORIES: dict[str, dict[str, list[str]]] = {
    "Mobile Phones": {
        "brands": ["Apple", "Samsung", "Xiaomi", "Huawei", "Motorola", "Nokia", "OnePlus", "Sony", "Google", "Oppo"],
        "models": ["Galaxy S{NN}", "Galaxy A{NN}", "iPhone {NN} Pro", "iPhone {NN}", "Redmi Note {NN}", "P{NN} Lite",
                   "Moto G{NN}", "{N}.{N} Plus", "Nord {N}", "Xperia {N} {L}", "Pixel {N}a", "Reno {N}"],
        "specs": ["{storage}", "{storage} {colour}", "dual sim {storage}", "{storage} 5G", "{ram} RAM {storage}", "unlocked {storage}"],
        "words": ["smartphone", "mobile phone", "sim free", "4G LTE", "5G phone"],
    },
    "TVs": {
        "brands": ["Samsung", "LG", "Sony", "Panasonic", "Philips", "Hisense", "TCL", "Toshiba", "Sharp", "Grundig"],
        "models": ["UE{NN}{L}U{NNNN}", "OLED{NN}C{N}", "KD-{NN}X{NN}", "TX-{NN}{L}X{NNN}", "{NN}PUS{NNNN}", "{NN}A{NNN}",
                   "{NN}C{NNN}", "QE{NN}Q{NN}{L}"],
        "specs": ['{inch}" 4K UHD', "{inch} inch smart tv", '{inch}" HDR LED', "{inch}in QLED", "{inch} inch OLED 4K", '{inch}" Full HD'],
        "words": ["television", "smart tv", "led tv", "freeview hd", "ultra hd tv"],
    },
    "Fridges": {
        "brands": ["Bosch", "Beko", "Hotpoint", "Indesit", "Samsung", "LG", "Liebherr", "Smeg", "Zanussi", "Candy"],
        "models": ["KSV{NN}VW{N}", "TLDA{NNN}", "RLA{NN}{N}", "UF{N}{N}", "FAB{NN}{L}", "ZRG{NNNNN}", "CCTOS {NNN}", "LTB1{NN}{L}"],
        "specs": ["{litres}l larder fridge", "{width}cm under counter fridge", "tall fridge {litres} litres", "{width}cm {energy} larder",
                  "undercounter fridge {colour}", "{litres} l fridge with icebox"],
        "words": ["fridge", "larder fridge", "refrigerator", "kühlschrank"],
    },
    "Fridge Freezers": {
        "brands": ["Bosch", "Beko", "Hotpoint", "Indesit", "Samsung", "LG", "Liebherr", "Smeg", "Zanussi", "Candy"],
        "models": ["KGN{NN}VL{NN}", "CFG{NNNN}", "H{N}T {NNN}", "RB{NN}J{NNNN}", "GBB{NN}PZ", "CN{NNN}", "FC{NN}{L}", "ZNME{NNNN}"],
        "specs": ["{litres}l frost free fridge freezer", "70/30 fridge freezer {colour}", "{width}cm combi {energy}",
                  "50/50 frost free {litres} litres", "american style fridge freezer {colour}", "{litres} l combi fridge freezer"],
        "words": ["fridge freezer", "combi", "kühl-gefrierkombination", "frost free fridge freezer"],
    },
    "Freezers": {
        "brands": ["Bosch", "Beko", "Hotpoint", "Indesit", "Liebherr", "Smeg", "Zanussi", "Candy", "Electrolux", "Gorenje"],
        "models": ["GSN{NN}VW{NN}", "FFG{NNNN}", "UH{N}{L}", "GN{NNNN}", "CVU{NNN}", "ZYAN{NN}", "FZ{NN}{L}", "EUT{NNNN}"],
        "specs": ["{litres}l upright freezer", "chest freezer {litres} litres", "{width}cm tall freezer {energy}", "frost free freezer {colour}",
                  "under counter freezer {litres}l", "{litres} l chest freezer"],
        "words": ["freezer", "upright freezer", "chest freezer", "gefrierschrank"],
    },
    "Washing Machines": {
        "brands": ["Bosch", "Beko", "Hotpoint", "Indesit", "Samsung", "LG", "Miele", "Zanussi", "Candy", "AEG"],
        "models": ["WAN{NNNNN}", "WTK{NNNN}", "NSWM {NNNN}", "WW{NN}T{NNN}", "F{N}WV{NNN}", "WWD{NNN}", "ZWF{NNNN}", "L{N}FEC{NNNN}"],
        "specs": ["{kg}kg {rpm} spin", "{kg} kg washer {energy}", "{rpm} rpm {kg}kg {colour}", "freestanding {kg}kg", "integrated {kg} kg {rpm}rpm",
                  "{kg}kg load {rpm} spin {energy}"],
        "words": ["washing machine", "washer", "waschmaschine", "front loader"],
    },
    "Dishwashers": {
        "brands": ["Bosch", "Beko", "Hotpoint", "Indesit", "Siemens", "Miele", "Neff", "Zanussi", "Candy", "AEG"],
        "models": ["SMS{NN}{L}W{NN}G", "DIN{NNNNN}", "HFC {NNNN}", "SN{NN}{L}I{NN}", "G {NNNN} SC", "S{NNN}{L}{NN}", "ZDF{NNNN}", "FFB{NNNNN}"],
        "specs": ["{places} place settings", "{width}cm slimline {places} place", "full size {places} place {energy}", "integrated {places} place",
                  "{places} place settings {colour}", "freestanding {width}cm {places} place"],
        "words": ["dishwasher", "geschirrspüler", "slimline dishwasher", "built in dishwasher"],
    },
    "CPUs": {
        "brands": ["Intel", "AMD"],
        "models": ["Core i{N}-{NNNNN}{L}", "Core i{N}-{NNNN}", "Ryzen {N} {NNNN}X", "Ryzen {N} {NNNN}", "Xeon E-{NNNN}", "Pentium G{NNNN}",
                   "Athlon {NNN}GE", "Ryzen Threadripper {NNNN}X"],
        "specs": ["{ghz}GHz {cores} cores", "{cores}-core {ghz} GHz socket {socket}", "{socket} {cores}c {ghz}ghz boxed", "{ghz} GHz tray",
                  "socket {socket} {cores} core processor", "{cores} cores {threads} threads {ghz}ghz"],
        "words": ["processor", "cpu", "desktop processor", "boxed cpu"],
    },
    "Digital Cameras": {
        "brands": ["Canon", "Nikon", "Sony", "Fujifilm", "Panasonic", "Olympus", "Leica", "Pentax"],
        "models": ["EOS {NNN}D", "EOS R{N}", "D{NNNN}", "Z {N}", "Alpha A{NNNN}", "X-T{NN}", "Lumix DC-G{NN}", "OM-D E-M{N}", "Cyber-shot RX{NNN}"],
        "specs": ["{mp}MP body only", "{mp} MP with {lens} lens", "kit {lens} {colour}", "{mp}mp mirrorless", "dslr {mp} megapixel",
                  "{mp} MP 4K video"],
        "words": ["digital camera", "mirrorless camera", "dslr camera", "kamera", "compact camera"],
    },
    "Microwaves": {
        "brands": ["Panasonic", "Samsung", "Sharp", "Daewoo", "Russell Hobbs", "Bosch", "Neff", "Hotpoint", "Breville", "Swan"],
        "models": ["NN-{L}{NNN}", "MS{NN}{L}{NNNN}", "R{NNN}{L}", "KOR-{NNNN}", "RHM{NNNN}", "BFL{NNN}", "MWH {NNN}", "SM{NNNN}"],
        "specs": ["{mlitres}l {watts}w", "{watts} watt solo {mlitres} litre", "combination {mlitres}l {colour}", "{mlitres} l grill {watts}W",
                  "built in {mlitres}l microwave", "{watts}w digital {colour}"],
        "words": ["microwave", "microwave oven", "mikrowelle", "combi microwave"],
    },
}

_SPEC_VALUES: dict[str, list[str]] = {
    "storage": ["32gb", "64GB", "128 GB", "256gb", "512 GB", "1TB"],
    "ram": ["4GB", "6GB", "8GB", "12GB"],
    "colour": ["black", "white", "silver", "stainless steel", "schwarz", "weiß", "graphite", "blue", "space grey", "inox"],
    "inch": ["32", "40", "43", "50", "55", "65", "75"],
    "litres": ["90", "130", "150", "220", "250", "300", "350", "420"],
    "width": ["45", "50", "55", "60", "70"],
    "energy": ["A+", "A++", "A+++", "class E", "class F", "energy class D"],
    "kg": ["6", "7", "8", "9", "10"],
    "rpm": ["1200", "1400", "1600"],
    "places": ["9", "10", "12", "13", "14", "15"],
    "ghz": ["2.9", "3.4", "3.6", "3.8", "4.1", "4.7"],
    "cores": ["4", "6", "8", "12", "16"],
    "threads": ["8", "12", "16", "24", "32"],
    "socket": ["AM4", "AM5", "LGA1200", "LGA1700", "1151"],
    "mp": ["20.1", "24.2", "26", "33", "45.7", "61"],
    "lens": ["18-55mm", "24-105mm", "15-45mm", "28-70mm", "12-40mm"],
    "mlitres": ["17", "20", "23", "25", "32"],
    "watts": ["700", "800", "900", "1000", "1200"],
}

_NOISE = ["free delivery", "uk stock", "new", "2 year warranty", "bnib", "in stock", "best price", "(2023)", "ex display", "next day"]


def _fill(pattern: str, rng: random.Random) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "{":
            j = pattern.index("}", i)
            key = pattern[i + 1 : j]
            if key == "L":
                out.append(rng.choice("ABCDEFGHJKLMNPRSTUVWXZ"))
            elif set(key) == {"N"}:
                out.append("".join(rng.choice("0123456789") for _ in key))
            else:
                out.append(rng.choice(_SPEC_VALUES[key]))
            i = j + 1
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def _merchant_title(brand: str, model: str, spec: str, word: str, rng: random.Random) -> str:
    """One shop's way of writing the same product: order, case, category word, SKU and noise vary."""
    style = rng.randrange(6)
    if style == 0:
        parts = [brand, model, spec]
    elif style == 1:
        parts = [brand, model, word, spec]
    elif style == 2:
        parts = [brand, word, model, spec]
    elif style == 3:
        parts = [model, spec, brand]
    elif style == 4:
        parts = [brand, model, "-", spec, rng.choice(_NOISE)]
    else:
        parts = [brand, model.replace(" ", ""), spec, f"({model.replace(' ', '').lower()}{rng.choice(['', '/EU', '-UK', 'GB'])})"]
    if rng.random() < 0.5:  # some shops drop the category word entirely: the model must read specs
        parts = [p for p in parts if p != word]
    title = " ".join(p for p in parts if p)
    case = rng.random()
    if case < 0.6:
        title = title.lower()  # PriceRunner titles are lower-cased
    elif case < 0.7:
        title = title.upper()
    return " ".join(title.split())


def generate_catalogue(n_products: int = 3000, *, seed: int = 0, max_offers: int = 5) -> list[Product]:
    """A seeded catalogue of ``n_products`` product clusters, each with 1..``max_offers`` offer titles.

    Categories are drawn uniformly; each product gets a brand, a model name and one spec line, and
    each of its offers is that product written in a (seeded) merchant style. The same seed gives
    the same list on every machine (``random.Random`` is specified to be portable).
    """
    if n_products < 1 or max_offers < 1:
        raise GuimoError(f"n_products and max_offers must be >= 1, got {n_products}, {max_offers}")
    rng = random.Random(seed)
    names = sorted(_CATEGORIES)
    rows: list[Product] = []
    for p in range(n_products):
        category = names[p % len(names)] if p < len(names) else rng.choice(names)  # every category present
        spec = _CATEGORIES[category]
        b = rng.randrange(len(spec["brands"]))
        brand = spec["brands"][b]
        # each brand keeps to two model lines of its own, as real ranges do (no "Apple Xperia")
        model = _fill(spec["models"][(b + rng.randrange(2)) % len(spec["models"])], rng)
        specline = _fill(rng.choice(spec["specs"]), rng)
        word = rng.choice(spec["words"])
        for _ in range(rng.randint(1, max_offers)):
            rows.append(Product(_merchant_title(brand, model, specline, word, rng), category, f"g{p}"))
    return rows


# -- PriceRunner ------------------------------------------------------------------------------

def read_pricerunner(path: str | Path) -> list[Product]:
    """PriceRunner's ``pricerunner_aggregate.csv`` (or the folder holding it), grouped by ``Cluster ID``.

    Read by the classifiers' file reader (``guimo.data.intents.read_labelled``: header names
    stripped, errors naming file and line), the one `guimo run categorize --data` uses too.
    """
    from guimo.data.intents import read_labelled

    path = Path(path)
    if path.is_dir():
        path = path / PRICERUNNER_FILE
    return [Product(r.text, r.label, r.group) for r in
            read_labelled(path, text_field="Product Title", label_field="Category Label", group_field="Cluster ID")]


def is_pricerunner(path: str | Path) -> bool:
    """True for PriceRunner's file or its folder (recognised by the header, not the name)."""
    path = Path(path)
    if path.is_dir():
        path = path / PRICERUNNER_FILE
    if not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        header = [c.strip() for c in f.readline().split(",")]
    return "Cluster ID" in header and "Product Title" in header and "Category Label" in header


# -- the split --------------------------------------------------------------------------------

def grouped_split(rows: Sequence[Product], *, val_fraction: float = 0.1, test_fraction: float = 0.2,
                  seed: int = 0) -> dict[str, list[Product]]:
    """Train/val/test by product cluster: every row of a cluster lands in the same split.

    The test split is scikit-learn's ``GroupShuffleSplit(n_splits=1, test_size=test_fraction,
    random_state=seed)`` over the clusters, which with seed 0 reproduces the split PriceRunner's
    published baselines here were measured on (28,225 train / 7,086 test). Validation is a second
    grouped split of what is left, so validation never shares a cluster with train or test.
    Row order within each split follows the input.
    """
    import numpy as np
    from sklearn.model_selection import GroupShuffleSplit

    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 or val_fraction + test_fraction >= 1:
        raise GuimoError(f"split fractions must be in (0, 1) and sum below 1, got val={val_fraction}, test={test_fraction}")
    groups = np.array([r.group for r in rows])
    if len(set(groups.tolist())) < 3:
        raise GuimoError(f"a grouped split needs at least 3 product clusters, got {len(set(groups.tolist()))}")
    idx = np.arange(len(rows))
    rest, test = next(GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed).split(idx, groups=groups))
    val = np.array([], dtype=int)
    if val_fraction > 0:
        inner = GroupShuffleSplit(n_splits=1, test_size=val_fraction / (1 - test_fraction), random_state=seed)
        tr, va = next(inner.split(rest, groups=groups[rest]))
        rest, val = rest[tr], rest[va]
    return {name: [rows[i] for i in sorted(part.tolist())] for name, part in (("train", rest), ("val", val), ("test", test))}


def fingerprint(rows: Sequence[Product]) -> str:
    """A short content hash of the rows (titles, labels and groups, in order)."""
    h = hashlib.sha256()
    for r in rows:
        h.update(f"{r.title}\t{r.category}\t{r.group}\n".encode())
    return h.hexdigest()[:16]
