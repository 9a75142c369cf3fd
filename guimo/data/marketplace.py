"""A synthetic marketplace whose next purchase depends on order: the embedded default data.

Each user's sequence is drawn step by step from these rules (first that fires wins):

1. **consumable repeats** — some items (coffee, razor blades) are bought again a fixed number
   of steps later;
2. **complement chains** — after a device ``a`` comes its accessory ``b`` (phone -> case), and
   after ``a, b`` comes ``a``'s own follow-up ``c`` (-> the charger for *that* phone). Two devices
   share each accessory, so predicting ``c`` from ``b`` needs the item *two* steps back, which a
   first-order Markov chain cannot see;
3. **noise** — a globally popular item, unrelated to the user;
4. **taste** — otherwise the user stays in the previous item's category or picks one of a few
   favourite categories (which **drift**: one is replaced now and then), and inside the category
   either moves one **tier up** from the last item they bought *there* (possibly many steps ago)
   or takes an item by the category's **long-tail** (Zipf) popularity.

So popularity knows only rule 3 and the long tail, co-occurrence (item-kNN) knows categories but
not which are current, a Markov chain knows rule 2's first step and the previous category; a
sequence model can learn all of it. ``generate`` is seeded and deterministic.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np

from guimo.data.interactions import Interactions


@dataclass
class MarketplaceConfig:
    users: int = field(default=6000, metadata={"help": "number of users"})
    items: int = field(default=3000, metadata={"help": "catalogue size"})
    interactions: int = field(default=300_000, metadata={"help": "approximate total interactions"})
    categories: int = field(default=30, metadata={"help": "item categories (items are split evenly)"})
    chain_groups: int = field(default=200, metadata={"help": "complement groups: 2 devices sharing 1 accessory, each with its own follow-up"})
    p_chain: float = field(default=0.6, metadata={"help": "probability to follow a complement chain when one applies"})
    consumable_fraction: float = field(default=0.05, metadata={"help": "share of items that are re-bought periodically"})
    p_repeat: float = field(default=0.5, metadata={"help": "probability that a consumable purchase schedules a repeat"})
    p_stay: float = field(default=0.15, metadata={"help": "probability to stay in the previous item's category"})
    p_tier: float = field(default=0.6, metadata={"help": "probability to move one tier up from the user's last item in the category"})
    p_drift: float = field(default=0.03, metadata={"help": "per-step probability that one favourite category is replaced"})
    p_noise: float = field(default=0.1, metadata={"help": "probability of a popular item unrelated to the user"})
    zipf: float = field(default=1.1, metadata={"help": "exponent of the within-category long-tail popularity"})
    seed: int = field(default=0, metadata={"help": "seed of the generator (independent of the training seed)"})

    def __post_init__(self) -> None:
        if self.users < 1 or self.items < 5 * max(1, self.categories) or self.interactions < 3 * self.users:
            raise ValueError("marketplace needs users >= 1, items >= 5 * categories and interactions >= 3 * users")
        if self.chain_groups * 5 > self.items:
            raise ValueError("chain_groups * 5 must not exceed items")


def generate(cfg: MarketplaceConfig) -> tuple[Interactions, dict[str, str]]:
    """Interactions (user, item, time in days) and each item's category."""
    rng = random.Random(cfg.seed)
    n, k = cfg.items, cfg.categories
    cat_of = [i % k for i in range(n)]
    members = [[i for i in range(n) if cat_of[i] == c] for c in range(k)]
    # long tail inside each category; categories themselves differ in size of demand
    in_cat_cum = []
    item_weight = [0.0] * n
    cat_weight = [1.0 / (r + 1) ** 0.7 for r in range(k)]
    rng.shuffle(cat_weight)
    for c, its in enumerate(members):
        ranks = list(range(len(its)))
        rng.shuffle(ranks)
        w = [1.0 / (r + 1) ** cfg.zipf for r in ranks]
        in_cat_cum.append(list(accumulate(w)))
        for i, wi in zip(its, w):
            item_weight[i] = wi / sum(w) * cat_weight[c]
    global_cum = list(accumulate(item_weight))
    cat_cum = list(accumulate(cat_weight))
    # tiers: a random order inside each category; "one tier up" is the next item in it
    tier_next = [0] * n
    for its in members:
        order = its[:]
        rng.shuffle(order)
        for a, b in zip(order, order[1:] + order[:1]):
            tier_next[a] = b
    # complement groups: (a1, b, c1) and (a2, b, c2)
    chosen = rng.sample(range(n), 5 * cfg.chain_groups)
    first, second = {}, {}
    for g in range(cfg.chain_groups):
        a1, a2, b, c1, c2 = chosen[5 * g : 5 * g + 5]
        first[a1] = first[a2] = b
        second[(a1, b)], second[(a2, b)] = c1, c2
    consumable = {i: rng.randint(3, 8) for i in rng.sample(range(n), int(cfg.consumable_fraction * n))}

    def pick(cum, population=None):
        j = bisect_left(cum, rng.random() * cum[-1])
        return population[j] if population is not None else j

    mean_len = cfg.interactions / cfg.users
    users, items, times = [], [], []
    for u in range(cfg.users):
        length = max(3, min(int(4 * mean_len), int(rng.lognormvariate(0, 0.6) * mean_len / 1.197)))
        favs = [pick(cat_cum) for _ in range(3)]
        t = rng.uniform(0, 365.0)
        seen: set[int] = set()
        last_in_cat: dict[int, int] = {}
        repeats: dict[int, int] = {}
        prev = prev2 = None
        for step in range(length):
            r = rng.random()
            if step in repeats:
                item = repeats.pop(step)
            elif prev is not None and (prev2, prev) in second and r < cfg.p_chain:
                item = second[(prev2, prev)]
            elif prev is not None and prev in first and r < cfg.p_chain:
                item = first[prev]
            elif rng.random() < cfg.p_noise:
                item = pick(global_cum)
            else:
                c = cat_of[prev] if prev is not None and rng.random() < cfg.p_stay else rng.choice(favs)
                if c in last_in_cat and rng.random() < cfg.p_tier:
                    item = tier_next[last_in_cat[c]]
                else:
                    item = pick(in_cat_cum[c], members[c])
            for _ in range(10):  # bought already: move up a tier in the same category (or keep a consumable)
                if item not in seen or item in consumable:
                    break
                item = tier_next[item]
            if item in consumable and rng.random() < cfg.p_repeat:
                repeats.setdefault(step + consumable[item], item)
            if rng.random() < cfg.p_drift:
                favs[rng.randrange(3)] = pick(cat_cum)
            seen.add(item)
            last_in_cat[cat_of[item]] = item
            prev2, prev = prev, item
            t += 0.01 + rng.expovariate(1.0)  # strictly increasing after rounding
            users.append(f"u{u:05d}")
            items.append(f"i{item:05d}")
            times.append(round(t, 4))
    categories = {f"i{i:05d}": f"c{cat_of[i]:02d}" for i in range(n)}
    return Interactions(np.asarray(users), np.asarray(items), np.asarray(times, dtype=np.float64)), categories
