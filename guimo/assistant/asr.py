"""Offline speech recognition with pocketsphinx: a home grammar first, the general language model as fallback.

Three modes (``Recognizer(mode=...)``):

- ``"grammar"``: a JSGF grammar generated from the home and the command patterns
  (``guimo.assistant.grammar``). Fast (tens of ms per command on one core) and accurate in the
  domain, but it can only produce in-grammar sentences, or nothing.
- ``"lm"``: pocketsphinx's general US-English trigram model; hears anything, ~10x slower and far
  less accurate on commands.
- ``"auto"`` (default): the grammar, and the general model when the grammar heard nothing, heard
  only part of a sentence (see below: out-of-grammar speech) or heard it with a confidence below
  ``fallback_below``; then the hypothesis with the higher confidence is kept (so a noisy
  in-grammar command is not replaced by a worse general-model guess).

When no path through the grammar fits the whole utterance, pocketsphinx still returns the best
partial path ("how cold is the", "dim light and tell" for out-of-domain speech): every grammar
hypothesis is therefore checked against the grammar's automaton, and one that is not a complete
sentence of the grammar has ``in_grammar=False`` and confidence 0.

Confidence: the smallest word posterior of the hypothesis (pocketsphinx's lattice posteriors,
``Segment.prob``, from its forward-backward pass over the word lattice; ``bestpath`` is on). The
sentence posterior (``Hypothesis.prob``) was measured to be split between paths that differ only in
optional silences, so correct grammar decodings of the Festival voice scored 0.05-0.5; the weakest
word is also what matters downstream (one misheard device name makes a wrong command).

One pocketsphinx ``Decoder`` per recogniser holds both searches (the acoustic model and dictionary
load once, ~0.1 s; the general model ~0.3 s more, only when first needed), switched per utterance
at no measurable cost. Decoding is serialised by a lock (a Decoder is not thread-safe). The
decoder's log goes to a private file, never the terminal; it is read after the grammar is loaded,
because pocketsphinx reports a broken grammar (an undefined rule, a word missing from the
dictionary) only there, and then recognises nothing.

Determinism: the feature extractor is reset before every utterance (``reinit_feat``, ~0.1 ms;
otherwise its cepstral-mean state carries over, and the word posteriors of one WAV moved by up to
0.1 depending on what was decoded before), so a result depends only on its audio; and a fixed half-step of
seeded dither is added to the 16-bit samples, because digitally silent pauses (exact zeros, as
espeak-ng writes) made decodings flip on a one-step difference in rounding (measured on asr_smoke's
espeak voice: 13% -> 39% WER from truncating instead of rounding; with the dither 7% either way).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guimo.assistant.audio import SAMPLE_RATE, AudioSource, read_wav, to_pcm16
from guimo.errors import GuimoError

log = logging.getLogger("guimo.assistant")

MODES = ("grammar", "lm", "auto")
FALLBACK_BELOW = 0.3  # auto: below this grammar confidence, also decode with the general model
DITHER = 0.5  # standard deviation of the added noise, in 16-bit steps
FILLER_WORDS = ("<s>", "</s>", "<sil>")  # segments that are not words
LOG_LIMIT = 1 << 20  # bytes of pocketsphinx log kept before it is emptied


@dataclass
class Transcript:
    """What was heard in one utterance."""

    text: str  # lower-case words; "" when nothing was recognised
    mode: str  # the search that produced ``text``: "grammar" or "lm"
    confidence: float  # smallest word posterior, 0..1 (0 when nothing was recognised)
    ms: float  # decoding time, milliseconds (both searches when auto fell back)
    words: list[tuple[str, float]] = field(default_factory=list)  # (word, posterior) in order
    fallback: bool = False  # auto decoded with the general model as well
    in_grammar: bool | None = None  # grammar search: whether text is a whole sentence of the grammar
    audio: dict[str, Any] = field(default_factory=dict)  # AudioInfo of a WAV input (resampling notes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["words"] = [{"word": w, "confidence": round(p, 4)} for w, p in self.words]
        return out


class Recognizer:
    """Speech to text for one home. Build once and reuse: the decoder is kept warm.

    Args:
        home: the Home whose grammar to use (None: the packaged default home); not needed for "lm".
        mode: "grammar", "lm" or "auto" (see the module docstring).
        patterns: language -> intent -> patterns (default ``guimo.assistant.patterns.PATTERNS``).
        fallback_below: auto's confidence threshold for also trying the general model.
    Raises:
        GuimoError: an unknown mode, a grammar pocketsphinx rejects, or pocketsphinx missing.
    """

    def __init__(self, home: Any = None, mode: str = "auto", *, patterns: Any = None,
                 fallback_below: float = FALLBACK_BELOW):
        if mode not in MODES:
            raise GuimoError(f"unknown speech recognition mode {mode!r} (modes: {', '.join(MODES)})")
        try:
            import pocketsphinx
        except ImportError:
            raise GuimoError("speech recognition needs pocketsphinx: pip install 'guimo[assistant]'") from None
        self._ps = pocketsphinx
        self.mode = mode
        self.fallback_below = float(fallback_below)
        self._lock = threading.Lock()
        self._log_fd, self._log_path = tempfile.mkstemp(prefix="guimo-pocketsphinx-", suffix=".log")
        # lm=None: no search at start; each mode's search is added below and activated per utterance
        self._decoder = pocketsphinx.Decoder(lm=None, logfn=self._log_path, loglevel="WARN")
        self._searches: set[str] = set()
        self.grammar = None
        self._fsa = None
        if mode in ("grammar", "auto"):
            if home is None:
                from guimo.assistant.home import Home

                home = Home.load()
            from guimo.assistant.grammar import build

            self.grammar = build(home, patterns)
            if self.grammar.missing:
                log.warning(self.grammar.warning())
            self._add_grammar(self.grammar.text)
        else:
            self._add_lm()

    @property
    def missing_words(self) -> list[str]:
        """Words of the home the dictionary lacks, left out of the grammar."""
        return sorted(self.grammar.missing) if self.grammar else []

    def transcribe(self, audio: np.ndarray | AudioSource, *, name: str | None = None) -> Transcript:
        """Recognise one utterance.

        Args:
            audio: float32 mono samples at 16 kHz (as ``read_wav`` returns), or a WAV path or bytes.
            name: how errors refer to WAV bytes.
        Returns:
            A Transcript; ``text`` is "" when nothing was recognised.
        """
        info: dict[str, Any] = {}
        if not isinstance(audio, np.ndarray):
            audio, audio_info = read_wav(audio, name=name)
            info = audio_info.to_dict()
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1 or samples.size == 0:
            raise GuimoError(f"audio must be non-empty mono samples (got shape {samples.shape})")
        pcm = decoder_pcm(samples)
        with self._lock:
            if self._decoder is None:
                raise GuimoError("this speech recognizer was closed; build a new Recognizer")
            if self.mode == "lm":
                result = self._decode("lm", pcm)
            else:
                result = self._decode("grammar", pcm)
                if self.mode == "auto" and result.confidence < self.fallback_below:
                    general = self._decode("lm", pcm)
                    spent = result.ms + general.ms
                    if general.text and general.confidence > result.confidence:
                        result = general
                    result.ms, result.fallback = spent, True
            if self._log_size() > LOG_LIMIT:  # "Final result does not match the grammar" lines, on a long-lived server
                os.truncate(self._log_path, 0)  # pocketsphinx appends (O_APPEND), so it writes on from the start
        result.audio = info
        return result

    def close(self) -> None:
        """Release the decoder and remove its log file."""
        self._decoder = None
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
            Path(self._log_path).unlink(missing_ok=True)

    def __del__(self) -> None:  # the log file is ours; do not leave it in /tmp
        try:
            self.close()
        except Exception:
            pass

    def _decode(self, search: str, pcm: bytes) -> Transcript:
        if search not in self._searches:
            self._add_lm()
        decoder = self._decoder
        start = time.perf_counter()
        decoder.activate_search(search)
        decoder.reinit_feat()  # no state from the previous utterance
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        words = []
        if hyp is not None and hyp.hypstr:
            for seg in decoder.seg():
                word = seg.word.split("(", 1)[0]  # "lights(2)": an alternate pronunciation
                if word in FILLER_WORDS or word.startswith("["):  # [NOISE], [BREATH]
                    continue
                words.append((word, float(min(max(seg.prob, 0.0), 1.0))))
        ms = (time.perf_counter() - start) * 1000.0
        text = hyp.hypstr if hyp is not None else ""
        confidence = min((p for _, p in words), default=0.0) if text else 0.0
        in_grammar = None
        if search == "grammar":
            in_grammar = bool(text) and self._fsa.accepts(text)
            if not in_grammar:  # a partial path: pocketsphinx found no whole sentence of the grammar
                confidence = 0.0
        return Transcript(text=text, mode=search, confidence=confidence, ms=ms, words=words, in_grammar=in_grammar)

    def _add_grammar(self, text: str) -> None:
        """Load a JSGF grammar as its minimal automaton (see ``grammar.compile_fsa``: pocketsphinx's own
        JSGF expansion made this home's grammar ~25x larger and decoding ~40x slower)."""
        from guimo.assistant.grammar import compile_fsa

        self._fsa = compile_fsa(text)
        start, final, transitions = self._fsa.transitions()
        offset = self._log_size()
        try:
            fsg = self._decoder.create_fsg("home", start, final, transitions)
            self._decoder.add_fsg("grammar", fsg)
        except (ValueError, RuntimeError):
            raise GuimoError("pocketsphinx rejected the generated speech grammar: " + self._log_errors(offset)) from None
        errors = self._log_errors(offset)
        if errors:  # e.g. an undefined rule or a word missing from the dictionary: it would hear nothing
            raise GuimoError("pocketsphinx reported errors in the generated speech grammar: " + errors)
        self._searches.add("grammar")

    def _add_lm(self) -> None:
        offset = self._log_size()
        try:
            self._decoder.add_lm_file("lm", self._ps.get_model_path("en-us/en-us.lm.bin"))
        except (ValueError, RuntimeError):
            raise GuimoError("pocketsphinx could not load its general language model: " + self._log_errors(offset)) from None
        self._searches.add("lm")

    def _log_size(self) -> int:
        return os.path.getsize(self._log_path)

    def _log_errors(self, offset: int) -> str:
        """The ERROR lines pocketsphinx wrote since ``offset``, joined; "" when none."""
        with open(self._log_path, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            lines = [line.strip() for line in f if "ERROR" in line]
        return " | ".join(lines)


def decoder_pcm(samples: np.ndarray) -> bytes:
    """Samples as 16-bit PCM bytes with a fixed, seeded half-step of dither (see the module docstring)."""
    noise = np.random.default_rng(0).normal(0.0, DITHER / 32768.0, samples.shape[0])
    return to_pcm16(samples.astype(np.float64) + noise).tobytes()


__all__ = ["MODES", "Recognizer", "SAMPLE_RATE", "Transcript"]
