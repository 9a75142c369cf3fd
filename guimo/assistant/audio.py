"""WAV in, 16 kHz mono samples out: the one door audio takes into the assistant.

The speech recogniser's acoustic model (pocketsphinx en-US) was trained on 16 kHz mono 16-bit
speech, so everything is brought to that before decoding:

- the container must be WAV (RIFF/WAVE, WAVE_FORMAT_EXTENSIBLE or RF64) and the samples 16-bit
  signed PCM (the issue's contract: "a WAV that is not 16-bit PCM gets a clear error"): an 8-bit,
  24-bit, 32-bit or float WAV is refused with what it is and the ``sox`` line that converts it,
  rather than converted silently with a scale the user did not choose;
- stereo (or more channels) is averaged to mono;
- a sample rate other than 16 kHz is resampled with soxr (the library, at its high quality
  setting) when it is a plausible speech rate, 8-48 kHz; outside that range the file is refused
  (a 2 kHz or 192 kHz "voice command" is almost surely the wrong file);
- an empty file, a file with no samples, and anything libsndfile cannot read get a GuimoError that
  names the file.

A path or the bytes of an upload are both accepted; errors name the path, or the ``name`` given
for bytes (the server passes the upload's file name).
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np

from guimo.errors import GuimoError

SAMPLE_RATE = 16_000  # Hz: what the en-US acoustic model expects
MIN_RATE, MAX_RATE = 8_000, 48_000  # rates resampled instead of refused
WAV_FORMATS = ("WAV", "WAVEX", "RF64")  # libsndfile's names for RIFF/WAVE variants

AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


@dataclass
class AudioInfo:
    """What the file was and what was done to it (reported with a transcript, so a user sees a resample)."""

    source: str  # the path, or the name given for bytes
    sample_rate: int  # of the file, Hz
    channels: int  # of the file
    subtype: str  # libsndfile's sample format, e.g. "PCM_16"
    seconds: float  # duration of the returned audio
    notes: list[str] = field(default_factory=list)  # "resampled 44100 -> 16000 Hz", "downmixed 2 channels"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_wav(source: AudioSource, *, name: str | None = None, max_seconds: float | None = None) -> tuple[np.ndarray, AudioInfo]:
    """Read a 16-bit PCM WAV as float32 mono samples at 16 kHz in [-1, 1).

    Args:
        source: a path, the file's bytes, or a binary file object.
        name: how errors refer to bytes or a file object (default ``"<upload>"``).
        max_seconds: refuse longer audio (the server bounds an upload's decoding time with it).
    Returns:
        ``(samples, info)``: samples of shape ``(n,)``, dtype float32, 16 kHz; ``info`` an AudioInfo.
    Raises:
        GuimoError: naming the file, for a missing, empty, unreadable, non-WAV, non-16-bit-PCM,
        silent-rate or over-long input.
    """
    import soundfile as sf

    label, stream = _open(source, name)
    try:
        handle = sf.SoundFile(stream)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise GuimoError(f"{label}: not a readable WAV file ({_reason(e)})") from None
    src = "in.wav" if label.startswith("<") else label  # for the sox line in messages
    with handle:
        if handle.format not in WAV_FORMATS:
            raise GuimoError(f"{label}: a {handle.format} file, not WAV; the assistant reads 16-bit PCM WAV "
                             f"(convert: sox {src} -b 16 out.wav)")
        if handle.subtype != "PCM_16":
            raise GuimoError(f"{label}: samples are {_describe(handle.subtype)}, not 16-bit PCM; the assistant reads "
                             f"16-bit PCM WAV (convert: sox {src} -b 16 -e signed-integer out.wav)")
        rate, channels = int(handle.samplerate), int(handle.channels)
        if not MIN_RATE <= rate <= MAX_RATE:
            raise GuimoError(f"{label}: sample rate {rate} Hz is outside the {MIN_RATE}-{MAX_RATE} Hz range of speech "
                             f"recordings; record at {SAMPLE_RATE} Hz (or resample: sox {src} -r {SAMPLE_RATE} out.wav)")
        if handle.frames == 0:
            raise GuimoError(f"{label}: the WAV holds no audio samples")
        if max_seconds is not None and handle.frames / rate > max_seconds:
            raise GuimoError(f"{label}: {handle.frames / rate:.1f} s of audio, more than the {max_seconds:g} s allowed")
        try:
            data = handle.read(dtype="float32", always_2d=True)  # (frames, channels)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise GuimoError(f"{label}: the WAV's audio data cannot be read ({_reason(e)})") from None
    if data.shape[0] == 0:  # a header that promises frames the file does not hold
        raise GuimoError(f"{label}: the WAV holds no audio samples")
    notes: list[str] = []
    samples = data[:, 0] if channels == 1 else data.mean(axis=1, dtype=np.float32)
    if channels > 1:
        notes.append(f"downmixed {channels} channels to mono")
    if rate != SAMPLE_RATE:
        samples = resample(samples, rate)
        notes.append(f"resampled {rate} -> {SAMPLE_RATE} Hz")
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    info = AudioInfo(label, rate, channels, handle.subtype, round(len(samples) / SAMPLE_RATE, 3), notes)
    return samples, info


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono float signal with soxr (band-limited, "HQ"), e.g. espeak-ng's 22.05 kHz to 16 kHz."""
    import soxr

    return soxr.resample(np.asarray(samples, dtype=np.float32), rate, target, quality="HQ").astype(np.float32)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1) to int16, rounded (not truncated) and clipped.

    The inverse of libsndfile's int16 -> float scale (x / 32768), so a 16-bit WAV read by
    ``read_wav`` comes back sample-exact; truncation instead shifts most samples by one step, which
    was measured to flip pocketsphinx's decodings of espeak's digitally silent pauses.
    """
    return np.clip(np.rint(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit PCM mono WAV of ``samples`` (float in [-1, 1)) as bytes."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, to_pcm16(samples), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_wav(path: str | os.PathLike, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Write a 16-bit PCM mono WAV atomically (a killed writer leaves the old file or none)."""
    from guimo.io import atomic_write_bytes

    return atomic_write_bytes(path, wav_bytes(samples, rate))


def _open(source: AudioSource, name: str | None) -> tuple[str, BinaryIO]:
    """(label for errors, a seekable binary stream); refuses a missing or empty file up front."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<upload>"
        if len(source) == 0:
            raise GuimoError(f"{label}: empty file (0 bytes), not a WAV")
        return label, io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise GuimoError(f"{label}: file not found") from None
        except IsADirectoryError:
            raise GuimoError(f"{label}: a folder, not a WAV file") from None
        except OSError as e:
            raise GuimoError(f"{label}: cannot read ({e.strerror})") from None
        if not data:
            raise GuimoError(f"{label}: empty file (0 bytes), not a WAV")
        return label, io.BytesIO(data)
    label = name or getattr(source, "name", None) or "<upload>"
    data = source.read()
    if not data:
        raise GuimoError(f"{label}: empty file (0 bytes), not a WAV")
    return str(label), io.BytesIO(data)


def _describe(subtype: str) -> str:
    """libsndfile's subtype in words: "PCM_U8" -> "8-bit unsigned PCM", "FLOAT" -> "32-bit float"."""
    words = {"PCM_U8": "8-bit unsigned PCM", "PCM_S8": "8-bit PCM", "PCM_24": "24-bit PCM", "PCM_32": "32-bit PCM",
             "FLOAT": "32-bit float", "DOUBLE": "64-bit float", "ULAW": "u-law", "ALAW": "A-law",
             "IMA_ADPCM": "IMA ADPCM", "MS_ADPCM": "Microsoft ADPCM", "GSM610": "GSM 6.10"}
    return f"{words.get(subtype, subtype)} ({subtype})"


def _reason(error: Exception) -> str:
    text = str(error).strip()
    # libsndfile's message starts with the stream's repr ("Error opening <_io.BytesIO ...>: ..."): keep its reason
    return text.rsplit(": ", 1)[-1] if ": " in text else text or type(error).__name__
