"""Failures: bad inputs leave no run folder behind, a failed stage is drawn and listed as failed,
and a run that fails after collect keeps its folder so the same command resumes it."""

from __future__ import annotations

import json

from guimo.cli import main
from guimo.pipeline.rundir import RunDir

PAIRS = "".join(f"u{u} i{(u * 7 + t) % 40}\n" for u in range(30) for t in range(6))  # 30 users, 6 events each


def test_a_missing_data_path_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "recommend", "--data", "no/such/file.txt", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no/such/file.txt: no such file or directory (data.path)" in err and "nothing was run" in err
    assert list(tmp_path.iterdir()) == []  # no runs/recommend-<timestamp>
    assert main(["run", "recommend", "--data", "no/such/file.txt", "--out", "r", "--quiet"]) == 2
    assert not (tmp_path / "r").exists()


def test_a_missing_categories_file_is_checked_before_the_folder_too(tmp_path, capsys):
    data = tmp_path / "pairs.txt"
    data.write_text(PAIRS)
    assert main(["run", "recommend", "--data", str(data), "--set", "data.categories=nope.tsv", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "nope.tsv: no such file or directory (data.categories)" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_a_source_that_collect_cannot_read_leaves_nothing_and_is_drawn_failed(tmp_path, capsys):
    data = tmp_path / "pairs.txt"
    data.write_text(PAIRS + "u1 i2 extra-column\n")
    out = tmp_path / "r"
    assert main(["run", "recommend", "--data", str(data), "--set", "data.format=sasrec", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "pairs.txt:181" in captured.err  # the reader names file:line
    assert not out.exists()
    bar = [line for line in captured.out.splitlines() if line.startswith("collect")]
    assert bar and "failed" in bar[0] and "0/1" in bar[0] and "1/1" not in bar[0], captured.out


def test_a_run_failing_after_collect_keeps_its_folder_and_is_listed_as_failed(tmp_path, capsys):
    data = tmp_path / "pairs.txt"
    data.write_text(PAIRS)
    runs = tmp_path / "runs"
    failed = runs / ("a-run-with-a-name-longer-than-any-terminal-column-would-leave-it-" + "x" * 40)
    # min_seq_len above every user's length: preprocess fails, collect's output stays for a resume
    assert main(["run", "recommend", "--data", str(data), "--out", str(failed), "--set", "data.min_seq_len=50", "--quiet"]) == 2
    assert RunDir.open(failed).manifest["status"] == "failed:preprocess"
    assert RunDir.open(failed).stage_done("collect")
    capsys.readouterr()
    assert main(["runs", str(runs)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(str(failed)))  # the whole name, piped
    assert "FAILED at preprocess" in line and "1 failed or stopped run" in out
    assert main(["runs", str(runs), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["run"], row["status"], row["failed_stage"], row["value"]) == (str(failed), "failed:preprocess", "preprocess", None)
    assert main(["show", str(failed)]) == 0  # where `guimo runs` sends the user for the error
    assert "preprocess failed: GuimoError: no user keeps >= 50 interactions" in capsys.readouterr().out


def test_a_run_whose_process_was_killed_is_listed_as_stopped(tmp_path, capsys):
    import subprocess
    import sys

    run = RunDir.create(tmp_path / "killed", "recommend", {})
    run.stage_started("train")
    assert run.stopped_stage() is None  # this process is alive
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    run.manifest["stages"]["train"]["pid"] = int(dead.stdout)  # as if kill -9 had ended the run
    run.save()
    assert RunDir.open(run.path).stopped_stage() == "train"
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "STOPPED at train" in out and "1 failed or stopped run" in out
    assert main(["runs", str(tmp_path), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["status"], row["stopped_stage"], row["failed_stage"]) == ("running:train", "train", None)


def test_the_progress_bar_draws_a_failed_task_as_failed(capsys):
    import pytest

    from guimo.pipeline.progress import Progress

    with pytest.raises(ValueError), Progress() as progress:
        with progress.task("collect"):
            pass
        with progress.task("train", total=10) as bar:
            bar.update(completed=3)
            raise ValueError("boom")
    lines = capsys.readouterr().out.splitlines()
    assert "1/1" in next(line for line in lines if line.startswith("collect"))
    train = next(line for line in lines if line.startswith("train"))
    assert "failed" in train and "3/10" in train and "10/10" not in train
