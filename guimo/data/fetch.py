"""Download a public dataset once, verify its checksum, and keep it in a cache.

Every loader also reads a local path, so nothing here is needed offline or in tests. A URL may
carry its expected digest as a fragment: ``https://host/file.zip#sha256=<hex>``.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from guimo.errors import GuimoError


def cache_dir() -> Path:
    return Path(os.environ.get("GUIMO_CACHE", Path.home() / ".cache" / "guimo"))


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def fetch(url: str, sha256: str | None = None, *, timeout: float = 60.0) -> Path:
    """Return a local path for ``url``, downloading into the cache on first use."""
    if "#sha256=" in url:
        url, sha256 = url.split("#sha256=", 1)
    name = url.rstrip("/").rsplit("/", 1)[-1] or "download"
    target = cache_dir() / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    if target.exists() and (sha256 is None or file_sha256(target) == sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise GuimoError(f"cannot download {url}: {e} (pass a local path with --data instead)") from None
    if sha256 is not None and (got := file_sha256(tmp)) != sha256:
        tmp.unlink(missing_ok=True)
        raise GuimoError(f"{url}: checksum mismatch (expected sha256 {sha256}, got {got})")
    tmp.replace(target)
    return target


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(parts: list[tuple[str, bytes]] | list[bytes]) -> str:
    """A short content hash over (name, bytes) pairs or raw byte strings, order-sensitive."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, tuple):
            h.update(part[0].encode())
            part = part[1]
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return "sha256:" + h.hexdigest()[:32]
