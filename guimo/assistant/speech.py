"""Spoken replies: text -> a 16 kHz mono WAV through the espeak-ng binary.

espeak-ng is a small offline formant synthesiser packaged by every Linux distribution (Debian:
``espeak-ng``), with English and Mandarin voices; it has no Python wheel, so it is called as a
program. Its WAVs are 22.05 kHz; they are resampled to 16 kHz by ``guimo.assistant.audio`` so a
reply is in the same format as the assistant's input (and can be fed back to the recogniser, which
is how the tests synthesise speech).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from guimo.assistant.audio import read_wav, write_wav
from guimo.errors import GuimoError

VOICES = {"en": "en-us", "zh": "cmn"}  # espeak-ng voice per reply language
TIMEOUT_S = 60.0  # a reply is a sentence or two; espeak-ng writes it in well under a second


def espeak_binary() -> str | None:
    """The espeak-ng program on PATH, or None."""
    return shutil.which("espeak-ng")


def say(text: str, out_wav: str | os.PathLike, lang: str = "en", *, rate: int | None = None) -> Path:
    """Synthesise ``text`` into ``out_wav`` (16 kHz mono 16-bit PCM, written atomically).

    Args:
        text: what to say (UTF-8; Chinese for ``lang="zh"``).
        out_wav: the WAV to write; its folder is created.
        lang: "en" (voice en-us) or "zh" (voice cmn, Mandarin).
        rate: speaking rate in words per minute (espeak-ng's default is 175).
    Returns:
        The path written.
    Raises:
        GuimoError: espeak-ng is not installed, the language has no voice, the text is empty, or
        espeak-ng fails.
    """
    if lang not in VOICES:
        raise GuimoError(f"no espeak-ng voice for language {lang!r} (languages: {', '.join(VOICES)})")
    if not text or not text.strip():
        raise GuimoError("nothing to say: the reply text is empty")
    binary = espeak_binary()
    if binary is None:
        raise GuimoError("espeak-ng is not installed, so no spoken reply can be made; install it "
                         "(Debian/Ubuntu: sudo apt-get install espeak-ng; macOS: brew install espeak-ng)")
    command = [binary, "-v", VOICES[lang], "--stdout", "--stdin"]
    if rate is not None:
        command += ["-s", str(int(rate))]
    try:
        # the text goes through stdin, so a reply starting with "-" is never read as an option
        done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise GuimoError(f"espeak-ng took more than {TIMEOUT_S:g} s to synthesise {len(text)} characters") from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        raise GuimoError(f"espeak-ng failed (voice {VOICES[lang]}): {message}")
    samples, _ = read_wav(done.stdout, name="espeak-ng output")
    return write_wav(out_wav, samples)
