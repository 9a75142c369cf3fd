"""Vector index: exact and HNSW search, ids, delete, filters, persistence, concurrent adds, kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss", reason="the search extra is not installed (pip install -e '.[search]')")

from guimo.errors import GuimoError  # noqa: E402
from guimo.index import dense  # noqa: E402
from guimo.index.dense import DenseIndex, HNSWParams, resolve_threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit vectors from a seeded Gaussian mixture (20 clusters), as text embeddings look."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, q: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[list[int]]:
    rows = np.arange(len(x)) if rows is None else rows
    s = q @ x[rows].T
    return [rows[np.argsort(-r, kind="stable")[:k]].tolist() for r in s]


def row_ids(hits) -> list[list[int]]:
    return [[int(h.id) for h in row] for row in hits]


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_search_matches_exact_ranking(kind: str) -> None:
    x, q = unit(2000, 32), unit(20, 32, seed=1)
    index = DenseIndex(32, kind=kind)
    index.add([str(i) for i in range(len(x))], x)
    hits = index.search(q, k=10)
    assert index.info()["main"] == kind and len(index) == 2000
    truth = exact_top(x, q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(row_ids(hits), truth)])
    assert recall == 1.0 if kind == "flat" else recall >= 0.95
    assert np.allclose(hits[0][0].score, q[0] @ x[int(hits[0][0].id)], atol=1e-5)
    assert all(a.score >= b.score for row in hits for a, b in zip(row, row[1:]))
    ids, scores = index.search_arrays(q, k=10)  # the same ranking as arrays
    assert ids.shape == scores.shape == (20, 10) and [[int(i) for i in row] for row in ids] == row_ids(hits)
    assert np.allclose(scores, [[h.score for h in row] for row in hits])
    single = index.search(q[0], k=3)  # one (dim,) vector is one query
    assert len(single) == 1 and [h.id for h in single[0]] == [h.id for h in hits[0][:3]]


def test_l2_scores_are_negative_squared_distances() -> None:
    x, q = unit(300, 8), unit(3, 8, seed=2) * 2
    index = DenseIndex(8, metric="l2", kind="flat")
    index.add([str(i) for i in range(300)], x)
    hit = index.search(q, k=1)[0][0]
    d2 = ((x - q[0]) ** 2).sum(1)
    assert int(hit.id) == int(np.argmin(d2)) and hit.score == pytest.approx(-d2.min(), rel=1e-4)


def test_auto_switches_to_hnsw_past_flat_max_and_merges_deltas() -> None:
    x = unit(2600, 16)
    index = DenseIndex(16, flat_max=1000)
    index.add([str(i) for i in range(600)], x[:600])
    assert index.info()["main"] == "flat"
    for start in range(600, 2600, 200):  # small adds land in delta parts, then merge
        index.add([str(i) for i in range(start, start + 200)], x[start:start + 200])
    info = index.info()
    assert info["main"] == "hnsw" and info["delta_parts"] <= dense.DELTA_PARTS and len(index) == 2600
    assert info["stored"] == 2600
    assert [h.id for h in index.search(x[2599], k=1)[0]] == ["2599"]


def test_readd_replaces_and_delete_removes() -> None:
    x = unit(50, 8)
    index = DenseIndex(8)
    index.add([str(i) for i in range(50)], x, [{"v": 1}] * 50)
    index.add(["7"], x[30:31], [{"v": 2}])  # id 7 now points at row 30's vector
    assert len(index) == 50
    top = index.search(x[30], k=2)[0]
    assert {h.id for h in top} == {"7", "30"} and top[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.metadata for h in top if h.id == "7"] == [{"v": 2}]
    assert all(h.id != "7" for h in index.search(x[7], k=50)[0][:1])
    assert index.delete(["3", "3", "nope"]) == 1 and "3" not in index and len(index) == 49
    assert "3" not in {h.id for h in index.search(x[3], k=49)[0]}
    assert index.delete(["3"]) == 0


def test_repeated_id_in_one_add_last_wins() -> None:
    x = unit(3, 8)
    index = DenseIndex(8)
    index.add(["a", "b", "a"], x, [{"n": 0}, {"n": 1}, {"n": 2}])
    assert len(index) == 2 and index.ids() == ["b", "a"]
    hit = index.search(x[2], k=1)[0][0]
    assert hit.id == "a" and hit.metadata == {"n": 2}


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_selective_filter_still_returns_k_exact_hits(kind: str) -> None:
    x, q = unit(3000, 16), unit(5, 16, seed=3)
    rare = set(range(0, 3000, 250))  # 12 vectors
    meta = [{"tag": "rare" if i in rare else "common", "half": i % 2} for i in range(3000)]
    index = DenseIndex(16, kind=kind)
    index.add([str(i) for i in range(3000)], x, meta)
    hits = index.search(q, k=10, filters={"tag": "rare"})
    assert row_ids(hits) == exact_top(x, q, 10, np.array(sorted(rare)))
    both = index.search(q, k=10, filters={"tag": "common", "half": 1.0})  # 1.0 equals 1
    assert all(len(r) == 10 and all(h.metadata == {"tag": "common", "half": 1} for h in r) for r in both)
    odd = np.array([i for i in range(3000) if i % 2 and i not in rare])
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(row_ids(both), exact_top(x, q, 10, odd))])
    assert recall >= 0.9
    assert index.search(q, k=10, filters={"tag": "absent"}) == [[] for _ in range(5)]
    assert index.search(q, k=10, filters={"missing_field": None})[0]  # a missing field equals None
    index.delete([str(i) for i in sorted(rare)[:5]])
    assert [len(r) for r in index.search(q, k=10, filters={"tag": "rare"})] == [7] * 5
    ids, scores = index.search_arrays(q, k=10, filters={"tag": "rare"})
    assert (ids[:, 7:] == None).all() and np.isneginf(scores[:, 7:]).all()  # noqa: E711
    assert np.isfinite(scores[:, :7]).all()


def test_tombstones_past_the_share_rebuild_the_index() -> None:
    x = unit(400, 8)
    index = DenseIndex(8, kind="hnsw")
    index.add([str(i) for i in range(400)], x)
    index.delete([str(i) for i in range(90)])
    assert index.info()["stored"] == 400  # dead vectors wait below the share ...
    index.delete([str(i) for i in range(90, 120)])
    assert index.info()["stored"] == 280 == len(index)  # ... and are dropped past it
    assert index.search(x[200], k=1)[0][0].id == "200"
    assert all(int(h.id) >= 120 for h in index.search(x[:5], k=20)[0])


def test_bad_input_is_refused_with_a_reason() -> None:
    with pytest.raises(GuimoError, match="unknown metric 'cos'"):
        DenseIndex(8, metric="cos")
    with pytest.raises(GuimoError, match="unknown index kind 'ivf'"):
        DenseIndex(8, kind="ivf")
    with pytest.raises(GuimoError, match="dim must be"):
        DenseIndex(0)
    with pytest.raises(GuimoError, match=r"HNSWParams.m must be an integer >= 2, got 1"):
        HNSWParams(m=1)
    index = DenseIndex(8)
    with pytest.raises(GuimoError, match=r"shape \(2, 7\), expected \(N, 8\)"):
        index.add(["a", "b"], np.zeros((2, 7), np.float32))
    bad = unit(3, 8)
    bad[1, 2] = np.nan
    with pytest.raises(GuimoError, match=r"vector 1 \(id 'b'\) is not finite"):
        index.add(["a", "b", "c"], bad)
    with pytest.raises(GuimoError, match="2 ids but 3 vectors"):
        index.add(["a", "b"], unit(3, 8))
    with pytest.raises(GuimoError, match="2 ids but 1 metadata"):
        index.add(["a", "b"], unit(2, 8), [{}])
    with pytest.raises(GuimoError, match="must be a mapping"):
        index.add(["a"], unit(1, 8), ["tag"])
    assert len(index) == 0 and index.search(unit(1, 8), k=3) == [[]]
    index.add(["a"], unit(1, 8))
    with pytest.raises(GuimoError, match="k must be"):
        index.search(unit(1, 8), k=0)
    with pytest.raises(GuimoError, match="queries: shape"):
        index.search(np.zeros((1, 9)), k=1)


def test_threads_never_exceed_the_cores() -> None:
    cores = len(os.sched_getaffinity(0))
    assert resolve_threads(1000) == cores and resolve_threads(1) == 1
    torch = sys.modules.get("torch")  # loaded by the test session, which pins it to one thread
    if torch is not None:
        assert resolve_threads() == min(torch.get_num_threads(), cores)
    with pytest.raises(GuimoError):
        resolve_threads(0)


def test_save_load_round_trip(tmp_path: Path) -> None:
    x, q = unit(1500, 16), unit(4, 16, seed=4)
    index = DenseIndex(16, kind="auto", flat_max=1000, hnsw=HNSWParams(m=16, ef_construction=40, ef_search=32))
    index.add([str(i) for i in range(1200)], x[:1200], [{"g": i % 3} for i in range(1200)])
    index.add([str(i) for i in range(1200, 1500)], x[1200:], [{"g": i % 3} for i in range(1200, 1500)])
    index.delete(["5", "1300"])
    assert index.info()["delta_parts"] == 1  # saved with a delta part and tombstones
    index.save(tmp_path / "idx")
    loaded = DenseIndex.load(tmp_path / "idx")
    assert loaded.info() == index.info() and loaded.hnsw == index.hnsw
    for filters in (None, {"g": 2}):
        assert loaded.search(q, k=10, filters=filters) == index.search(q, k=10, filters=filters)
    assert "5" not in loaded and "1300" not in loaded and len(loaded) == 1498
    loaded.add(["new"], x[:1])  # labels continue after the saved ones
    assert {h.id for h in loaded.search(x[0], k=2)[0]} == {"0", "new"}
    loaded.save(tmp_path / "idx")
    assert len([p for p in (tmp_path / "idx").iterdir() if p.is_dir()]) == 1
    assert len(DenseIndex.load(tmp_path / "idx")) == 1499


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(GuimoError, match="not a saved vector index"):
        DenseIndex.load(tmp_path)
    index = DenseIndex(4)
    index.add(["a", "b"], unit(2, 4))
    index.save(tmp_path / "idx")
    version = tmp_path / "idx" / (tmp_path / "idx" / "CURRENT").read_text().strip()
    ids = version / "ids.jsonl"
    ids.write_text(ids.read_text().replace('"id"', '"di"', 1))
    with pytest.raises(GuimoError, match=r"ids.jsonl:1: malformed"):
        DenseIndex.load(tmp_path / "idx")
    (version / "part-0.faiss").unlink()
    with pytest.raises(GuimoError, match="part-0.faiss"):
        DenseIndex.load(tmp_path / "idx")


def test_searches_answer_while_another_thread_adds() -> None:
    """A reader never fails or loses the planted vector while a writer adds and merges."""
    dim = 16
    x = unit(6000, dim)
    index = DenseIndex(dim, flat_max=2000)
    index.add(["planted"], x[:1])
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for start in range(1, 6000, 250):
                index.add([str(i) for i in range(start, min(start + 250, 6000))], x[start:start + 250])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            done.set()

    searches, sizes = 0, []
    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        hits = index.search(x[:1], k=5)[0]
        assert hits[0].id == "planted" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert all(h.id == "planted" or 1 <= int(h.id) < 6000 for h in hits)
        searches += 1
        sizes.append(len(index))
    thread.join()
    assert not errors, errors
    assert searches > 1 and len(set(sizes)) > 1  # searches answered between adds, at several sizes
    assert len(index) == 6000 and index.info()["main"] == "hnsw"


CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from guimo.index.dense import DenseIndex
    folder, dim = sys.argv[1], 64
    rng = np.random.default_rng(0)
    index = DenseIndex(dim, kind="flat")
    n = 0
    while True:
        x = rng.standard_normal((20000, dim)).astype(np.float32)
        index.add([str(i) for i in range(n, n + 20000)], x, [{"batch": n // 20000}] * 20000)
        n += 20000
        index.save(folder)
        print(n, flush=True)
""")


def test_kill_during_add_and_save_leaves_the_last_committed_index(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)], stdout=subprocess.PIPE,
                             text=True, env=env)
    committed = []
    try:
        committed.append(int(child.stdout.readline()))  # the first save has committed
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill while a later version is being written:
            current = (folder / "CURRENT").read_text().strip()  # a folder CURRENT does not name and
            if any(p.name != current and p.is_dir() and not (p / "index.json").exists()  # whose last
                   for p in folder.iterdir()):  # file is not written yet (a swept old one has it)
                break
            time.sleep(0.002)
        else:
            pytest.fail("no save in progress was seen within 60 s")
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        committed += [int(line) for line in child.stdout.read().split()]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert len([p for p in folder.iterdir() if p.is_dir()]) <= 2  # at most the commit and a torn one
    survivor = DenseIndex.load(folder)
    # The save in flight may (rarely) have committed in the microseconds before the kill landed.
    assert len(survivor) in (committed[-1], committed[-1] + 20000)
    last = len(survivor) - 1
    hit = survivor.search(np.zeros((1, 64), np.float32) + 1, k=1, filters={"batch": last // 20000})[0]
    assert len(hit) == 1 and hit[0].metadata == {"batch": last // 20000}
    survivor.add(["x"], np.ones((1, 64), np.float32))
    survivor.save(folder)  # the next good save sweeps the torn folder
    assert len([p for p in folder.iterdir() if p.is_dir()]) == 1
