"""Does one learning rate fit every width? The lr probes of two sweeps, standard vs muP, side by side (no training).

    python bench/mup_transfer.py --name shakespeare-depth4 \
        --sp runs/bench-scale-shakespeare-depth4-lrprobe --mup runs/probe-mup-shakespeare-depth4
    python bench/mup_transfer.py --render      # rewrite the docs section and plots from bench/results

Each folder is a `guimo scale --lr-probe` sweep: every size trained at the same data fraction and seed
at several multiples of the sweep's lr, scored on the validation split. In the standard
parametrization the lr a size gets already falls with width by the sweep's rule; muP (`--mup`)
keeps one lr and lets the model scale its hidden layers. The question muP answers is whether the
best *absolute* lr stays put as the width grows (muTransfer): then a probe of the smallest model
suffices, where the standard parametrization needs one per size.

Writes bench/results/mup_transfer_<name>.json, docs/mup_transfer_<name>.png (validation loss vs lr,
one curve per width, one panel per parametrization) and the docs section.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchdoc import page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"


def probe_rows(folder: Path) -> list[dict]:
    """One row per probe run: size, width, the lr it trained at and its validation loss."""
    record = json.loads((folder / "sweep.json").read_text())
    scores = record.get("lr_probe") or {}
    if not scores:
        sys.exit(f"{folder}: no lr probe in sweep.json (run guimo scale --lr-probe)")
    rows = []
    for p in record["probes"]:
        loss = scores.get(p["size"], {}).get("scores", {}).get(f"{p['lr_scale']:g}")
        if p.get("status") == "done" and loss is not None:
            rows.append({"size": p["size"], "d_model": p["d_model"], "multiplier": p["lr_scale"], "lr": p["lr"], "val_loss": round(loss, 4)})
    return sorted(rows, key=lambda r: (r["d_model"], r["lr"]))


def summarise(rows: list[dict]) -> dict:
    """The best lr per width and how far it moves: max / min over the widths (1 = one lr fits all)."""
    by_size: dict[str, list[dict]] = {}
    for r in rows:  # sorted by lr within a size
        by_size.setdefault(r["size"], []).append(r)
    best = {s: min(mine, key=lambda r: r["val_loss"]) for s, mine in by_size.items()}
    lrs = [b["lr"] for b in best.values()]
    lo, hi = min(lrs), max(lrs)
    edge = [s for s, b in best.items() if b["lr"] in (by_size[s][0]["lr"], by_size[s][-1]["lr"])]
    return {"best": {s: {"lr": b["lr"], "multiplier": b["multiplier"], "val_loss": b["val_loss"]} for s, b in best.items()},
            "best_lr_spread": round(hi / lo, 3), "best_at_an_edge": edge}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, title in ((axes[0], "standard", "standard parametrization (the sweep's lr rule per width)"),
                           (axes[1], "mup", "muP (the hidden layers train at lr / width multiplier)")):
        rows = result[key]["rows"]
        for size in dict.fromkeys(r["size"] for r in rows):
            mine = [r for r in rows if r["size"] == size]
            line, = ax.plot([r["lr"] for r in mine], [r["val_loss"] for r in mine], "o-", label=f"{size} (width {mine[0]['d_model']})")
            b = result[key]["best"][size]
            ax.plot([b["lr"]], [b["val_loss"]], "*", ms=14, color=line.get_color())
        ax.set_xscale("log")
        ax.set_xlabel("learning rate the run trained at")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation loss (nats), 1/8 of the data")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{result['name']}: best lr per width (stars); spread of the best lr: standard {result['standard']['best_lr_spread']:g}x, "
                 f"muP {result['mup']['best_lr_spread']:g}x", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render() -> str:
    lines = ["Command: `python bench/mup_transfer.py --name NAME --sp SWEEP --mup SWEEP` reads two `guimo scale --lr-probe` sweeps of the same "
             "grid (no training): each size's validation loss at each lr it was probed at, seed 0, the smallest data fraction. "
             "'Spread' is the largest best lr over the smallest across the widths: 1 means one lr is every width's best. "
             "An lr at the edge of what was probed is marked: the true best may lie beyond it.", ""]
    for f in sorted(RESULTS.glob("mup_transfer_*.json")):
        r = json.loads(f.read_text())
        lines += [f"**{r['name']}** ({r['date']}, {r['machine']}; sweeps `{r['sp_folder']}` and `{r['mup_folder']}`; plot `docs/{r['plot']}`)", "",
                  "| size | width | standard: best lr (x rule) | val loss | muP: best lr (x base) | val loss |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        sp, mup = r["standard"], r["mup"]
        for size, b in sp["best"].items():
            m = mup["best"].get(size)
            width = next(x["d_model"] for x in sp["rows"] if x["size"] == size)
            lines.append(f"| {size} | {width} | {b['lr']:.3g} (x{b['multiplier']:g}){_edge(size, sp)} | {b['val_loss']:.3f} | "
                         + (f"{m['lr']:.3g} (x{m['multiplier']:g}){_edge(size, mup)} | {m['val_loss']:.3f} |" if m else "- | - |"))
        lines += ["", f"Spread of the best lr over the widths: standard {sp['best_lr_spread']:g}x, muP {mup['best_lr_spread']:g}x.", ""]
        if r.get("note"):
            lines += [r["note"], ""]
    return "\n".join(lines)


def _edge(size: str, result: dict) -> str:
    return " (edge)" if size in result["best_at_an_edge"] else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", help="the grid's name: bench/results/mup_transfer_<name>.json")
    ap.add_argument("--sp", help="a guimo scale --lr-probe sweep folder in the standard parametrization")
    ap.add_argument("--mup", help="the same grid's probe sweep with --mup")
    ap.add_argument("--render", action="store_true", help="only rewrite the docs section and plots from bench/results")
    ap.add_argument("--no-write", action="store_true", help="leave docs/benchmarks/scale.md alone")
    args = ap.parse_args(argv)
    if not args.render:
        if not (args.name and args.sp and args.mup):
            ap.error("--name, --sp and --mup are needed (or --render)")
        from guimo.device import cpu_info

        result = {"name": args.name, "date": dt.date.today().isoformat(), "machine": platform.machine(), "cpu": cpu_info(),
                  "sp_folder": args.sp, "mup_folder": args.mup, "plot": f"mup_transfer_{args.name}.png"}
        for key, folder in (("standard", args.sp), ("mup", args.mup)):
            rows = probe_rows(Path(folder))
            result[key] = {"rows": rows, **summarise(rows)}
        path = RESULTS / f"mup_transfer_{args.name}.json"
        prior = json.loads(path.read_text()) if path.exists() else {}
        if prior.get("note"):
            result["note"] = prior["note"]  # written by hand: kept
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: {"best_lr_spread": result[k]["best_lr_spread"], "best_at_an_edge": result[k]["best_at_an_edge"]}
                          for k in ("standard", "mup")}, indent=2))
    for f in sorted(RESULTS.glob("mup_transfer_*.json")):
        r = json.loads(f.read_text())
        plot(r, DOCS / r["plot"])
    body = render()
    print(body)
    if not args.no_write:
        write_section("mup_transfer", body, heading="muP: one learning rate for every width (`bench/mup_transfer.py`)", doc=page("scale"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
