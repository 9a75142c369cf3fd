"""A run directory: the only thing that passes between `run`, `serve` and `scale`.

Layout::

    RUN/manifest.json        config, versions, git revision, data fingerprint, per-stage status
    RUN/data/                raw and preprocessed data, tokenizer/vocab
    RUN/model_config.json    the model's architecture (init stage)
    RUN/checkpoints/         resumable training checkpoints, best.safetensors
    RUN/train_log.jsonl      one JSON line per logged step / validation
    RUN/metrics.json         model and baseline metrics (evaluate stage)
    RUN/model.safetensors    the final weights (optimize stage)
    RUN/report.md, plots/    for people
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from guimo.errors import GuimoError
from guimo.io import atomic_write_json, read_json

STAGES = ("collect", "preprocess", "init", "train", "evaluate", "optimize")
# what every stage entry of the manifest records about the stage itself, not about its work
STAGE_BOOKKEEPING = ("status", "started", "finished", "seconds", "host", "pid", "error")
MANIFEST = "manifest.json"


class RunDir:
    """Paths of one run plus its manifest, saved atomically after every change."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = Path(path)
        self.manifest = manifest

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, scenario: str, config: dict[str, Any], from_stage: str | None = None,
               to_stage: str | None = None) -> "RunDir":
        """Start a run, or continue one whose manifest names the same scenario.

        Continuing with a different config is refused (``check_config_change``) when the run holds
        output that the changed keys would have changed; an accepted change is recorded in the
        manifest's ``config_changes`` and goes into its ``config``. Keys that only stages after
        ``to_stage`` read are not this call's business: they keep their recorded values.
        """
        path = Path(path)
        if (path / MANIFEST).exists():
            run = cls.open(path)
            if run.scenario != scenario:
                raise GuimoError(f"{path} holds a '{run.scenario}' run, not '{scenario}'; choose another --out")
            last = STAGES.index(to_stage) if to_stage else len(STAGES) - 1
            changed = {k: v for k, v in config_changes(run.config, config).items() if STAGES.index(key_stage(k)) <= last}
            # a key the recorded config lacks was added to guimo after the run was made: recorded, not refused
            check_config_change(run, {k: v for k, v in changed.items() if v[0] is not ABSENT}, from_stage)
            if changed:
                run.manifest.setdefault("config_changes", []).append(
                    {"at": _now(), "from_stage": from_stage,
                     "changed": {k: [None if x is ABSENT else x for x in v] for k, v in changed.items()}})
                run.manifest["config"] = config if last == len(STAGES) - 1 else _with_values(run.config, config, changed)
                run.save()
            return run
        if path.exists() and any(path.iterdir()):
            raise GuimoError(f"{path} exists and is not a run directory; choose another --out")
        manifest = {
            "format": 1,
            "scenario": scenario,
            "created": _now(),
            "status": "created",
            "config": config,
            "environment": environment(),
            "data": {},
            "stages": {},
        }
        run = cls(path, manifest)
        run.save()
        return run

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise GuimoError(f"{path} is not a run directory (no {MANIFEST})")
        manifest = read_json(path / MANIFEST)
        if not isinstance(manifest, dict) or "scenario" not in manifest:
            raise GuimoError(f"{path / MANIFEST}: not a guimo manifest")
        return cls(path, manifest)

    # -- manifest -----------------------------------------------------------------------------
    @property
    def scenario(self) -> str:
        return self.manifest["scenario"]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["config"]

    def save(self) -> None:
        atomic_write_json(self.path / MANIFEST, self.manifest)

    def stage_started(self, stage: str) -> None:
        # host and pid let `guimo runs` tell a running stage from one whose process was killed
        self.manifest["stages"][stage] = {"status": "running", "started": _now(), "host": socket.gethostname(), "pid": os.getpid()}
        self.manifest["status"] = f"running:{stage}"
        self.save()

    def stopped_stage(self) -> str | None:
        """The stage this run says is running although its process on this host is gone (killed), else None.

        A run started on another host cannot be checked from here and counts as running.
        """
        status = self.manifest.get("status", "")
        if not status.startswith("running:"):
            return None
        stage = status.split(":", 1)[1]
        entry = self.manifest.get("stages", {}).get(stage, {})
        if entry.get("host") != socket.gethostname() or not isinstance(entry.get("pid"), int):
            return None
        try:
            os.kill(entry["pid"], 0)
        except ProcessLookupError:
            return stage
        except PermissionError:  # alive, another user's
            return None
        return None

    def stage_finished(self, stage: str, seconds: float, info: dict[str, Any], status: str = "done") -> None:
        entry = self.manifest["stages"].setdefault(stage, {})
        entry.update(status=status, finished=_now(), seconds=round(seconds, 3), **info)
        self.manifest["status"] = "done" if (stage == STAGES[-1] and status == "done") else f"{status}:{stage}"
        self.save()

    def stage_failed(self, stage: str, seconds: float, error: str) -> None:
        self.stage_finished(stage, seconds, {"error": error}, status="failed")

    def stage_done(self, stage: str) -> bool:
        return self.manifest["stages"].get(stage, {}).get("status") == "done"

    # -- paths and artifacts ------------------------------------------------------------------
    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def data_dir(self) -> Path:
        d = self.path / "data"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def plots_dir(self) -> Path:
        d = self.path / "plots"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def metrics(self) -> dict[str, Any] | None:
        p = self.path / "metrics.json"
        return read_json(p) if p.exists() else None

    def weights_path(self) -> Path:
        """The weights to serve: the optimize stage's output, else the best training checkpoint."""
        for p in (self.path / "model.safetensors", self.path / "checkpoints" / "best.safetensors"):
            if p.exists():
                return p
        raise GuimoError(f"{self.path} has no trained weights yet (run the train stage)")


# The first stage whose output a config key changes (the longest matching dotted prefix wins;
# unknown keys count from collect). Recommend's eval keys also steer the validation that picks the
# best checkpoint during training, so they count from train, apart from what only the final
# evaluation reads.
KEY_STAGES: dict[str, str] = {
    "data": "collect",
    "seed": "init",
    "model": "init",
    "init": "init",
    "train": "train",
    "eval": "train",
    "eval.sampled": "evaluate",
    "eval.baselines": "evaluate",
    "rerank": "evaluate",  # search: its cross-encoder is trained and applied inside evaluate
    "optimize": "optimize",
}


def key_stage(key: str) -> str:
    """The first stage whose output ``key`` (dotted) changes; see ``KEY_STAGES``."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        stage = KEY_STAGES.get(".".join(parts[:n]))
        if stage is not None:
            return stage
    return STAGES[0]


class _Absent:
    """The value of a key one config does not have (unlike None, which a config may hold)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()


def config_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (old, new) for every leaf that differs; a key on one side only has ``ABSENT`` on the other."""
    out: dict[str, tuple[Any, Any]] = {}
    for name in sorted(set(old) | set(new), key=str):
        a, b = old.get(name, ABSENT), new.get(name, ABSENT)
        key = f"{prefix}{name}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(config_changes(a, b, key + "."))
        elif a != b:
            out[key] = (a, b)
    return out


def _with_values(old: dict[str, Any], new: dict[str, Any], keys) -> dict[str, Any]:
    """``old`` with the dotted ``keys`` taken from ``new``."""
    import copy

    out = copy.deepcopy(old)
    for key in keys:
        *sections, leaf = key.split(".")
        src, dst = new, out
        for name in sections:
            src, dst = src.get(name, {}), dst.setdefault(name, {})
        if leaf in src:
            dst[leaf] = copy.deepcopy(src[leaf])
        else:
            dst.pop(leaf, None)
    return out


def check_config_change(run: "RunDir", changed: dict[str, tuple[Any, Any]], from_stage: str | None) -> None:
    """Refuse a config change that would sit beside output made with the old values.

    A stage that has started (done, failed, interrupted: it left output, e.g. checkpoints) keeps its
    output unless this command re-runs it afresh, which ``--from STAGE`` does for STAGE and every
    later one. A changed key is refused when a kept stage is at or after the first stage it changes
    (``key_stage``): ``--from evaluate`` may change eval.sampled, ``--from train`` train.lr, and
    a change of a key whose stages never ran (a sweep sizing its training after preprocess) is fine.
    """
    if not changed:
        return
    fresh_from = STAGES.index(from_stage) if from_stage else len(STAGES)
    started = [s for s in STAGES if s in run.manifest.get("stages", {})]
    kept = [s for s in started if STAGES.index(s) < fresh_from]
    bad = {k: v for k, v in changed.items() if any(STAGES.index(s) >= STAGES.index(key_stage(k)) for s in kept)}
    if not bad:
        return
    earliest = min((key_stage(k) for k in bad), key=STAGES.index)
    diff = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in bad.items())
    kept_bad = [s for s in kept if STAGES.index(s) >= STAGES.index(earliest)]
    raise GuimoError(
        f"{run.path} was run with other settings ({diff}); its {', '.join(kept_bad)} output was made with the old "
        f"values, and continuing would mix both under the new config. Repeat the run's settings to resume it "
        f"(`guimo show {run.path}` prints them), start a new run with another --out, or re-run from the first "
        f"stage these keys change: --from {earliest} (it redoes {earliest} and every later stage)")


def environment() -> dict[str, Any]:
    """Versions and revision, so any two runs can be compared and reproduced."""
    from importlib import metadata

    import guimo
    from guimo.device import cpu_info

    versions = {}
    for pkg in ("torch", "numpy", "tokenizers", "safetensors", "optuna", "transformers"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {
        "guimo": guimo.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_info(),  # model, core count, bf16/AMX flags: speed and bf16 results depend on them
        "packages": versions,
        "git_revision": git_revision(),
        "argv": sys.argv,
    }


def git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5)
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def list_runs(root: str | Path) -> list[RunDir]:
    """Every run directory at or below ``root`` (depth <= 3), newest first."""
    root = Path(root)
    if not root.exists():
        raise GuimoError(f"{root}: no such directory")
    found = []
    for manifest in sorted(root.glob("manifest.json")) + sorted(root.glob("*/manifest.json")) + sorted(root.glob("*/*/manifest.json")) + sorted(root.glob("*/*/*/manifest.json")):
        try:
            found.append(RunDir.open(manifest.parent))
        except GuimoError:
            continue
    return sorted(found, key=lambda r: r.manifest.get("created", ""), reverse=True)
