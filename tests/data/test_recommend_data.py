"""The recommend scenario's data loading says what it could not use: a misspelt time column is an
error, items a categories file lacks are counted and get their own category."""

from __future__ import annotations

from guimo.cli import main
from guimo.pipeline.rundir import RunDir

EVENTS = "user_id,item_id,timestamp\n" + "".join(f"u{u},i{(u * 7 + t) % 40},{100 * u + t}\n" for u in range(30) for t in range(6))


def test_a_misspelt_time_col_stops_the_run_before_anything_is_kept(tmp_path, capsys):
    data = tmp_path / "events.csv"
    data.write_text(EVENTS)
    out = tmp_path / "r"
    assert main(["run", "recommend", "--data", str(data), "--set", "data.time_col=timestmp", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no column 'timestmp' (data.time_col)" in err and "user_id, item_id, timestamp" in err
    assert not out.exists()


def test_items_without_a_category_are_counted_and_share_one(tmp_path, capsys):
    data = tmp_path / "events.csv"
    data.write_text(EVENTS)
    cats = tmp_path / "items.tsv"
    cats.write_text("item_id\tcategory\n" + "".join(f"i{i}\tc{i % 3}\n" for i in range(0, 40, 2)))  # odd items lack one
    out = tmp_path / "r"
    assert main(["run", "recommend", "--data", str(data), "--set", f"data.categories={cats}", "--out", str(out), "--to", "preprocess"]) == 0
    info = RunDir.open(out).manifest["stages"]["preprocess"]
    assert (info["categories"], info["items_without_category"]) == (4, 20)
    assert "20 of 40 items have no category" in capsys.readouterr().out
    assert RunDir.open(out).manifest["stages"]["collect"]["timestamps"] is True
