"""One assistant turn end to end: (speech ->) text -> commands -> checked device actions -> reply.

``Assistant`` wires the parts of issue #24 together and is the one place a turn is computed: the
CLI (`guimo assistant RUN`) calls ``handle_text`` / ``handle_audio`` / ``handle_texts``, and the
server's /v1/assistant calls the same object's stages one by one (``transcribe``, then the NLU
parse through the model's batcher, then ``act``) so that parses of many tenants share one model
call while each tenant's devices stay in its own ``HomeState``.

A turn's stages and their timings (``Turn.timings_ms``): ``asr`` (speech input only: pocketsphinx,
grammar built from the same home the devices come from), ``nlu`` (the joint intent + slot model,
which also splits "... and ..." into several commands), ``device`` (each command planned against
home.toml and the current state, then applied unless it is a dry run), ``total``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from guimo.assistant.types import Action, Command, Turn
from guimo.errors import GuimoError

NOT_HEARD = {"en": "Sorry, I didn't catch that.", "zh": "抱歉，我没听清。"}
DRY_RUN = {"en": "Dry run, nothing was changed: ", "zh": "演练模式，未作任何改动："}  # before a dry run's reply


class Parser(Protocol):
    """What the assistant needs from the NLU model (``guimo.inference.nlu.NluPredictor``)."""

    def parse(self, texts: list[str]) -> list[list[Command]]: ...


class Transcriber(Protocol):
    """What the assistant needs from speech recognition (``guimo.assistant.asr.Recognizer``)."""

    def transcribe(self, audio: Any) -> Any: ...  # -> Transcript(text, mode, confidence, ms)


@dataclass
class Audio:
    """A WAV read for recognition: 16 kHz mono float32 samples, what the file was, ms to read it."""

    samples: Any  # np.ndarray (N,) float32 at 16 kHz
    info: Any
    ms: float


class Assistant:
    """The assistant over one home: an NLU model, the home description, its persisted device state.

    ``recognizer``: a ``Recognizer`` (or anything with ``transcribe(audio)``); None: a
    ``SharedRecognizer`` of ``home``, built on the first audio input. Turns over
    one state are serialised by ``lock`` (plan-then-apply reads and writes the same devices, and the
    server may run two requests of one tenant at once); assistants sharing a state share the lock.
    """

    def __init__(self, nlu: Parser, home, state, recognizer: Transcriber | None = None, *,
                 lock: threading.Lock | None = None) -> None:
        self.nlu, self.home, self.state = nlu, home, state
        self.recognizer = recognizer or SharedRecognizer(home)
        self.lock = lock or threading.Lock()

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def open(cls, run_dir: str | Path, home_path: str | Path | None = None, state_path: str | Path | None = None,
             *, device: str = "cpu") -> "Assistant":
        """The assistant of an `assistant` run over a home (None: the packaged default) and its state file
        (None: ``default_state_path(home_path)``, under the user data directory)."""
        return cls(load_nlu(run_dir, device=device), *open_home(home_path, state_path))

    # -- whole turns ----------------------------------------------------------------------

    def handle_text(self, text: str, dry_run: bool = False) -> Turn:
        """One typed utterance (possibly several commands) -> a Turn; devices change unless ``dry_run``."""
        return self.handle_texts([text], dry_run=dry_run)[0]

    def handle_texts(self, texts: list[str], dry_run: bool = False) -> list[Turn]:
        """Many utterances: one NLU call for all (batched), then each turn's actions in order."""
        texts = [check_text(t) for t in texts]
        parses, nlu_ms = self.parse(texts)
        return [self.act(text, commands, dry_run=dry_run, timings={"nlu": nlu_ms}) for text, commands in zip(texts, parses)]

    def handle_audio(self, wav: str | Path | bytes, dry_run: bool = False) -> Turn:
        """A WAV (path or bytes; any rate, resampled to 16 kHz) -> a Turn. Silence or speech the
        recogniser cannot read gives a Turn with no commands and a reply that asks to repeat."""
        transcript, asr, timings = self.transcribe(wav)
        if not transcript:
            return self.act("", [], dry_run=dry_run, asr=asr, timings=timings)
        (commands,), timings["nlu"] = self.parse([transcript])
        return self.act(transcript, commands, dry_run=dry_run, asr=asr, timings=timings)

    # -- the stages (the server calls them one by one) -----------------------------------

    def parse(self, texts: list[str]) -> tuple[list[list[Command]], float]:
        """(commands per utterance, NLU ms per utterance: a batch's time shared evenly) in one model call."""
        if not texts:
            return [], 0.0
        t0 = time.perf_counter()
        parses = self.nlu.parse(list(texts))
        if len(parses) != len(texts):
            raise GuimoError(f"the NLU model returned {len(parses)} parses for {len(texts)} utterances")
        return parses, (time.perf_counter() - t0) * 1000 / len(texts)

    def load_audio(self, wav: str | Path | bytes, *, name: str | None = None, max_seconds: float | None = None) -> "Audio":
        """Read a WAV (path or bytes, called ``name`` in errors) into 16 kHz mono samples; a GuimoError says
        what is wrong with it (not 16-bit PCM, empty, longer than ``max_seconds``, ...)."""
        from guimo.assistant.audio import read_wav

        t0 = time.perf_counter()
        samples, info = read_wav(wav, name=name, max_seconds=max_seconds)
        return Audio(samples, info, (time.perf_counter() - t0) * 1000)

    def transcribe(self, wav: "str | Path | bytes | Audio") -> tuple[str, dict[str, Any], dict[str, float]]:
        """(transcript, asr info for ``Turn.asr``, timings) of a WAV or of ``load_audio``'s result."""
        audio = wav if isinstance(wav, Audio) else self.load_audio(wav)
        t0 = time.perf_counter()
        tr = self.recognizer.transcribe(audio.samples)
        asr_ms = (time.perf_counter() - t0) * 1000
        text = " ".join((tr.text or "").split())
        # asr.ms: the decoder's own time; timings_ms.asr: the wall time of the stage (with the recogniser's
        # one-off start on the first audio, and a wait for the decoder when another request holds it)
        asr = {"mode": tr.mode, "confidence": _float(tr.confidence), "ms": round(float(getattr(tr, "ms", asr_ms)), 2),
               "fallback": bool(getattr(tr, "fallback", False)), "audio_s": round(len(audio.samples) / 16000, 3),
               "notes": list(getattr(audio.info, "notes", []))}
        return text, asr, {"audio": audio.ms, "asr": asr_ms}

    def act(self, transcript: str, commands: list[Command], *, dry_run: bool = False, asr: dict[str, Any] | None = None,
            timings: dict[str, float] | None = None) -> Turn:
        """Plan every command against the home and the current state; apply each in order (a later
        command sees what an earlier one changed) unless ``dry_run``; the reply in the utterance's language."""
        from guimo.assistant import actions as device_layer

        timings = dict(timings or {})
        t0 = time.perf_counter()
        done: list[Action] = []
        with self.lock:
            for command in commands:
                action = device_layer.plan(command, self.home, self.state)
                if action.status == "done":
                    if dry_run:
                        action = _as_dry_run(action, self.state)
                    else:
                        action = device_layer.apply(action, self.state)
                done.append(action)
        language = commands[0].language if commands else _language(transcript)
        reply = device_layer.reply(done, language) if done else NOT_HEARD.get(language, NOT_HEARD["en"])
        if dry_run and any(m.status == "dry_run" for a in done for m in [a, *a.group]):
            reply = DRY_RUN.get(language, DRY_RUN["en"]) + reply  # the device layer words it as done
        timings["device"] = (time.perf_counter() - t0) * 1000
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        return Turn(transcript=transcript, commands=list(commands), actions=done, reply=reply, asr=dict(asr or {}),
                    timings_ms={k: round(v, 3) for k, v in timings.items()})

    def states(self, turn: Turn) -> dict[str, dict[str, Any]]:
        """The current state of every device a turn's actions named (device id -> state), group members included."""
        return {d: self.state.get(d) for d in touched(turn.actions)}


class SharedRecognizer:
    """The recogniser of one home, built on the first audio (loading pocketsphinx takes a while, and
    text-only use never needs it) and used by one thread at a time (a decoder is not re-entrant):
    the server shares one between all tenants that have the same home."""

    def __init__(self, home) -> None:
        self.home = home
        self._recognizer: Transcriber | None = None
        self._lock = threading.Lock()

    def transcribe(self, audio: Any) -> Any:
        with self._lock:
            if self._recognizer is None:
                from guimo.assistant.asr import Recognizer

                self._recognizer = Recognizer(home=self.home, mode="auto")
            return self._recognizer.transcribe(audio)


# -- building the parts -------------------------------------------------------------------


def load_nlu(run_dir: str | Path, device: str = "cpu") -> Parser:
    """The NLU predictor of a finished `assistant` run; another scenario's run is a clear error."""
    import json

    run_dir = Path(run_dir)
    manifest = run_dir / "manifest.json"
    if not manifest.is_file():
        raise GuimoError(f"{run_dir}: not a run directory (no manifest.json); train one with `guimo run assistant`")
    try:
        scenario = json.loads(manifest.read_text(encoding="utf-8")).get("scenario")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GuimoError(f"{manifest}: not valid JSON ({e})") from None
    if scenario != "assistant":
        raise GuimoError(f"{run_dir} is a '{scenario}' run; the assistant needs an 'assistant' run (guimo run assistant)")
    from guimo.inference.nlu import NluPredictor

    return NluPredictor.from_run(run_dir, device=device)


def open_home(home_path: str | Path | None = None, state_path: str | Path | None = None):
    """(Home, HomeState): the home description and its persisted device states (created on first use)."""
    from guimo.assistant.home import Home
    from guimo.assistant.state import HomeState

    home = Home.load(home_path)
    path = Path(state_path) if state_path is not None else default_state_path(home_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return home, HomeState(path, home)


def default_state_path(home_path: str | Path | None = None) -> Path:
    """Where a home's device states live when no ``--state`` is given: the user data directory (as the
    ledger), one file per home, so two homes never share devices: ``assistant/default/state.sqlite``
    for the packaged home, ``assistant/<file stem>-<hash of its absolute path>/state.sqlite`` for others."""
    import hashlib

    from platformdirs import user_data_dir

    root = Path(user_data_dir("guimo", appauthor=False)) / "assistant"
    if home_path is None:
        return root / "default" / "state.sqlite"
    resolved = Path(home_path).expanduser().resolve()
    key = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:12]
    return root / f"{resolved.stem}-{key}" / "state.sqlite"


# -- helpers ------------------------------------------------------------------------------


def check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise GuimoError(f"an utterance must be a string, got {type(text).__name__}")
    text = " ".join(text.split())
    if not text:
        raise GuimoError("the utterance is empty")
    return text


def touched(actions: list[Action]) -> list[str]:
    """Device ids the actions name, in order, once each (a group action: its members)."""
    ids: dict[str, None] = {}
    for a in actions:
        for member in [a, *a.group]:
            if member.device:
                ids[member.device] = None
    return list(ids)


def _as_dry_run(action: Action, state) -> Action:
    """A planned action marked as not applied; each device's ``state`` is what it would become."""
    for member in [action, *action.group]:
        if member.status == "done":
            member.status = "dry_run"
        if member.device:
            member.state = {**state.get(member.device), **member.changes}
    return action


def _language(text: str) -> str:
    from guimo.assistant.types import words

    return "zh" if any("\u3400" <= ch <= "\u9fff" for w in words(text) for ch in w) else "en"


def _float(x: Any) -> float | None:
    try:
        return None if x is None else round(float(x), 4)
    except (TypeError, ValueError):
        return None
