"""Screenshots of the console's pages for the README: docs/console/<page>.png.

Runs the console's end-to-end tests (tests/serve/console/test_console.py: a real server over small fake
models, headless Debian chromium) with ``GUIMO_CONSOLE_SCREENSHOTS`` pointing at the folder, so every
picture shows a page the tests just checked. Then each PNG is reduced to a 256-colour palette (Pillow,
which matplotlib already brings), which keeps them small for the repository.

    .venv/bin/python bench/console_screenshots.py            # -> docs/console/*.png
    .venv/bin/python bench/console_screenshots.py --out /tmp/shots
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shrink(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "console"), help="folder for the PNGs (default: docs/console)")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GUIMO_CONSOLE_SCREENSHOTS": str(out), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/serve/console/test_console.py"],
                       cwd=ROOT, env=env)
    if r.returncode != 0:
        print("the console tests failed: screenshots may be missing or stale", file=sys.stderr)
        return r.returncode
    for png in sorted(out.glob("*.png")):
        shrink(png)
        print(f"{png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}  {png.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
