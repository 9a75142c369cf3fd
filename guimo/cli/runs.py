"""`guimo runs [DIR]` and `guimo show RUN`: what has been run, and what one run holds."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list run directories with scenario, status and headline metric")
    p.add_argument("root", nargs="?", default="runs", help="folder to search (default: runs)")
    p.set_defaults(func=list_main)
    s = sub.add_parser("show", help="print a run's manifest and metrics")
    s.add_argument("run", help="run directory")
    s.add_argument("--json", action="store_true", help="raw JSON instead of a table")
    s.set_defaults(func=show_main)


def list_main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from guimo.pipeline.rundir import list_runs

    runs = list_runs(args.root)
    table = Table(title=f"runs under {args.root}")
    for col in ("run", "scenario", "status", "headline", "created"):
        table.add_column(col)
    for run in runs:
        m = run.metrics() or {}
        head = m.get("headline")
        value = m.get("model", {}).get(head) if head else None
        table.add_row(str(run.path), run.scenario, run.manifest.get("status", "?"),
                      f"{head} {value:.4f}" if isinstance(value, (int, float)) else "—", run.manifest.get("created", ""))
    Console().print(table)
    return 0


def show_main(args: argparse.Namespace) -> int:
    import json

    from guimo.pipeline.rundir import RunDir

    run = RunDir.open(args.run)
    if args.json:
        print(json.dumps({"manifest": run.manifest, "metrics": run.metrics()}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{run.path}[/] — scenario {run.scenario}, status {run.manifest.get('status')}")
    console.print(report_line(run), highlight=False)
    env = run.manifest.get("environment", {})
    console.print(f"guimo {env.get('guimo')} · python {env.get('python')} · git {env.get('git_revision')} · data {run.manifest.get('data', {}).get('fingerprint', '—')}")
    train = run.manifest.get("stages", {}).get("train", {})
    if "device" in train:  # runs made before the manifest recorded it say nothing
        console.print(f"trained on {train['device']} in {train.get('precision')}, {train.get('steps')} steps")
    stages = Table(title="stages")
    for col in ("stage", "status", "seconds"):
        stages.add_column(col)
    for name, s in run.manifest.get("stages", {}).items():
        stages.add_row(name, s.get("status", "?"), f"{s.get('seconds', 0):.1f}")
    console.print(stages)
    console.print_json(json.dumps(run.config))
    if run.metrics():
        from guimo.cli.summary import print_summary

        print_summary(run, report=False)
    return 0


def report_line(run) -> str:
    """Where the run's report is, or which stage writes it (a path a user can open or copy)."""
    from guimo.report import REPORT

    path = run.path / REPORT
    return f"report: {path}" if path.exists() else f"report: none yet ({REPORT} is written by the evaluate stage)"
