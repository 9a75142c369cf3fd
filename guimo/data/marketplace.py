"""A synthetic marketplace whose next purchase depends on order: the embedded default data.

Each user's sequence is drawn step by step from these rules (first that fires wins):

1. **consumable repeats** — some items (coffee, razor blades) are bought again a fixed number
   of steps later (under the seen-filtered protocol a repeat can never be a hit: they are noise
   every model shares);
2. **complement chains** — a device ``a`` is followed, one to three steps later, by its accessory
   ``b``, and right after ``b`` by ``a``'s own follow-up ``c`` (phone -> case -> the charger for
   *that* phone). ``chain_fanout`` devices share each accessory, so ``c`` depends on an item two
   to four steps back, and ``b`` on one up to three steps back: a first-order chain predicts ``b``
   only when it comes right after ``a``, and after ``b`` can only spread over all its follow-ups;
3. **noise** — a globally popular item, unrelated to the user;
4. **taste** — otherwise the user picks one of a few favourite categories (long-term taste, which
   **drifts**: one is replaced now and then), rarely the previous item's, and inside it either
   moves one **tier up** from the last item they bought *there* (usually many steps ago) or takes
   an item by the category's **long-tail** (Zipf) popularity.

So popularity knows only rule 3 and the long tail, co-occurrence (item-kNN) knows categories and
devices-with-accessories but not which are current nor the order, a Markov chain knows the
previous item only; a sequence model that reads the whole history can learn all of it.
``generate`` is seeded and deterministic.
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
    chain_groups: int = field(default=60, metadata={"help": "complement groups: chain_fanout devices sharing 1 accessory, each with its own follow-up (at most items // (2 * chain_fanout + 1))"})
    chain_fanout: int = field(default=12, metadata={"help": "devices sharing one accessory (the follow-up depends on which one was bought)"})
    p_chain: float = field(default=0.7, metadata={"help": "probability to follow a complement chain when one applies"})
    consumable_fraction: float = field(default=0.05, metadata={"help": "share of items that are re-bought periodically"})
    p_repeat: float = field(default=0.5, metadata={"help": "probability that a consumable purchase schedules a repeat"})
    favourites: int = field(default=4, metadata={"help": "favourite categories per user (long-term taste)"})
    p_stay: float = field(default=0.05, metadata={"help": "probability to stay in the previous item's category"})
    p_tier: float = field(default=0.7, metadata={"help": "probability to move one tier up from the user's last item in the category"})
    p_drift: float = field(default=0.03, metadata={"help": "per-step probability that one favourite category is replaced"})
    p_noise: float = field(default=0.1, metadata={"help": "probability of a popular item unrelated to the user"})
    zipf: float = field(default=1.1, metadata={"help": "exponent of the within-category long-tail popularity"})
    seed: int = field(default=0, metadata={"help": "seed of the generator (independent of the training seed)"})

    def __post_init__(self) -> None:
        if self.users < 1 or self.items < 5 * max(1, self.categories) or self.interactions < 3 * self.users:
            raise ValueError("marketplace needs users >= 1, items >= 5 * categories and interactions >= 3 * users")
        if self.chain_fanout < 1 or self.chain_groups < 0:
            raise ValueError("chain_fanout must be >= 1 and chain_groups >= 0")


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
    # complement groups: devices a_1..a_F share accessory b; a_j's follow-up after b is c_j
    per = 2 * cfg.chain_fanout + 1
    groups = min(cfg.chain_groups, n // per)  # a small catalogue holds fewer groups
    chosen = rng.sample(range(n), per * groups)
    accessory, follow_up = {}, {}
    for g in range(groups):
        b, rest = chosen[per * g], chosen[per * g + 1 : per * (g + 1)]
        for a, c in zip(rest[0::2], rest[1::2]):
            accessory[a] = b
            follow_up[(a, b)] = c
    consumable = {i: rng.randint(3, 8) for i in rng.sample(range(n), int(cfg.consumable_fraction * n))}

    def pick(cum, population=None):
        j = bisect_left(cum, rng.random() * cum[-1])
        return population[j] if population is not None else j

    mean_len = cfg.interactions / cfg.users
    users, items, times = [], [], []
    for u in range(cfg.users):
        length = max(3, min(int(4 * mean_len), int(rng.lognormvariate(0, 0.6) * mean_len / 1.197)))
        favs = [pick(cat_cum) for _ in range(cfg.favourites)]
        t = rng.uniform(0, 365.0)
        seen: set[int] = set()
        last_in_cat: dict[int, int] = {}
        due: dict[int, int] = {}  # step -> item scheduled then (repeats, accessories, follow-ups)
        device_of: dict[int, int] = {}  # scheduled accessory -> the device it was bought for
        for step in range(length):
            if step in due:
                item = due.pop(step)
            elif rng.random() < cfg.p_noise:
                item = pick(global_cum)
            else:
                c = cat_of[item] if step and rng.random() < cfg.p_stay else rng.choice(favs)
                if c in last_in_cat and rng.random() < cfg.p_tier:
                    item = tier_next[last_in_cat[c]]
                else:
                    item = pick(in_cat_cum[c], members[c])
            for _ in range(10):  # bought already: move up a tier in the same category (or keep a consumable)
                if item not in seen or item in consumable:
                    break
                item = tier_next[item]
            if item in consumable and rng.random() < cfg.p_repeat:
                _schedule(due, step + consumable[item], item)
            if item in accessory and rng.random() < cfg.p_chain:
                device_of[accessory[item]] = item
                _schedule(due, step + rng.randint(1, 3), accessory[item])
            elif item in device_of and rng.random() < cfg.p_chain:
                _schedule(due, step + 1, follow_up[(device_of.pop(item), item)])
            if rng.random() < cfg.p_drift:
                favs[rng.randrange(len(favs))] = pick(cat_cum)
            seen.add(item)
            last_in_cat[cat_of[item]] = item
            t += 0.01 + rng.expovariate(1.0)  # strictly increasing after rounding
            users.append(f"u{u:05d}")
            items.append(f"i{item:05d}")
            times.append(round(t, 4))
    categories = {f"i{i:05d}": f"c{cat_of[i]:02d}" for i in range(n)}
    return Interactions(np.asarray(users), np.asarray(items), np.asarray(times, dtype=np.float64)), categories


def _schedule(due: dict[int, int], step: int, item: int) -> None:
    """Put ``item`` at the first free step from ``step`` on."""
    while step in due:
        step += 1
    due[step] = item
