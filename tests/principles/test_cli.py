"""`guimo principles ...`: exit codes, printed verdicts, one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest

from guimo.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["principles", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_gradient_descent_prints_the_table_and_the_closed_form(capsys):
    code, out, _ = run(capsys, "gradient-descent")
    assert code == 0
    assert "converged" in out and "after 191 steps (closed form predicts 191)" in out and "y/x = 2" in out


def test_gradient_descent_warns_and_shows_divergence(capsys):
    code, out, _ = run(capsys, "gradient-descent", "--lr", "0.3")
    assert code == 0 and "warning" in out and "DIVERGED" in out


def test_gradient_descent_json_is_data(capsys):
    code, out, _ = run(capsys, "gradient-descent", "--json", "--x", "4", "--y", "2")
    data = json.loads(out)
    assert code == 0 and data["optimum"] == 0.5 and data["status"] == "converged"


@pytest.mark.parametrize("argv, message", [
    (["gradient-descent", "--x", "0"], "x must be non-zero"),
    (["gradient-descent", "--steps", "-3"], "steps must be >= 0"),
    (["gradient-descent", "--lr", "-1"], "learning rate must be > 0"),
    (["backprop", "--steps", "0"], "steps must be >= 1"),
    (["first-model", "--hidden", "0", "--out", "UNUSED"], "hidden must be >= 1"),
    (["first-model", "--seeds", "-1", "--epochs", "1", "--out", "UNUSED"], "seeds must be >= 0"),
])
def test_bad_values_give_one_line_and_exit_2(capsys, tmp_path, argv, message):
    argv = [str(tmp_path / "out") if a == "UNUSED" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1


def test_backprop_marks_the_articles_values(capsys):
    code, out, _ = run(capsys, "backprop", "--steps", "20")
    assert code == 0 and "MISMATCH" in out and "match" in out and "inconsistency" in out
    assert "required <= 1e-12" in out


def test_first_model_saves_under_out(capsys, tmp_path):
    import torch

    threads = torch.get_num_threads()
    code, out, _ = run(capsys, "first-model", "--epochs", "3", "--seeds", "0", "--out", str(tmp_path))
    assert code == 0 and "epoch" in out and f"saved under {tmp_path}" in out
    assert torch.get_num_threads() == threads  # the command's single thread does not leak
    for dataset in ("xor", "linear"):
        assert (tmp_path / dataset / "model.safetensors").is_file()
        lines = (tmp_path / dataset / "log.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


@pytest.mark.parametrize("argv", [["--help"], ["gradient-descent", "--help"], ["backprop", "--help"], ["first-model", "--help"]])
def test_every_help_says_what_the_article_is_before_it_leans_on_it(capsys, argv):
    """A newcomer may open any of these first; each says what 'the article' is (the seed essay)."""
    with pytest.raises(SystemExit) as e:
        main(["principles", *argv])
    out = " ".join(capsys.readouterr().out.split())
    assert e.value.code == 0
    assert "seed essay on the principles of large models" in out or "The seed article is the essay on the principles of large models" in out


def test_the_top_level_help_places_the_article(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "guimo's seed article (its founding essay on large models)" in " ".join(capsys.readouterr().out.split())
