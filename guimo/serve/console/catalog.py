"""What the console shows about served runs and scale reports, read from the files the pipeline and
`guimo scale` wrote (metrics.json, manifest.json, report.md, plots/, scale/fit.json), never recomputed.

Only files of runs this server serves (and of the latest scale report) are ever opened, and only by
name from their own folder's listing, so no URL can reach any other file.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from guimo.serve.models import UsageEvent
from guimo.serve.registry import ServedModel

PLOT_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")


@dataclass
class ModelCard:
    name: str
    scenario: str
    kind: str
    endpoints: tuple[str, ...]
    metric_names: list[str] = field(default_factory=list)
    rows: list[tuple[str, dict[str, float]]] = field(default_factory=list)  # ("model" first, then each baseline)
    size_bytes: int | None = None
    train_seconds: float | None = None
    latency_ms: dict[str, float] | None = None  # p50/p95 of served requests (ledger), with their count
    has_report: bool = False
    plots: list[str] = field(default_factory=list)


def _scalars(d: Any) -> dict[str, float]:
    if not isinstance(d, dict):
        return {}
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "examples"}


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_folder(m: ServedModel) -> Path | None:
    """The run directory of a served run (None for an encoder served without one)."""
    if m.path and Path(m.path, "manifest.json").is_file():
        return Path(m.path)
    return None


def card(m: ServedModel, engine: Engine) -> ModelCard:
    c = ModelCard(m.name, m.scenario, m.kind, m.endpoints)
    folder = run_folder(m)
    if folder is not None:
        metrics = read_json(folder / "metrics.json") or {}
        model = _scalars(metrics.get("model")) or _scalars(metrics)
        rows = [("model", model)] + [(name, _scalars(v)) for name, v in (metrics.get("baselines") or {}).items() if _scalars(v)]
        c.metric_names = [k for k in model if any(k in r for _, r in rows[1:])] + [k for k in model if not any(k in r for _, r in rows[1:])]
        c.metric_names = c.metric_names[:8]
        c.rows = rows
        weights = list(folder.glob("*.safetensors"))
        c.size_bytes = sum(w.stat().st_size for w in weights) if weights else None
        train = ((read_json(folder / "manifest.json") or {}).get("stages") or {}).get("train") or {}
        c.train_seconds = train.get("wall_time_s") or train.get("seconds")
        c.has_report = (folder / "report.md").is_file()
        c.plots = plot_names(folder / "plots")
    c.latency_ms = latency(engine, m.name)
    return c


def plot_names(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PLOT_SUFFIXES)


def plot_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` when ``name`` is one of the plots listed there (so '../x' or an absolute path never matches)."""
    return folder / name if name in plot_names(folder) else None


def latency(engine: Engine, model: str, last: int = 1000) -> dict[str, float] | None:
    """p50 and p95 (ms) of the model's last ``last`` served requests, from the ledger's start and finish times."""
    q = (select(UsageEvent.started_at, UsageEvent.finished_at).where(UsageEvent.model == model, UsageEvent.status == "ok")
         .order_by(UsageEvent.id.desc()).limit(last))
    with engine.connect() as conn:
        ms = sorted((f - s).total_seconds() * 1000 for s, f in conn.execute(q))
    if not ms:
        return None
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return {"p50": statistics.median(ms), "p95": p95, "n": len(ms)}


# -- scale reports ---------------------------------------------------------------------------------


@dataclass
class ScaleReport:
    folder: Path  # DIR/scale
    fit: dict
    report_md: str
    plots: list[str]


def latest_scale_report(root: str | Path, depth: int = 3) -> ScaleReport | None:
    """The newest ``*/scale/report.md`` (with its fit.json) under ``root``, searched ``depth`` folders down."""
    root = Path(root)
    if not root.is_dir():
        return None
    found: list[Path] = []
    pattern = "scale/fit.json"
    for level in range(depth):
        found += root.glob("*/" * level + pattern)
    found = [f for f in found if (f.parent / "report.md").is_file()]
    if not found:
        return None
    newest = max(found, key=lambda f: f.stat().st_mtime)
    folder = newest.parent
    return ScaleReport(folder, read_json(newest) or {}, (folder / "report.md").read_text(errors="replace"), plot_names(folder / "plots"))


def economics(served: list[ServedModel], prices, throughput: str | None) -> tuple[list, list[str]]:
    """`guimo economics` figures for the served runs: each run's training cost (its manifest's wall time)
    and, with a load benchmark file, the serving and public-cloud figures per served scenario."""
    from guimo.scale import economics as ec

    figs, notes = [], []
    for m in served:
        folder = run_folder(m)
        if folder is None:
            continue
        train = ((read_json(folder / "manifest.json") or {}).get("stages") or {}).get("train") or {}
        seconds = train.get("wall_time_s") or train.get("seconds")
        if train.get("status") == "done" and seconds:
            figs += [f for f in ec.training_cost(m.name, float(seconds), prices, source=f"{folder.name}/manifest.json")
                     if f.name.startswith("training cost")]
    if throughput:
        rows, meta = ec.load_throughput(throughput)
        for scenario in sorted({m.scenario for m in served}):
            mine = ec.rows_for(rows, meta.get("scenario") or scenario)
            if mine:
                figs += ec.serving_costs(mine, prices, source=throughput)
                best = max(mine, key=lambda r: r.requests_per_s)
                figs += ec.public_cloud(best.requests_per_s, prices, scenario=scenario, measured=throughput)
    else:
        notes.append("serving and public-cloud figures need a load benchmark: start the server with "
                     "GUIMO_SERVE_CONSOLE_THROUGHPUT=bench/results/serve_load.json")
    return figs, notes


def render_markdown(text: str, base_url: str) -> str:
    """Markdown to HTML with raw HTML escaped (a report can hold run names and user text); relative image and
    link targets are rewritten under ``base_url`` so a report's ``plots/x.png`` is served from its own folder."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for block in tokens:
        if block.type in ("heading_open", "heading_close"):  # the page has its own h1 and h2: the report's start at h3
            block.tag = f"h{min(int(block.tag[1]) + 2, 6)}"
        for tok in block.children or ():
            attr = {"image": "src", "link_open": "href"}.get(tok.type)
            target = tok.attrGet(attr) if attr else None
            if target and "://" not in target and not target.startswith(("/", "#", "mailto:")):
                tok.attrSet(attr, base_url.rstrip("/") + "/" + target)
    return md.renderer.render(tokens, md.options, {})
