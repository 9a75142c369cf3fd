"""Stratified, nested shares of a labelled training split: what ``data.fraction`` means for a classifier.

A learning curve of labels (`guimo scale categorize|support --data-fractions 0.1,0.25,0.5,1`) trains one
classifier per share of the labelled data. Two properties make its points comparable:

- **stratified**: each class keeps ``fraction`` of its examples (rounded, and at least ``min_per_class``), so a
  10% share of BANKING77 still has all 77 intents in their original proportions and the x axis, labelled
  examples per class, means the same for every class. A plain random 10% of a long-tailed catalogue can drop
  its rare categories entirely, and the test set then scores classes the model never saw;
- **nested**: with one seed, the examples of a smaller share are a subset of every larger share's (each class is
  shuffled once and cut at its share), as a team that labels more data adds to what it has. Independent draws
  would add sampling noise between the points that the curve would read as a change in slope.

Scenarios call ``stratified_subset`` on their training split in preprocess and report the class count
(``classes``) in the preprocess stage's info, which ``guimo.scale.points`` reads for the labels-per-class axis.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from guimo.errors import GuimoError


def stratified_subset(labels: Sequence[Hashable], fraction: float, *, seed: int = 0, min_per_class: int = 1) -> list[int]:
    """Indices (ascending) of a stratified, nested ``fraction`` of the examples whose labels are ``labels``.

    Every class keeps ``max(min_per_class, round(fraction * its count))`` examples (never more than it has); with
    the same ``seed`` the subset of a smaller fraction is contained in that of a larger one. ``fraction`` 1 keeps
    everything.
    """
    if not 0 < fraction <= 1:
        raise GuimoError(f"data.fraction {fraction} is not in (0, 1]")
    if min_per_class < 1:
        raise GuimoError(f"min_per_class must be at least 1, got {min_per_class}")
    if fraction == 1:
        return list(range(len(labels)))
    by_class: dict[Hashable, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    # classes in first-seen order with one generator: the same labels and seed always give the same subset
    for members in by_class.values():
        order = rng.permutation(len(members))
        k = min(len(members), max(min_per_class, int(round(fraction * len(members)))))
        keep += [members[j] for j in order[:k]]
    return sorted(keep)


def class_counts(labels: Sequence[Hashable]) -> dict[Hashable, int]:
    """Examples per class, in first-seen order (for a preprocess stage's info and for tests)."""
    out: dict[Hashable, int] = {}
    for label in labels:
        out[label] = out.get(label, 0) + 1
    return out
