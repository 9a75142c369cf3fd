"""The synthetic marketplace: seeded, sized as asked, long-tailed, and order carries signal."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from guimo.data.marketplace import MarketplaceConfig, generate

SMALL = MarketplaceConfig(users=400, items=600, interactions=16000, categories=12, chain_groups=60, seed=1)


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
        MarketplaceConfig(items=100, chain_groups=50)
