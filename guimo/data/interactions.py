"""User-item interaction logs: read them from the common formats, filter, encode and split.

Readers turn a file into raw ``Interactions`` (original user and item ids as strings, optional
timestamps, file order); every malformed line raises ``GuimoError`` naming ``file:line``.
``build_sequences`` then orders each user's items in time (ties and missing timestamps keep file
order), applies k-core / minimum / maximum length filters, maps item ids to internal indices
1..N (0 is padding) and ``split_sequences`` makes the leave-one-out or global temporal split.

Formats (``format=auto`` picks one from the name and the first lines):

| format | file | columns |
| --- | --- | --- |
| sasrec | ``user item`` per line, time-ordered (SASRec / BERT4Rec ``Beauty.txt``) | 2, whitespace |
| user_lines | ``user item1 item2 ...`` one user per line, oldest first | >= 2, whitespace |
| movielens | ``ratings.dat`` (``u::i::r::t``), ml-100k ``u.data`` (tab), ``ratings.csv`` (header) | 4 |
| recbole | RecBole atomic ``.inter`` (tab, header ``name:type``) | by name |
| csv | any delimited text with a header; column names from the config | by name |
| parquet | Parquet with the configured columns (needs pyarrow) | by name |
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from guimo.errors import GuimoError, where
from guimo.io import read_text_strict

FORMATS = ("auto", "sasrec", "user_lines", "movielens", "recbole", "csv", "parquet")


@dataclass
class Interactions:
    """Raw events in file order: ``users[i]`` interacted with ``items[i]`` at ``times[i]`` (NaN: unknown)."""

    users: np.ndarray  # (E,) str
    items: np.ndarray  # (E,) str
    times: np.ndarray  # (E,) float64

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class Columns:
    """Column names for the header-based formats (RecBole type suffixes like ``:token`` are ignored).

    ``time`` None means file order. A ``time`` column that is absent is an error when
    ``time_required`` (the user named it: a misspelt name must not quietly mean file order), and
    file order otherwise (the default name on a file without timestamps).
    """

    user: str = "user_id"
    item: str = "item_id"
    time: str | None = "timestamp"
    rating: str = "rating"
    time_required: bool = False


# -- reading -----------------------------------------------------------------------------------


def read_interactions(path: str | Path, fmt: str = "auto", columns: Columns | None = None,
                      delimiter: str | None = None, min_rating: float | None = None) -> Interactions:
    """Read one interaction file (or a folder holding one) in ``fmt``; see the module table."""
    path = resolve_path(Path(path))
    columns = columns or Columns()
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise GuimoError(f"unknown data.format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if fmt == "parquet":
        return _read_parquet(path, columns, min_rating)
    lines = read_text_strict(path).splitlines()
    if fmt == "sasrec":
        return _read_pairs(path, lines)
    if fmt == "user_lines":
        return _read_user_lines(path, lines)
    if fmt == "movielens":
        return _read_movielens(path, lines, min_rating)
    if fmt == "recbole":
        return _read_table(path, lines, "\t", columns, min_rating)
    return _read_table(path, lines, delimiter or _sniff_delimiter(lines[0] if lines else ""), columns, min_rating)


def resolve_path(path: Path) -> Path:
    """A file as given, or the one interaction file inside a folder (ratings.dat, u.data, *.inter, ...)."""
    if path.is_file():
        return path
    if path.is_dir():
        for name in ("ratings.dat", "u.data", "ratings.csv"):
            if (path / name).is_file():
                return path / name
        found = sorted(path.glob("*.inter")) + sorted(path.glob("*.parquet"))
        if len(found) == 1:
            return found[0]
        raise GuimoError(f"{path}: cannot tell which file holds the interactions; pass the file itself")
    raise GuimoError(f"{path}: no such file or directory")


def detect_format(path: Path) -> str:
    name, suffix = path.name.lower(), path.suffix.lower()
    if suffix == ".inter":
        return "recbole"
    if suffix == ".parquet":
        return "parquet"
    if name in ("ratings.dat", "u.data"):
        return "movielens"
    with open(path, encoding="utf-8", errors="replace") as f:
        head = [line for _, line in zip(range(200), f) if line.strip()]
    if not head:
        raise GuimoError(f"{path}: empty file")
    if "::" in head[0]:
        return "movielens"
    if suffix in (".csv", ".tsv"):
        return "movielens" if head[0].strip().lower().startswith("userid,movieid") else "csv"
    return "sasrec" if all(len(line.split()) == 2 for line in head) else "user_lines"


def _read_pairs(path: Path, lines: list[str]) -> Interactions:
    users, items = [], []
    for i, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise GuimoError(f"{where(path, i)}: expected 'user item' (2 columns), got {len(parts)}: {line.strip()[:80]!r}")
        users.append(parts[0])
        items.append(parts[1])
    return _make(path, users, items, None)


def _read_user_lines(path: Path, lines: list[str]) -> Interactions:
    users, items = [], []
    for i, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise GuimoError(f"{where(path, i)}: expected 'user item1 item2 ...', got only {parts[0]!r}")
        users.extend([parts[0]] * (len(parts) - 1))
        items.extend(parts[1:])
    return _make(path, users, items, None)


def _read_movielens(path: Path, lines: list[str], min_rating: float | None) -> Interactions:
    """ratings.dat (``::``), u.data (tab) or ratings.csv (comma, with header): user, item, rating, time."""
    sep = "::" if lines and "::" in lines[0] else ("\t" if lines and "\t" in lines[0] else ",")
    users, items, times = [], [], []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.strip().split(sep)
        if i == 1 and sep == "," and parts[0].lower() == "userid":
            continue  # ratings.csv header
        if len(parts) != 4:
            raise GuimoError(f"{where(path, i)}: expected user{sep}item{sep}rating{sep}timestamp (4 fields), got {len(parts)}")
        try:
            rating, t = float(parts[2]), float(parts[3])
        except ValueError:
            raise GuimoError(f"{where(path, i)}: rating and timestamp must be numbers, got {parts[2]!r}, {parts[3]!r}") from None
        if min_rating is not None and rating < min_rating:
            continue
        users.append(parts[0])
        items.append(parts[1])
        times.append(t)
    return _make(path, users, items, times)


def _read_table(path: Path, lines: list[str], delimiter: str, cols: Columns, min_rating: float | None) -> Interactions:
    """Delimited text with a header row; columns found by name (``name:type`` suffixes ignored)."""
    rows = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    try:
        header = [h.split(":")[0].strip() for h in next(rows)]
    except StopIteration:
        raise GuimoError(f"{path}: empty file") from None
    want = {"user": cols.user, "item": cols.item}
    if cols.time and (cols.time in header or cols.time_required):
        want["time"] = cols.time
    if min_rating is not None:
        want["rating"] = cols.rating
    index = {}
    for key, name in want.items():
        if name not in header:
            hint = "; set data.time_col=none to keep the file's order" if key == "time" else ""
            raise GuimoError(f"{where(path, 1)}: no column '{name}' (data.{key}_col); header has: {', '.join(header)}{hint}")
        index[key] = header.index(name)
    users, items, times = [], [], []
    for i, row in enumerate(rows, start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise GuimoError(f"{where(path, i)}: expected {len(header)} fields like the header, got {len(row)}")
        u, it = row[index["user"]].strip(), row[index["item"]].strip()
        if not u or not it:
            raise GuimoError(f"{where(path, i)}: empty user or item id")
        if "rating" in index:
            try:
                if float(row[index["rating"]]) < min_rating:
                    continue
            except ValueError:
                raise GuimoError(f"{where(path, i)}: rating is not a number: {row[index['rating']]!r}") from None
        if "time" in index:
            try:
                times.append(float(row[index["time"]]))
            except ValueError:
                raise GuimoError(f"{where(path, i)}: timestamp is not a number: {row[index['time']]!r}") from None
        users.append(u)
        items.append(it)
    return _make(path, users, items, times if "time" in index else None)


def _read_parquet(path: Path, cols: Columns, min_rating: float | None) -> Interactions:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise GuimoError("reading Parquet needs pyarrow: pip install 'guimo[parquet]'") from None
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise GuimoError(f"{path}: cannot read Parquet ({e})") from None
    names = table.column_names
    needed = [("user", cols.user), ("item", cols.item)] + ([("rating", cols.rating)] if min_rating is not None else [])
    if cols.time and cols.time_required:
        needed.append(("time", cols.time))
    for key, name in needed:
        if name not in names:
            hint = "; set data.time_col=none to keep the file's order" if key == "time" else ""
            raise GuimoError(f"{path}: no column '{name}' (data.{key}_col); columns: {', '.join(names)}{hint}")
    users = np.asarray(_no_nulls(path, table, cols.user, "user id"), dtype=str)
    items = np.asarray(_no_nulls(path, table, cols.item, "item id"), dtype=str)
    keep = np.ones(len(users), dtype=bool)
    if min_rating is not None:
        keep &= np.asarray(_no_nulls(path, table, cols.rating, "rating"), dtype=float) >= min_rating
    times = None
    if cols.time and cols.time in names:
        col = table.column(cols.time)
        values = _no_nulls(path, table, cols.time, "timestamp")
        if "timestamp" in str(col.type):
            values = col.cast("int64").to_pylist()
        times = np.asarray(values, dtype=float)[keep]
    return _make(path, list(users[keep]), list(items[keep]), times)


def _no_nulls(path: Path, table, name: str, what: str) -> list:
    """The column's values; a null is an error naming the file and row (str() would make it the id 'None')."""
    col = table.column(name)
    if col.null_count:
        values = col.to_pylist()
        row = next(i for i, v in enumerate(values) if v is None)
        raise GuimoError(f"{path}: row {row + 1}: missing {what} (null in column '{name}'; {col.null_count} null rows in all)")
    return col.to_pylist()


def _make(path: Path, users: list, items: list, times) -> Interactions:
    if not users:
        raise GuimoError(f"{path}: no interactions found")
    t = np.full(len(users), np.nan) if times is None else np.asarray(times, dtype=np.float64)
    return Interactions(np.asarray(users, dtype=str), np.asarray(items, dtype=str), t)


def _sniff_delimiter(header: str) -> str:
    for d in ("\t", ",", ";", "|"):
        if d in header:
            return d
    return ","


def read_categories(path: str | Path, item_col: str = "item_id", category_col: str = "category") -> dict[str, str]:
    """Item -> category from a delimited file with a header (e.g. RecBole ``.item``); first token of a multi-value field."""
    path = Path(path)
    lines = read_text_strict(path).splitlines()
    if not lines:
        raise GuimoError(f"{path}: empty file")
    delim = "\t" if "\t" in lines[0] else _sniff_delimiter(lines[0])
    header = [h.split(":")[0].strip() for h in lines[0].split(delim)]
    for name in (item_col, category_col):
        if name not in header:
            raise GuimoError(f"{where(path, 1)}: no column '{name}'; header has: {', '.join(header)}")
    ii, ci = header.index(item_col), header.index(category_col)
    out = {}
    for i, row in enumerate(csv.reader(io.StringIO("\n".join(lines[1:])), delimiter=delim), start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise GuimoError(f"{where(path, i)}: expected {len(header)} fields like the header, got {len(row)}")
        cat = row[ci].split()
        out[row[ii].strip()] = cat[0] if cat else ""
    return out


# -- filtering, encoding, splitting ------------------------------------------------------------


@dataclass
class Sequences:
    """Each user's items in time order, encoded: internal ids 1..N; 0 is the padding id."""

    user_ids: list[str]  # original user ids, one per sequence
    item_ids: list[str]  # original item ids; internal id i stands for item_ids[i - 1]
    items: np.ndarray  # (E,) int32, all sequences concatenated
    offsets: np.ndarray  # (U + 1,) int64: sequence u is items[offsets[u]:offsets[u + 1]]
    times: np.ndarray  # (E,) float64, NaN when the source had none

    def __len__(self) -> int:
        return len(self.user_ids)

    def seq(self, u: int) -> np.ndarray:
        return self.items[self.offsets[u] : self.offsets[u + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def build_sequences(raw: Interactions, k_core: int = 0, min_seq_len: int = 1, max_seq_len: int | None = None) -> Sequences:
    """Order per user by (time, file order); k-core, min/max length filters; encode items.

    ``k_core`` keeps only users and items with at least k interactions, repeated until stable;
    ``max_seq_len`` keeps each user's most recent interactions; ``min_seq_len`` then drops short users.
    """
    user_codes, users = _factorize(raw.users)
    item_codes, items = _factorize(raw.items)
    times = np.nan_to_num(raw.times, nan=0.0)
    order = np.lexsort((np.arange(len(raw)), times, user_codes))  # by user, then time, then file order
    u, it, t = user_codes[order], item_codes[order], raw.times[order]
    keep = np.ones(len(u), dtype=bool)
    if k_core > 1:
        while True:
            uc = np.bincount(u[keep], minlength=len(users))
            ic = np.bincount(it[keep], minlength=len(items))
            bad = keep & ((uc[u] < k_core) | (ic[it] < k_core))
            if not bad.any():
                break
            keep &= ~bad
    u, it, t = u[keep], it[keep], t[keep]
    if max_seq_len is not None:
        # rank from the end within each user: keep the last max_seq_len
        counts = np.bincount(u, minlength=len(users))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pos_from_end = counts[u] - (np.arange(len(u)) - starts[u]) - 1
        sel = pos_from_end < max_seq_len
        u, it, t = u[sel], it[sel], t[sel]
    counts = np.bincount(u, minlength=len(users))
    sel = counts[u] >= max(1, min_seq_len)
    u, it, t = u[sel], it[sel], t[sel]
    if len(u) == 0:
        raise GuimoError(f"no user keeps >= {min_seq_len} interactions after filtering (k_core={k_core}); relax data.k_core / data.min_seq_len")
    kept_users, u_new = np.unique(u, return_inverse=True)
    kept_items, it_new = np.unique(it, return_inverse=True)
    # codes follow first appearance, so internal ids 1..N keep the file's order of items
    offsets = np.concatenate([[0], np.cumsum(np.bincount(u_new))]).astype(np.int64)
    return Sequences(
        user_ids=[str(users[i]) for i in kept_users],
        item_ids=[str(items[i]) for i in kept_items],
        items=(it_new + 1).astype(np.int32),
        offsets=offsets,
        times=t.astype(np.float64),
    )


def keep_users(seqs: Sequences, fraction: float) -> Sequences:
    """Users in the order of a hash of their id, as many as hold ``fraction`` of the interactions (to
    within one user). The order is stable across runs and machines and the subsets are nested (the
    users kept at 0.25 are among those kept at 0.5); counting interactions, not users, makes the share
    exact on the learning curve's axis. Item ids are untouched, so the catalogue a model ranks over is
    the same at every fraction and a learning curve measures data, not an easier task."""
    import hashlib

    order = sorted(range(len(seqs)), key=lambda u: hashlib.blake2b(seqs.user_ids[u].encode(), digest_size=8).digest())
    lengths = seqs.lengths
    held = np.cumsum(lengths[order])
    n = min(len(order), int(np.searchsorted(held, fraction * held[-1])) + 1)  # the shortest prefix that holds the share
    keep = np.sort(np.asarray(order[:n], dtype=np.int64))
    rows = np.concatenate([np.arange(seqs.offsets[u], seqs.offsets[u + 1]) for u in keep])
    return Sequences(user_ids=[seqs.user_ids[u] for u in keep], item_ids=seqs.item_ids, items=seqs.items[rows],
                     offsets=np.concatenate([[0], np.cumsum(lengths[keep])]).astype(np.int64), times=seqs.times[rows])


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes in order of first appearance and the distinct values (so file order is preserved)."""
    uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    return rank[inverse], uniq[np.argsort(first, kind="stable")]


@dataclass
class Split:
    """Where each split ends. Training uses ``seq(u)[:train_end[u]]``; an evaluation case
    ``(user, end)`` predicts ``seq(user)[end]`` from ``seq(user)[:end]``."""

    train_end: np.ndarray  # (U,) int64
    val_users: np.ndarray  # (V,) int64
    val_end: np.ndarray  # (V,)
    test_users: np.ndarray  # (T,)
    test_end: np.ndarray  # (T,)


def split_sequences(seqs: Sequences, how: str = "loo", val_fraction: float = 0.1, test_fraction: float = 0.1) -> Split:
    """Leave-one-out (last item = test, second-to-last = validation, the rest = training) or a
    global temporal split at the time quantiles ``1 - val - test`` and ``1 - test``: training is
    everything before the first cut; a user's validation case is their first item between the cuts,
    their test case their first item after the second cut, each predicted from all earlier items."""
    lengths = seqs.lengths
    users = np.arange(len(seqs))
    if how == "loo":
        ok = lengths >= 3
        if not ok.any():
            raise GuimoError("leave-one-out needs users with >= 3 interactions; none left (check data.min_seq_len)")
        train_end = np.where(ok, lengths - 2, lengths)
        return Split(train_end.astype(np.int64), users[ok], (lengths - 2)[ok], users[ok], (lengths - 1)[ok])
    if how != "temporal":
        raise GuimoError(f"unknown data.split '{how}'; choose loo or temporal")
    if np.isnan(seqs.times).all():
        raise GuimoError("a temporal split needs timestamps; this source has none (use data.split=loo)")
    t1, t2 = np.quantile(seqs.times, [1 - val_fraction - test_fraction, 1 - test_fraction])
    starts = seqs.offsets[:-1]
    before1 = np.array([np.searchsorted(seqs.times[s:e], t1, side="left") for s, e in zip(starts, seqs.offsets[1:])])
    before2 = np.array([np.searchsorted(seqs.times[s:e], t2, side="left") for s, e in zip(starts, seqs.offsets[1:])])
    val_ok = (before1 >= 1) & (before1 < lengths) & (before1 < before2)
    test_ok = (before2 >= 1) & (before2 < lengths)
    return Split(before1.astype(np.int64), users[val_ok], before1[val_ok], users[test_ok], before2[test_ok])
