"""`guimo scale` (sweeps, fits, plans) and `guimo economics` (unit costs from measurements)."""

from __future__ import annotations

import argparse

SCALE_HELP = """\
three forms:
  guimo scale SCENARIO --sizes nano,tiny,mini --data-fractions 0.25,0.5,1 [--budget 30m] [--seeds 2] [--out DIR]
      run the grid (each point a normal run directory under DIR/runs; re-running skips finished
      points), then fit and write DIR/scale/report.md, fit.json and plots/*.png
  guimo scale fit DIR
      refit from the runs under DIR (a sweep folder or any folder of run directories)
  guimo scale plan --compute FLOPS [--fit DIR]
      compute-optimal model size and tokens for a budget, with bands (without --fit: the
      Besiroglu et al. 2024 law, E=1.82, A=482, B=2085, alpha=0.348, beta=0.366)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale", help="sweeps over model and data size, scaling-law fits, compute-optimal plans",
                       description=SCALE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="SCENARIO|fit|plan", help="a scenario to sweep, 'fit' to refit a folder, 'plan' for a compute budget")
    p.add_argument("dir", nargs="?", help="with 'fit': the folder of runs")
    g = p.add_argument_group("sweep")
    g.add_argument("--sizes", help="the scenario's model presets or d<width>x<layers>[h<heads>], comma-separated "
                                    "(default: lm nano,tiny,mini,small,medium; another scenario: all its presets)")
    g.add_argument("--data-fractions", default="0.125,0.25,0.5,1",
                   help="shares of the training data (data.fraction; lm: an evenly spread subset of the tokens, recommend: users holding that share "
                        "of the interactions), comma-separated")
    g.add_argument("--seeds", type=int, default=1, help="seeds per (size, fraction)")
    g.add_argument("--epochs", type=float, default=1.0, help="passes over each point's training tokens")
    g.add_argument("--repeat-to-full", action="store_true",
                   help="train each data fraction f for epochs / f passes: every point trains as long as the full data, and only the "
                        "unique data varies (Muennighoff et al. 2023's data-constrained design); the fit then uses --correction muennighoff")
    g.add_argument("--config", help="TOML/YAML/JSON recipe every point starts from (e.g. bench/recommend_beauty.toml); the sweep sets size, "
                                     "data fraction, seed, steps, batch and lr over it, and --set goes last")
    g.add_argument("--context", type=int, help="model.max_len for every size (default: the recipe's, the --config file's or the scenario's own: lm 128, recommend 50)")
    g.add_argument("--batch-size", type=int, help="train.batch_size for every point (default: the recipe's: lm 16, recommend 128)")
    g.add_argument("--min-steps", type=int, default=0, help="shrink the batch of points that would get fewer steps (lr x sqrt(batch ratio)); 0: off")
    g.add_argument("--lr-ref", type=float, help="lr at d_model 64; lr = lr_ref * (64 / d_model) ** lr_exponent (default: the recipe's lr, "
                                                 "the --config file's or the scenario's own (lm 6e-3, recommend 1e-2), carried to width 64 by the same rule)")
    g.add_argument("--lr-exponent", type=float,
                   help="how fast the lr falls with width (default 0.5, or 0 with --mup): when --lr-probe keeps "
                        "choosing a larger multiplier for the narrow sizes than for the wide ones, the rule is too shallow")
    g.add_argument("--mup", type=int, metavar="BASE_WIDTH",
                   help="lm: train every size in muP with d<BASE_WIDTH> (its heads by the sizes' rule) as the base, so one lr, tuned at any "
                        "width, fits all: the model scales its hidden layers' lr, init and logits itself and the width rule is off "
                        "(measured in docs/BENCHMARKS.md: the lr transfers; tune model.mup_output_mult at the base too, with --probe-set, or the widest models "
                        "train worse than standard; its best was 4 to 32 on guimo's corpora)")
    g.add_argument("--lr-probe", help="lr multipliers to probe per size before the grid, comma-separated (e.g. 0.5,1,2): each size's points "
                                       "then train at the rule's lr times its best (validation split); default: the rule alone")
    g.add_argument("--probe-fraction", type=float, help="data fraction the lr probe trains on (default: the smallest of --data-fractions)")
    g.add_argument("--probe-only", action="store_true", help="run the probe (--lr-probe, --probe-set), print each size's choices and stop (the grid and the fit come later, "
                                                              "with the same command without this flag)")
    g.add_argument("--probe-sizes", help="probe only these sizes (comma-separated); every other size takes the choice of the probed size nearest "
                                          "in width (with --mup: tune the smallest model, carry its lr to all)")
    g.add_argument("--probe-extend", type=int, default=2, help="times the lr probe may go one step past its range when a size's best is at an edge")
    g.add_argument("--probe-set", metavar="KEY=V1,V2,...",
                   help="probe one more config value per size before the lr probe (e.g. model.mup_output_mult=1,2,4,8,16): each value at the "
                        "rule's lr, the best on the validation split kept, then --lr-probe (if given) at it; with --probe-sizes, muP's "
                        "tune-the-base workflow for its base constants")
    g.add_argument("--evals", type=int, default=0, help="validations per point, the best checkpoint scored (for business learning curves: x is "
                                                       "the data available); 0: the final model, as an L(N, D) fit in tokens seen needs")
    g.add_argument("--budget", help="wall-clock budget, e.g. 30m: points that would overrun it are skipped and listed")
    g.add_argument("--order", choices=["span", "cheapest"], default="span",
                   help="what runs first, and so what a budget keeps: span (every size at the smallest and largest data fraction, "
                        "then the fractions between, then more seeds; cheapest first within each) or cheapest (by FLOPs: most points, "
                        "but a tight budget drops the largest models)")
    g.add_argument("--threads", type=int, help="torch intra-op threads while training (1 is fastest for tiny models on a busy machine)")
    g.add_argument("--workers", type=int, default=1, help="points trained at once, each in its own process with max(1, threads // workers) threads")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override for every point (repeatable)")
    g.add_argument("--out", help="sweep folder (default: runs/scale-<scenario>-<timestamp>)")
    f = p.add_argument_group("fit and report")
    f.add_argument("--metric", help="metrics.json key to fit (default: loss for lm, the scenario's headline otherwise)")
    f.add_argument("--correction", choices=["muennighoff"], help="replace D by Muennighoff et al.'s effective tokens for repeated data")
    f.add_argument("--bootstrap", type=int, default=100, help="bootstrap refits for the intervals")
    f.add_argument("--huber-delta", type=float, help="Huber threshold on log residuals for L(N, D) (default: guimo.scale.fit.HUBER_DELTA; the other candidate is always reported beside it)")
    f.add_argument("--form", choices=["chinchilla", "kaplan"], default="chinchilla",
                   help="law shape of the main fit: Chinchilla's additive E + A/N^alpha + B/D^beta or Kaplan's joint form (the other is reported beside it)")
    f.add_argument("--params", choices=["total", "non-embedding"], default="total",
                   help="what N counts: total parameters (Pearce & Song 2024, the default) or Kaplan et al.'s non-embedding count (the other is reported beside it)")
    f.add_argument("--fix-E", dest="fix_E", type=float, metavar="E",
                   help="hold the irreducible loss E at this value (nats) instead of fitting it: for sweeps whose losses do not flatten, "
                        "with a floor known from elsewhere (0: a pure power law)")
    f.add_argument("--noise-sims", type=int, default=50, help="simulations for the extrapolation check's noise floor (0: off)")
    f.add_argument("--allow-missing", action="store_true", help="fit even when runs listed in sweep.json are missing or unfinished")
    f.add_argument("--prices", help="price table merged over guimo/prices.toml")
    pl = p.add_argument_group("plan")
    pl.add_argument("--compute", type=float, help="training compute budget in FLOPs, e.g. 1e18")
    pl.add_argument("--fit", dest="fit_from", help="a sweep folder (or its scale/fit.json) to plan with")
    pl.add_argument("--target-loss", type=float, help="also give the least compute that reaches this loss")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
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
        return _fit(args, args.dir)
    if args.target == "plan":
        return _plan(args)
    if args.dir:
        raise GuimoError(f"unexpected argument '{args.dir}': a sweep takes its folder from --out")
    return _sweep(args)


def _sweep(args) -> int:
    import datetime as dt

    from guimo import scenarios
    from guimo.scale.sweep import SweepSpec, parse_duration, run_sweep

    scenario = scenarios.get(args.target)  # unknown scenario: a clear error before any work
    _resolve_parametrization(args)
    sizes = args.sizes or ("nano,tiny,mini,small,medium" if args.target == "lm" else ",".join(scenario.presets.get("model", {})))
    spec = SweepSpec(
        scenario=args.target,
        sizes=[s.strip() for s in sizes.split(",") if s.strip()],
        fractions=[_float(s, "--data-fractions") for s in args.data_fractions.split(",") if s.strip()],
        seeds=args.seeds, epochs=args.epochs, repeat_to_full=args.repeat_to_full, context=args.context, batch_size=args.batch_size, lr_ref=args.lr_ref, lr_exponent=args.lr_exponent,
        overrides=args.overrides, budget_s=parse_duration(args.budget) if args.budget else None, order=args.order, threads=args.threads,
        lr_probe=[_float(s, "--lr-probe") for s in (args.lr_probe or "").split(",") if s.strip()], probe_fraction=args.probe_fraction,
        probe_extend=args.probe_extend, probe_only=args.probe_only, probe_sizes=[s.strip() for s in (args.probe_sizes or "").split(",") if s.strip()],
        workers=args.workers, min_steps=args.min_steps, evals=args.evals, config=args.config, **parse_probe_set(args.probe_set),
    )
    out = args.out or f"runs/scale-{args.target}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    record = run_sweep(spec, out, quiet=args.quiet)
    if spec.probe_only:
        from guimo.scale.sweep import describe_choice

        for size, choice in record.get("set_probe", {}).items():
            print(describe_choice(size, choice, spec.probe_key))
        for size, choice in record.get("lr_probe", {}).items():
            print(describe_choice(size, choice))
        print(f"probe done in {out}; the same command without --probe-only trains the grid with these choices")
        return 0
    done = sum(p.get("status") == "done" for p in record["points"])
    print(f"{done} of {len(record['points'])} points done in {out} ({record['wall_s']:.0f} s)")
    return _fit(args, out)


def parse_probe_set(text: str | None) -> dict:
    """'model.mup_output_mult=1,2,4' -> the spec's probe_key and probe_values (also read by bench/scale_lm.py)."""
    from guimo.errors import GuimoError

    if not text:
        return {}
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise GuimoError(f"bad --probe-set '{text}': expected KEY=V1,V2,... (e.g. model.mup_output_mult=1,2,4,8,16)")
    return {"probe_key": key.strip(), "probe_values": [_float(v, "--probe-set") for v in values.split(",") if v.strip()]}


def _resolve_parametrization(args) -> None:
    """--mup puts the base width into every point's model and turns the sweep's width rule off:
    under muP the model scales its hidden layers' lr itself, and the rule on top would scale it twice."""
    from guimo.errors import GuimoError
    from guimo.scale.sweep import mup_overrides

    if args.mup is None:
        args.lr_exponent = 0.5 if args.lr_exponent is None else args.lr_exponent
        return
    if args.target != "lm":
        raise GuimoError(f"--mup is for the lm scenario: muP scales the output logits, and {args.target}'s model scores outside the transformer")
    if args.lr_exponent not in (None, 0):
        raise GuimoError(f"--mup with --lr-exponent {args.lr_exponent:g}: muP already scales the hidden lr by width; leave the exponent at 0")
    args.lr_exponent = 0.0
    args.overrides = [*mup_overrides(args.mup), *args.overrides]


def _fit(args, folder: str) -> int:
    from pathlib import Path

    from guimo.scale.report import build_report

    result = build_report(folder, metric=args.metric, prices_path=args.prices, n_bootstrap=args.bootstrap,
                          correction=args.correction, allow_missing=args.allow_missing, delta=args.huber_delta,
                          noise_sims=args.noise_sims, form=args.form, params=args.params.replace("-", "_"), fix_E=args.fix_E,
                          quiet=args.quiet)
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
        print(f"{result['metric']}(n) = {c['a']:.4g} + {c['b']:.4g} n^-{c['c']:.4g}; 2x data: {c['predicted_2x']['value']:.4f}, 4x: {c['predicted_4x']['value']:.4f}")
        for size, k in (result.get("curves") or {}).items():  # a sweep of several model sizes: one curve each
            if "skipped" not in k:
                chk = f", half-data check {k['check']['relative_error']:.1%}" if k.get("check") else ""
                print(f"  {size} ({k['parameters']:,} parameters): 2x data {k['predicted_2x']['value']:.4f}, 4x {k['predicted_4x']['value']:.4f}{chk}")
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
