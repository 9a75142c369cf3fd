"""`guimo runs [DIR]` and `guimo show RUN`: what has been run, and what one run holds."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list run directories with scenario, status and headline metric",
                       description="List run directories (newest first). Names are printed whole, at any terminal "
                                   "width and when piped; --json prints one object per run for scripts.")
    p.add_argument("root", nargs="?", default="runs", help="folder to search (default: runs)")
    p.add_argument("--json", action="store_true", help="a JSON list, one object per run, instead of the table")
    p.set_defaults(func=list_main)
    s = sub.add_parser("show", help="print a run's manifest and metrics")
    s.add_argument("run", help="run directory")
    s.add_argument("--json", action="store_true", help="raw JSON instead of a table")
    s.set_defaults(func=show_main)


def run_row(run) -> dict:
    """One run as plain data: what the table shows and what --json prints."""
    m = run.metrics() or {}
    head = m.get("headline")
    value = m.get("model", {}).get(head) if head else None
    status = run.manifest.get("status", "?")
    failed = status.split(":", 1)[1] if status.startswith("failed:") else None
    stopped = run.stopped_stage()  # 'running' in the manifest, but its process is gone (kill -9)
    return {
        "run": str(run.path), "scenario": run.scenario, "status": status, "failed_stage": failed, "stopped_stage": stopped,
        "headline": head, "value": value if isinstance(value, (int, float)) else None,
        "created": run.manifest.get("created", ""),
    }


def format_table(rows: list[dict]) -> str:
    """Plain columns padded to their longest cell: nothing is cut or wrapped, so a name can be copied."""
    header = ("run", "scenario", "status", "headline", "created")
    cells = [header] + [(
        r["run"], r["scenario"],
        f"FAILED at {r['failed_stage']}" if r["failed_stage"] else f"STOPPED at {r['stopped_stage']}" if r["stopped_stage"] else r["status"],
        f"{r['headline']} {r['value']:.4f}" if r["value"] is not None else "-",
        r["created"],
    ) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def list_main(args: argparse.Namespace) -> int:
    import json

    from guimo.pipeline.rundir import list_runs

    rows = [run_row(run) for run in list_runs(args.root)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs under {args.root}")
        return 0
    print(format_table(rows))
    failed = [r for r in rows if r["failed_stage"] or r["stopped_stage"]]
    if failed:
        print(f"\n{len(failed)} failed or stopped run(s): each keeps its folder; re-run its command to resume it, "
              "or `guimo show RUN` for the error")
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
    console.print(report_line(run), highlight=False, soft_wrap=True)  # never wrapped: a path to copy
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
    for name, s in run.manifest.get("stages", {}).items():
        if s.get("error"):  # a failed stage's message, whole: what `guimo runs` points here for
            console.print(f"[red]{name} failed:[/] {s['error']}", highlight=False, soft_wrap=True)
    stopped = run.stopped_stage()
    if stopped:
        console.print(f"[red]{stopped} stopped:[/] its process is gone (killed?); re-run the run's command to resume it",
                      highlight=False, soft_wrap=True)
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
