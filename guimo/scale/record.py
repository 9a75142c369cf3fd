"""The sweep record, DIR/sweep.json: the plan, each point's status, and the invocations that trained them.

Layout of a sweep folder::

    DIR/sweep.json             the plan and each point's status (done / skipped / failed, and why)
    DIR/runs/<size>-f<fraction>-s<seed>/   one run directory per point (resumable)
    DIR/probe/...              the probe's runs (never points of the fit)
    DIR/scale/                 fit, report.md and plots (written by `report`)

A re-run resumes: finished points are taken back from the record, but only when the settings that shaped their
training are the same (``POINT_SETTINGS``); otherwise one fit would mix two recipes without a trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guimo.errors import GuimoError
from guimo.io import atomic_write_json, read_json
from guimo.scale.spec import SweepSpec

SWEEP_FILE = "sweep.json"


# What a finished point was trained with. The other settings (sizes, fractions, seeds, budget, order, threads,
# workers) only add points or schedule them, so a re-run may change those and still resume.
POINT_SETTINGS = ("scenario", "epochs", "repeat_to_full", "context", "batch_size", "lr_ref", "d_ref", "lr_exponent", "overrides", "min_steps",
                  "lr_batch_exponent", "evals", "config", "lr_probe", "probe_fraction", "probe_extend", "probe_sizes", "probe_key",
                  "probe_values")
PROBE_SETTINGS = ("probe_fraction", "probe_extend", "probe_sizes")


def config_digest(spec: SweepSpec) -> str | None:
    import hashlib

    return hashlib.sha256(Path(spec.config).read_bytes()).hexdigest() if spec.config else None


def now_iso() -> str:
    """Local time with its UTC offset (ISO 8601), so a record read on another machine says when it ran."""
    import datetime as dt

    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def load_prior(out: Path, record: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The previous sweep record's points by run (what a re-run may skip) and its invocations. Finished points
    trained with other settings are an error: resuming would put two recipes into one fit without a trace."""
    p = out / SWEEP_FILE
    if not p.exists():
        return {}, []
    data = read_json(p)
    points = {pt["run"]: pt for pt in data.get("points", []) + data.get("probes", []) if isinstance(pt, dict) and "run" in pt}
    if any(pt.get("status") == "done" for pt in points.values()):
        import dataclasses

        defaults = {f.name: f.default for f in dataclasses.fields(SweepSpec)} | {"overrides": [], "lr_probe": [], "probe_extend": 0, "probe_sizes": [], "probe_values": []}  # keys older records lack (they never extended a probe)
        before = {**defaults, **data.get("spec", {}), "config_sha256": data.get("config_sha256")}
        now = {**record["spec"], "config_sha256": record["config_sha256"]}
        probed = bool(before.get("lr_probe") or now["lr_probe"] or before.get("probe_key") or now["probe_key"])  # the probe's settings matter only to a sweep with a probe
        changed = [k for k in (*POINT_SETTINGS, "config_sha256") if before.get(k) != now[k] and not (k == "config_sha256" and before.get(k) is None)
                   and not (k in PROBE_SETTINGS and not probed)]
        if changed:
            raise GuimoError(f"{out}: its finished points were trained with other settings ("
                             + "; ".join(f"{k}: {before.get(k)!r} -> {now[k]!r}" for k in changed)
                             + "); resuming would mix both in one fit. Re-run with the same settings, or use a new --out")
    return points, list(data.get("invocations", []))


def save_record(out: Path, record: dict[str, Any]) -> None:
    atomic_write_json(out / SWEEP_FILE, record)


def read_sweep(out: str | Path) -> dict[str, Any] | None:
    """The sweep record of DIR, or None when DIR is a plain folder of runs."""
    p = Path(out) / SWEEP_FILE
    if not p.exists():
        return None
    data = read_json(p)
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise GuimoError(f"{p}: not a sweep record (no 'points' list)")
    return data

