"""say(): espeak-ng replies as 16 kHz mono 16-bit WAVs, and a clear error where espeak-ng is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from guimo.assistant.audio import read_wav
from guimo.assistant.speech import espeak_binary, say
from guimo.errors import GuimoError

needs_espeak = pytest.mark.skipif(espeak_binary() is None, reason="espeak-ng is not installed (Debian: apt-get install espeak-ng; .ci/run installs it)")


@needs_espeak
@pytest.mark.parametrize("lang, text", [("en", "Done: the kitchen light is off."), ("zh", "好的，客厅的灯已经关了。")])
def test_replies_are_16k_mono_pcm16_wavs(tmp_path: Path, lang, text):
    out = say(text, tmp_path / "replies" / f"{lang}.wav", lang)
    samples, info = read_wav(out)
    assert out.exists() and info.sample_rate == 16_000 and info.channels == 1 and info.subtype == "PCM_16"
    assert 1.0 < info.seconds < 10.0 and abs(samples).max() > 0.05  # speech, not silence


@needs_espeak
def test_a_slower_rate_makes_longer_speech_and_dashes_are_text(tmp_path: Path):
    normal = read_wav(say("lock the front door", tmp_path / "a.wav"))[1].seconds
    slow = read_wav(say("lock the front door", tmp_path / "b.wav", rate=100))[1].seconds
    assert slow > normal * 1.3
    assert read_wav(say("-v is not an option here", tmp_path / "c.wav"))[1].seconds > 1.0


def test_missing_espeak_empty_text_and_unknown_language_are_clear_errors(tmp_path: Path, monkeypatch):
    with pytest.raises(GuimoError, match="reply text is empty"):
        say("  ", tmp_path / "x.wav")
    with pytest.raises(GuimoError, match="no espeak-ng voice for language 'fr'"):
        say("bonjour", tmp_path / "x.wav", "fr")
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without espeak-ng, as on a machine without it
    with pytest.raises(GuimoError, match="espeak-ng is not installed.*apt-get install espeak-ng"):
        say("hello", tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()
