"""The table printed after a run: the model beside its baselines, plus size, data and time."""

from __future__ import annotations

from guimo.pipeline.rundir import RunDir


def print_summary(run: RunDir) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    metrics = run.metrics() or {}
    model = metrics.get("model", {})
    baselines = metrics.get("baselines", {})
    names = list(model) or sorted({k for b in baselines.values() for k in b})
    headline = metrics.get("headline")
    table = Table(title=f"{run.scenario} — {run.path} ({metrics.get('split', 'test')} split)")
    table.add_column("model")
    for n in names:
        table.add_column(f"[bold]{n}[/]" if n == headline else n, justify="right")
    table.add_row("transformer", *[_fmt(model.get(n)) for n in names], style="bold")
    for b, vals in baselines.items():
        table.add_row(b, *[_fmt(vals.get(n)) for n in names])
    console.print(table)
    stages = run.manifest.get("stages", {})
    params = stages.get("init", {}).get("parameters", {})
    tr = stages.get("train", {})
    seconds = sum(s.get("seconds", 0) for s in stages.values())
    parts = []
    if params:
        parts.append(f"parameters {params.get('total', 0):,} (non-embedding {params.get('non_embedding', params.get('total', 0)):,})")
    if tr:
        parts.append(f"examples seen {tr.get('examples_seen', 0):,}, tokens seen {tr.get('tokens_seen', 0):,}, steps {tr.get('steps', 0)}")
    parts.append(f"wall time {seconds:.1f} s")
    console.print(" · ".join(parts))


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
