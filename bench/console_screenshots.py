"""Screenshots of the console's pages for the README: docs/console/<page>.png.

Runs the console's end-to-end tests (tests/serve/console/test_console.py: a real server over small fake
models, headless Debian chromium) with ``GUIMO_CONSOLE_SCREENSHOTS`` pointing at the folder, so every
picture shows a page the tests just checked; the Scale page shows a real report of three small recommend runs. Then each PNG is reduced to a 256-colour palette (Pillow,
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


def real_scale_report(folder: Path) -> Path:
    """A real `guimo scale` report for the Scale page's picture: three small recommend runs (the generated
    catalogue at 100, 200 and 400 users) fitted by ``guimo.scale.report.build_report``, as `guimo scale fit` does."""
    from guimo.config import apply_overrides
    from guimo.pipeline.runner import run_pipeline
    from guimo.scale.report import build_report
    from guimo.scenarios.recommend import SCENARIO

    tiny = ["data.generator.chain_groups=20", "data.generator.items=200", "data.generator.categories=10", "train.max_steps=60",
            "train.eval_every=60", "train.checkpoint_every=60", "train.batch_size=32", "train.warmup_steps=2", "eval.sampled=0",
            "eval.val_cases=200", "model.d_model=16", "model.max_len=20"]
    for users in (100, 200, 400):
        if not (folder / "runs" / f"u{users}" / "metrics.json").is_file():
            cfg = apply_overrides(SCENARIO.config_cls(), [f"data.generator.users={users}", f"data.generator.interactions={15 * users}",
                                                          *tiny], SCENARIO.presets)
            run_pipeline("recommend", cfg, folder / "runs" / f"u{users}", quiet=True)
    build_report(folder, n_bootstrap=50)
    return folder


def shrink(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "console"), help="folder for the PNGs (default: docs/console)")
    ap.add_argument("--scale-dir", default="/tmp/guimo-console-scale", help="where the small recommend sweep for the Scale page's "
                                                                            "picture is trained (kept: a rerun reuses it)")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    scale = real_scale_report(Path(args.scale_dir))
    env = {**os.environ, "GUIMO_CONSOLE_SCREENSHOTS": str(out), "GUIMO_CONSOLE_SCALE_REPORT": str(scale), "OMP_NUM_THREADS": "1"}
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
