"""Learning curves of labels on the real text benchmarks (issue #23): `guimo scale support|categorize --data-fractions`
on BANKING77 and PriceRunner, accuracy against labelled examples per class for the fine-tuned MiniLM and its two
baselines, and what 2x and 4x the labels would buy, priced.

    python bench/text_labels.py --name banking77 --data ../shared/data/banking77                  # ~15 min, 2 busy cores
    python bench/text_labels.py --name pricerunner-quarter --scenario categorize --data ../shared/data/pricerunner \
        --clusters 0.25                                                                           # ~15 min
    python bench/text_labels.py --render                                                          # rewrite the section

Each record is one `guimo scale SCENARIO` command (the product's own sweep, fit and pricing), with the settings below
so that a 2-core machine shared by several jobs trains the whole grid in about a quarter of an hour: ONE pass over
each share (the recipe ships 3; `sweep.epochs=1`), at least 60 steps per point (the recipe's min_steps), the best of
4 validations, one torch thread, and the head fitted on the frozen encoder before fine-tuning
(`model.head_init=probe`, LP-FT, the recipe bench/text_classify.py chose on BANKING77's validation split), which
makes a short fine-tuning start from the frozen-encoder baseline instead of from a random head. The sweep folder is
resumable: re-running the same command refits the finished points. `--clusters 0.25` first writes a seeded subsample
of PriceRunner's product clusters (a quarter of them, every offer of a kept cluster) to /tmp and sweeps that: the full
file's 25,000 training titles at one pass per share would take over half an hour here, and 4x the subsample's labels
is then about the whole file, whose single-run accuracies the section quotes beside the 4x prediction. Writes bench/results/text_labels_<name>.json,
copies the sweep's accuracy plot to bench/results/text_labels_<name>.png and rewrites the `text_labels` section of
docs/benchmarks/text.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from scale_labels import measure, publish  # noqa: E402  (bench/ is on sys.path when run as a script)

HEADING = "Learning curves of labels (bench/text_labels.py)"
FRACTIONS = "0.1,0.25,0.5,1"
# The shortened recipe (see the docstring): one pass per share, LP-FT head, BANKING77's validated lr pair.
SETTINGS = ["sweep.epochs=1", "sweep.lr_ref=2e-4", "train.lr=2e-4", "model.encoder_lr_mult=0.25",
            "model.head_init=probe", "train.warmup_steps=10"]


def cluster_subsample(src: Path, share: float, seed: int, out: Path) -> dict:
    """Keep ``share`` of PriceRunner's product clusters (seeded), every row of a kept cluster, header unchanged: the
    scenario still recognises the file and still splits it by cluster."""
    import csv
    import hashlib
    import random

    path = src / "pricerunner_aggregate.csv" if src.is_dir() else src
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    col = [h.strip() for h in head].index("Cluster ID")
    clusters = sorted({r[col] for r in body}, key=int)
    keep = set(random.Random(seed).sample(clusters, k=round(len(clusters) * share)))
    kept = [r for r in body if r[col] in keep]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(kept)
    return {"source": str(path), "clusters": f"{len(keep)} of {len(clusters)}", "rows": f"{len(kept)} of {len(body)}", "seed": seed,
            "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}


INTRO = ("What more labels buy, measured by the product's own `guimo scale support|categorize --data-fractions 0.1,0.25,0.5,1` "
         "on the real data: four stratified, nested shares of the labelled training split (every class keeps its share), each a "
         "MiniLM fine-tune scored beside its two baselines on the same test split; every contender fitted with "
         "err(n) = alpha n^(-beta) + gamma in labelled examples per class, 2x and 4x the labels predicted with 95% bootstrap "
         "bands and priced at `[labels] per_example` of guimo/prices.toml. The grid is shortened to fit a shared 2-core machine "
         "(one pass over each share, not the recipe's three; bench/text_labels.py says why each setting), so the full-share "
         "accuracies sit below the tuned single runs of the sections above.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", help="record name (bench/results/text_labels_NAME.json)")
    ap.add_argument("--scenario", default="support", choices=("support", "categorize"))
    ap.add_argument("--data", help="data.path")
    ap.add_argument("--out", help="sweep folder (default: runs/text-labels-NAME); a finished one is refitted, not retrained")
    ap.add_argument("--clusters", type=float, help="sweep a seeded subsample keeping this share of PriceRunner's product clusters")
    ap.add_argument("--set", action="append", default=[], dest="extra", help="one more --set for the sweep (repeatable)")
    ap.add_argument("--note", default="", help="a paragraph for the record (what the figures show, how it was sized)")
    ap.add_argument("--sweep-load", type=float, nargs=2, metavar=("LOW", "HIGH"),
                    help="the 1-minute load average's range while the sweep trained, when it trained before this invocation (which then only refits)")
    ap.add_argument("--render", action="store_true", help="only rewrite the section from bench/results/text_labels_*.json")
    args = ap.parse_args(argv)
    record = None
    if not args.render:
        if not (args.name and args.data):
            ap.error("--name and --data are required to measure")
        data, subsample = args.data, None
        if args.clusters:
            data = f"/tmp/guimo-bench/pricerunner-clusters-{args.clusters:g}.csv"
            subsample = cluster_subsample(Path(args.data), args.clusters, 0, Path(data))
        record = measure(args.name, args.scenario, args.out or str(ROOT / "runs" / f"text-labels-{args.name}"), data,
                         SETTINGS + args.extra, FRACTIONS, prefix="text_labels")
        record["note"], record["subsample"] = args.note, subsample
        if args.sweep_load:
            record["sweep_load"] = args.sweep_load
    publish("text_labels", "text", HEADING, INTRO, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
