"""The preprocessed recommendation data of a run, and the training examples cut from it.

Files in ``RUN/data/``: ``sequences.npz`` (encoded sequences and the split), ``items.json``
(original item ids: internal id i is ``items[i - 1]``), ``users.json`` (original user ids) and,
when the source has them, ``categories.json`` (category names; the per-item ids are in the npz).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from guimo.data.interactions import Sequences, Split
from guimo.io import atomic_write_bytes, atomic_write_json, read_json


@dataclass
class Prepared:
    seqs: Sequences
    split: Split
    item_cat: np.ndarray | None  # (N + 1,) int64 category id per item id (0: padding / none)
    category_names: list[str]

    @property
    def n_items(self) -> int:
        return len(self.seqs.item_ids)

    def train_sequences(self) -> list[np.ndarray]:
        return [self.seqs.seq(u)[: self.split.train_end[u]] for u in range(len(self.seqs))]

    def cases(self, which: str, limit: int | None = None, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
        """(histories, targets) of the 'val' or 'test' cases, optionally a seeded random subset."""
        users = getattr(self.split, f"{which}_users")
        ends = getattr(self.split, f"{which}_end")
        idx = np.arange(len(users))
        if limit is not None and limit < len(idx):
            idx = np.sort(np.random.default_rng(seed).choice(len(idx), size=limit, replace=False))
        hist = [self.seqs.seq(int(users[i]))[: int(ends[i])] for i in idx]
        targets = np.array([self.seqs.seq(int(users[i]))[int(ends[i])] for i in idx], dtype=np.int64)
        return hist, targets

    def save(self, data_dir: Path) -> None:
        arrays = dict(
            items=self.seqs.items, offsets=self.seqs.offsets, times=self.seqs.times,
            train_end=self.split.train_end, val_users=self.split.val_users, val_end=self.split.val_end,
            test_users=self.split.test_users, test_end=self.split.test_end,
        )
        if self.item_cat is not None:
            arrays["item_cat"] = self.item_cat
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(data_dir / "sequences.npz", buf.getvalue())
        atomic_write_json(data_dir / "items.json", self.seqs.item_ids)
        atomic_write_json(data_dir / "users.json", self.seqs.user_ids)
        if self.item_cat is not None:
            atomic_write_json(data_dir / "categories.json", self.category_names)

    @classmethod
    def load(cls, data_dir: Path) -> "Prepared":
        with np.load(data_dir / "sequences.npz", allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        seqs = Sequences(read_json(data_dir / "users.json"), read_json(data_dir / "items.json"), a["items"], a["offsets"], a["times"])
        split = Split(a["train_end"], a["val_users"], a["val_end"], a["test_users"], a["test_end"])
        names = read_json(data_dir / "categories.json") if "item_cat" in a else []
        return cls(seqs, split, a.get("item_cat"), names)


UNKNOWN_CATEGORY = "(unknown)"  # the category of items a categories file does not name


def encode_categories(item_ids: list[str], mapping: dict[str, str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Category ids per item from an item -> category mapping: ``(item_cat, names, missing)``.

    ``item_cat`` is (N + 1,) int64 with 0 for padding and ``names[c - 1]`` the name of category c.
    Items the mapping lacks (or maps to an empty name) share one extra category, ``(unknown)``,
    listed last, and are returned in ``missing`` so the caller can say how many there are: they
    are not given category 0, which the model treats as padding.
    """
    missing = [i for i in item_ids if not mapping.get(i)]
    names = sorted({mapping[i] for i in item_ids if mapping.get(i)} - {UNKNOWN_CATEGORY})
    if missing:
        names.append(UNKNOWN_CATEGORY)
    code = {n: j + 1 for j, n in enumerate(names)}
    item_cat = np.array([0] + [code[mapping.get(i) or UNKNOWN_CATEGORY] for i in item_ids], dtype=np.int64)
    return item_cat, names, missing


class NextItemWindows:
    """Training examples: every position of a sequence predicts the next item.

    A training sequence ``s`` of length L gives inputs ``s[:-1]`` and targets ``s[1:]``; one longer
    than ``max_len + 1`` is cut from its end into windows of ``max_len`` targets, so every
    transition is trained on once per epoch. ``batch`` right-pads to the longest row of the batch.
    """

    def __init__(self, sequences: list[np.ndarray], max_len: int) -> None:
        starts, ends, owners = [], [], []
        for u, s in enumerate(sequences):
            end = len(s)
            while end >= 2:
                start = max(0, end - max_len - 1)
                starts.append(start)
                ends.append(end)
                owners.append(u)
                end = start + 1  # the next window's last target is this window's first input
        self.flat = np.concatenate(sequences).astype(np.int64) if sequences else np.zeros(0, dtype=np.int64)
        base = np.concatenate([[0], np.cumsum([len(s) for s in sequences])])
        owners_arr = np.asarray(owners, dtype=np.int64)
        self.start = base[owners_arr] + np.asarray(starts, dtype=np.int64) if owners else np.zeros(0, dtype=np.int64)
        self.length = np.asarray(ends, dtype=np.int64) - np.asarray(starts, dtype=np.int64) if owners else np.zeros(0, dtype=np.int64)
        self.tokens_per_example = max(1, int(round(float((self.length - 1).mean())))) if len(self.length) else 1

    def __len__(self) -> int:
        return len(self.start)

    def batch(self, indices: list[int]) -> dict:
        import torch

        idx = np.asarray(indices, dtype=np.int64)
        lens = self.length[idx] - 1  # targets per row
        T = int(lens.max())
        pos = np.arange(T)[None, :]
        valid = pos < lens[:, None]
        gather = self.start[idx][:, None] + pos
        gather = np.where(valid, gather, 0)
        seq = np.where(valid, self.flat[gather], 0)
        tgt = np.where(valid, self.flat[np.minimum(gather + 1, len(self.flat) - 1)], 0)
        return {"seq": torch.from_numpy(seq), "target": torch.from_numpy(tgt)}
