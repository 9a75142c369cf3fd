"""read_wav: 16-bit PCM WAV in, 16 kHz mono float out; every other input refused with the file named."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from guimo.assistant.audio import SAMPLE_RATE, read_wav, to_pcm16, wav_bytes, write_wav
from guimo.errors import GuimoError
from tests.conftest import shared_data

sf = pytest.importorskip("soundfile")


def tone(freq: float, rate: int, seconds: float = 0.5, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def wav(samples: np.ndarray, rate: int, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def peak_hz(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def test_a_16k_pcm16_wav_reads_sample_exact_and_round_trips():
    path = shared_data("asr_smoke", "festival_slt_hts", "cmd_01.wav")
    samples, info = read_wav(path)
    exact, _ = sf.read(path, dtype="int16")
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert info.sample_rate == SAMPLE_RATE and info.channels == 1 and info.notes == []
    assert np.array_equal(to_pcm16(samples), exact)  # rounding inverts libsndfile's x / 32768
    again, _ = read_wav(path.read_bytes(), name="upload.wav")
    assert np.array_equal(again, samples)


def test_44k_stereo_is_downmixed_and_resampled_keeping_pitch_and_length():
    left, right = tone(440, 44_100, 1.0, 0.6), np.zeros(44_100, np.float32)
    samples, info = read_wav(wav(np.stack([left, right], axis=1), 44_100), name="stereo.wav")
    assert info.sample_rate == 44_100 and info.channels == 2
    assert info.notes == ["downmixed 2 channels to mono", "resampled 44100 -> 16000 Hz"]
    assert abs(len(samples) - SAMPLE_RATE) <= 2
    assert abs(peak_hz(samples) - 440) < 3
    assert abs(np.abs(samples[1000:-1000]).max() - 0.3) < 0.01  # the mean of the two channels


@pytest.mark.parametrize("rate", [8_000, 22_050, 48_000])
def test_speech_rates_are_resampled_to_16k(rate):
    samples, info = read_wav(wav(tone(1000, rate), rate))
    assert abs(len(samples) - SAMPLE_RATE // 2) <= 2 and abs(peak_hz(samples) - 1000) < 5
    assert info.notes == [f"resampled {rate} -> 16000 Hz"]


@pytest.mark.parametrize("subtype, words", [("PCM_U8", "8-bit unsigned PCM"), ("FLOAT", "32-bit float"),
                                            ("PCM_24", "24-bit PCM"), ("PCM_32", "32-bit PCM")])
def test_wavs_that_are_not_16_bit_pcm_are_refused_by_name(tmp_path: Path, subtype, words):
    path = tmp_path / "command.wav"
    path.write_bytes(wav(tone(440, SAMPLE_RATE), SAMPLE_RATE, subtype))
    with pytest.raises(GuimoError, match=rf"{path}: samples are {words} \({subtype}\), not 16-bit PCM.*sox"):
        read_wav(path)


def test_empty_missing_text_and_silent_files_are_named(tmp_path: Path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(GuimoError, match=rf"{empty}: empty file"):
        read_wav(empty)
    with pytest.raises(GuimoError, match=r"upload\.wav: empty file"):
        read_wav(b"", name="upload.wav")
    with pytest.raises(GuimoError, match=rf"{tmp_path / 'nope.wav'}: file not found"):
        read_wav(tmp_path / "nope.wav")
    text = tmp_path / "notes.wav"
    text.write_text("turn on the kitchen lights\n")
    with pytest.raises(GuimoError, match=rf"{text}: not a readable WAV file"):
        read_wav(text)
    with pytest.raises(GuimoError, match="holds no audio samples"):
        read_wav(wav(np.zeros(0, np.float32), SAMPLE_RATE))
    truncated = wav(tone(440, SAMPLE_RATE), SAMPLE_RATE)[:30]  # a header cut short
    with pytest.raises(GuimoError, match="<upload>: "):
        read_wav(truncated)


def test_other_containers_rates_and_long_uploads_are_refused():
    with pytest.raises(GuimoError, match="a FLAC file, not WAV"):
        read_wav(wav(tone(440, SAMPLE_RATE), SAMPLE_RATE, "PCM_16", "FLAC"))
    with pytest.raises(GuimoError, match="sample rate 96000 Hz is outside the 8000-48000 Hz"):
        read_wav(wav(tone(440, 96_000), 96_000))
    with pytest.raises(GuimoError, match="sample rate 4000 Hz"):
        read_wav(wav(tone(440, 4_000), 4_000))
    with pytest.raises(GuimoError, match=r"2\.0 s of audio, more than the 1 s allowed"):
        read_wav(wav(tone(440, SAMPLE_RATE, 2.0), SAMPLE_RATE), max_seconds=1)


def test_file_objects_and_written_wavs(tmp_path: Path):
    samples = tone(300, SAMPLE_RATE)
    out = write_wav(tmp_path / "sub" / "reply.wav", samples)
    assert sf.info(str(out)).subtype == "PCM_16" and not list(out.parent.glob(".*tmp"))
    with open(out, "rb") as f:
        back, info = read_wav(f)
    assert info.source == str(out) and np.abs(back - samples).max() <= 1 / 32768
    assert read_wav(wav_bytes(samples))[0].shape == samples.shape
