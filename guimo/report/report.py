"""``report.md`` and ``plots/``: one page per run that a person reads instead of five JSON files.

Written by the evaluate stage and again by the optimize stage (which may replace the weights and
re-score them), always from what the run folder holds: ``manifest.json``, ``metrics.json``,
``train_log.jsonl``, ``model_config.json`` and ``optimize.json``. So the report is a pure function
of the folder: it can be rewritten at any time (``write_report(RunDir.open(path))``) and never
describes other weights than the metrics do; its first lines say which weights those are.

Every link is relative (``plots/training.png``, ``metrics.json``) so the folder can be moved,
copied or served as it is.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from guimo.evaluate.verdict import compared_metrics, higher_is_better, verdict
from guimo.io import atomic_write_text, iter_jsonl, read_json
from guimo.pipeline.rundir import STAGE_BOOKKEEPING, RunDir

REPORT = "report.md"
TRAINED = "checkpoints/best.safetensors"
FINAL = ("model.safetensors", "model.int8.safetensors")
# model_config.json fields worth a reader's attention, in this order (both model families)
MODEL_FIELDS = ("n_layer", "n_blocks", "n_head", "n_heads", "d_model", "d_ff", "max_len", "vocab_size", "n_items",
                "n_categories", "loss", "dropout", "tie_weights")
# breakdown bars show the transformer and at most this many baselines (the strongest on the headline)
BREAKDOWN_BASELINES = 2


def write_report(run: RunDir, stage: str = "evaluate", *, plots: bool = True) -> Path:
    """Write ``report.md`` and its plots into ``run``; returns the report's path.

    ``stage`` is the stage writing it: after "optimize" the evaluated weights are the final ones. ``plots=False``
    writes the tables alone (a sweep's points: ``guimo.pipeline.runner.run_pipeline``).
    """
    metrics = run.metrics() or {}
    drawn = _plots(run, metrics) if plots else {}
    text = render(run, metrics, drawn, stage)
    if not plots:
        text += ("\nPlots were not drawn (a scale sweep's point: its sweep's report has the curves). "
                 f"`guimo run {run.scenario} --out <this run's folder> --from evaluate` draws them.\n")
    return atomic_write_text(run / REPORT, text)


# -- plots -------------------------------------------------------------------------------------


def _plots(run: RunDir, metrics: dict) -> dict[str, str]:
    """Draw every plot the run's files allow; returns name -> path relative to the run folder.

    A plot newer than every file it is drawn from is kept as it is: the optimize stage rewrites the
    report after every run, and when it kept the trained weights nothing under plots/ changes
    (drawing the four figures costs about two seconds, matplotlib's import included).
    """
    from guimo.report.plots import baseline_bars, breakdown_plot, training_curves

    out: dict[str, str] = {}
    head = metrics.get("headline")
    log = run / "train_log.jsonl"
    sources = [run / "metrics.json"]

    def draw(name: str, file: str, inputs: list[Path], make) -> None:
        path = run.path / file
        if _newer_than(path, inputs) or make(path):
            out[name] = file

    def curves(path: Path):
        records = [r for _, r in iter_jsonl(log, skip_torn_tail=True)] if log.exists() else []
        train_metric = run.manifest.get("stages", {}).get("train", {}).get("metric")
        loss_unit = "nats per token" if run.scenario == "lm" else "nats per example"
        return training_curves(records, train_metric if train_metric != "loss" else head, path, loss_unit)

    draw("training", "plots/training.png", [log], curves)
    if head and metrics.get("model"):
        draw("baselines", "plots/baselines.png", sources, lambda path: baseline_bars(_tables(metrics), head, path))
    strongest = _strongest_baselines(metrics)
    for name, breakdown in (metrics.get("breakdown") or {}).items():
        draw(f"breakdown_{name}", f"plots/breakdown_{name}.png", sources,
             lambda path, b=breakdown: breakdown_plot(b, path, strongest))
    return out


def _newer_than(path: Path, inputs: list[Path]) -> bool:
    """True when ``path`` exists and was written after every existing input (make's rule)."""
    if not path.exists():
        return False
    mtime = path.stat().st_mtime_ns
    return all(mtime > p.stat().st_mtime_ns for p in inputs if p.exists())


def _tables(metrics: dict) -> list[tuple[str, dict, dict]]:
    tables = [(f"{metrics.get('split', 'test')} split, {_main_protocol(metrics)}", metrics.get("model") or {}, metrics.get("baselines") or {})]
    sampled = metrics.get("sampled")
    if isinstance(sampled, dict) and sampled.get("model"):
        tables.append(("sampled protocol (easier: compare only within)", sampled["model"], sampled.get("baselines") or {}))
    return tables


def _main_protocol(metrics: dict) -> str:
    protocol = metrics.get("protocol") or {}
    return f"ranked against the {protocol['ranking']}" if protocol.get("ranking") else "every model on the same targets"


def _strongest_baselines(metrics: dict) -> list[str] | None:
    """The baselines with the best headline value, best first (None: no headline to rank by)."""
    head = metrics.get("headline")
    rivals = {n: v[head] for n, v in (metrics.get("baselines") or {}).items() if isinstance((v or {}).get(head), (int, float))}
    if not rivals:
        return None
    hib = metrics.get("higher_is_better", higher_is_better(head))
    return sorted(rivals, key=rivals.get, reverse=hib)[:BREAKDOWN_BASELINES]


# -- markdown ----------------------------------------------------------------------------------


def render(run: RunDir, metrics: dict, plots: dict[str, str], stage: str) -> str:
    """The report's markdown (separate from writing, so tests can read it for any metrics dict)."""
    lines = [f"# Run report: {run.path.name}", ""]
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    lines += [f"A `guimo run {run.scenario}` run; this page was written by its {stage} stage at {now}.", ""]
    if not metrics:
        lines += ["No metrics yet: the evaluate stage has not finished.", ""]
    else:
        lines += [_weights_note(metrics, stage), ""]
        sentences = verdict(metrics)
        if sentences:
            lines += ["## Verdict", ""] + [f"- {s}" for s in sentences] + [""]
    lines += ["## What was run", ""] + _what_was_run(run) + [""]
    if metrics.get("model"):
        lines += _comparison(metrics, plots)
    lines += _calibration(metrics)
    lines += _privacy(metrics)
    lines += _training(run, metrics, plots)
    for name, breakdown in (metrics.get("breakdown") or {}).items():
        lines += _breakdown(name, breakdown, plots.get(f"breakdown_{name}"), _strongest_baselines(metrics))
    lines += ["## Files", ""]
    for name, what in (("manifest.json", "config, versions, data fingerprint, every stage's status and timing"),
                       ("metrics.json", "every number above, with the breakdowns under \"breakdown\""),
                       ("train_log.jsonl", "one line per logged step and per validation"),
                       ("optimize.json", "the optimize stage's search and quantization, and the metrics before it"),
                       ("model_config.json", "the model's architecture")):
        if (run / name).exists():
            lines.append(f"- [{name}]({name}): {what}")
    return "\n".join(lines) + "\n"


def _weights_note(metrics: dict, stage: str) -> str:
    """Which weights the numbers describe: a report must never pass off a checkpoint as the final model."""
    optimized = metrics.get("optimized")
    if optimized:
        return (f"**Weights:** the final ones (`model.safetensors`), which the optimize stage kept from "
                f"{optimized.get('source')}; the numbers before optimization are in [optimize.json](optimize.json).")
    weights = metrics.get("weights") or TRAINED
    if stage == "optimize" and weights == TRAINED:
        return (f"**Weights:** the final ones: the optimize stage kept `{weights}` unchanged as `model.safetensors`, "
                "so these numbers describe what `guimo serve` serves.")
    if stage == "optimize" or weights in FINAL:
        return f"**Weights:** the final ones (`{weights}`, written by an earlier optimize stage)."
    return (f"**Weights:** `{weights}`, the best training checkpoint. The optimize stage has not run yet; it writes the "
            "final `model.safetensors` and, if that changes the weights, scores them again and rewrites this report.")


def _what_was_run(run: RunDir) -> list[str]:
    m = run.manifest
    stages = m.get("stages", {})
    cfg = m.get("config", {})
    data = m.get("data", {})
    rows: list[tuple[str, str]] = [("scenario", run.scenario)]
    argv = m.get("environment", {}).get("argv") or []
    if argv and Path(argv[0]).name in ("guimo", "__main__.py"):  # a CLI run, not a sweep or a test calling the library
        rows.append(("command", f"`guimo {' '.join(argv[1:])}`"))
    source = data.get("source") or stages.get("collect", {}).get("source")
    if source:
        rows.append(("data", f"{source} (fingerprint `{data.get('fingerprint', '?')}`)"))
    prep = {k: v for k, v in stages.get("preprocess", {}).items()
            if k not in STAGE_BOOKKEEPING and isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    if prep:
        rows.append(("prepared data", ", ".join(f"{k.replace('_', ' ')} {_num(v, plain=True)}" for k, v in prep.items())))
    model_cfg = read_json(run / "model_config.json") if (run / "model_config.json").exists() else {}
    if model_cfg:
        rows.append(("model", ", ".join(f"{k} {model_cfg[k]}" for k in MODEL_FIELDS if model_cfg.get(k) is not None)))
    params = stages.get("init", {}).get("parameters") or {}
    if params:
        warm = stages["init"].get("warm_start") or {}
        rows.append(("parameters", f"{params.get('total', 0):,} ({params.get('non_embedding', 0):,} outside embeddings)"
                     + (f"; init {stages['init'].get('init')}" if stages["init"].get("init") else "")
                     + (f", then set to the {warm['from']}" if isinstance(warm.get("from"), str) else "")))
    auto = stages.get("preprocess", {}).get("auto_settings") or {}
    if auto:
        rows.append(("settings chosen from the data", "; ".join(f"{k} = {v.get('value')} ({v.get('why')})" for k, v in auto.items())))

    def setting(key: str) -> Any:
        """A config value as the run used it: chosen from the data where preprocess chose it."""
        if key in auto:
            return auto[key].get("value")
        section, _, name = key.partition(".")
        return (cfg.get(section) or {}).get(name, "?")

    tr = stages.get("train", {})
    if tr:
        text = f"{tr.get('steps', 0):,} steps of batch {setting('train.batch_size')}"
        if tr.get("tokens_seen"):
            text += f" ({tr.get('examples_seen', 0):,} examples, {tr['tokens_seen']:,} tokens)"
        text += f", peak learning rate {setting('train.lr')} after {setting('train.warmup_steps')} warmup steps"
        if tr.get("best_step") is not None:
            text += f"; best validation {tr.get('metric', 'metric')} {_num(tr.get('best_metric'))}{_window(cfg)} at step {tr['best_step']}"
        if tr.get("stopped_early"):
            text += "; stopped early (validation stopped improving)"
        rows.append(("training", text))
        if tr.get("device"):
            why = f" ({tr['precision_reason']})" if tr.get("precision_reason") else ""
            rows.append(("device", f"{tr['device']}, {tr.get('precision', '?')}{why}"
                         + (f", {tr['torch_threads']} torch thread(s)" if tr.get("torch_threads") else "")
                         + (f", {tr['world_size']} processes" if (tr.get("world_size") or 1) > 1 else "")))
    seconds = {name: s.get("seconds", 0) for name, s in stages.items()}
    if seconds:
        rows.append(("wall time", f"{sum(seconds.values()):.1f} s ("
                     + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items()) + ")"))
    env = m.get("environment", {})
    rows.append(("software", f"guimo {env.get('guimo')}, torch {env.get('packages', {}).get('torch', '?')}, "
                 f"Python {env.get('python')}, git {env.get('git_revision') or 'unknown'}"))
    return ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in rows]


def _comparison(metrics: dict, plots: dict[str, str]) -> list[str]:
    head = metrics.get("headline")
    lines = ["## The model beside the baselines", ""]
    if head:
        direction = "higher" if metrics.get("higher_is_better", higher_is_better(head)) else "lower"
        lines += [f"Headline metric: **{head}** ({direction} is better).", ""]
    for i, (title, model, baselines) in enumerate(_tables(metrics)):
        lines += [f"**{title}**", ""]
        if i == 1:
            n = (metrics.get("protocol") or {}).get("sampled_negatives")
            lines += [f"The sampled protocol ranks each target against {n or 'a sample of'} random items the user has not "
                      "seen instead of the whole catalogue, as older papers did: its numbers are higher and do not compare "
                      "with the table above.", ""]
        lines += _metric_table(model, baselines, head) + [""]
    if plots.get("baselines"):
        lines += [f"![{head} of the transformer and each baseline]({plots['baselines']})", ""]
    return lines


def _metric_table(model: dict, baselines: dict, head: str | None) -> list[str]:
    cols = ["transformer", *baselines]
    rows = [f"| metric | {' | '.join(cols)} |", "|---|" + "---:|" * len(cols)]
    for metric in compared_metrics(model):
        cells = [model.get(metric)] + [(baselines[b] or {}).get(metric) for b in baselines]
        best = _best_index(cells, metric)
        shown = [f"**{_num(v)}**" if i == best else _num(v) for i, v in enumerate(cells)]
        rows.append(f"| {metric}{' (headline)' if metric == head else ''} | {' | '.join(shown)} |")
    return rows + ["", "Bold: the best value in the row."]


def _best_index(values: list, metric: str) -> int | None:
    nums = [(v, i) for i, v in enumerate(values) if isinstance(v, (int, float))]
    if not nums:
        return None
    pick = max if higher_is_better(metric) else min
    return pick(nums, key=lambda t: t[0])[1]  # ties: the first column (the transformer) keeps the bold


def _calibration(metrics: dict) -> list[str]:
    """Classifiers (guimo.scenarios.textclass): temperature scaling and the out-of-scope threshold, in words."""
    cal, oos = metrics.get("calibration"), metrics.get("out_of_scope")
    if not cal:
        return []
    lines = ["## Calibration and out-of-scope rejection", "",
             f"Temperature scaling fitted on the {cal.get('fitted_on', 'validation')} split: T = {_num(cal['temperature'])}; "
             f"test expected calibration error {_num(cal['ece_before'])} before, {_num(cal['ece_after'])} after "
             f"({cal.get('bins', '?')} bins), NLL {_num(cal['nll_before'])} -> {_num(cal['nll_after'])}.", ""]
    if oos:
        lo = oos.get("threshold_log_odds", "absent")
        on = (f" (log-odds {_num(lo)}: decisions compare log-odds, which unlike a probability never round to 1.0)" if lo not in (None, "absent")
              else " (nothing is rejected on confidence)" if lo is None else "")
        lines += [f"Out-of-scope threshold {_num(oos['threshold'])} on the calibrated confidence{on}: {oos['chosen']}."]
        test = oos.get("test")
        if test:
            lines += [f"On test: out-of-scope precision {_num(test['oos_precision'])}, recall {_num(test['oos_recall'])}; "
                      f"in-scope queries kept {_num(test['in_scope_kept'])}, joint accuracy {_num(test['joint_accuracy'])}."]
        elif "test_in_scope_kept" in oos:
            lines += [f"The test split has no out-of-scope rows; {_num(oos['test_in_scope_kept'])} of its queries are kept."]
        lines.append("")
    return lines


def _privacy(metrics: dict) -> list[str]:
    """DP-SGD runs (guimo.privacy.dp): the privacy spent, how, and what the guarantee does not cover."""
    p = metrics.get("privacy")
    if not p:
        return []
    return ["## Differential privacy", "",
            f"The transformer was trained with DP-SGD: ({_num(p['epsilon'])}, {p['delta']:.3g})-differentially private "
            f"with respect to its {p['train_rows']} training rows ({p['accountant'].upper()} accountant; target epsilon "
            f"{_num(p['target_epsilon'])}). Each of {p['steps']} steps drew every row with probability {_num(p['sample_rate'])} "
            f"(about {p['expected_batch_size']:.0f} rows), clipped each row's gradient to norm {_num(p['max_grad_norm'])} "
            f"and added Gaussian noise of {_num(p['noise_multiplier'])} times that norm. Calibration fits the logit's shift "
            "with the temperature on validation (Platt scaling): clipping pulls a DP model's logit toward the majority class.", "",
            "Not covered: the baselines, the table encoder's statistics (scaling quantiles, category vocabularies) and the "
            "validation rows (early stopping, calibration) are fitted without noise; ship only the transformer's weights "
            "where the guarantee must hold.", ""]


def _training(run: RunDir, metrics: dict, plots: dict[str, str]) -> list[str]:
    tr = run.manifest.get("stages", {}).get("train", {})
    if not tr and not plots.get("training"):
        return []
    lines = ["## Training", ""]
    if plots.get("training"):
        lines += [f"![training and validation curves]({plots['training']})", ""]
    if tr.get("best_step") is not None:
        lines += [f"The best validation {tr.get('metric', 'metric')} ({_num(tr.get('best_metric'))}{_window(run.manifest.get('config', {}))}) "
                  f"came at step {tr['best_step']} of {tr.get('steps', '?')}; `checkpoints/best.safetensors` holds those weights.", ""]
    return lines


def _window(cfg: dict) -> str:
    """How the best validation was judged, when not alone (``train.select_window``)."""
    n = (cfg.get("train") or {}).get("select_window") or 1
    return f", the mean of {n} validations centred there" if n > 1 else ""


def _breakdown(name: str, breakdown: dict, plot: str | None, strongest: list[str] | None) -> list[str]:
    """A table of the breakdown (transformer and the strongest baselines) and where a baseline beats it."""
    buckets = breakdown.get("buckets") or []
    if not buckets:
        return []
    shown = strongest if strongest is not None else list(buckets[0]["baselines"])
    weight = breakdown.get("weight", "cases")
    lines = [f"## Test metrics {breakdown.get('title', name)}", ""]
    lines += [f"Buckets of {breakdown.get('axis', name)}; each bucket's number averages only its own {weight}, and "
              f"weighting the buckets by their {weight} gives back the overall number.", ""]
    header = ["bucket", weight]
    for metric in breakdown["metrics"]:
        header += [f"{metric} {who}" for who in ["transformer", *shown]]
    lines += [f"| {' | '.join(header)} |", "|---|" + "---:|" * (len(header) - 1)]
    losses: dict[str, list[str]] = {}
    for b in buckets:
        cells = [b["label"], _num(b["weight"])]
        for metric in breakdown["metrics"]:
            cells += [_num(b["model"][metric])] + [_num(b["baselines"][n][metric]) for n in shown]
        lines.append(f"| {' | '.join(cells)} |")
        first = breakdown["metrics"][0]
        for n, values in b["baselines"].items():
            v, m = values[first], b["model"][first]
            if (v > m) if higher_is_better(first) else (v < m):
                losses.setdefault(n, []).append(b["label"])
    lines.append("")
    first = breakdown["metrics"][0]
    if losses:
        lines += [f"- {n} beats the transformer on {first} for: {', '.join(labels)}." for n, labels in losses.items()] + [""]
    else:
        lines += [f"The transformer is ahead of every baseline on {first} in every bucket.", ""]
    if plot:
        lines += [f"![test {first} {breakdown.get('title', name)}]({plot})", ""]
    return lines


def _num(v: Any, plain: bool = False) -> str:
    """Metrics with 4 decimals (as the summary table prints them); ``plain``: counts and sizes, 4 digits."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float) and plain:
        return f"{v:,.4g}"
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 1:
            return f"{int(v):,}"
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
