"""Which model wins: the transformer against each baseline, said in words.

One function decides, and both the table printed after a run (`guimo.cli.summary`) and the run
report (`guimo.report`) print its sentences, so they can never disagree. A baseline that beats
the transformer on any metric, in the main table or under the sampled protocol, is named with
the metrics where it is ahead: a user deciding whether the model is worth serving must not have
to read that off a table of numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

LOWER_IS_BETTER = ("loss", "perplexity", "bits_per_byte", "ece", "log_loss", "cost_per_row", "rmse", "mae")  # ece: a classifier's calibration error; cost_per_row, rmse, mae: the tabular scenarios'
NOT_COMPARED = {"cases", "examples", "eval_tokens"}  # sizes of the evaluation, not quality


@dataclass(frozen=True)
class Lead:
    """A metric on which a baseline beats the transformer."""

    baseline: str
    metric: str
    protocol: str  # "main" (the main table) or "sampled" (the sampled-negatives protocol)
    model_value: float
    baseline_value: float


def higher_is_better(metric: str) -> bool:
    """Ranking and accuracy metrics go up; losses, perplexity and bits per byte go down."""
    return metric.split("@")[0] not in LOWER_IS_BETTER


def compared_metrics(model: dict) -> list[str]:
    """The metrics worth comparing, in the table's order: numbers only, no counts, and no
    ``recall@K`` where ``hr@K`` is there too (with one target per case they are the same number)."""
    keys = [k for k, v in model.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NOT_COMPARED]
    return [k for k in keys if not (k.startswith("recall@") and "hr@" + k.split("@", 1)[1] in keys)]


def _tables(metrics: dict) -> list[tuple[str, dict, dict]]:
    tables = [("main", metrics.get("model") or {}, metrics.get("baselines") or {})]
    sampled = metrics.get("sampled")
    if isinstance(sampled, dict) and sampled.get("model"):
        tables.append(("sampled", sampled["model"], sampled.get("baselines") or {}))
    return tables


def baseline_leads(metrics: dict) -> list[Lead]:
    """Every (baseline, metric, protocol) where the baseline is strictly better than the transformer."""
    leads = []
    for protocol, model, baselines in _tables(metrics):
        for metric in compared_metrics(model):
            m = model[metric]
            for name, values in baselines.items():
                b = (values or {}).get(metric)
                if not isinstance(b, (int, float)):
                    continue
                if (b > m) if higher_is_better(metric) else (b < m):
                    leads.append(Lead(name, metric, protocol, float(m), float(b)))
    return leads


def headline_sentence(metrics: dict) -> str | None:
    """Who wins the headline metric of the main table, by how much, against the best baseline."""
    head = metrics.get("headline")
    model = (metrics.get("model") or {}).get(head)
    rivals = {n: v.get(head) for n, v in (metrics.get("baselines") or {}).items() if isinstance((v or {}).get(head), (int, float))}
    if head is None or not isinstance(model, (int, float)):
        return None
    if not rivals:
        return f"No baseline was evaluated; the transformer's {head} is {model:.4f}."
    hib = metrics.get("higher_is_better", higher_is_better(head))
    best = max(rivals, key=rivals.get) if hib else min(rivals, key=rivals.get)
    b = rivals[best]
    direction = "higher" if hib else "lower"
    if b == model:
        return f"The transformer and {best} tie on the headline metric {head} ({model:.4f}; {direction} is better)."
    model_wins = (model > b) if hib else (model < b)
    winner, loser, wv, lv = ("the transformer", best, model, b) if model_wins else (best, "the transformer", b, model)
    rel = f" ({abs(wv - lv) / abs(lv):.1%} {direction})" if lv else ""
    return (f"On the headline metric {head}, {winner} wins: {wv:.4f} against {lv:.4f} "
            f"for {loser}{rel}" + (", the strongest baseline." if model_wins else "."))


def lead_sentences(metrics: dict) -> list[str]:
    """One sentence per baseline and protocol where it beats the transformer, e.g.
    ``item_knn is ahead of the transformer on hr@10, hr@20 (sampled protocol).``; or one sentence
    saying no baseline is ahead anywhere."""
    leads = baseline_leads(metrics)
    if not leads:
        return ["No baseline beats the transformer on any metric."] if metrics.get("baselines") else []
    grouped: dict[tuple[str, str], list[str]] = {}
    for lead in leads:
        grouped.setdefault((lead.baseline, lead.protocol), []).append(lead.metric)
    return [f"{name} is ahead of the transformer on {', '.join(ms)}" + (" (sampled protocol)." if protocol == "sampled" else ".")
            for (name, protocol), ms in grouped.items()]


def verdict(metrics: dict) -> list[str]:
    """The headline sentence, then every baseline lead: what the summary and the report print."""
    head = headline_sentence(metrics)
    return ([head] if head else []) + lead_sentences(metrics)
