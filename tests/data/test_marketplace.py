"""The synthetic marketplace: seeded, sized as asked, long-tailed, and order carries signal."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from guimo.data.marketplace import MarketplaceConfig, generate

SMALL = MarketplaceConfig(users=400, items=600, interactions=16000, categories=12, chain_groups=15, chain_fanout=6, seed=1)


@pytest.fixture(scope="module")
def small():
    return generate(SMALL)


def sequences(raw):
    seqs: dict[str, list[str]] = {}
    for u, i in zip(raw.users, raw.items):
        seqs.setdefault(u, []).append(i)
    return list(seqs.values())


def test_seeded_and_sized(small):
    raw, cats = small
    again, _ = generate(SMALL)
    assert (raw.items == again.items).all() and (raw.times == again.times).all()
    other, _ = generate(MarketplaceConfig(**{**SMALL.__dict__, "seed": 2}))
    assert len(other) != len(raw) or (other.items != raw.items).any()
    assert len(set(raw.users)) == 400
    assert 0.8 * 16000 <= len(raw) <= 1.2 * 16000
    assert set(raw.items) <= set(cats) and len(set(cats.values())) == 12
    for seq_times in _per_user(raw.users, raw.times):
        assert np.all(np.diff(seq_times) > 0)  # each user's times increase


def _per_user(users, values):
    out: dict[str, list] = {}
    for u, v in zip(users, values):
        out.setdefault(u, []).append(v)
    return out.values()


def test_popularity_has_a_long_tail(small):
    counts = np.array(sorted(Counter(small[0].items).values(), reverse=True))
    top10 = counts[: len(counts) // 10].sum() / counts.sum()
    assert top10 > 0.3  # a uniform catalogue would give 0.1


def test_order_carries_signal(small):
    """Consecutive pairs recur across users far more often than in the same sequences shuffled."""
    rng = np.random.default_rng(0)

    def recurring_share(seqs):
        pairs = Counter((a, b) for s in seqs for a, b in zip(s, s[1:]))
        return sum(c for c in pairs.values() if c >= 3) / max(1, sum(pairs.values()))

    seqs = sequences(small[0])
    shuffled = [list(rng.permutation(s)) for s in seqs]
    assert recurring_share(seqs) > 3 * recurring_share(shuffled)


def test_invalid_sizes_are_refused():
    with pytest.raises(ValueError):
        MarketplaceConfig(items=100, chain_groups=5, chain_fanout=0)
    with pytest.raises(ValueError):
        MarketplaceConfig(items=100, categories=30)


def test_follow_up_depends_on_the_device_two_or_more_steps_back():
    """After a shared accessory, the next item is predictable from the device bought before it, not from the accessory."""
    cfg = MarketplaceConfig(users=300, items=400, interactions=12000, categories=8, chain_groups=4, chain_fanout=8,
                            p_chain=1.0, p_noise=0.0, consumable_fraction=0.0, seed=3)
    seqs = sequences(generate(cfg)[0])
    after: dict[str, Counter] = {}
    for s in seqs:
        for i in range(1, len(s)):
            after.setdefault(s[i - 1], Counter())[s[i]] += 1
    # accessories: items followed by many different items that each recur (one per device)
    shared = [a for a, c in after.items() if sum(1 for v in c.values() if v >= 3) >= 4]
    assert shared, "no shared accessory found"
    # given the accessory alone, the most frequent follow-up covers well under half the cases
    top_share = max(c.most_common(1)[0][1] / sum(c.values()) for a, c in after.items() if a in shared)
    assert top_share < 0.5
