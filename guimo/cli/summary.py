"""The table printed after a run: the model beside its baselines, plus size, data and time.

Metrics are rows and models are columns, so the table fits a terminal however many metrics a
scenario reports. Numbers under another protocol (e.g. sampled-100 ranking) get a table of
their own with its label, never mixed into the main one. Below the tables, in words, who wins the
headline metric and every metric on which a baseline beats the transformer
(`guimo.evaluate.verdict`, the same sentences as the run's report.md).
"""

from __future__ import annotations

from guimo.pipeline.rundir import RunDir

COUNT_KEYS = {"cases", "examples", "eval_tokens"}  # sizes of the evaluation, shown in the caption


def print_summary(run: RunDir, report: bool = True) -> None:
    """Print the tables, the verdict in words and a footer; ``report``: end with the report's path."""
    from rich.console import Console

    console = Console()
    metrics = run.metrics() or {}
    headline = metrics.get("headline")
    title = f"{run.scenario} — {run.path} ({metrics.get('split', 'test')} split)"
    console.print(_table(title, metrics.get("model", {}), metrics.get("baselines", {}), headline))
    sampled = metrics.get("sampled")
    if isinstance(sampled, dict) and sampled.get("model"):
        # the caption as a line of its own: as a table title rich would wrap it to the table's width
        console.print(sampled_caption(metrics), highlight=False)
        console.print(_table(None, sampled["model"], sampled.get("baselines", {}), headline))
    from guimo.evaluate.verdict import verdict

    for sentence in verdict(metrics):
        console.print(sentence, highlight=False)
    console.print(_footer(run, metrics))
    from guimo.report import REPORT

    if report and (run.path / REPORT).exists():
        console.print(f"report with plots: {run.path / REPORT}", highlight=False, soft_wrap=True)


def sampled_caption(metrics: dict) -> str:
    """One line a newcomer can parse: what the sampled protocol ranks, and why its numbers are higher."""
    protocol = metrics.get("protocol") or {}
    n = protocol.get("sampled_negatives")
    label = str(protocol.get("sampled") or "")
    if n is None and label.split(" ", 1)[0].isdigit():  # runs made before the count had its own key
        n = int(label.split(" ", 1)[0])
    against = f"{n} random items the user has not seen" if n else "a sample of random items"
    return (f"Sampled protocol, as in older papers: each target ranked against {against} instead of the "
            "whole catalogue (easier, so compare numbers only within this table):")


def _table(title: str | None, model: dict, baselines: dict, headline: str | None):
    from rich.table import Table

    columns = {"transformer": model, **baselines}
    names = [n for n in (list(model) or sorted({k for b in baselines.values() for k in b})) if n not in COUNT_KEYS]
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for col in columns:
        table.add_column(col, justify="right", style="bold" if col == "transformer" else None)
    for n in names:
        table.add_row(f"[bold]{n}[/] (headline)" if n == headline else n, *[_fmt(v.get(n)) for v in columns.values()])
    return table


def _footer(run: RunDir, metrics: dict) -> str:
    stages = run.manifest.get("stages", {})
    params = stages.get("init", {}).get("parameters", {})
    tr = stages.get("train", {})
    seconds = sum(s.get("seconds", 0) for s in stages.values())
    parts = []
    if params:
        parts.append(f"parameters {params.get('total', 0):,} (non-embedding {params.get('non_embedding', params.get('total', 0)):,})")
    if tr:
        parts.append(f"examples seen {tr.get('examples_seen', 0):,}, tokens seen {tr.get('tokens_seen', 0):,}, steps {tr.get('steps', 0)}")
    counts = {k: v for k, v in {**metrics, **metrics.get("model", {})}.items() if k in COUNT_KEYS}
    if counts:
        parts.append("evaluated on " + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in counts.items()))
    parts.append(f"wall time {seconds:.1f} s")
    return " · ".join(parts)


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
