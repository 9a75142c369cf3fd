"""`guimo scale` and `guimo economics` from the command line: output, files, one-line errors."""

from __future__ import annotations

import json

import pytest

from guimo.cli import main


def test_plan_without_fit_uses_besiroglu(capsys):
    assert main(["scale", "plan", "--compute", "5.76e23", "--target-loss", "2.0"]) == 0
    out = capsys.readouterr().out
    assert "Besiroglu" in out and "N_opt = 7.2" in out and "loss 2 needs C =" in out


def test_plan_needs_a_budget(capsys):
    assert main(["scale", "plan"]) == 2
    assert "needs --compute" in capsys.readouterr().err


def test_scale_fit_from_folder(micro_sweep, capsys):
    assert main(["scale", "fit", str(micro_sweep), "--bootstrap", "3"]) == 0
    out = capsys.readouterr().out
    assert "L(N, D) =" in out and "report:" in out


def test_scale_fit_with_a_fixed_floor(micro_sweep, tmp_path, capsys):
    """--fix-E: every fit of the report holds E (main, sensitivities, held-out checks), and a plan from that fit keeps it."""
    import shutil

    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    assert main(["scale", "fit", str(copy), "--bootstrap", "3", "--noise-sims", "0", "--fix-E", "1.5"]) == 0
    fit = json.loads((copy / "scale" / "fit.json").read_text())
    assert fit["fit"]["fixed_E"] == 1.5 and fit["fit"]["params"]["E"] == pytest.approx(1.5) and "E" not in fit["fit"]["at_bound"]
    assert fit["form_sensitivity"]["params"]["E"] == pytest.approx(1.5) and fit["sensitivity"]["params"]["E"] == pytest.approx(1.5)
    assert "held (--fix-E), not fitted" in (copy / "scale" / "report.md").read_text()
    capsys.readouterr()
    from guimo.cli.scale import _load_fit

    assert main(["scale", "plan", "--compute", "1e15", "--fit", str(copy)]) == 0
    law, _ = _load_fit(str(copy))
    assert law.law.E == pytest.approx(1.5) and law.interval("E") == pytest.approx((1.5, 1.5))
    assert main(["scale", "fit", str(copy), "--bootstrap", "0", "--noise-sims", "0", "--fix-E", "99"]) == 2
    assert "not below every observed loss" in capsys.readouterr().err


def test_plan_from_sweep_fit(micro_sweep, capsys):
    assert main(["scale", "fit", str(micro_sweep), "--bootstrap", "3"]) == 0
    assert main(["scale", "plan", "--compute", "1e12", "--fit", str(micro_sweep)]) == 0
    assert "fit.json" in capsys.readouterr().out


def test_fit_and_plan_in_the_joint_form(micro_sweep, tmp_path, capsys):
    """--form kaplan makes Kaplan's joint law the main fit (the additive one beside it) and plans with it."""
    import shutil

    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    assert main(["scale", "fit", str(copy), "--form", "kaplan", "--bootstrap", "3", "--noise-sims", "0"]) == 0
    assert "L(N, D) = E + [(N_c/N)" in capsys.readouterr().out
    fit = json.loads((copy / "scale" / "fit.json").read_text())
    assert fit["fit"]["form"] == "kaplan" and fit["form_sensitivity"]["form"] == "chinchilla"
    assert "Kaplan et al. (2020) joint form" in (copy / "scale" / "report.md").read_text()
    assert main(["scale", "plan", "--compute", "1e12", "--fit", str(copy)]) == 0
    assert "N_opt = " in capsys.readouterr().out


def test_unknown_scenario_is_one_line(capsys):
    assert main(["scale", "nosuch", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown scenario 'nosuch'") and err.count("\n") == 1


def test_economics_end_to_end(tmp_path, capsys):
    load = tmp_path / "serve_load.json"
    load.write_text(json.dumps({"scenario": "recommend", "rows": [
        {"concurrency": 1, "batching": False, "requests_per_s": 10.0, "p50_ms": 90, "p95_ms": 110, "p99_ms": 130},
        {"concurrency": 16, "batching": True, "requests_per_s": 40.0, "p50_ms": 300, "p95_ms": 380, "p99_ms": 420},
    ]}))
    out = tmp_path / "econ" / "economics.md"
    code = main(["economics", "--throughput", str(load), "--ndcg", "0.06,0.04", "--traffic", "100", "--p99-ms", "500", "--out", str(out), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    figs = {f["name"]: f["value"] for f in data["figures"]}
    assert figs["replicas for 100 req/s at p99 <= 500 ms"] == 3  # ceil(100 / 40)
    assert figs["e-commerce incremental orders per 1,000,000 sessions"] == 3750
    text = out.read_text()
    assert "| figure | value |" in text and (out.parent / "plots" / "serving_cost.png").exists()


def test_economics_bad_price_table_is_one_line(tmp_path, capsys):
    bad = tmp_path / "prices.toml"
    bad.write_text("[hardware\n")
    assert main(["economics", "--prices", str(bad), "--ndcg", "0.06,0.04"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}:1: bad price table") and err.count("\n") == 1


def test_economics_with_nothing_to_do(capsys):
    assert main(["economics"]) == 2
    assert "nothing to compute" in capsys.readouterr().err


def test_economics_with_runs_and_fit(micro_sweep, tmp_path, capsys):
    from guimo.scale.report import build_report

    build_report(micro_sweep, n_bootstrap=3)
    load = tmp_path / "load.json"
    load.write_text(json.dumps([{"concurrency": 4, "batching": True, "requests_per_s": 20.0, "p50_ms": 50, "p95_ms": 80, "p99_ms": 90}]))
    assert main(["economics", "--runs", str(micro_sweep), "--throughput", str(load), "--fit", str(micro_sweep), "--json"]) == 0
    figs = {f["name"]: f for f in json.loads(capsys.readouterr().out)["figures"]}
    assert sum(n.startswith("training cost: ") for n in figs) == 6
    (loss,) = [f for n, f in figs.items() if n.startswith("expected loss of")]
    assert "extrapolation" in loss["measured"] and 0 < loss["value"] < 10
    assert figs["cloud fallback cost per device over its life"]["value"] == pytest.approx(20 * 730 * 0.05 / 1000 * (0.07 / (20 * 3.6)))


def test_economics_warns_when_gpu_runs_meet_a_cpu_price_table(micro_sweep, tmp_path, capsys):
    import shutil

    copy = tmp_path / "runs"
    shutil.copytree(micro_sweep / "runs", copy)
    assert main(["economics", "--runs", str(copy), "--ndcg", "0.06,0.04", "--json"]) == 0
    assert not any("price table rents" in n for n in json.loads(capsys.readouterr().out)["notes"])
    manifest = next(copy.glob("*/manifest.json"))
    m = json.loads(manifest.read_text())
    m["stages"]["train"]["device"] = "cuda:0 (NVIDIA H200)"
    manifest.write_text(json.dumps(m))
    assert main(["economics", "--runs", str(copy), "--ndcg", "0.06,0.04", "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any(n.startswith("The runs trained on cpu, cuda:0 (NVIDIA H200), but the price table rents no GPU") for n in notes), notes


def test_scale_sweep_command_resumes_a_finished_sweep(micro_sweep, tmp_path, capsys):
    import shutil

    from .conftest import MICRO_OVERRIDES

    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    sets = [a for o in MICRO_OVERRIDES for a in ("--set", o)]
    argv = ["scale", "lm", "--sizes", "nano,tiny,mini", "--data-fractions", "0.5,1", "--context", "32", "--batch-size", "8",
            "--threads", "1", "--bootstrap", "3", "--out", str(copy), "--quiet", *sets]
    assert main(argv) == 2  # the CLI's lr is the lm recipe's (6e-3 at width 64); the micro-sweep trained at 3e-3
    assert "(lr_ref: 0.003 -> 0.006)" in capsys.readouterr().err
    argv += ["--lr-ref", "0.003"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "6 of 6 points done" in out and "L(N, D) =" in out
    assert all(p.get("resumed") for p in json.loads((copy / "sweep.json").read_text())["points"])


def test_scale_fit_shows_its_phases_unless_quiet(micro_sweep, tmp_path, capsys):
    """The law section's fits take minutes at 100+ bootstrap refits: a bar names the phase under way; --quiet drops it."""
    import shutil

    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    argv = ["scale", "fit", str(copy), "--bootstrap", "3", "--noise-sims", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "scale fit" in out and "7/7" in out and "L(N, D) =" in out
    assert main([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "scale fit" not in out and "L(N, D) =" in out


def test_repeat_to_full_trains_every_fraction_as_long_as_the_full_data(tmp_path, capsys):
    """--repeat-to-full: a fraction f trains 1/f epochs, so every point sees the full data's tokens and only the unique
    data differs. A sweep folder is fitted on the effective data by itself (its runs alone ask for the correction),
    and a resume may not switch the design."""
    import shutil

    from guimo.errors import GuimoError
    from guimo.scale.fit import effective_tokens
    from guimo.scale.points import collect_points
    from guimo.scale.report import build_report

    out = tmp_path / "rep"
    argv = ["scale", "lm", "--sizes", "nano,tiny", "--data-fractions", "0.25,0.5,1", "--context", "32", "--batch-size", "8", "--threads", "1",
            "--bootstrap", "0", "--noise-sims", "0", "--quiet", "--out", str(out), "--set", "data.max_bytes=30000", "--set", "data.vocab_size=300",
            "--set", "data.eval_tokens=1000"]
    assert main([*argv, "--repeat-to-full"]) == 0
    assert "6 of 6 points done" in capsys.readouterr().out
    assert json.loads((out / "scale" / "fit.json").read_text())["fit"]["data_correction"] == "muennighoff"
    points, _ = collect_points(out)
    full_tokens = max(p.d for p in points)
    for p in points:
        assert p.d == pytest.approx(full_tokens, rel=0.05)  # as long as the full data, whatever the fraction
        assert p.d / p.unique == pytest.approx(1 / p.fraction, rel=0.05)  # by repeating its own share
    effective = sorted({round(float(effective_tokens(p.d, p.unique))) for p in points})
    assert len(effective) == 3 and effective[0] < 0.95 * full_tokens  # 4 epochs of a quarter are worth less than the full data (0.93x)
    (out / "scale" / "fit.json").unlink()
    assert main(["scale", "fit", str(out), "--bootstrap", "0", "--noise-sims", "0"]) == 0  # sweep.json says how it was swept
    assert json.loads((out / "scale" / "fit.json").read_text())["fit"]["data_correction"] == "muennighoff"
    runs_only = tmp_path / "runs-only"
    shutil.copytree(out / "runs", runs_only)
    with pytest.raises(GuimoError, match="--correction muennighoff"):  # a folder of runs alone does not
        build_report(runs_only, n_bootstrap=0)
    assert main(argv) == 2  # resuming without the flag would mix two designs in one fit
    assert "repeat_to_full: True -> False" in capsys.readouterr().err


def test_workers_zero_is_one_line(tmp_path, capsys):
    assert main(["scale", "lm", "--sizes", "nano", "--workers", "0", "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: workers must be at least 1") and err.count("\n") == 1


def test_fit_plan_and_economics_in_the_non_embedding_count(micro_sweep, tmp_path, capsys):
    """--params non-embedding is recorded in fit.json, and plan and economics read N in that count."""
    import shutil

    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    assert main(["scale", "fit", str(copy), "--params", "non-embedding", "--bootstrap", "3", "--noise-sims", "0"]) == 0
    capsys.readouterr()
    fit = json.loads((copy / "scale" / "fit.json").read_text())
    assert fit["params_count"] == "non_embedding"
    assert main(["scale", "plan", "--compute", "1e12", "--fit", str(copy)]) == 0
    assert "(non-embedding parameters)" in capsys.readouterr().out
    load = tmp_path / "load.json"
    load.write_text(json.dumps([{"concurrency": 4, "batching": True, "requests_per_s": 20.0, "p50_ms": 50, "p95_ms": 80, "p99_ms": 90}]))
    assert main(["economics", "--throughput", str(load), "--fit", str(copy), "--json"]) == 0
    figs = {f["name"]: f for f in json.loads(capsys.readouterr().out)["figures"]}
    ((name, loss),) = [(n, f) for n, f in figs.items() if n.startswith("expected loss of")]
    from guimo.cli.scale import _load_fit, _preset_sizes

    law, _ = _load_fit(str(copy))
    preset = name.removeprefix("expected loss of ").removesuffix(" on the device")
    n_ne = dict(_preset_sizes("non_embedding"))[preset]
    assert loss["value"] == pytest.approx(float(law.predict(n_ne, max(p["d"] for p in fit["points"]))))


def test_scale_recommend_sweep_gives_a_learning_curve(tmp_path, capsys):
    """`guimo scale recommend`: data fractions are nested shares of the users' interactions over one
    catalogue, training is sized in examples, and the report is the NDCG learning curve with its check."""
    market = ["data.generator.users=800", "data.generator.interactions=12000", "data.generator.chain_groups=20",
              "data.generator.items=200", "data.generator.categories=10", "eval.sampled=0", "eval.val_cases=200"]
    out = tmp_path / "sweep"
    argv = ["scale", "recommend", "--sizes", "d16x1,d32x1", "--data-fractions", "0.125,0.25,0.5,1", "--context", "20", "--batch-size", "32",
            "--epochs", "3", "--lr-ref", "0.01", "--evals", "2", "--quiet", "--bootstrap", "10", "--noise-sims", "0", "--out", str(out),
            "--lr-probe", "0.1,1", "--probe-extend", "0"]
    assert main(argv + [a for kv in market for a in ("--set", kv)]) == 0
    out_text = capsys.readouterr().out
    assert "ndcg@10(n) =" in out_text and "  d16x1 (" in out_text and "  d32x1 (" in out_text  # one line per model size
    record = json.loads((out / "sweep.json").read_text())
    assert [p["status"] for p in record["points"]] == ["done"] * 8
    for size, choice in record["lr_probe"].items():  # NDCG: the probe keeps the highest validation value
        assert choice["metric"] == "val ndcg@10" and choice["scores"][f"{choice['lr_scale']:g}"] == max(choice["scores"].values())
    fit = json.loads((out / "scale" / "fit.json").read_text())
    pts = sorted((p for p in fit["points"] if p["size"] == "d32x1"), key=lambda p: p["fraction"])
    full = pts[-1]["unique"]
    for p in pts:  # train interactions follow the fraction (to within a few users' histories)
        assert p["unique"] / full == pytest.approx(p["fraction"], abs=0.02)
    steps = {p["fraction"]: p["steps"] for p in record["points"] if p["size"] == "d32x1"}
    assert steps[1.0] > 6 * steps[0.125]  # sized by examples: 3 epochs of each point's own windows
    assert pts[-1]["value"] > pts[0]["value"]  # more users, better NDCG@10
    report = (out / "scale" / "report.md").read_text()
    assert fit["curve_check"]["n_fitted"] == 3 and "predicted with 4x data" in report  # the largest model's curve and check
    assert set(fit["curves"]) == {"d16x1", "d32x1"} and "## ndcg@10 by model size and data size" in report  # and one curve per size
    assert fit["curves"]["d32x1"]["check"]["relative_error"] == pytest.approx(fit["curve_check"]["relative_error"])  # same check, same runs
    assert (out / "scale" / "plots" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    manifests = [json.loads((out / p["run"] / "manifest.json").read_text())["stages"]["preprocess"] for p in record["points"]]
    assert len({m["items"] for m in manifests}) == 1  # one catalogue at every fraction
    assert all(p["best_step"] for p in fit["points"]) and "were still improving when they stopped" in report  # --evals 2: validated


@pytest.mark.parametrize("scenario, exponent, expected", [
    ("lm", 0.5, (128, 16, 6e-3)),  # the lm recipe: context 128, batch 16, lr 6e-3 at width 64
    ("recommend", 0.5, (50, 128, 1e-2)),
    ("lm", 0.0, (128, 16, 6e-3)),  # muP's exponent: the recipe's lr as the one lr
])
def test_sweep_defaults_are_the_scenarios_own_recipe(scenario, exponent, expected):
    """Without flags or a config file a point trains as `guimo run` would at its size: the scenario's context, batch and
    lr, whether the sweep comes from the CLI or from the library."""
    from guimo.errors import GuimoError
    from guimo.scale.sweep import SweepSpec

    size = "nano" if scenario == "lm" else "small"
    spec = SweepSpec(scenario, sizes=[size], fractions=[1.0], lr_exponent=exponent)
    assert (spec.context, spec.batch_size) == expected[:2] and spec.lr_ref == pytest.approx(expected[2])
    flags = SweepSpec(scenario, sizes=[size], fractions=[1.0], lr_exponent=exponent, context=64, batch_size=8, lr_ref=1e-3)
    assert (flags.context, flags.batch_size, flags.lr_ref) == (64, 8, 1e-3)  # a flag wins
    with pytest.raises(GuimoError, match="must be positive"):
        SweepSpec(scenario, sizes=[size], fractions=[1.0], context=0)


def test_scale_sweep_starts_from_a_config_file(tmp_path, capsys):
    """--config: every point starts from the recipe (its data section included); the recipe's context and
    batch become the sweep's, its lr is carried to width 64 by the lr rule, and a flag or --set still wins."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('seed = 0\n[data]\nmax_bytes = 60000\nvocab_size = 300\neval_tokens = 2000\n'
                      '[model]\nd_model = 16\nmax_len = 24\n[train]\nbatch_size = 4\nlr = 0.004\nweight_decay = 0.05\n')
    out = tmp_path / "sweep"
    argv = ["scale", "lm", "--config", str(recipe), "--sizes", "d64x1", "--data-fractions", "1", "--quiet", "--bootstrap", "0",
            "--noise-sims", "0", "--allow-missing", "--out", str(out), "--set", "train.weight_decay=0.02", "--evals", "3", "--lr-exponent", "1"]
    main(argv)  # one point cannot be fitted; the sweep itself must have run
    cfg = json.loads((out / "runs" / "d64x1-f1-s0" / "manifest.json").read_text())["config"]
    assert cfg["model"]["max_len"] == 24 and cfg["train"]["batch_size"] == 4 and cfg["data"]["max_bytes"] == 60000
    assert cfg["train"]["lr"] == pytest.approx(0.004 * (16 / 64) ** 1, rel=1e-4)  # lr_ref at 64 = the recipe's lr at 16 by the rule (--lr-exponent 1)
    assert cfg["train"]["weight_decay"] == 0.02  # --set goes last
    record = json.loads((out / "sweep.json").read_text())
    assert record["spec"]["config"] == str(recipe) and record["points"][0]["status"] == "done" and record["spec"]["lr_exponent"] == 1
    steps = record["points"][0]["steps"]
    assert cfg["train"]["eval_every"] == steps // 3  # --evals 3: three validations, the best checkpoint scored
    log = [json.loads(line) for line in (out / "runs" / "d64x1-f1-s0" / "train_log.jsonl").read_text().splitlines()]
    assert sum("eval" in r for r in log) >= 3


def test_scale_sweep_config_file_errors(tmp_path, capsys):
    assert main(["scale", "lm", "--config", str(tmp_path / "nope.toml"), "--sizes", "nano", "--out", str(tmp_path / "s")]) == 2
    assert "nope.toml: config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nbatch_size = 'many'\n")
    assert main(["scale", "lm", "--config", str(bad), "--sizes", "nano", "--out", str(tmp_path / "s")]) == 2
    assert "batch_size" in capsys.readouterr().err


def test_probe_only_stops_before_the_grid_and_the_same_command_resumes_from_it(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["scale", "lm", "--sizes", "nano,tiny", "--data-fractions", "0.5,0.75,1", "--context", "32", "--batch-size", "8", "--threads", "1",
            "--lr-probe", "0.5,1", "--probe-extend", "0", "--quiet", "--bootstrap", "0", "--noise-sims", "0", "--out", str(out),
            "--set", "data.max_bytes=150000", "--set", "data.vocab_size=300", "--set", "data.eval_tokens=2000"]
    assert main(argv + ["--probe-only"]) == 0
    text = capsys.readouterr().out
    assert "nano x" in text and "tiny x" in text and "without --probe-only trains the grid" in text
    assert not (out / "runs").exists() and len(list((out / "probe").iterdir())) == 4
    assert main(argv) == 0  # the grid and the fit, the probe resumed
    record = json.loads((out / "sweep.json").read_text())
    assert all(p.get("resumed") for p in record["probes"]) and [p["status"] for p in record["points"]] == ["done"] * 6
    capsys.readouterr()
    assert main(["scale", "lm", "--sizes", "nano", "--probe-only", "--out", str(tmp_path / "x")]) == 2  # no multipliers to probe
    assert "probe_only needs lr probe multipliers (--lr-probe)" in capsys.readouterr().err


def test_mup_sweep_gives_every_size_one_lr_and_the_base_width(tmp_path, capsys):
    """--mup: the base width reaches every point's model and the width rule is off (the model scales its hidden lr)."""
    out = tmp_path / "sweep"
    argv = ["scale", "lm", "--sizes", "d32x1,d96x1", "--data-fractions", "1", "--context", "24", "--batch-size", "4", "--threads", "1",
            "--mup", "32", "--lr-ref", "0.01", "--quiet", "--bootstrap", "0", "--noise-sims", "0", "--allow-missing", "--out", str(out),
            "--set", "data.max_bytes=60000", "--set", "data.vocab_size=300", "--set", "data.eval_tokens=2000"]
    main(argv)  # two points cannot be fitted; the sweep itself must have run
    for size in ("d32x1", "d96x1"):  # d96: 3 heads, which do not divide the base width; its heads are the base's 32 wide
        cfg = json.loads((out / "runs" / f"{size}-f1-s0" / "manifest.json").read_text())["config"]
        assert cfg["model"]["mup_base_width"] == 32 and cfg["model"]["mup_base_head_dim"] == 32  # d32: one head of 32
        assert cfg["train"]["lr"] == pytest.approx(0.01)
    assert json.loads((out / "sweep.json").read_text())["spec"]["lr_exponent"] == 0


@pytest.mark.parametrize("extra, message", [
    (["--mup", "32", "--lr-exponent", "0.5"], "--mup with --lr-exponent 0.5: muP already scales the hidden lr"),
    (["--mup", "-8"], "mup_base_width must be positive"),
])
def test_mup_sweep_errors(tmp_path, capsys, extra, message):
    assert main(["scale", "lm", "--sizes", "d64x1h4", "--quiet", "--out", str(tmp_path / "s"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s" / "runs").exists()  # refused before anything trained


def test_mup_is_for_lm_only(tmp_path, capsys):
    assert main(["scale", "recommend", "--sizes", "d32x1", "--mup", "32", "--out", str(tmp_path / "s")]) == 2
    assert "--mup is for the lm scenario" in capsys.readouterr().err


def test_probe_sizes_probe_one_model_and_carry_its_choice_to_the_others(tmp_path, capsys):
    """--probe-sizes: only the named sizes are probed; every other size trains at the nearest probed width's choice."""
    out = tmp_path / "sweep"
    argv = ["scale", "lm", "--sizes", "nano,tiny", "--data-fractions", "0.5,1", "--context", "32", "--batch-size", "8", "--threads", "1",
            "--mup", "32", "--lr-probe", "0.5,4", "--probe-sizes", "nano", "--probe-extend", "0", "--quiet", "--bootstrap", "0", "--noise-sims", "0",
            "--out", str(out), "--set", "data.max_bytes=150000", "--set", "data.vocab_size=300", "--set", "data.eval_tokens=2000"]
    assert main(argv + ["--probe-only"]) == 0
    text = capsys.readouterr().out
    record = json.loads((out / "sweep.json").read_text())
    assert sorted(p["run"] for p in record["probes"]) == ["probe/nano-f0.5-lrx0.5", "probe/nano-f0.5-lrx4"]
    nano = record["lr_probe"]["nano"]
    assert record["lr_probe"]["tiny"]["lr_scale"] == nano["lr_scale"] and record["lr_probe"]["tiny"]["from"] == "nano"
    assert f"tiny x{nano['lr_scale']:g} of the lr rule, carried from nano's probe" in text
    main(argv)  # the grid at the carried lr (four points cannot pin five parameters; the runs are what is checked)
    lrs = {p["run"]: p["lr"] for p in json.loads((out / "sweep.json").read_text())["points"]}
    assert lrs["runs/tiny-f1-s0"] == lrs["runs/nano-f1-s0"]  # muP: one lr for both widths, the probed one


def test_probe_sizes_must_be_swept_and_probed(tmp_path, capsys):
    assert main(["scale", "lm", "--sizes", "nano", "--lr-probe", "1,2", "--probe-sizes", "tiny", "--out", str(tmp_path / "s")]) == 2
    assert "probe size(s) tiny not among the sweep's sizes (nano)" in capsys.readouterr().err
    assert main(["scale", "lm", "--sizes", "nano", "--probe-sizes", "nano", "--out", str(tmp_path / "s")]) == 2
    assert "probe_sizes needs lr probe multipliers" in capsys.readouterr().err


def test_probe_set_needs_a_key_and_numbers(tmp_path, capsys):
    base = ["scale", "lm", "--sizes", "nano", "--out", str(tmp_path / "s")]
    assert main(base + ["--probe-set", "model.mup_output_mult"]) == 2
    assert "bad --probe-set 'model.mup_output_mult': expected KEY=V1,V2,..." in capsys.readouterr().err
    assert main(base + ["--probe-set", "model.mup_output_mult=1,two"]) == 2
    assert "--probe-set" in capsys.readouterr().err
    assert main(base + ["--probe-set", "train.lr=1,2"]) == 2
    assert "probe the lr with --lr-probe" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before any work
