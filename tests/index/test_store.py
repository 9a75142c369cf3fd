"""Versioned atomic saves: commit, sweep, torn saves, concurrent savers, a reader racing a save."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from guimo.errors import GuimoError
from guimo.index import store
from guimo.io import atomic_write_text


def save(folder: Path, text: str) -> None:
    with store.new_version(folder) as target:
        atomic_write_text(target / "data.txt", text)


def read(version: Path) -> str:
    return (version / "data.txt").read_text()


def versions(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir()]


def test_commit_points_current_at_the_new_version_and_sweeps_the_old(tmp_path: Path) -> None:
    save(tmp_path / "f", "one")
    first = store.current_version(tmp_path / "f", what="thing")
    save(tmp_path / "f", "two")
    assert store.current_version(tmp_path / "f", what="thing") != first and not first.exists()
    assert versions(tmp_path / "f") == [store.current_version(tmp_path / "f", what="thing")]
    assert store.read_version(tmp_path / "f", read, what="thing") == "two"


def test_a_save_that_fails_midway_commits_nothing(tmp_path: Path) -> None:
    save(tmp_path / "f", "one")
    with pytest.raises(RuntimeError):
        with store.new_version(tmp_path / "f") as target:
            atomic_write_text(target / "data.txt", "half")
            raise RuntimeError("killed")
    assert store.read_version(tmp_path / "f", read, what="thing") == "one"
    assert len(versions(tmp_path / "f")) == 2  # the torn folder waits for the next save
    save(tmp_path / "f", "three")
    assert len(versions(tmp_path / "f")) == 1


def test_pointer_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(GuimoError, match=r"not a saved widget \(no CURRENT file\)"):
        store.current_version(tmp_path, what="widget")
    (tmp_path / "CURRENT").write_text("../elsewhere\n")
    with pytest.raises(GuimoError, match="not a version folder"):
        store.current_version(tmp_path, what="widget")
    (tmp_path / "CURRENT").write_text("v-gone\n")
    with pytest.raises(GuimoError, match="names v-gone, which does not exist"):
        store.read_version(tmp_path, read, what="widget")
    (tmp_path / "v-gone").mkdir()
    with pytest.raises(GuimoError, match="data.txt: missing from the committed version"):
        store.read_version(tmp_path, read, what="widget")


def test_a_reader_whose_version_is_swept_reads_the_next_one(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    save(folder, "old")
    calls = []

    def racing_read(version: Path) -> str:
        calls.append(version.name)
        if len(calls) == 1:  # a save commits and sweeps between CURRENT's read and ours
            save(folder, "new")
        return read(version)

    assert store.read_version(folder, racing_read, what="thing") == "new"
    assert len(calls) == 2 and calls[0] != calls[1]


def test_concurrent_savers_are_serialised(tmp_path: Path) -> None:
    """Without the lock one saver's sweep deletes the other's half-written version under it."""
    folder = tmp_path / "f"
    errors: list[BaseException] = []

    def saver(name: str) -> None:
        try:
            for i in range(15):
                with store.new_version(folder) as target:
                    for part in range(5):
                        atomic_write_text(target / f"part{part}.txt", f"{name}{i}")
                    atomic_write_text(target / "data.txt", f"{name}{i}")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=saver, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert store.read_version(folder, read, what="thing") in {"a14", "b14"}
    assert len(versions(folder)) == 1
