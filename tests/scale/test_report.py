"""The report's words for the additive-law check (the full report is tested on a real micro-sweep in test_sweep.py)."""

from __future__ import annotations

from guimo.scale.report import _size_gap_text


def _gap(lo: float, hi: float) -> dict:
    return {"n_small": 1e4, "n_large": 1e5, "d_small": 1e5, "d_large": 8e5, "gap_small_d": lo, "gap_large_d": hi,
            "ratio": hi / lo if lo > 0 else None}


def test_size_gap_verdicts():
    grows = _size_gap_text(_gap(0.26, 0.624))
    assert "(2.40x)" in grows and "gains more from data than the additive law allows" in grows and "sweep.repeat_to_full" in grows
    assert "about constant, as the additive law assumes" in _size_gap_text(_gap(0.2, 0.21))
    assert "the gap shrinks with D" in _size_gap_text(_gap(0.2, 0.08))


def test_size_gap_without_a_lead_at_both_ends_says_nothing():
    for lo, hi in ((0.17, -0.12), (-0.05, 0.2)):
        text = _size_gap_text(_gap(lo, hi))
        assert "says nothing about the law's shape" in text and "x)" not in text
