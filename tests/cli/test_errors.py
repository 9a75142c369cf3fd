"""Bad input: each case is one line `error: ...` on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guimo.cli import main


def _fails(capsys, argv: list[str], *expected: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for part in expected:
        assert part in err, err
    return err


def _run_lm(tmp_path: Path, data: Path | str, *extra: str) -> list[str]:
    return ["run", "lm", "--data", str(data), "--out", str(tmp_path / "run"), "--quiet", *extra]


# -- data -------------------------------------------------------------------------------------


def test_missing_data_path(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    _fails(capsys, _run_lm(tmp_path, missing), f"{missing}: no such file or directory")


def test_empty_text_file(tmp_path, capsys):
    f = tmp_path / "empty.txt"
    f.write_text(" \n\n\t\n")
    _fails(capsys, _run_lm(tmp_path, f), f"{f}: corpus is empty")


def test_folder_without_text_files(tmp_path, capsys):
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "image.png").write_bytes(b"\x89PNG")
    _fails(capsys, _run_lm(tmp_path, d), f"{d}: folder holds no text files")


def test_empty_jsonl(tmp_path, capsys):
    f = tmp_path / "docs.jsonl"
    f.write_text('{"text": ""}\n\n{"text": "   "}\n')
    _fails(capsys, _run_lm(tmp_path, f), f"{f}: corpus is empty")


def test_non_utf8_file_names_file_and_line(tmp_path, capsys):
    f = tmp_path / "latin1.txt"
    f.write_bytes("first line\nsecond line\ncaf\xe9 au lait\n".encode("latin-1"))
    _fails(capsys, _run_lm(tmp_path, f), f"{f}:3: not UTF-8 text (byte 0xe9")


def test_non_utf8_file_inside_a_folder(tmp_path, capsys):
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "a.txt").write_text("fine\n" * 10)
    (d / "b.txt").write_bytes(b"ok\n\xff\xfe\n")
    _fails(capsys, _run_lm(tmp_path, d), f"{d / 'b.txt'}:2: not UTF-8 text")


def test_jsonl_line_that_is_not_json(tmp_path, capsys):
    f = tmp_path / "docs.jsonl"
    f.write_text('{"text": "one"}\n{"text": "two"}\n{"text": three}\n')
    _fails(capsys, _run_lm(tmp_path, f), f"{f}:3: not valid JSON")


def test_jsonl_line_without_text(tmp_path, capsys):
    f = tmp_path / "docs.jsonl"
    f.write_text('{"text": "one"}\n{"body": "two"}\n')
    _fails(capsys, _run_lm(tmp_path, f), f"{f}:2: expected a string field 'text'")


def test_jsonl_line_that_is_not_an_object(tmp_path, capsys):
    f = tmp_path / "docs.jsonl"
    f.write_text('{"text": "one"}\n["two"]\n')
    _fails(capsys, _run_lm(tmp_path, f), f"{f}:2: expected a JSON object")


# -- names and config -------------------------------------------------------------------------


def test_unknown_scenario(tmp_path, capsys):
    _fails(capsys, ["run", "nosuch", "--out", str(tmp_path / "r")], "unknown scenario 'nosuch'; choose one of: ", "lm")
    assert not (tmp_path / "r").exists()


def test_unknown_set_key_lists_the_valid_keys(capsys):
    err = _fails(capsys, ["run", "lm", "--set", "train.max_stpes=5"], "unknown config key 'train.max_stpes'; valid keys: ")
    for key in ("train.max_steps", "train.lr", "data.vocab_size", "optimize.trials", "model.d_model", "seed"):
        assert key in err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.max_steps=abc", "'train.max_steps' must be an integer; got 'abc'"),
        ("train.max_steps=2.5", "'train.max_steps' must be an integer"),
        ("train.lr=fast", "'train.lr' must be a number"),
        ("optimize.quantize=maybe", "'optimize.quantize' must be true or false"),
        ("train.precision=fp8", "'train.precision' must be one of auto, fp32, bf16"),
        ("data.vocab_size=100", "data.vocab_size must be at least 260"),
        ("model=huge", "unknown model preset 'huge'; choose one of: nano, tiny"),
        ("train.lr", "bad --set 'train.lr': expected key=value"),
    ],
)
def test_bad_set_value(capsys, override, message):
    _fails(capsys, ["run", "lm", "--set", override], message)


def test_missing_config_file(tmp_path, capsys):
    _fails(capsys, ["run", "lm", "--config", str(tmp_path / "c.toml")], "config file not found")


# -- run directories --------------------------------------------------------------------------


def test_show_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    _fails(capsys, ["show", str(tmp_path)], f"{tmp_path} is not a run directory (no manifest.json)")


def test_generate_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    _fails(capsys, ["generate", str(tmp_path / "missing"), "--prompt", "x"], "is not a run directory")


def test_generate_with_bad_sampling_arguments(tmp_path, capsys):
    _fails(capsys, ["generate", str(tmp_path), "--prompt", "x", "--top-p", "0"], "--top-p must be in (0, 1]")
    _fails(capsys, ["generate", str(tmp_path), "--prompt", "x", "--temperature", "-1"], "--temperature must be >= 0")


def test_from_stage_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a run\n")
    _fails(capsys, ["run", "lm", "--from", "evaluate", "--out", str(tmp_path), "--quiet"], f"{tmp_path} exists and is not a run directory")


def test_from_stage_on_a_fresh_folder(tmp_path, capsys):
    _fails(capsys, ["run", "lm", "--from", "evaluate", "--out", str(tmp_path / "new"), "--quiet"],
           "cannot start from 'evaluate': stage 'collect' has not finished")


def test_runs_on_a_missing_folder(tmp_path, capsys):
    _fails(capsys, ["runs", str(tmp_path / "nowhere")], "no such directory")


# -- the real command -------------------------------------------------------------------------


def test_real_process_prints_one_line_and_exits_2(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_text('{"text": "fine"}\nnot json\n')
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, "-m", "guimo", *_run_lm(tmp_path, f)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {f}:2: not valid JSON (Expecting value)\n"
    assert proc.stdout == ""
