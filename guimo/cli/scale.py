"""`guimo scale` (sweeps, fits, plans) and `guimo economics` (unit costs from measurements)."""

from __future__ import annotations

import argparse

SCALE_HELP = """\
  guimo scale SCENARIO [--budget 30m] [--data PATH] [--data-fractions 0.1,0.25,0.5,1] [--out DIR]
      sweep the scenario's validated design (guimo/recipes/scale/SCENARIO.toml), fit it and print
      the verdict: 2x and 4x the model and the data predicted with intervals, whether the sweep's
      own held-out check passed, what the fit cannot support (DIR/scale/report.md; re-run resumes).
      For a classifier (categorize, support) the data axis is labelled examples per class, the
      baselines get curves too, and 2x / 4x the labels are priced ([labels] in guimo/prices.toml)
  guimo scale fit DIR              refit a sweep folder (by the recipe it ran) or any folder of runs
  guimo scale plan --compute FLOPS [--fit DIR]   compute-optimal N and D, with bands

Research knobs live in recipes: --config FILE (e.g. bench/scale_*.toml); --set sweep.KEY=V,
fit.KEY=V or verdict.KEY=V changes one; any other --set KEY=V sets a run key of every point.
"""


# Options `guimo scale` had before its research knobs moved into recipes, and the recipe key each one became
MOVED = {
    "--sizes": "sweep.sizes=A,B,...", "--seeds": "sweep.seeds=N", "--epochs": "sweep.epochs=E",
    "--repeat-to-full": "sweep.repeat_to_full=true", "--context": "sweep.context=T", "--batch-size": "sweep.batch_size=B",
    "--min-steps": "sweep.min_steps=S", "--lr-ref": "sweep.lr_ref=LR", "--lr-exponent": "sweep.lr_exponent=X",
    "--mup": "model.mup_base_head_dim=H --set model.mup_base_width=W --set sweep.lr_exponent=0 (as guimo/recipes/scale/lm.toml does)",
    "--lr-probe": "sweep.lr_probe=M1,M2,...", "--probe-fraction": "sweep.probe_fraction=F", "--probe-only": "sweep.probe_only=true",
    "--probe-sizes": "sweep.probe_sizes=A,B", "--probe-extend": "sweep.probe_extend=K", "--probe-set": "sweep.probe_key=KEY --set sweep.probe_values=V1,V2",
    "--evals": "sweep.evals=K", "--order": "sweep.order=span|cheapest", "--threads": "sweep.threads=N", "--metric": "fit.metric=KEY",
    "--correction": "fit.correction=muennighoff", "--bootstrap": "fit.bootstrap=N", "--huber-delta": "fit.huber_delta=D",
    "--form": "fit.form=chinchilla|kaplan", "--params": "fit.params=total|non_embedding", "--fix-E": "fit.fix_E=E",
    "--noise-sims": "fit.noise_sims=N", "--allow-missing": "fit.allow_missing=true", "--prices": "fit.prices=FILE",
}


class _Moved(argparse.Action):
    def __init__(self, *args, moved_to: str, **kwargs):
        self.moved_to = moved_to
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is a recipe key now: use --set {self.moved_to} (or a recipe file, --config)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale", help="sweeps over model and data size that say what a larger model or more data buys",
                       description=SCALE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       usage="guimo scale {SCENARIO,fit DIR,plan} [options]")
    p.add_argument("target", metavar="SCENARIO|fit|plan", help=argparse.SUPPRESS)
    p.add_argument("dir", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--config", metavar="FILE", help="scale recipe (default: the scenario's own)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a recipe key (sweep.*, fit.*, verdict.*) or a run key of every point")
    p.add_argument("--data", metavar="PATH", help="your data (data.path) instead of the embedded default")
    p.add_argument("--data-fractions", metavar="F1,F2,...",
                   help="shares of the training data to train at (sweep.fractions); a classifier's are stratified, so every class keeps its share")
    p.add_argument("--budget", metavar="DURATION", help="skip the points that would overrun it (90s, 30m, 1.5h, 2d)")
    p.add_argument("--out", metavar="DIR", help="sweep folder (default: runs/scale-SCENARIO-TIME)")
    p.add_argument("--workers", type=int, metavar="N", help="points trained at once (default: the recipe's)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="points as Ray tasks: auto, ray://HOST:10001, or none (local)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    pl = p.add_argument_group("plan")
    pl.add_argument("--compute", type=float, metavar="FLOPS", help="training compute budget, e.g. 1e18")
    pl.add_argument("--fit", dest="fit_from", metavar="DIR", help="a sweep folder (or its fit.json) to plan with")
    pl.add_argument("--target-loss", type=float, metavar="L", help="also the least compute that reaches this loss")
    for flag, key in MOVED.items():  # the flags of the research knobs, now recipe keys: a hint instead of "unrecognized"
        p.add_argument(flag, nargs="?", action=_Moved, help=argparse.SUPPRESS, dest=f"moved_{flag}", moved_to=key)
    p.set_defaults(func=scale_main)

    e = sub.add_parser("economics", help="unit costs of training and serving, and the three business models",
                       description="Turn measured training time, serving throughput and NDCG into unit costs with an editable price table. "
                                   "Every figure names the measurement and the assumption it comes from.")
    e.add_argument("--prices", help="price table merged over guimo/prices.toml")
    e.add_argument("--throughput", help="the server's load benchmark JSON (e.g. bench/results/serve_load.json): {\"rows\": [{\"model\", "
                                        "\"concurrency\", \"batching\", \"requests_per_s\", \"p50_ms\", \"p95_ms\", \"p99_ms\"}, ...]} or a bare list of rows")
    e.add_argument("--runs", help="folder of run directories: training cost of each")
    e.add_argument("--fit", dest="fit_from", help="a sweep folder (or scale/fit.json): expected quality of the on-device model")
    e.add_argument("--scenario", default="lm", help="the served scenario: picks the throughput rows and the request price")
    e.add_argument("--traffic", type=float, help="target traffic in requests/s: replicas needed and cost")
    e.add_argument("--p99-ms", type=float, default=1000.0, help="p99 latency target for --traffic")
    e.add_argument("--recommend-run", help="a recommend run: its NDCG@10 and the popularity baseline's for the e-commerce figures")
    e.add_argument("--ndcg", help="MODEL,BASELINE NDCG@10 measured elsewhere (instead of --recommend-run)")
    e.add_argument("--out", help="write the figures as Markdown (and plots beside it)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.set_defaults(func=economics_main)


def scale_main(args: argparse.Namespace) -> int:
    from guimo.errors import GuimoError

    if args.target == "fit":
        if not args.dir:
            raise GuimoError("usage: guimo scale fit DIR")
        return _fit(args, args.dir, _fit_recipe(args, args.dir))
    if args.target == "plan":
        return _plan(args)
    if args.dir:
        raise GuimoError(f"unexpected argument '{args.dir}': a sweep takes its folder from --out")
    return _sweep(args)


def _sweep(args) -> int:
    import datetime as dt

    from guimo import scenarios
    from guimo.duration import parse_duration
    from guimo.scale.recipe import load_recipe, sweep_spec, with_sets
    from guimo.scale.sweep import run_sweep

    scenarios.get(args.target)  # unknown scenario: a clear error before any work
    sets = [*([f"sweep.fractions={args.data_fractions}"] if args.data_fractions else []), *args.overrides,
            *([f"data.path={args.data}"] if args.data else [])]
    recipe = with_sets(load_recipe(args.target, args.config), sets)
    budget = parse_duration(args.budget, "--budget") if args.budget else None
    spec = sweep_spec(recipe, budget_s=budget, workers=args.workers, ray=args.ray)
    out = args.out or f"runs/scale-{args.target}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if not args.quiet:
        print(f"recipe: {recipe.source}" + (f" ({recipe.description})" if recipe.description else ""))
    record = run_sweep(spec, out, quiet=args.quiet, recipe=recipe.as_dict())
    if spec.probe_only:
        from guimo.scale.probe import describe_choice

        for size, choice in record.get("set_probe", {}).items():
            print(describe_choice(size, choice, spec.probe_key))
        for size, choice in record.get("lr_probe", {}).items():
            print(describe_choice(size, choice))
        print(f"probe done in {out}; the same command without sweep.probe_only trains the grid with these choices")
        return 0
    done = sum(p.get("status") == "done" for p in record["points"])
    print(f"{done} of {len(record['points'])} points done in {out} ({record['wall_s']:.0f} s)")
    return _fit(args, out, recipe)


def _fit_recipe(args, folder: str):
    """The recipe `guimo scale fit DIR` fits by: --config's, else the one the sweep recorded in sweep.json, else the
    defaults; then --set fit.* / verdict.*."""
    from pathlib import Path

    from guimo.errors import GuimoError
    from guimo.scale.recipe import Recipe, from_data, load_recipe, with_sets
    from guimo.scale.record import read_sweep

    if bad := [s for s in args.overrides if s.partition(".")[0] not in ("fit", "verdict")]:
        raise GuimoError(f"guimo scale fit takes fit.* and verdict.* settings only; got --set {bad[0]}")
    sweep = read_sweep(folder) if Path(folder).is_dir() else None
    scenario = (sweep or {}).get("spec", {}).get("scenario") or _runs_scenario(folder)
    if args.config:
        recipe = load_recipe(scenario, args.config)
    elif sweep and sweep.get("recipe"):
        recipe = from_data(scenario, sweep["recipe"], f"{folder}/sweep.json")
    else:  # a folder of runs: the default fit, judged by the criterion of the scenario's shipped recipe
        recipe = Recipe(scenario, "(defaults)", verdict=load_recipe(scenario).verdict)
    return with_sets(recipe, args.overrides)


def _runs_scenario(folder: str) -> str:
    """The scenario of the runs under a folder without sweep.json ("lm" when none is found: the fit then says why)."""
    from pathlib import Path

    from guimo.pipeline.rundir import list_runs

    runs = list_runs(folder) if Path(folder).is_dir() else []
    return runs[0].scenario if runs else "lm"


def _fit(args, folder: str, recipe) -> int:
    from pathlib import Path

    from guimo.scale import verdict as verdict_
    from guimo.scale.report import build_report

    f = recipe.fit
    result = build_report(folder, metric=f.metric, prices_path=f.prices, n_bootstrap=f.bootstrap, correction=f.correction,
                          allow_missing=f.allow_missing, delta=f.huber_delta, noise_sims=f.noise_sims, form=f.form,
                          params=f.params.replace("-", "_"), fix_E=f.fix_E, quiet=args.quiet, criterion=recipe.verdict)
    fit = result.get("fit")
    if fit:
        print(f"{fit['law']}: " + ", ".join(f"{k} = {v:.4g}" for k, v in fit["params"].items()) + f"  ({fit['n_points']} runs)")
        if fit.get("unidentified"):
            print(f"not identified by the runs: {', '.join(fit['unidentified'])} (at a search bound, or the 95% interval reaching one)")
        for h in result["extrapolation"]:
            print(f"held out largest {h['axis']}: " + (f"skipped ({h['skipped']})" if h["skipped"] else
                  f"{h['ratio']:.2f}x beyond the fit, max relative error {h['max_relative_error']:.2%}, inside band: {h['all_inside_band']}, "
                  f"inside prediction interval: {h['all_inside_interval']}" + _floor_text(h.get("noise_floor"))))
    if result.get("curve"):
        c = result["curve"]
        unit = "labels" if result.get("labels") else "data"  # a classifier's n: labelled examples per class
        print(f"{result['metric']}(n) = {c['a']:.4g} + {c['b']:.4g} n^-{c['c']:.4g}; 2x {unit}: {c['predicted_2x']['value']:.4f}, 4x: {c['predicted_4x']['value']:.4f}")
        for size, k in (result.get("curves") or {}).items():  # a sweep of several model sizes: one curve each
            if "skipped" not in k:
                chk = f", half-data check {k['check']['relative_error']:.1%}" if k.get("check") else ""
                print(f"  {size} ({k['parameters']:,} parameters): 2x data {k['predicted_2x']['value']:.4f}, 4x {k['predicted_4x']['value']:.4f}{chk}")
    v = result["verdict"]
    print(f"VERDICT: {verdict_.headline(v)}")
    print("\n".join(verdict_.lines(v)))
    print(f"report: {Path(folder) / 'scale' / 'report.md'}")
    return 0


def _floor_text(floor: dict | None) -> str:
    if not floor or not floor.get("sims"):
        return ""
    return f"; noise alone: median {floor['median']:.2%}, p90 {floor['p90']:.2%} (observed at the {floor['observed_percentile']:.0f}th percentile)"


def _plan(args) -> int:
    from guimo.errors import GuimoError
    from guimo.scale.plan import caveat, compute_for_loss, plan

    if args.compute is None and args.target_loss is None:
        raise GuimoError("guimo scale plan needs --compute FLOPS (and/or --target-loss L)")
    path, data = _read_fit(args.fit_from)
    fit, source = _law_from(path, data)
    count = _fit_count(data)
    rows = []
    if args.compute is not None:
        pl = plan(fit, args.compute)
        b = pl.bands
        rows.append(f"source: {source}")
        rows.append(f"C = {args.compute:.3g} FLOPs (C = 6ND)")
        rows.append(f"  N_opt = {pl.best.n:.4g}  [{b['n'][0]:.4g}, {b['n'][1]:.4g}]" + ("" if count == "total" else f"  ({count.replace('_', '-')} parameters)"))
        rows.append(f"  D_opt = {pl.best.d:.4g} tokens  [{b['d'][0]:.4g}, {b['d'][1]:.4g}]")
        rows.append(f"  tokens/param = {pl.best.tokens_per_param:.3g}  [{b['tokens_per_param'][0]:.3g}, {b['tokens_per_param'][1]:.3g}]")
        rows.append(f"  predicted loss = {pl.best.loss:.4f}  [{b['loss'][0]:.4f}, {b['loss'][1]:.4f}]")
        rows.append(f"  Besiroglu et al. 2024: N = {pl.besiroglu.n:.4g}, D = {pl.besiroglu.d:.4g} ({pl.besiroglu.tokens_per_param:.3g} tokens/param)")
        rows.append(f"  Chinchilla 20 tokens/param: N = {pl.chinchilla_20.n:.4g}, D = {pl.chinchilla_20.d:.4g}")
        if warn := caveat(fit):
            rows.append(f"  caveat: {warn}")
    if args.target_loss is not None:
        law = fit.law if hasattr(fit, "law") else fit
        a = compute_for_loss(law, args.target_loss)
        rows.append(f"loss {args.target_loss:g} needs C = {a.compute:.4g} FLOPs at N = {a.n:.4g}, D = {a.d:.4g}")
    print("\n".join(rows))
    return 0


def _read_fit(source: str | None):
    """(path, contents) of the fit.json of a sweep folder or the file itself; (None, None) without --fit."""
    if source is None:
        return None, None
    from pathlib import Path

    from guimo.errors import GuimoError
    from guimo.io import read_json

    path = Path(source)
    if path.is_dir():
        path = path / "scale" / "fit.json"
    data = read_json(path)
    if "fit" not in data:
        raise GuimoError(f"{path}: holds no L(N, D) fit (was the metric a loss?)")
    return path, data


def _fit_count(data: dict | None) -> str:
    """What N counts in a fit.json ("total" for the Besiroglu law and for reports written before the option)."""
    return (data or {}).get("params_count", "total")


def _load_fit(source: str | None):
    """A LawFit from a sweep folder or fit.json (bootstrap samples are refitted from its points), else Besiroglu."""
    return _law_from(*_read_fit(source))


def _law_from(path, data: dict | None):
    from guimo.scale.fit import BESIROGLU, HUBER_DELTA, Law, fit_law
    from guimo.scale.joint import JointLaw

    if data is None:
        return BESIROGLU, "Besiroglu et al. 2024 refit of Chinchilla (no --fit given)"
    pts = data.get("points", [])
    if len(pts) >= 5:  # refit with bootstrap so the plan has bands
        import numpy as np

        from guimo.scale.fit import effective_tokens

        d = np.array([p["d"] for p in pts], dtype=float)
        if data["fit"].get("data_correction") == "muennighoff":
            d = effective_tokens(d, [p["unique"] for p in pts])
        key = "n" if _fit_count(data) == "total" else "n_non_embedding"
        return fit_law([p[key] for p in pts], d, [p["value"] for p in pts], n_bootstrap=data["fit"].get("n_bootstrap", 100),
                       delta=data["fit"].get("huber_delta", HUBER_DELTA), form=data["fit"].get("form", "chinchilla"),
                       fix_E=data["fit"].get("fixed_E")), str(path)
    return (JointLaw if data["fit"].get("form") == "kaplan" else Law)(**data["fit"]["params"]), str(path)


def _float(text: str, flag: str) -> float:
    from guimo.errors import GuimoError

    try:
        return float(text)
    except ValueError:
        raise GuimoError(f"{flag}: '{text}' is not a number") from None


def economics_main(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from guimo.errors import GuimoError
    from guimo.scale import economics as ec
    from guimo.scale.prices import load_prices

    prices = load_prices(args.prices)
    figs: list = []
    notes: list[str] = []
    cost_1k, cost_source = None, ""
    if args.runs:
        from guimo.pipeline.rundir import list_runs

        devices = []
        for run in list_runs(args.runs):
            train = run.manifest.get("stages", {}).get("train", {})
            if train.get("status") == "done":
                seconds = float(train.get("wall_time_s") or train.get("seconds") or 0)
                figs += [f for f in ec.training_cost(run.path.name, seconds, prices, source=f"{run.path}/manifest.json") if f.name.startswith("training cost")]
                devices.append(train.get("device"))
        warning = ec.hardware_mismatch(devices, prices)
        if warning:
            notes.append(warning)
    rows = []
    if args.throughput:
        rows, meta = ec.load_throughput(args.throughput)
        scenario = meta.get("scenario") or args.scenario
        rows = ec.rows_for(rows, scenario)
        figs += ec.serving_costs(rows, prices, source=args.throughput)
        best = max(rows, key=lambda r: r.requests_per_s)
        cost_1k = ec.cost_per_1k(prices.hardware.serve_per_hour, best.requests_per_s)
        cost_source = f"best measured load point {best.requests_per_s:.2f} req/s ({args.throughput})"
        figs += ec.public_cloud(best.requests_per_s, prices, scenario=scenario, measured=args.throughput)
        if args.traffic:
            figs += ec.replicas_for(rows, prices, traffic_rps=args.traffic, p99_ms=args.p99_ms, source=args.throughput)
    else:
        notes.append("serving, public-cloud, e-commerce cost and device fallback figures need --throughput (a measured load benchmark)")
    ndcg = _ndcg(args)
    if ndcg and cost_1k is not None:
        figs += ec.ecommerce(ndcg[0], ndcg[1], cost_1k, prices, measured=ndcg[2], cost_source=cost_source)
    elif ndcg is None:
        notes.append("e-commerce figures need --recommend-run RUN or --ndcg MODEL,BASELINE")
    if cost_1k is not None:
        quality, quality_source = None, ""
        if args.fit_from:
            src, data = _read_fit(args.fit_from)
            fit, _ = _law_from(src, data)
            pts = data["points"]
            d_fit, n_fit = max(p["d"] for p in pts), max(p["n"] for p in pts)  # n: total, as the sizes below
            count = _fit_count(data)
            # the device limit is on total parameters (memory); the law may count only the non-embedding ones
            in_count = {total: n for (_, total), (_, n) in zip(_preset_sizes(), _preset_sizes(count))}
            quality = lambda n: fit.predict(in_count[n], d_fit)  # noqa: E731
            quality_source = f"L(N, D) of {src} at D = {d_fit:,.0f} tokens (fitted up to N = {n_fit:,}; beyond that it is extrapolation)"
        figs += ec.consumer_device(prices, _device_candidates(), quality=quality, quality_source=quality_source if quality else "",
                                   cloud_cost_per_1k=cost_1k, cost_source=cost_source)
    if not figs:
        raise GuimoError("nothing to compute: give --runs, --throughput and/or --recommend-run")
    if args.json:
        print(json.dumps({"prices": prices.source, "figures": [f.as_dict() for f in figs], "notes": notes}, indent=2))
    else:
        _print_figures(figs, prices.source, notes)
    if args.out:
        from guimo.io import atomic_write_text

        out = Path(args.out)
        text = f"# Unit economics\n\nPrices: {prices.source}\n\n" + ec.figures_markdown(figs)
        if rows:
            from guimo.scale.plots import serving_cost

            png = serving_cost(rows, prices.hardware.serve_per_hour, out.parent / "plots" / "serving_cost.png", prices.currency)
            text += f"\n![serving cost vs traffic](plots/{png.name})\n"
        if notes:
            text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
        atomic_write_text(out, text)
    return 0


def _ndcg(args) -> tuple[float, float, str] | None:
    from guimo.errors import GuimoError

    if args.ndcg:
        parts = args.ndcg.split(",")
        if len(parts) != 2:
            raise GuimoError("--ndcg takes MODEL,BASELINE, e.g. 0.061,0.032")
        return _float(parts[0], "--ndcg"), _float(parts[1], "--ndcg"), "--ndcg given on the command line"
    if args.recommend_run:
        from guimo.pipeline.rundir import RunDir

        run = RunDir.open(args.recommend_run)
        m = run.metrics() or {}
        try:
            return float(m["model"]["ndcg@10"]), float(m["baselines"]["popularity"]["ndcg@10"]), f"{run.path}/metrics.json"
        except (KeyError, TypeError):
            raise GuimoError(f"{run.path}/metrics.json: needs model ndcg@10 and baselines.popularity ndcg@10") from None
    return None


def _preset_sizes(count: str = "total") -> list[tuple[str, float]]:
    """Parameter counts ("total" or "non_embedding") of the transformer presets with the lm scenario's default vocabulary."""
    from guimo.models.transformer import PRESETS, TransformerConfig, count_parameters

    return [(name, float(count_parameters(TransformerConfig(vocab_size=2048, **p))[count])) for name, p in PRESETS.items()]


def _device_candidates() -> list:
    """The transformer presets (lm's default vocabulary) as device candidates, sized on the meta device: no memory,
    so the 87M-parameter preset costs nothing to size."""
    import torch

    from guimo.models.transformer import PRESETS, Transformer, TransformerConfig, count_parameters, flops_per_token
    from guimo.optimize.quantize import int8_file_bytes
    from guimo.scale.economics import DeviceCandidate

    out = []
    for name, p in PRESETS.items():
        cfg = TransformerConfig(vocab_size=2048, **p)
        with torch.device("meta"):
            model = Transformer(cfg)
        out.append(DeviceCandidate(name, float(count_parameters(cfg)["total"]), float(int8_file_bytes(model)), flops_per_token(cfg) / 6.0))
    return out


def _print_figures(figs, source: str, notes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from guimo.scale.economics import format_value

    table = Table(title=f"unit economics (prices: {source})", show_lines=False)
    for col in ("figure", "value", "unit", "from measurement", "from assumption"):
        table.add_column(col, overflow="fold", justify="right" if col == "value" else "left")
    for f in figs:
        table.add_row(f.name, format_value(f.value), f.unit, f.measured or "—", f.assumed or "—")
    console = Console()
    console.print(table)
    for n in notes:
        console.print(f"note: {n}")
