"""Fixtures for the console's end-to-end tests: one real server (uvicorn in a thread, as tests/serve do)
over fake models, a served run folder with metrics, a report and a plot, a scale report, two tenants
and an admin key; and one headless Chromium per test module (Debian's /usr/bin/chromium, driven by the
playwright package; never the package's own browser download).

``GUIMO_CONSOLE_SCREENSHOTS=DIR`` saves a PNG of each page into DIR (``bench/console_screenshots.py``
sets it to docs/console).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server needs the 'serve' extra: pip install 'guimo[serve]'")
pytest.importorskip("jinja2", reason="the console needs the 'console' extra: pip install 'guimo[console]'")


def tiny_png(path: Path, rgb=(11, 92, 173)) -> None:
    """A real 8x8 PNG (what a run's plots/ holds), written without matplotlib."""
    raw = b"".join(b"\x00" + bytes(rgb) * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_run(folder: Path) -> Path:
    """A run folder as the pipeline leaves it, for the served classifier: metrics beside baselines, report, plot."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"scenario": "fraud", "stages": {"train": {"status": "done", "wall_time_s": 120.0}}}))
    (folder / "metrics.json").write_text(json.dumps({"model": {"auc": 0.91, "f1": 0.62, "examples": 1000},
                                                     "baselines": {"logistic_regression": {"auc": 0.85, "f1": 0.51},
                                                                   "lightgbm": {"auc": 0.89, "f1": 0.58}}}))
    (folder / "report.md").write_text("# Report of the fraud run\n\nAUC 0.91 vs 0.89 for LightGBM.\n\n"
                                      "![baselines](plots/baselines.png)\n\n<script>alert(1)</script>\n")
    (folder / "plots").mkdir()
    tiny_png(folder / "plots" / "baselines.png")
    (folder / "model.safetensors").write_bytes(b"\0" * 4096)
    return folder


def make_scale_report(root: Path) -> Path:
    """A scale report folder as `guimo scale` leaves it (report.md, fit.json, plots/). ``GUIMO_CONSOLE_SCALE_REPORT=DIR``
    (a folder holding scale/, which ``bench/console_screenshots.py`` builds from real runs) copies that one instead."""
    real = os.environ.get("GUIMO_CONSOLE_SCALE_REPORT")
    if real:
        return Path(shutil.copytree(Path(real) / "scale", root / "scale-recommend" / "scale"))
    folder = root / "scale-recommend-20261207" / "scale"
    (folder / "plots").mkdir(parents=True)
    (folder / "fit.json").write_text(json.dumps({"metric": "ndcg@10", "verdict": {"kind": "curve"}}))
    (folder / "report.md").write_text("# Scale report: recommend\n\n## Verdict: the held-out check passed\n\n"
                                      "| data x | ndcg@10 |\n| --- | ---: |\n| 2 | 0.061 |\n| 4 | 0.066 |\n\n"
                                      "![learning curve](plots/learning_curve.png)\n")
    tiny_png(folder / "plots" / "learning_curve.png", rgb=(0, 158, 115))
    return folder


@dataclass
class Console:
    url: str
    engine: object
    keys: dict  # name -> secret: "acme", "beta", "acme_lm_only", "admin"
    srv: object


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    from guimo.serve.console.operators import create_admin_key
    from guimo.serve.db import make_engine
    from guimo.serve.keys import create_key
    from guimo.serve.main import create_app
    from tests.serve.conftest import ThreadServer, fake_models, settings

    tmp = tmp_path_factory.mktemp("console")
    engine = make_engine(f"sqlite:///{tmp / 'ledger.sqlite'}")
    served = fake_models()
    served["fake-cls"].path = str(make_run(tmp / "runs" / "fraud-run"))
    make_scale_report(tmp / "runs")
    app = create_app(settings(console=True, collections_dir=str(tmp / "collections"), console_runs_dir=str(tmp / "runs"),
                              key_cache_s=0.0), served=served, engine=engine)
    keys = {"acme": create_key(engine, tenant="acme", name="main")[0], "beta": create_key(engine, tenant="beta")[0],
            "acme_lm_only": create_key(engine, tenant="acme", models=["fake-lm"], name="lm only")[0],
            "admin": create_admin_key(engine, name="ops")[0]}
    with ThreadServer(app) as srv:
        yield Console(srv.url, engine, keys, srv)
    engine.dispose()


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/debian.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the console tests need playwright (the 'dev' extra)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


@pytest.fixture
def page_for(browser, console):
    """page_for(key name) -> a page in a fresh browser context (its own cookies), signed in with that key."""
    contexts = []

    def make(who: str | None = None):
        ctx = browser.new_context(viewport={"width": 1180, "height": 820})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        if who is not None:
            sign_in(page, console.url, console.keys[who])
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def sign_in(page, url: str, key: str) -> None:
    page.goto(url + "/console")
    page.get_by_label("API key or admin key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/console/usage$"))


def screenshot(page, name: str) -> None:
    """Save the page as DIR/NAME.png when GUIMO_CONSOLE_SCREENSHOTS=DIR (the README shows docs/console/*.png)."""
    folder = os.environ.get("GUIMO_CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)
