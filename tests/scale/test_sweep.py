"""A ~60 s micro-sweep on the real `lm` pipeline: report, plots, monotone loss in size, resume, bad inputs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from guimo.errors import GuimoError
from guimo.scale.points import collect_points
from guimo.scale.report import build_report
from guimo.scale.sweep import SweepSpec, point_batch, run_sweep, size_overrides

from .conftest import MICRO_OVERRIDES, PROBE_OVERRIDES, micro_spec

PNG = b"\x89PNG\r\n\x1a\n"


def test_micro_sweep_points_and_monotone_loss(micro_sweep):
    record = json.loads((micro_sweep / "sweep.json").read_text())
    assert [p["status"] for p in record["points"]] == ["done"] * 6
    points, notes = collect_points(micro_sweep)
    assert len(points) == 6 and not notes
    reused = [json.loads((micro_sweep / p["run"] / "manifest.json").read_text())["stages"]["preprocess"].get("reused_from") for p in record["points"]]
    assert sum(r is not None for r in reused) == 4  # data prepared once per fraction, reused by the other sizes
    unique = {p.fraction: p.unique for p in points}
    assert all(p.unique == unique[p.fraction] for p in points)
    sizes = sorted({p.n for p in points})
    assert len(sizes) == 3 and sizes[-1] / sizes[0] > 8
    for frac in (0.5, 1.0):
        losses = [p.value for p in sorted((p for p in points if p.fraction == frac), key=lambda p: p.n)]
        assert losses == sorted(losses, reverse=True), f"loss does not fall with size at fraction {frac}: {losses}"
    full = [p for p in points if p.fraction == 1.0]
    assert all(p.d == pytest.approx(p.unique, rel=0.02) for p in full)  # one epoch of the run's own tokens
    assert all(p.flops and p.flops > 6 * p.n_non_embedding * p.d for p in points)
    best = min(full, key=lambda p: p.value)
    assert best.value < best.baselines["unigram"]  # learned context (the bigram baseline needs more steps than a micro-sweep has)


def test_points_write_their_report_without_plots_and_from_evaluate_draws_them(micro_sweep, tmp_path):
    """A sweep's points skip report.md's PNGs (the sweep's report draws the curves); the command the report names draws them."""
    from guimo.cli import main

    run = tmp_path / "point"
    shutil.copytree(micro_sweep / json.loads((micro_sweep / "sweep.json").read_text())["points"][0]["run"], run)
    text = (run / "report.md").read_text()
    assert "Plots were not drawn (a scale sweep's point" in text and "![" not in text and not (run / "plots").exists()
    assert main(["run", "lm", "--out", str(run), "--from", "evaluate", "--quiet"]) == 0
    text = (run / "report.md").read_text()
    assert "![training and validation curves](plots/training.png)" in text and "Plots were not drawn" not in text
    assert (run / "plots" / "training.png").read_bytes().startswith(PNG)


def test_report_fit_and_plots(micro_sweep):
    result = build_report(micro_sweep, n_bootstrap=5)
    text = (micro_sweep / "scale" / "report.md").read_text()
    for heading in ("## L(N, D)", "## Single-variable laws", "## Extrapolation check", "## Compute-optimal plans", "## Training economics"):
        assert heading in text
    (inv,) = json.loads((micro_sweep / "sweep.json").read_text())["invocations"]
    assert f"The sweep trained for {inv['wall_s'] / 60:.1f} min of wall time." in text
    assert "Learning rate: lr = 0.003 x (64 / d_model)^0.5 (standard parametrization)." in text
    fit = json.loads((micro_sweep / "scale" / "fit.json").read_text())
    assert set(fit["fit"]["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert len(fit["extrapolation"]) == 2
    assert all(ok for _, ok in result["monotone_in_n"].values())
    gap = result["size_gap"]  # nano vs tiny (mini is the held-out size) at both fractions, written out in words
    assert gap["n_large"] < max(p["n"] for p in result["points"]) and gap["gap_small_d"] > 0
    assert f"Additive-law check on the fitted runs: the loss gap between the smallest ({gap['n_small']:.4g})" in text
    for name in ("loss_vs_n", "loss_vs_d", "frontier", "extrapolation"):
        png = micro_sweep / "scale" / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5000
    assert any(e["name"].startswith("training cost: tiny-f1-s0") for e in fit["economics"])
    from guimo.scale.fit import ALT_HUBER_DELTA, HUBER_DELTA

    assert fit["fit"]["huber_delta"] == HUBER_DELTA and fit["sensitivity"]["huber_delta"] == ALT_HUBER_DELTA
    assert [h["axis"] for h in fit["sensitivity"]["extrapolation"]] == ["N", "D"]  # both checks under the other delta too
    assert f"| additive, {ALT_HUBER_DELTA:g} (sensitivity) |" in text
    form = fit["form_sensitivity"]  # the other law shape, same points and delta
    assert form["form"] == "kaplan" and set(form["params"]) == {"E", "N_c", "D_c", "alpha_N", "alpha_D"}
    assert [h["axis"] for h in form["extrapolation"]] == ["N", "D"] and "Kaplan joint" in text
    # one seed per point: the seed noise is unmeasured, so there is no noise floor and the interval is the band
    assert "seed noise is unmeasured" in text and fit["extrapolation"][0]["noise"] is None and fit["extrapolation"][0]["noise_floor"] is None
    assert all(r["interval"] == r["band"] for r in fit["extrapolation"][0]["rows"])


def test_report_names_mup_and_its_one_lr():
    from guimo.scale.report import _lr_rule_text
    from guimo.scale.sweep import mup_overrides

    spec = {"lr_ref": 0.024, "lr_exponent": 0.0, "batch_size": 16, "min_steps": 420, "overrides": ["data.vocab_size=300", *mup_overrides(16)]}
    assert _lr_rule_text(spec) == ("Parametrization: muP with d16 as the base (head dimension 16): one lr, 0.024, for every size; the model trains "
                                   "its hidden matrices at lr / (d_model / 16) and divides its logits by the same. A point trained at a batch b "
                                   "smaller than 16 uses lr x (b / 16)^0.5.")


def test_rerun_skips_finished_points(micro_sweep):
    t0 = time.perf_counter()
    record = run_sweep(micro_spec(), micro_sweep, quiet=True)
    assert all(p.get("resumed") and p["steps"] > 0 for p in record["points"])
    assert time.perf_counter() - t0 < 5


def test_rerun_with_other_training_settings_is_an_error(micro_sweep, tmp_path):
    """Resuming skips finished points by name, so a re-run that would train them differently must refuse, not mix
    two recipes in one fit; settings that only schedule points (threads, workers, budget) still resume."""
    copy = tmp_path / "s"
    shutil.copytree(micro_sweep, copy)
    with pytest.raises(GuimoError, match=r"other settings \(epochs: 1.0 -> 2.0\)"):
        run_sweep(micro_spec(epochs=2.0), copy, quiet=True)
    with pytest.raises(GuimoError, match="overrides: .* -> "):
        run_sweep(micro_spec(overrides=MICRO_OVERRIDES + ["train.weight_decay=0"]), copy, quiet=True)
    saved = json.loads((copy / "sweep.json").read_text())
    for key in ("evals", "config"):  # a record written before these settings existed resumes under their defaults
        saved["spec"].pop(key, None)
    saved.pop("config_sha256", None)
    (copy / "sweep.json").write_text(json.dumps(saved))
    record = run_sweep(micro_spec(threads=2), copy, quiet=True)
    assert all(p.get("resumed") for p in record["points"])
    assert record["invocations"] == saved.get("invocations", [])  # a resume that trains nothing adds no invocation


def test_invocations_record_each_run_that_trained(tmp_path):
    """sweep.json keeps when and how long every invocation that trained points ran, across resumes."""
    spec = micro_spec(sizes=["nano"], fractions=[0.25], overrides=["data.max_bytes=30000", "data.vocab_size=300", "data.eval_tokens=1000"])
    first = run_sweep(spec, tmp_path / "s", quiet=True)
    second = run_sweep(micro_spec(**{**spec.__dict__, "seeds": 2}), tmp_path / "s", quiet=True)
    assert [i["points_trained"] for i in first["invocations"]] == [1] and [i["points_trained"] for i in second["invocations"]] == [1, 1]
    assert second["invocations"][0] == first["invocations"][0] and all(i["wall_s"] > 0 for i in second["invocations"])
    import datetime as dt

    assert dt.datetime.fromisoformat(second["invocations"][1]["started"]).tzinfo is not None  # a time another machine can read
    assert all(i["complete"] for i in second["invocations"])


def test_a_killed_sweep_keeps_the_time_of_its_finished_points(tmp_path, monkeypatch):
    """The invocation's entry is written with its first trained point and kept current: a sweep killed while training
    its second point still records the first one's time (complete: false), so a resumed sweep's total can be summed."""
    import guimo.scale.sweep as sweep

    spec = micro_spec(sizes=["nano"], fractions=[0.25], seeds=2, overrides=["data.max_bytes=30000", "data.vocab_size=300", "data.eval_tokens=1000"])
    real, calls = sweep.train_point, []

    def dies_on_the_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is gone mid-point: no end-of-sweep bookkeeping runs
        return real(*args)

    monkeypatch.setattr(sweep, "train_point", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "s", quiet=True)
    (killed,) = json.loads((tmp_path / "s" / "sweep.json").read_text())["invocations"]
    assert killed["points_trained"] == 1 and not killed["complete"] and killed["wall_s"] > 0 and killed["finished"]
    monkeypatch.setattr(sweep, "train_point", real)
    resumed = run_sweep(spec, tmp_path / "s", quiet=True)
    assert [(i["points_trained"], i["complete"]) for i in resumed["invocations"]] == [(1, False), (1, True)]
    minutes = sum(i["wall_s"] for i in resumed["invocations"]) / 60
    from guimo.scale.report import _sweep_time  # (one size: too few points for a whole report)

    assert _sweep_time(resumed["invocations"]) == (f" The sweep trained for {minutes:.1f} min of wall time over 2 invocations "
                                                   "(1 stopped before it finished: counted up to its last finished point).")


def test_missing_run_is_an_error_and_one_point_too(micro_sweep, tmp_path):
    part = tmp_path / "part"
    (part / "runs").mkdir(parents=True)
    shutil.copy(micro_sweep / "sweep.json", part / "sweep.json")
    shutil.copytree(micro_sweep / "runs" / "tiny-f1-s0", part / "runs" / "tiny-f1-s0")
    with pytest.raises(GuimoError, match="run listed in sweep.json is missing"):
        build_report(part, n_bootstrap=0)
    with pytest.raises(GuimoError, match="only 1 point"):
        build_report(part, n_bootstrap=0, allow_missing=True)


def test_empty_folder(tmp_path):
    with pytest.raises(GuimoError, match="no finished runs"):
        build_report(tmp_path, n_bootstrap=0)


def test_budget_skips_and_records(tmp_path):
    spec = micro_spec(sizes=["nano", "tiny"], fractions=[0.25], overrides=["data.max_bytes=30000", "data.vocab_size=300", "data.eval_tokens=1000"], budget_s=0.01)
    record = run_sweep(spec, tmp_path / "b", quiet=True)
    assert [p["status"] for p in record["points"]] == ["done", "skipped"]  # the cheapest point always runs
    assert "budget" in record["points"][1]["reason"]
    saved = json.loads((tmp_path / "b" / "sweep.json").read_text())
    assert saved["points"][1]["status"] == "skipped"


def test_spec_validation():
    with pytest.raises(GuimoError, match="unknown model size 'huge'"):
        SweepSpec("lm", sizes=["huge"], fractions=[1.0])
    with pytest.raises(GuimoError, match="not in \\(0, 1\\]"):
        SweepSpec("lm", sizes=["nano"], fractions=[0.0])
    with pytest.raises(GuimoError, match="at least one model size"):
        SweepSpec("lm", sizes=[], fractions=[1.0])
    assert size_overrides("d96x3h4") == ["model.d_model=96", "model.n_layer=3", "model.n_head=4"]


def test_repeated_data_correction_option(micro_sweep):
    result = build_report(micro_sweep, n_bootstrap=0, correction="muennighoff")
    assert result["fit"]["data_correction"] == "muennighoff"
    assert "effective tokens after the Muennighoff" in (micro_sweep / "scale" / "report.md").read_text()
    with pytest.raises(GuimoError, match="unknown data correction 'kaplan'"):
        build_report(micro_sweep, n_bootstrap=0, correction="kaplan")


def test_lm_data_fraction_spreads_over_the_corpus():
    """A data fraction samples every region of an ordered corpus, not its leading slice, and nests."""
    import numpy as np

    from guimo.scenarios.lm import spread_fraction

    tokens = np.arange(10_000)
    quarter, half = spread_fraction(tokens, 0.25), spread_fraction(tokens, 0.5)
    assert abs(len(quarter) - 2_500) <= 64 and abs(len(half) - 5_000) <= 64
    assert quarter.max() > 9_000 and quarter.min() == 0  # reaches the end of the stream
    assert np.histogram(quarter, bins=4, range=(0, 10_000))[0].min() > 500  # every quarter of the corpus represented
    assert set(quarter.tolist()) <= set(half.tolist())  # nested: a learning curve adds data, it does not swap it
    assert len(spread_fraction(tokens, 1.0)) == 10_000


def test_two_workers_micro_sweep(tmp_path):
    """Two points at a time in spawned processes: all finish, each fraction's data is prepared once, a re-run skips them."""
    spec = micro_spec(sizes=["nano", "tiny"], fractions=[0.5, 1.0], overrides=["data.max_bytes=30000", "data.vocab_size=300", "data.eval_tokens=1000"],
                      workers=2, threads=2)
    out = tmp_path / "w2"
    record = run_sweep(spec, out, quiet=True)
    assert [p["status"] for p in record["points"]] == ["done"] * 4
    assert all(p["seconds"] > 0 and p["steps"] > 0 for p in record["points"])
    manifests = {p["run"]: json.loads((out / p["run"] / "manifest.json").read_text()) for p in record["points"]}
    reused = {run: m["stages"]["preprocess"].get("reused_from") for run, m in manifests.items()}
    assert sorted(r for r in reused.values() if r) == [str(out / "runs" / "nano-f0.5-s0"), str(out / "runs" / "nano-f1-s0")]
    assert reused["runs/nano-f0.5-s0"] is None and reused["runs/nano-f1-s0"] is None  # each fraction tokenized once, by its first point
    points, _ = collect_points(out)
    assert len(points) == 4
    again = run_sweep(spec, out, quiet=True)
    assert all(p.get("resumed") for p in again["points"])


def test_workers_must_be_positive():
    with pytest.raises(GuimoError, match="workers must be at least 1"):
        micro_spec(workers=0)


def test_point_batch_gives_min_steps():
    spec = micro_spec(batch_size=16, context=128, min_steps=420)
    assert point_batch(spec, 3_444_736) == 16  # 1,682 steps at 16: untouched
    assert point_batch(spec, 430_080) == 8  # 210 steps at 16 -> 420 at 8
    assert point_batch(spec, 1_000) == 1  # never below one sequence
    assert point_batch(micro_spec(batch_size=16, min_steps=0), 1_000) == 16  # off
    with pytest.raises(GuimoError, match="min_steps"):
        micro_spec(min_steps=-1)


def test_min_steps_shrinks_batch_and_scales_lr(tmp_path):
    """The smaller fraction trains at a smaller batch with more steps and a square-root-scaled lr; its tokens stay the same."""
    spec = micro_spec(sizes=["nano"], fractions=[0.25, 1.0], overrides=["data.max_bytes=30000", "data.vocab_size=300", "data.eval_tokens=1000"],
                      batch_size=8, min_steps=40)
    record = run_sweep(spec, tmp_path / "ms", quiet=True)
    by_fraction = {p["fraction"]: p for p in record["points"]}
    small, full = by_fraction[0.25], by_fraction[1.0]
    assert small["batch_size"] < 8 and small["steps"] >= 40
    assert small["steps"] * small["batch_size"] * spec.context == pytest.approx(small["unique_tokens"], rel=0.05)
    assert small["lr"] == pytest.approx(full["lr"] * (small["batch_size"] / full["batch_size"]) ** 0.5, rel=1e-4)
    cfg = json.loads((tmp_path / "ms" / small["run"] / "manifest.json").read_text())["config"]["train"]
    assert cfg["batch_size"] == small["batch_size"] and cfg["max_steps"] == small["steps"]


def test_parameter_count_option(micro_sweep, tmp_path):
    """--params non_embedding fits on Kaplan's count; every report repeats the N check in the other count."""
    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    total = build_report(copy, n_bootstrap=0, noise_sims=0)
    cs = total["count_sensitivity"]
    assert total["params_count"] == "total" and cs["params"] == "non_embedding"
    assert [h["axis"] for h in cs["extrapolation"]] == ["N"]
    pts = total["points"]
    biggest = max(pts, key=lambda p: p["n"])
    fitted = max(p["n_non_embedding"] for p in pts if p["n"] < biggest["n"])
    # the step to the held-out model, in the other count: embeddings are a smaller share of the bigger model
    assert cs["extrapolation"][0]["ratio"] == pytest.approx(biggest["n_non_embedding"] / fitted)
    assert cs["extrapolation"][0]["ratio"] > total["extrapolation"][0]["ratio"]
    assert "N = non-embedding parameters (count sensitivity)" in (copy / "scale" / "report.md").read_text()

    ne = build_report(copy, n_bootstrap=0, noise_sims=0, params="non_embedding")
    assert ne["params_count"] == "non_embedding" and ne["count_sensitivity"]["params"] == "total"
    assert ne["extrapolation"][0]["held_out"] == biggest["n_non_embedding"]
    a, b = ne["count_sensitivity"]["extrapolation"][0], total["extrapolation"][0]  # the same check, from the other side
    assert a["skipped"] == b["skipped"] and a["max_relative_error"] == pytest.approx(b["max_relative_error"], nan_ok=True)
    assert ne["fit"]["params"] != total["fit"]["params"]
    assert "N = non-embedding parameters, D =" in (copy / "scale" / "report.md").read_text()
    with pytest.raises(GuimoError, match="unknown parameter count 'embedding'"):
        build_report(copy, n_bootstrap=0, params="embedding")


def test_estimate_uses_the_nearest_model_sizes_rate():
    """A size that has run is estimated at its own measured rate (what the FLOP model misses, e.g. a catalogue softmax,
    is in it); a size that has not at the rate of the timed size nearest in FLOPs per token, not a pooled rate that
    the small, poorly-utilised sizes dominate."""
    from guimo.scale.sweep import estimate_seconds

    # per-token cost = relative_cost / fraction: a = 2, b = 8
    timed = [{"size": "a", "fraction": 0.5, "relative_cost": 1.0, "seconds": 10.0},
             {"size": "b", "fraction": 0.5, "relative_cost": 4.0, "seconds": 20.0}]
    assert estimate_seconds({"size": "a", "fraction": 1.0, "relative_cost": 2.0}, timed) == pytest.approx(20.0)  # a's rate: 10 s per unit
    assert estimate_seconds({"size": "b", "fraction": 1.0, "relative_cost": 8.0}, timed) == pytest.approx(40.0)  # b's rate: 5 s per unit
    # c costs 20 per token: nearest is b (log distance 0.92 vs 2.30), so 5 s per unit, not the pooled 6
    assert estimate_seconds({"size": "c", "fraction": 0.25, "relative_cost": 5.0}, timed) == pytest.approx(25.0)
    # d costs 2.4 per token: nearest is a
    assert estimate_seconds({"size": "d", "fraction": 1.0, "relative_cost": 2.4}, timed) == pytest.approx(24.0)


def test_point_d_is_what_the_scored_model_saw(micro_sweep, tmp_path):
    """Under --evals the scored weights are the best validated ones: D counts the tokens up to that step, not the last."""
    from guimo.pipeline.rundir import RunDir
    from guimo.scale.points import read_point

    run = tmp_path / "run"
    shutil.copytree(micro_sweep / "runs" / "tiny-f1-s0", run)
    full = read_point(RunDir.open(run))
    manifest = json.loads((run / "manifest.json").read_text())
    train = manifest["stages"]["train"]
    assert full.d == train["tokens_seen"]
    train["best_step"] = train["steps"] // 2
    (run / "manifest.json").write_text(json.dumps(manifest))
    half = read_point(RunDir.open(run))
    assert half.d == pytest.approx(train["tokens_seen"] * (train["steps"] // 2) / train["steps"])
    assert half.flops == pytest.approx(full.flops * half.d / full.d)


def test_training_costs_warn_when_the_price_table_rents_the_wrong_machine(micro_sweep, tmp_path):
    """The manifests say where each run trained; runs on a GPU priced by a table that rents none (the default) get a
    warning above their costs, and CPU runs priced with GPUs get the reverse one."""
    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    build_report(copy, n_bootstrap=0, noise_sims=0)
    assert json.loads((copy / "scale" / "fit.json").read_text())["hardware_warning"] is None  # CPU runs, CPU prices
    for manifest in (copy / "runs").glob("*/manifest.json"):
        m = json.loads(manifest.read_text())
        m["stages"]["train"]["device"] = "cuda:0 (NVIDIA H200)"
        manifest.write_text(json.dumps(m))
    build_report(copy, n_bootstrap=0, noise_sims=0)
    assert "The runs trained on cuda:0 (NVIDIA H200), but the price table rents no GPU" in (copy / "scale" / "report.md").read_text()
    from guimo.scale.prices import load_prices

    gpu_prices = tmp_path / "prices.toml"
    text = Path(load_prices().source).read_text().replace("train_gpus = 0", "train_gpus = 1")
    gpu_prices.write_text(text)
    for manifest in (copy / "runs").glob("*/manifest.json"):
        m = json.loads(manifest.read_text())
        m["stages"]["train"]["device"] = "cpu"
        manifest.write_text(json.dumps(m))
    build_report(copy, n_bootstrap=0, noise_sims=0, prices_path=gpu_prices)
    assert "rents 1 GPU(s) per training run" in (copy / "scale" / "report.md").read_text()


def test_span_order_covers_sizes_and_data_ends_before_the_middle_and_more_seeds():
    """Under a budget the order is what gets left out: span puts every size at both ends of the data axis first (so a
    cut keeps the range of N and D a fit and its held-out model need), cheapest goes purely by FLOPs."""
    from guimo.scale.sweep import order_points

    points = [{"run": f"{s}-{f}-{seed}", "size": s, "fraction": f, "seed": seed, "relative_cost": c * f}
              for s, c in (("small", 1.0), ("big", 8.0)) for f in (0.25, 0.5, 1.0) for seed in (0, 1)]
    span = [p["run"] for p in order_points(points, "span", [0.25, 0.5, 1.0], 0)]
    assert span[:4] == ["small-0.25-0", "small-1.0-0", "big-0.25-0", "big-1.0-0"]  # both ends, every size, one seed
    assert span[4:6] == ["small-0.5-0", "big-0.5-0"]  # then the middle
    assert span[6:10] == ["small-0.25-1", "small-1.0-1", "big-0.25-1", "big-1.0-1"]  # then the replicates, ends first
    cheapest = [p["run"] for p in order_points(points, "cheapest", [0.25, 0.5, 1.0], 0)]
    assert cheapest.index("big-1.0-0") == 10  # the largest point is the last but one: any budget cut drops it first
    assert sorted(span) == sorted(cheapest)
    with pytest.raises(GuimoError, match="unknown sweep order 'random'"):
        order_points(points, "random", [1.0], 0)
    with pytest.raises(GuimoError, match="unknown sweep order"):
        SweepSpec("lm", sizes=["nano"], fractions=[1.0], order="random")


def test_report_says_what_the_budget_skipped(micro_sweep, tmp_path):
    """A budgeted sweep's report names the budget, the order and the sizes it gave up, before its per-point list."""
    copy = tmp_path / "budgeted"
    shutil.copytree(micro_sweep, copy)
    record = json.loads((copy / "sweep.json").read_text())
    record["spec"]["budget_s"] = 150.0
    last = record["points"][-1]
    last.update(status="skipped", reason="estimated 50 s would overrun the 90 s budget (60 s used)")
    shutil.rmtree(copy / last["run"])
    (copy / "sweep.json").write_text(json.dumps(record))
    build_report(copy, n_bootstrap=0, noise_sims=0)
    text = (copy / "scale" / "report.md").read_text()
    assert f"the 2.5 min budget, in `span` order, skipped 1 of 6 points: {last['size']} x1" in text
    assert f"{last['run']}: skipped — estimated 50 s would overrun" in text


def test_lr_probe_chooses_each_sizes_lr_on_validation_and_resumes(tmp_path):
    """--lr-probe trains every size at the smallest fraction once per multiplier, keeps the multiplier with the best
    validation loss per size, trains the grid with it, and leaves the probe runs out of the fit; a re-run trains nothing."""
    from guimo.pipeline.rundir import RunDir
    from guimo.scale.sweep import learning_rate

    spec = micro_spec(sizes=["nano", "tiny"], fractions=[0.5, 0.75, 1.0], lr_probe=[0.05, 1.0], probe_extend=0, threads=1, overrides=list(PROBE_OVERRIDES))
    record = run_sweep(spec, tmp_path / "p", quiet=True)
    assert [p["status"] for p in record["probes"]] == ["done"] * 4
    assert {p["fraction"] for p in record["probes"]} == {0.5}
    for size, choice in record["lr_probe"].items():
        val = {m: RunDir.open(tmp_path / "p" / f"probe/{size}-f0.5-lrx{m}").metrics()["val"]["loss"] for m in ("0.05", "1")}
        assert choice["scores"] == pytest.approx(val)
        assert choice["lr_scale"] == float(min(val, key=val.get)) == 1.0  # a 20x smaller lr is far worse in ~100 steps
        assert choice["at_edge"]  # the best is the largest multiplier probed: the report says the best may lie beyond
    for p in record["points"]:
        batch_factor = (p["batch_size"] / spec.batch_size) ** spec.lr_batch_exponent
        assert p["lr"] == pytest.approx(learning_rate(spec, p["d_model"]) * p["lr_scale"] * batch_factor, rel=1e-5)
    build_report(tmp_path / "p", n_bootstrap=0, noise_sims=0)
    result = json.loads((tmp_path / "p" / "scale" / "fit.json").read_text())
    assert len(result["points"]) == 6 and not any("/probe/" in p["run"] for p in result["points"])
    assert "- nano x1 of the lr rule (val loss: x0.05" in \
        (tmp_path / "p" / "scale" / "report.md").read_text()
    again = run_sweep(spec, tmp_path / "p", quiet=True)
    assert all(p.get("resumed") for p in again["probes"] + again["points"]) and again["lr_probe"] == record["lr_probe"]
    with pytest.raises(GuimoError, match="lr_probe"):  # the probe decides the points' lrs: changing it cannot resume
        run_sweep(micro_spec(sizes=["nano", "tiny"], fractions=[0.5, 0.75, 1.0], lr_probe=[0.5, 1.0], probe_extend=0, threads=1,
                             overrides=list(PROBE_OVERRIDES)), tmp_path / "p", quiet=True)


def test_lr_probe_follows_a_best_at_the_edge(tmp_path):
    """Probing only small multiples of the rule puts every size's best at the upper edge: the probe adds the next
    multiple (one step of its own spacing), chooses again over all three, and a re-run finds the extension done."""
    from guimo.pipeline.rundir import RunDir

    spec = micro_spec(sizes=["nano", "tiny"], fractions=[0.5, 1.0], lr_probe=[0.125, 0.25], probe_extend=1, threads=1, overrides=list(PROBE_OVERRIDES))
    record = run_sweep(spec, tmp_path / "e", quiet=True)
    for size in ("nano", "tiny"):
        assert sorted(p["lr_scale"] for p in record["probes"] if p["size"] == size) == [0.125, 0.25, 0.5]
        val = {m: RunDir.open(tmp_path / "e" / f"probe/{size}-f0.5-lrx{m}").metrics()["val"]["loss"] for m in ("0.125", "0.25", "0.5")}
        assert list(record["lr_probe"][size]["scores"]) == ["0.125", "0.25", "0.5"]  # in multiplier order
        assert record["lr_probe"][size]["lr_scale"] == float(min(val, key=val.get))
    again = run_sweep(spec, tmp_path / "e", quiet=True)
    assert len(again["probes"]) == 6 and all(p.get("resumed") for p in again["probes"] + again["points"])


def test_value_probe_chooses_a_config_value_then_the_lr_at_it_and_carries_both(tmp_path):
    """--probe-set: the probed size trains once per value at the rule's lr and keeps the best on validation; the lr probe
    then runs at that value (its x1 is the value probe's own run, trained once); every size's grid points train with
    the chosen value and lr, the unprobed size's carried from the nearest width; a re-run trains nothing."""
    from guimo.pipeline.rundir import RunDir

    spec = micro_spec(sizes=["nano", "tiny"], fractions=[0.5, 0.75, 1.0], probe_key="model.dropout", probe_values=[0.05, 0.6],
                      lr_probe=[0.05, 1.0], probe_extend=0, probe_sizes=["nano"], threads=1, overrides=list(PROBE_OVERRIDES))
    out = tmp_path / "v"
    record = run_sweep(spec, out, quiet=True)
    assert sorted(p["run"] for p in record["probes"]) == ["probe/nano-f0.5-dropout0.05", "probe/nano-f0.5-dropout0.05-lrx0.05", "probe/nano-f0.5-dropout0.6"]
    assert not (out / "probe/nano-f0.5-dropout0.05-lrx1").exists()
    val = {v: RunDir.open(out / f"probe/nano-f0.5-dropout{v}").metrics()["val"]["loss"] for v in ("0.05", "0.6")}
    nano = record["set_probe"]["nano"]
    assert nano["scores"] == pytest.approx(val) and nano["value"] == 0.05  # heavy dropout hurts ~100 steps of training
    assert record["set_probe"]["tiny"] == {"value": 0.05, "metric": "val loss", "scores": {}, "at_edge": False, "from": "nano"}
    lr_val = {"0.05": RunDir.open(out / "probe/nano-f0.5-dropout0.05-lrx0.05").metrics()["val"]["loss"], "1": val["0.05"]}
    assert record["lr_probe"]["nano"]["scores"] == pytest.approx(lr_val) and record["lr_probe"]["nano"]["lr_scale"] == 1.0
    for p in record["points"]:
        assert p["set"] == {"model.dropout": 0.05} and p["lr_scale"] == 1.0
        assert RunDir.open(out / p["run"]).manifest["config"]["model"]["dropout"] == 0.05
    build_report(out, n_bootstrap=0, noise_sims=0)
    text = (out / "scale" / "report.md").read_text()
    assert "`model.dropout`: each size's points use the value" in text
    assert "- nano model.dropout=0.05 (val loss: 0.05 " in text and "- tiny model.dropout=0.05, carried from nano's probe" in text
    again = run_sweep(spec, out, quiet=True)
    assert all(p.get("resumed") for p in again["probes"] + again["points"]) and again["set_probe"] == record["set_probe"]
    with pytest.raises(GuimoError, match="probe_values"):  # the values decide the points' configs: changing them cannot resume
        run_sweep(micro_spec(sizes=["nano", "tiny"], fractions=[0.5, 0.75, 1.0], probe_key="model.dropout", probe_values=[0.05, 0.3],
                             lr_probe=[0.05, 1.0], probe_extend=0, probe_sizes=["nano"], threads=1, overrides=list(PROBE_OVERRIDES)), out, quiet=True)


def test_value_probe_follows_an_edge_by_its_own_ratio_and_only_for_positive_values():
    from guimo.scale.sweep import probe_extensions, probe_point

    spec = micro_spec(sizes=["nano"], fractions=[0.5, 1.0], probe_key="model.mup_output_mult", probe_values=[1.0, 2.0, 4.0], probe_extend=1)
    probes = [probe_point(spec, "nano", 1.0, {"model.mup_output_mult": v}) for v in (1.0, 2.0, 4.0)]
    (more,) = probe_extensions(spec, probes, {"nano": {"value": 4.0, "at_edge": True}}, "set")
    assert more["run"] == "probe/nano-f0.5-mup_output_mult8" and more["set"] == {"model.mup_output_mult": 8.0} and more["lr_scale"] == 1.0
    assert probe_extensions(spec, probes + [more], {"nano": {"value": 8.0, "at_edge": True}}, "set") == []  # its one extension used
    (down,) = probe_extensions(spec, probes, {"nano": {"value": 1.0, "at_edge": True}}, "set")
    assert down["set"] == {"model.mup_output_mult": 0.5}
    additive = micro_spec(sizes=["nano"], fractions=[0.5, 1.0], probe_key="model.dropout", probe_values=[0.0, 0.1], probe_extend=1)
    probes = [probe_point(additive, "nano", 1.0, {"model.dropout": v}) for v in (0.0, 0.1)]
    assert probe_extensions(additive, probes, {"nano": {"value": 0.0, "at_edge": True}}, "set") == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(probe_key="model.dropout"), "needs a key and its values"),
    (dict(probe_values=[0.1]), "needs a key and its values"),
    (dict(probe_key="train.lr", probe_values=[1.0]), "probe the lr with sweep.lr_probe"),
    (dict(probe_key="model.d_model", probe_values=[64.0]), "the sweep sets 'model.d_model' itself"),
    (dict(probe_key="model.dropout", probe_values=[0.1], overrides=["model.dropout=0.2"]), "both probed \\(sweep.probe_key\\) and set for every point"),
    (dict(probe_key="model.no_such_knob", probe_values=[1.0]), "unknown config key 'model.no_such_knob'"),
    (dict(probe_key="model.dropout", probe_values=[0.1, 0.1]), "probe values repeat"),
])
def test_value_probe_bad_specs_are_refused_before_any_training(kwargs, message):
    with pytest.raises(GuimoError, match=message):
        micro_spec(**kwargs)


def test_a_record_from_before_the_probe_resumes_and_a_probed_one_keeps_its_probe(micro_sweep, tmp_path):
    """Records written before --lr-probe lack its keys: without a probe they resume under the new defaults; a probed
    record that never extended its probe refuses the new default extension instead of changing its lrs silently."""
    from dataclasses import asdict

    from guimo.scale.record import load_prior

    copy = tmp_path / "old"
    shutil.copytree(micro_sweep, copy)
    record = json.loads((copy / "sweep.json").read_text())
    for key in ("lr_probe", "probe_fraction", "probe_extend", "order"):
        record["spec"].pop(key, None)
    (copy / "sweep.json").write_text(json.dumps(record))
    prior, _ = load_prior(copy, {"spec": asdict(micro_spec()), "config_sha256": None})
    assert len(prior) == 6
    record["spec"]["lr_probe"] = [0.5, 1.0]
    (copy / "sweep.json").write_text(json.dumps(record))
    with pytest.raises(GuimoError, match="probe_extend: 0 -> 2"):
        load_prior(copy, {"spec": asdict(micro_spec(lr_probe=[0.5, 1.0])), "config_sha256": None})
    assert load_prior(copy, {"spec": asdict(micro_spec(lr_probe=[0.5, 1.0], probe_extend=0)), "config_sha256": None})[0]


def test_time_left_sums_the_estimates_of_what_is_still_to_run():
    from guimo.scale.sweep import time_left

    timed = [{"size": "a", "fraction": 1.0, "relative_cost": 1.0, "seconds": 60.0}]
    todo = [{"size": "a", "fraction": 1.0, "relative_cost": 2.0}, {"size": "a", "fraction": 1.0, "relative_cost": 1.0, "status": "skipped"}]
    running = [{"size": "a", "fraction": 1.0, "relative_cost": 1.0}]
    assert time_left(todo, running, [], 1) == ""  # nothing timed yet: no rate to estimate from
    assert time_left(todo, running, timed, 1) == " · ~2 min left"  # 120 s to do + half of the 60 s running = 150 s
    assert time_left(todo, running, timed, 2) == " · ~75 s left"  # two workers share it

