"""Parse utterances with a finished `assistant` run: intents, slots, calibrated confidences, several
commands per utterance, English and Chinese. What `guimo assistant`, /v1/assistant, /v1/classifications
and `guimo predict` call.

``NluPredictor.from_run(run)`` loads what the run validated: its weights (the int8 file on CPU when
the optimize stage kept it), its tokenizer (with the CJK characters added at init), the intent and
tag lists and the connectors (``data/labels.json``), and from ``calibration.json`` the intent and
slot temperatures and the out-of-scope threshold that evaluate chose on validation data.

Several commands in one utterance ("turn off the lights and then lock the door", "打开灯然后关上窗帘"):
the whole utterance is tagged once; every connector ("and", "then", "然后", ...) outside a predicted
slot span is a candidate cut; the pieces are parsed, and a piece that is not confidently in scope
("... the lights and the fan": "the fan" alone is no command) is glued back to the piece before it
and parsed again, until every piece stands. So a cut is kept only where both sides parse to in-scope
commands. Nothing here imports training code (the server loads this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from guimo.assistant.types import OUT_OF_SCOPE, Command, bio_spans, words as split_words
from guimo.errors import GuimoError

MAX_TEXT_CHARS = 2_000  # an utterance, not a document
CALIBRATION = "calibration.json"  # intent/slot temperatures and the out-of-scope threshold (evaluate writes it)
LABELS = "labels.json"  # under data/: intents, tags, connectors, oos label (preprocess writes it)
TOKENIZER = "tokenizer.json"  # the encoder's tokenizer with the added CJK characters (init writes it)


@dataclass
class Analysis:
    """One word sequence read by the model."""

    words: list[str]
    intent: str
    confidence: float  # calibrated probability of ``intent``
    probs: np.ndarray  # (K,) calibrated intent probabilities
    tags: list[str]
    spans: list[tuple[str, int, int, float]]  # (slot, start, end, confidence)
    out_of_scope: bool
    log_odds: float  # log(confidence / (1 - confidence)), from the logits: unlike confidence, it never saturates at 1.0


def language_of(text: str) -> str:
    """"zh" when the text has a CJK character, else "en"."""
    from guimo.models.joint_nlu import is_cjk

    return "zh" if any(is_cjk(ch) for ch in text) else "en"


class NluPredictor:
    """``parse(texts) -> [[Command, ...], ...]`` and ``classify(texts)`` (the classification shape)."""

    input_kind = "text"

    def __init__(self, model, tokenizer, intents: list[str], tags: list[str], *, intent_temperature: float = 1.0,
                 slot_temperature: float = 1.0, oos_log_odds: float = float("-inf"), oos_label: str | None = None,
                 connectors: dict[str, list[str]] | None = None, batch_size: int = 64, calibrated: bool = False) -> None:
        if len(intents) != model.cfg.n_intents or list(tags) != list(model.cfg.tags):
            raise GuimoError(f"{len(intents)} intents / {len(tags)} tags do not fit the model's heads "
                             f"({model.cfg.n_intents} intents, {len(model.cfg.tags)} tags)")
        self.model, self.tokenizer = model, tokenizer
        self.intents, self.tags = list(intents), list(tags)
        self.tag_index = {t: i for i, t in enumerate(self.tags)}
        self.intent_temperature, self.slot_temperature = float(intent_temperature), float(slot_temperature)
        self.oos_log_odds, self.oos_label, self.calibrated = float(oos_log_odds), oos_label, calibrated
        self.connectors = {lang: sorted((split_words(c.lower()) for c in cs), key=len, reverse=True)
                           for lang, cs in (connectors or {}).items()}
        self.batch_size = batch_size
        self.pad = tokenizer.token_to_id("[PAD]") or 0

    @classmethod
    def from_run(cls, run, device: str = "cpu", batch_size: int = 64) -> "NluPredictor":
        from guimo.evaluate.classification import oos_log_odds_of
        from guimo.io import read_json
        from guimo.models.joint_nlu import JointNlu, JointNluConfig, load_tokenizer
        from guimo.models.load import load_run_model
        from guimo.pipeline.rundir import RunDir

        if not hasattr(run, "path"):
            run = RunDir.open(run)
        path = Path(run.path)
        for need in ("model_config.json", TOKENIZER, f"data/{LABELS}"):
            if not (path / need).exists():
                raise GuimoError(f"{path / need}: not found; is {path} a finished assistant run?")
        model = load_run_model(run, JointNluConfig, JointNlu, device=device)
        labels = read_json(path / "data" / LABELS)
        cal = read_json(path / CALIBRATION) if (path / CALIBRATION).exists() else {}
        return cls(model, load_tokenizer(path / TOKENIZER, model.cfg.max_len), labels["intents"], labels["tags"],
                   intent_temperature=cal.get("intent_temperature", 1.0), slot_temperature=cal.get("slot_temperature", 1.0),
                   oos_log_odds=oos_log_odds_of(cal), oos_label=labels.get("oos_label"),
                   connectors=labels.get("connectors"), batch_size=batch_size, calibrated=bool(cal))

    # -- reading word sequences ------------------------------------------------------------------

    def analyse(self, sentences: Sequence[Sequence[str]]) -> list[Analysis]:
        """Model outputs for pre-split word sequences, calibrated, with slot spans and their confidences."""
        from guimo.evaluate.classification import softmax, top_log_odds
        from guimo.evaluate.nlu import span_confidences
        from guimo.models.joint_nlu import encode_words, predict

        if not sentences:
            return []
        encoded = encode_words(self.tokenizer, sentences, self.model.cfg.max_len)
        logits, paths, margs = predict(self.model, encoded, self.pad, self.batch_size, self.slot_temperature)
        probs, log_odds = softmax(logits, self.intent_temperature), top_log_odds(logits, self.intent_temperature)
        out = []
        for ws, p, lo, path, marg in zip(sentences, probs, log_odds, paths, margs):
            top = int(p.argmax())
            intent, conf = self.intents[top], float(p[top])
            tags = [self.tags[t] for t in path]
            spans = [(slot, s, e, c) for (slot, s, e), c in span_confidences(tags, marg, self.tag_index)]
            oos = bool(intent == self.oos_label or lo < self.oos_log_odds)
            out.append(Analysis(list(ws), intent, conf, p, tags, spans, oos, float(lo)))
        return out

    def _check(self, texts: Sequence[str]) -> list[list[str]]:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts; wrap a single string in a list")
        out = []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise GuimoError(f"input {i}: expected a string, got {type(t).__name__}")
            if len(t) > MAX_TEXT_CHARS:
                raise GuimoError(f"input {i}: {len(t)} characters; an utterance has at most {MAX_TEXT_CHARS}")
            ws = split_words(t.lower())
            if not ws:
                raise GuimoError(f"input {i}: empty text")
            out.append(ws)
        return out

    # -- commands --------------------------------------------------------------------------------

    def parse(self, texts: list[str]) -> list[list[Command]]:
        """One list of commands per utterance (several where connectors join in-scope commands)."""
        sentences = self._check(texts)
        whole = self.analyse(sentences)
        out = []
        for text, ws, a in zip(texts, sentences, whole):
            lang = language_of(text)
            cuts = self._cuts(ws, a, lang)
            pieces = self._split(ws, cuts, a.log_odds) if cuts else [a]
            out.append([self._command(p, lang) for p in pieces])
        return out

    def _cuts(self, ws: list[str], a: Analysis, lang: str) -> list[tuple[int, int]]:
        """Connector occurrences (start, end) outside slot spans, left to right, not at either edge."""
        inside = np.zeros(len(ws), bool)
        for _, s, e, _ in a.spans:
            inside[s:e] = True
        cuts, i = [], 1
        while i < len(ws) - 1:
            for c in self.connectors.get(lang, []) + (self.connectors.get("en", []) if lang != "en" else []):
                n = len(c)
                if ws[i : i + n] == c and not inside[i : i + n].any() and i + n < len(ws):
                    cuts.append((i, i + n))
                    i += n - 1
                    break
            i += 1
        return cuts

    def _split(self, ws: list[str], cuts: list[tuple[int, int]], whole_log_odds: float) -> list[Analysis]:
        """Pieces between cuts; a piece that is no command joins the one before (or after, for the first).

        A piece stands when its intent is in scope and its confidence clears the out-of-scope threshold
        or beats the whole utterance's (the model, trained on single commands, is less sure of two
        commands read as one than of each alone; "the fan" alone is less sure than "turn on the
        lights and the fan")."""
        bounds = [0, *[x for c in cuts for x in c], len(ws)]
        pieces = [(bounds[k], bounds[k + 1]) for k in range(0, len(bounds), 2)]  # (start, end) between cuts
        while True:
            parsed = self.analyse([ws[s:e] for s, e in pieces])
            bad = next((k for k, p in enumerate(parsed)
                        if p.intent == self.oos_label or (p.out_of_scope and p.log_odds <= whole_log_odds)), None)
            if bad is None or len(pieces) == 1:
                return parsed
            k = bad - 1 if bad > 0 else 0  # merge pieces k and k+1, connector included
            pieces[k : k + 2] = [(pieces[k][0], pieces[k + 1][1])]

    def _command(self, a: Analysis, lang: str) -> Command:
        from guimo.data.nlu import join_words

        slots, confs = {}, {}
        for slot, s, e, c in a.spans:
            if slot not in slots or c > confs[slot]:  # a slot said twice: keep the surer reading
                slots[slot], confs[slot] = join_words(a.words[s:e]), c
        intent = OUT_OF_SCOPE if a.out_of_scope else a.intent
        return Command(text=join_words(a.words), intent=intent, confidence=a.confidence, slots=slots,
                       slot_confidences=confs, out_of_scope=a.out_of_scope, language=lang)

    # -- the classification shape -----------------------------------------------------------------

    def classify(self, inputs: list[str]) -> list[dict[str, Any]]:
        """For each text: the top intent, its calibrated probability, out of scope (below the threshold
        chosen on validation), every intent's probability (the whole utterance, not split)."""
        out = []
        for a in self.analyse(self._check(inputs)):
            out.append({"label": a.intent, "confidence": a.confidence, "out_of_scope": bool(a.out_of_scope),
                        "scores": {l: float(p) for l, p in zip(self.intents, a.probs)}})
        return out

    def describe(self) -> dict[str, Any]:
        from guimo.evaluate.classification import oos_calibration

        return {"intents": len(self.intents), "slots": sorted({t[2:] for t in self.tags if t != "O"}),
                "intent_temperature": self.intent_temperature, "slot_temperature": self.slot_temperature,
                **oos_calibration(self.oos_log_odds), "calibrated": self.calibrated,
                "connectors": {k: [" ".join(c) for c in v] for k, v in self.connectors.items()}}


def gold_commands(words: list[str], tags: list[str], intents: list[str], segments: list[tuple[int, int]]) -> list[tuple[str, dict[str, str]]]:
    """(intent, {slot: words}) of each command of a labelled utterance: what ``parse`` should return."""
    from guimo.data.nlu import join_words

    out = []
    for intent, (s, e) in zip(intents, segments):
        slots: dict[str, str] = {}
        for slot, a, b in bio_spans(tags[s:e]):
            slots.setdefault(slot, join_words(words[s + a : s + b]))
        out.append((intent, slots))
    return out
