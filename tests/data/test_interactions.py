"""Interaction loaders: every format on small fixtures, malformed lines named by file:line,
filters, the two splits, and the real shared files where present."""

from __future__ import annotations

import numpy as np
import pytest

from guimo.data.interactions import Columns, build_sequences, detect_format, keep_users, read_categories, read_interactions, split_sequences
from guimo.errors import GuimoError
from tests.conftest import shared_data


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def seqs_by_user(raw, **kw):
    s = build_sequences(raw, **kw)
    return {u: [s.item_ids[i - 1] for i in s.seq(j)] for j, u in enumerate(s.user_ids)}


def test_sasrec_pairs_keep_file_order(tmp_path):
    p = write(tmp_path, "data.txt", "1 10\n1 12\n2 10\n1 11\n")
    assert detect_format(p) == "sasrec"
    assert seqs_by_user(read_interactions(p)) == {"1": ["10", "12", "11"], "2": ["10"]}


def test_user_lines(tmp_path):
    p = write(tmp_path, "seqs.txt", "a x y z\nb y\nc z x y w\n")
    assert detect_format(p) == "user_lines"
    assert seqs_by_user(read_interactions(p)) == {"a": ["x", "y", "z"], "b": ["y"], "c": ["z", "x", "y", "w"]}


def test_movielens_dat_orders_by_time_and_filters_ratings(tmp_path):
    p = write(tmp_path, "ratings.dat", "1::5::4::300\n1::6::2::100\n1::7::5::200\n2::5::3::50\n")
    assert seqs_by_user(read_interactions(p)) == {"1": ["6", "7", "5"], "2": ["5"]}
    assert seqs_by_user(read_interactions(p, min_rating=4)) == {"1": ["7", "5"]}


def test_movielens_100k_udata_and_ratings_csv(tmp_path):
    u = write(tmp_path, "u.data", "196\t242\t3\t881250949\n196\t302\t3\t881250000\n")
    assert seqs_by_user(read_interactions(u)) == {"196": ["302", "242"]}
    c = write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,31,2.5,20\n1,29,3.0,10\n")
    assert detect_format(c) == "movielens"
    assert seqs_by_user(read_interactions(c)) == {"1": ["29", "31"]}


def test_recbole_inter_and_folder_lookup(tmp_path):
    d = tmp_path / "ml"
    d.mkdir()
    write(d, "ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t9\t4\t2\n1\t8\t4\t1\n")
    assert seqs_by_user(read_interactions(d)) == {"1": ["8", "9"]}


def test_generic_csv_with_configured_columns(tmp_path):
    p = write(tmp_path, "events.csv", "ts;customer;sku\n3;c1;B\n1;c1;A\n2;c2;A\n")
    raw = read_interactions(p, "csv", Columns(user="customer", item="sku", time="ts"))
    assert seqs_by_user(raw) == {"c1": ["A", "B"], "c2": ["A"]}


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "events.parquet"
    pq.write_table(pa.table({"user_id": ["u", "u", "v"], "item_id": ["b", "a", "a"], "timestamp": [2, 1, 5]}), p)
    assert seqs_by_user(read_interactions(p)) == {"u": ["a", "b"], "v": ["a"]}


@pytest.mark.parametrize("name, text, fmt, line", [
    ("a.txt", "1 10\n1 11\n1 12 13\n", "sasrec", 3),
    ("b.txt", "u1 a b\nu2\n", "user_lines", 2),
    ("ratings.dat", "1::2::3::4\n1::2::3\n", "movielens", 2),
    ("ratings.dat", "1::2::3::4\n1::2::x::4\n", "movielens", 2),
    ("x.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n1\t2\n", "recbole", 3),
    ("x.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\tnoon\n", "recbole", 2),
    ("e.csv", "user_id,item_id\n1,2\n,3\n", "csv", 3),
])
def test_malformed_lines_name_file_and_line(tmp_path, name, text, fmt, line):
    p = write(tmp_path, name, text)
    with pytest.raises(GuimoError, match=rf"{name}:{line}:"):
        read_interactions(p, fmt)


def test_missing_column_and_bad_bytes_are_clear(tmp_path):
    p = write(tmp_path, "e.csv", "customer,item_id\n1,2\n")
    with pytest.raises(GuimoError, match=r"e.csv:1: no column 'user_id'"):
        read_interactions(p, "csv")
    b = tmp_path / "bin.txt"
    b.write_bytes(b"1 2\n1 \xff\n")
    with pytest.raises(GuimoError, match=r"bin.txt:2: not UTF-8"):
        read_interactions(b, "sasrec")
    with pytest.raises(GuimoError, match="no such file"):
        read_interactions(tmp_path / "nope.txt")


def test_k_core_min_and_max_length(tmp_path):
    # item z appears once; after dropping it, user c has 1 interaction and goes too
    p = write(tmp_path, "s.txt", "a x y\nb x y\nc x z\n")
    assert seqs_by_user(read_interactions(p, "user_lines"), k_core=2) == {"a": ["x", "y"], "b": ["x", "y"]}
    p = write(tmp_path, "t.txt", "a 1 2 3 4 5\nb 1 2\n")
    assert seqs_by_user(read_interactions(p, "user_lines"), min_seq_len=3, max_seq_len=3) == {"a": ["3", "4", "5"]}
    with pytest.raises(GuimoError, match="no user keeps"):
        build_sequences(read_interactions(p, "user_lines"), min_seq_len=10)


def test_keep_users_is_a_nested_exact_share_of_the_interactions(tmp_path):
    rng = np.random.default_rng(0)
    lines = [f"u{i} " + " ".join(str(x) for x in rng.integers(0, 50, rng.integers(3, 12))) for i in range(300)]
    s = build_sequences(read_interactions(write(tmp_path, "s.txt", "\n".join(lines) + "\n"), "user_lines"))
    total = int(s.lengths.sum())
    quarter, half = keep_users(s, 0.25), keep_users(s, 0.5)
    for part, f in ((quarter, 0.25), (half, 0.5)):
        assert 0 <= part.lengths.sum() - f * total < 12  # the share, to within one user's history
        assert part.item_ids == s.item_ids  # same catalogue
        for j, u in enumerate(part.user_ids):  # each kept user keeps their whole history
            assert list(part.seq(j)) == list(s.seq(s.user_ids.index(u)))
    assert set(quarter.user_ids) < set(half.user_ids)  # nested
    assert keep_users(s, 1.0).user_ids == s.user_ids


def test_leave_one_out_split(tmp_path):
    p = write(tmp_path, "s.txt", "a 1 2 3 4\nb 5 6\nc 1 5 6\n")
    s = build_sequences(read_interactions(p, "user_lines"))
    sp = split_sequences(s, "loo")
    a = s.user_ids.index("a")
    assert sp.train_end[a] == 2 and list(sp.val_users) == [0, 2] and list(sp.val_end) == [2, 1]
    assert list(sp.test_end) == [3, 2]
    assert sp.train_end[s.user_ids.index("b")] == 2  # too short to evaluate: all of it trains


def test_temporal_split_uses_global_time_cuts(tmp_path):
    rows = "".join(f"u{u},i{(u * 7 + t) % 13},{t * 10 + u}\n" for u in range(5) for t in range(10))
    p = write(tmp_path, "e.csv", "user_id,item_id,timestamp\n" + rows)
    s = build_sequences(read_interactions(p))
    sp = split_sequences(s, "temporal", 0.2, 0.2)
    t1, t2 = np.quantile(s.times, [0.6, 0.8])
    for u in range(len(s)):
        times = s.times[s.offsets[u] : s.offsets[u + 1]]
        assert (times[: sp.train_end[u]] < t1).all()
    for u, e in zip(sp.test_users, sp.test_end):
        times = s.times[s.offsets[u] : s.offsets[u + 1]]
        assert times[e] >= t2 and times[e - 1] < t2
    assert len(sp.val_users) == 5 and len(sp.test_users) == 5
    with pytest.raises(GuimoError, match="needs timestamps"):
        split_sequences(build_sequences(read_interactions(write(tmp_path, "n.txt", "a 1 2 3\n"))), "temporal")


def test_categories_file(tmp_path):
    p = write(tmp_path, "x.item", "item_id:token\tclass:token_seq\n1\tAnimation Comedy\n2\tDrama\n")
    assert read_categories(p, "item_id", "class") == {"1": "Animation", "2": "Drama"}
    bad = write(tmp_path, "y.item", "item_id\tclass\n1\tA\tB\n")
    with pytest.raises(GuimoError, match=r"y.item:2:"):
        read_categories(bad, "item_id", "class")


def test_real_beauty_file():
    path = shared_data("seqrec", "Beauty_bert4rec.txt")
    s = build_sequences(read_interactions(path))
    assert (len(s), len(s.item_ids), len(s.items)) == (40226, 54542, 353962)


def test_real_movielens_100k():
    path = shared_data("movielens-100k", "ml-100k.inter")
    s = build_sequences(read_interactions(path))
    assert (len(s), len(s.item_ids), len(s.items)) == (943, 1682, 100000)
    assert np.all(np.diff(s.times[s.offsets[0] : s.offsets[1]]) >= 0)


def test_a_named_time_column_that_is_absent_is_an_error_not_file_order(tmp_path):
    p = write(tmp_path, "events.csv", "user_id,item_id,ts\nu,b,2\nu,a,1\n")
    with pytest.raises(GuimoError, match=r"events.csv:1: no column 'tstamp' \(data.time_col\); header has: user_id, item_id, ts"):
        read_interactions(p, "csv", Columns(time="tstamp", time_required=True))
    # the default name on a file without it: file order, as documented
    assert seqs_by_user(read_interactions(p, "csv", Columns(time="timestamp"))) == {"u": ["b", "a"]}
    assert seqs_by_user(read_interactions(p, "csv", Columns(time="ts", time_required=True))) == {"u": ["a", "b"]}


def test_parquet_nulls_are_errors_naming_file_and_row(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "events.parquet"
    pq.write_table(pa.table({"user_id": ["u", None, "v", None], "item_id": ["b", "a", "a", "c"], "timestamp": [2, 1, 5, 6]}), p)
    with pytest.raises(GuimoError, match=r"events.parquet: row 2: missing user id \(null in column 'user_id'; 2 null rows in all\)"):
        read_interactions(p)
    q = tmp_path / "ratings.parquet"
    pq.write_table(pa.table({"user_id": ["u", "v"], "item_id": ["b", "a"], "rating": [4.0, None]}), q)
    with pytest.raises(GuimoError, match=r"ratings.parquet: row 2: missing rating"):
        read_interactions(q, min_rating=3)
    with pytest.raises(GuimoError, match=r"no column 'when' \(data.time_col\)"):
        read_interactions(q, columns=Columns(time="when", time_required=True))


def test_items_missing_from_the_categories_file_get_their_own_category():
    from guimo.data.recdata import UNKNOWN_CATEGORY, encode_categories

    item_cat, names, missing = encode_categories(["a", "b", "c", "d"], {"a": "toys", "b": "", "d": "books", "z": "food"})
    assert names == ["books", "toys", UNKNOWN_CATEGORY] and missing == ["b", "c"]
    assert item_cat.tolist() == [0, 2, 3, 3, 1]  # never 0, the padding id
    item_cat, names, missing = encode_categories(["a"], {"a": "toys"})
    assert (item_cat.tolist(), names, missing) == ([0, 1], ["toys"], [])
