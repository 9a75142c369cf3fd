"""`guimo assistant RUN` as a user runs it, over a tiny real `assistant` run and a private state file:
--text (table and --json), --wav, --interactive from piped stdin, --batch/--out (with --dry-run and a bad
line named by file and line, applied all or nothing), --say (a WAV reply, or a clear message without
espeak-ng), and a run of another scenario refused."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.conftest import tiny_assistant_run
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_assistant_run(tmp_path_factory)


@pytest.fixture
def guimo(run, tmp_path, capsys):
    """guimo(*args) -> (exit code, stdout, stderr) of `guimo assistant RUN ... --state tmp/state.sqlite`."""
    from guimo.cli import main

    def call(*args: str) -> tuple[int, str, str]:
        rc = main(["assistant", str(run), "--state", str(tmp_path / "state.sqlite"), *args])
        out, err = capsys.readouterr()
        return rc, out, err

    return call


def state(tmp_path: Path) -> dict:
    from guimo.assistant.home import Home
    from guimo.assistant.state import HomeState

    with HomeState(tmp_path / "state.sqlite", Home.load()) as s:
        return s.all()


def test_text_prints_the_turn_and_changes_the_state(guimo, tmp_path):
    rc, out, _ = guimo("--text", "turn on the porch light")
    assert rc == 0
    assert "turn_on" in out and "porch_light" in out and "reply" in out
    assert state(tmp_path)["porch_light"]["on"] is True
    rc, out, _ = guimo("--text", "turn off the porch light", "--json")
    record = json.loads(out)
    assert record["actions"][0]["status"] == "done" and record["states"]["porch_light"]["on"] is False
    assert record["commands"][0]["intent"] == "turn_off" and 0 < record["commands"][0]["confidence"] <= 1
    rc, out, _ = guimo("--text", "turn on the porch light", "--quiet")
    assert rc == 0 and out.strip() and "\n" not in out.strip()  # the reply alone


def test_wav_input(guimo, tmp_path):
    wav = shared_data("asr_smoke", "festival_slt_hts", "cmd_07.wav")  # "lock the front door"
    rc, out, _ = guimo("--wav", str(wav), "--json")
    assert rc == 0 and "front door" in json.loads(out)["transcript"]
    assert state(tmp_path)["front_door"]["locked"] is True


def test_interactive_reads_lines_until_quit(guimo, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("turn on the kettle\n\nclose the blinds\nquit\nturn off the kettle\n"))
    rc, out, _ = guimo("--interactive", "--json")
    turns = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and len(turns) == 2  # the blank line skipped, nothing after quit
    s = state(tmp_path)
    assert s["kettle"]["on"] is True and s["living_room_blinds"]["position"] == 0


def test_batch_applies_in_order_dry_run_changes_nothing_and_a_bad_line_stops_it_all(guimo, tmp_path):
    wav = shared_data("asr_smoke", "festival_slt_hts", "cmd_11.wav")  # "turn on the ceiling fan"
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [{"text": "turn on the kettle"}, {"wav": str(wav)},
                                                       {"text": "make me a cup of coffee"}]) + "\n")
    rc, out, _ = guimo("--batch", str(src), "--out", str(tmp_path / "dry.jsonl"), "--dry-run")
    rows = [json.loads(x) for x in (tmp_path / "dry.jsonl").read_text().splitlines()]
    assert rc == 0 and [r["line"] for r in rows] == [1, 2, 3] and all(r["dry_run"] for r in rows)
    assert rows[0]["actions"][0]["status"] == "dry_run" and rows[2]["actions"][0]["status"] in ("rejected", "clarify")  # never acted on
    assert state(tmp_path)["kettle"]["on"] is False and state(tmp_path)["ceiling_fan"]["on"] is False
    rc, _, _ = guimo("--batch", str(src), "--out", str(tmp_path / "out.jsonl"))
    assert rc == 0 and len((tmp_path / "out.jsonl").read_text().splitlines()) == 3
    assert state(tmp_path)["kettle"]["on"] is True and state(tmp_path)["ceiling_fan"]["on"] is True

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "turn off the kettle"}) + "\n" + json.dumps({"txt": "oops"}) + "\n")
    rc, _, err = guimo("--batch", str(bad), "--out", str(tmp_path / "o2.jsonl"))
    assert rc == 2 and f"{bad}:2" in err and not (tmp_path / "o2.jsonl").exists()
    bad.write_text(json.dumps({"text": "turn off the kettle"}) + "\n" + json.dumps({"wav": "missing.wav"}) + "\n")
    rc, _, err = guimo("--batch", str(bad), "--out", str(tmp_path / "o2.jsonl"))
    assert rc == 2 and f"{bad}:2" in err and "missing.wav" in err
    assert state(tmp_path)["kettle"]["on"] is True  # nothing of a refused batch was applied


def test_say_writes_a_wav_reply_or_says_why_not(guimo, tmp_path, monkeypatch):
    from guimo.assistant.audio import read_wav
    from guimo.assistant.speech import espeak_binary

    if espeak_binary() is not None:
        rc, _, _ = guimo("--text", "turn on the hallway light", "--say", str(tmp_path / "reply.wav"))
        samples, info = read_wav(tmp_path / "reply.wav")
        assert rc == 0 and info.seconds > 0.3
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on PATH
    rc, _, err = guimo("--text", "turn off the hallway light", "--say", str(tmp_path / "r2.wav"))
    assert rc == 2 and "espeak-ng" in err and not (tmp_path / "r2.wav").exists()


def test_refuses_a_run_of_another_scenario_and_bad_flag_combinations(guimo, tmp_path, capsys):
    from guimo.cli import main

    other = tmp_path / "lm-run"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"scenario": "lm"}))
    assert main(["assistant", str(other), "--text", "hi", "--state", str(tmp_path / "s.sqlite")]) == 2
    assert "'lm' run" in capsys.readouterr().err
    rc, _, err = guimo("--batch", "x.jsonl")
    assert rc == 2 and "--out" in err
    rc, _, err = guimo("--text", "   ")
    assert rc == 2 and "empty" in err
