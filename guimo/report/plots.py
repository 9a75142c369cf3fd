"""The run report's PNG plots (matplotlib, Agg backend: no display needed).

Each function draws one figure from plain data (log records, the metrics dict, a breakdown) and
writes it atomically; matplotlib is imported here only, so `import guimo` stays fast.
"""

from __future__ import annotations

import io
from pathlib import Path
from guimo.evaluate.verdict import higher_is_better
from guimo.io import atomic_write_bytes

MODEL_COLOR = "#1f4e9c"
BASELINE_COLORS = ("#9a9a9a", "#d08c2a", "#4f9a5a", "#a34f8c", "#5fa3c2")

UNITS = {"loss": "nats per token", "bits_per_byte": "bits per byte", "perplexity": "perplexity"}


def metric_label(metric: str) -> str:
    """Axis label with its unit and direction, e.g. 'bits per byte (lower is better)'."""
    name = UNITS.get(metric, metric.upper() if metric.startswith(("ndcg", "hr", "mrr")) else metric)
    return f"{name} ({'higher' if higher_is_better(metric) else 'lower'} is better)"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def training_curves(records: list[dict], val_metric: str | None, path: Path, loss_unit: str = "nats") -> Path | None:
    """Training loss per logged step, the validation loss beside it when the evaluation reports one,
    and the validation metric that picked the best checkpoint in a second panel when it is not the loss.

    ``records`` are train_log.jsonl lines: ``{"step", "loss", ...}`` per logged step and
    ``{"step", "eval": {...}, "best"}`` per validation. None when nothing was logged.
    """
    train = [(r["step"], r["loss"]) for r in records if "loss" in r and "eval" not in r]
    evals = [(r["step"], r["eval"], bool(r.get("best"))) for r in records if isinstance(r.get("eval"), dict)]
    if not train and not evals:
        return None
    second = val_metric if val_metric and val_metric != "loss" and any(val_metric in e for _, e, _ in evals) else None
    plt = _plt()
    fig, axes = plt.subplots(1, 2 if second else 1, figsize=(11 if second else 6.5, 4.2), squeeze=False)
    ax = axes[0][0]
    if train:
        ax.plot([s for s, _ in train], [v for _, v in train], color=MODEL_COLOR, lw=1.4, label="training batches")
    val_loss = [(s, e["loss"]) for s, e, _ in evals if "loss" in e]
    if val_loss:
        ax.plot([s for s, _ in val_loss], [v for _, v in val_loss], "o-", color="#d08c2a", lw=1.4, label="validation")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"loss ({loss_unit})")
    ax.set_title("loss during training")
    ax.grid(alpha=0.3)
    ax.legend()
    if second:
        ax2 = axes[0][1]
        pts = [(s, e[second], best) for s, e, best in evals if second in e]
        ax2.plot([s for s, _, _ in pts], [v for _, v, _ in pts], "o-", color="#d08c2a", lw=1.4, label="validation")
        best = [(s, v) for s, v, b in pts if b]
        if best:
            ax2.scatter([best[-1][0]], [best[-1][1]], s=120, facecolors="none", edgecolors="black", label="best checkpoint")
        ax2.set_xlabel("training step")
        ax2.set_ylabel(metric_label(second))
        ax2.set_title(f"validation {second}")
        ax2.grid(alpha=0.3)
        ax2.legend()
    return _save(fig, path)


def colors_for(names: list[str], baselines: list[str]) -> dict[str, str]:
    """The transformer in blue, each baseline in the colour of its place in ``baselines`` (the
    metrics' order), so one baseline has one colour in every plot of a report."""
    return {n: MODEL_COLOR if n == "transformer" else BASELINE_COLORS[baselines.index(n) % len(BASELINE_COLORS)] for n in names}


def _bars(ax, names: list[str], values: list[float], title: str, metric: str) -> None:
    colors = list(colors_for(names, names[1:]).values())
    bars = ax.bar(names, values, color=colors)
    for bar, v in zip(bars, values):
        ax.annotate(f"{v:.4f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(metric_label(metric))
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.15)


def baseline_bars(tables: list[tuple[str, dict, dict]], metric: str, path: Path) -> Path | None:
    """The headline metric of the transformer and each baseline, one panel per protocol.

    ``tables`` are ``(title, model metrics, {baseline: metrics})``.
    """
    panels = [(t, ["transformer", *[n for n in b if metric in (b[n] or {})]], m, b) for t, m, b in tables if metric in m]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, names, model, baselines) in zip(axes[0], panels):
        _bars(ax, names, [model[metric]] + [baselines[n][metric] for n in names[1:]], title, metric)
    return _save(fig, path)


def breakdown_plot(breakdown: dict, path: Path, baselines: list[str] | None = None) -> Path | None:
    """The breakdown's first metric per bucket: grouped bars (cases), or lines over context length (bytes).

    ``baselines`` limits the baselines drawn (the report passes the strongest ones).
    """
    buckets = breakdown.get("buckets") or []
    if not buckets:
        return None
    metric = breakdown["metrics"][0]
    names = baselines if baselines is not None else list(buckets[0]["baselines"])
    series = {"transformer": [b["model"][metric] for b in buckets]}
    series.update({n: [b["baselines"][n][metric] for b in buckets] for n in names})
    labels = [b["label"] for b in buckets]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 * len(buckets) + 2), 4.4))
    colors = colors_for(list(series), list(buckets[0]["baselines"]))
    if breakdown.get("weight") == "bytes":  # positions: a line per model over the doubling buckets
        for n, ys in series.items():
            ax.plot(range(len(labels)), ys, "o-", color=colors[n], lw=2 if n == "transformer" else 1.2, label=n)
    else:
        width = 0.8 / len(series)
        for i, (n, ys) in enumerate(series.items()):
            ax.bar([x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))], ys, width, color=colors[n], label=n)
        labels = [f"{b['label']}\n({b['weight']:,} cases)" for b in buckets]
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlabel(breakdown.get("axis", ""))
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"test {metric} {breakdown.get('title', '')}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)

