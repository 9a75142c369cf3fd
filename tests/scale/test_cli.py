"""`guimo scale` and `guimo economics` from the command line: exit codes, the printed answer parsed, files, one-line errors."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from guimo.cli import main

from .conftest import PROBE_OVERRIDES, micro_recipe, write_recipe

TINY_LM = ["--set", "data.max_bytes=150000", "--set", "data.vocab_size=300", "--set", "data.eval_tokens=2000"]


def sets(**kv) -> list[str]:
    """--set sweep.KEY=VALUE arguments (lists comma-joined)."""
    out = []
    for k, v in kv.items():
        section, _, key = k.partition("__")
        out += ["--set", f"{section}.{key}={','.join(map(str, v)) if isinstance(v, list) else v}"]
    return out


def printed_params(out: str) -> dict[str, float]:
    """The parameters of the 'L(N, D) = ...: E = 1.2, A = 3.4, ...  (6 runs)' line the CLI prints."""
    (line,) = [x for x in out.splitlines() if x.startswith("L(N, D) =")]
    return {k: float(v) for k, v in re.findall(r"(\w+) = ([-0-9.e+]+)(?:,|  \()", line.split(": ", 1)[1])}


def test_plan_without_fit_uses_besiroglu(capsys):
    assert main(["scale", "plan", "--compute", "5.76e23", "--target-loss", "2.0"]) == 0
    out = capsys.readouterr().out
    assert "Besiroglu" in out and "N_opt = 7.2" in out and "loss 2 needs C =" in out



def test_plan_needs_a_budget(capsys):
    assert main(["scale", "plan"]) == 2
    assert "needs --compute" in capsys.readouterr().err



def test_scale_fit_from_folder(micro_sweep, tmp_path, capsys):
    """The printed law is fit.json's, the verdict line agrees with fit.json's verdict, and the report it names exists."""
    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    assert main(["scale", "fit", str(copy), "--set", "fit.bootstrap=3", "--set", "fit.noise_sims=0"]) == 0
    out = capsys.readouterr().out
    fit = json.loads((copy / "scale" / "fit.json").read_text())
    params = printed_params(out)
    assert set(params) == {"E", "A", "B", "alpha", "beta"}
    for k, v in fit["fit"]["params"].items():
        assert params[k] == pytest.approx(v, rel=1e-3), k  # printed to 4 significant digits
    assert f"({fit['fit']['n_points']} runs)" in out and fit["fit"]["n_points"] == 6
    verdict = fit["verdict"]
    assert re.search(r"^VERDICT: the held-out check (passed|did NOT pass)$", out, re.M).group(1) == ("passed" if verdict["passed"] else "did NOT pass")
    model_x2 = next(p for p in verdict["predictions"] if p["axis"] == "N" and p["multiple"] == 2)
    assert f"model x2: loss {model_x2['value']:.4f}" in out
    (report,) = re.findall(r"^report: (.+)$", out, re.M)
    assert report == str(copy / "scale" / "report.md") and (copy / "scale" / "report.md").read_text().startswith(f"# Scale report: {copy}\n\n## Verdict: the held-out check")


def test_scale_fit_with_a_fixed_floor(micro_sweep, tmp_path, capsys):
    """fit.fix_E: every fit of the report holds E (main, sensitivities, held-out checks), and a plan from that fit keeps it."""
    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    assert main(["scale", "fit", str(copy), *sets(fit__bootstrap=3, fit__noise_sims=0, fit__fix_E=1.5)]) == 0
    fit = json.loads((copy / "scale" / "fit.json").read_text())
    assert fit["fit"]["fixed_E"] == 1.5 and fit["fit"]["params"]["E"] == pytest.approx(1.5) and "E" not in fit["fit"]["at_bound"]
    assert fit["form_sensitivity"]["params"]["E"] == pytest.approx(1.5) and fit["sensitivity"]["params"]["E"] == pytest.approx(1.5)
    assert "held (fit.fix_E), not fitted" in (copy / "scale" / "report.md").read_text()
    assert any(x.startswith("E is held at 1.5, not fitted") for x in fit["verdict"]["cannot_support"])
    capsys.readouterr()
    from guimo.cli.scale import _load_fit

    assert main(["scale", "plan", "--compute", "1e15", "--fit", str(copy)]) == 0
    law, _ = _load_fit(str(copy))
    assert law.law.E == pytest.approx(1.5) and law.interval("E") == pytest.approx((1.5, 1.5))
    assert main(["scale", "fit", str(copy), *sets(fit__bootstrap=0, fit__noise_sims=0, fit__fix_E=99)]) == 2
    assert "not below every observed loss" in capsys.readouterr().err


def test_plan_from_sweep_fit(micro_sweep, tmp_path, capsys):
    """The plan names the fit it used and gives that fit's compute-optimal N and D (refitted from its points)."""
    from guimo.cli.scale import _load_fit
    from guimo.scale.plan import plan

    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    assert main(["scale", "fit", str(copy), *sets(fit__bootstrap=3, fit__noise_sims=0)]) == 0
    capsys.readouterr()
    assert main(["scale", "plan", "--compute", "1e12", "--fit", str(copy)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^source: (.+)$", out, re.M).group(1) == str(copy / "scale" / "fit.json")
    expected = plan(_load_fit(str(copy))[0], 1e12).best
    n_opt = float(re.search(r"N_opt = ([0-9.e+]+)", out).group(1))
    d_opt = float(re.search(r"D_opt = ([0-9.e+]+) tokens", out).group(1))
    assert n_opt == pytest.approx(expected.n, rel=1e-3) and d_opt == pytest.approx(expected.d, rel=1e-3)
    assert n_opt * d_opt * 6 == pytest.approx(1e12, rel=2e-3)  # C = 6ND


def test_fit_and_plan_in_the_joint_form(micro_sweep, tmp_path, capsys):
    """fit.form=kaplan makes Kaplan's joint law the main fit (the additive one beside it) and plans with it."""
    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    assert main(["scale", "fit", str(copy), *sets(fit__form="kaplan", fit__bootstrap=3, fit__noise_sims=0)]) == 0
    assert "L(N, D) = E + [(N_c/N)" in capsys.readouterr().out
    fit = json.loads((copy / "scale" / "fit.json").read_text())
    assert fit["fit"]["form"] == "kaplan" and fit["form_sensitivity"]["form"] == "chinchilla"
    assert "Kaplan et al. (2020) joint form" in (copy / "scale" / "report.md").read_text()
    assert main(["scale", "plan", "--compute", "1e12", "--fit", str(copy)]) == 0
    assert "N_opt = " in capsys.readouterr().out


def test_scale_fit_refuses_sweep_settings(micro_sweep, capsys):
    assert main(["scale", "fit", str(micro_sweep), "--set", "sweep.seeds=2"]) == 2
    assert "guimo scale fit takes fit.* and verdict.* settings only; got --set sweep.seeds=2" in capsys.readouterr().err



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
    """A recipe with the library micro-sweep's settings resumes it from the command line; one changed knob is refused, naming it."""
    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    argv = ["scale", "lm", "--config", str(micro_recipe(tmp_path / "micro.toml")), "--out", str(copy), "--quiet"]
    assert main([*argv, "--set", "sweep.lr_ref=0.006"]) == 2
    assert "(lr_ref: 0.003 -> 0.006)" in capsys.readouterr().err
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^6 of 6 points done in ", out, re.M) and printed_params(out)
    record = json.loads((copy / "sweep.json").read_text())
    assert all(p.get("resumed") for p in record["points"])
    assert record["recipe"]["source"] == str(tmp_path / "micro.toml") and record["recipe"]["fit"]["bootstrap"] == 3


def test_scale_fit_shows_its_phases_unless_quiet(micro_sweep, tmp_path, capsys):
    """The law section's fits take minutes at 100+ bootstrap refits: a bar names the phase under way; --quiet drops it."""
    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    argv = ["scale", "fit", str(copy), *sets(fit__bootstrap=3, fit__noise_sims=0)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "scale fit" in out and "7/7" in out and "L(N, D) =" in out
    assert main([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "scale fit" not in out and "L(N, D) =" in out


def test_repeat_to_full_trains_every_fraction_as_long_as_the_full_data(tmp_path, capsys):
    """sweep.repeat_to_full (the shipped lm recipe's design): a fraction f trains 1/f epochs, so every point sees the full
    data's tokens and only the unique data differs. A sweep folder is fitted on the effective data by itself (its runs
    alone ask for the correction), and a resume may not switch the design."""
    from guimo.errors import GuimoError
    from guimo.scale.fit import effective_tokens
    from guimo.scale.points import collect_points
    from guimo.scale.report import build_report

    out = tmp_path / "rep"
    argv = ["scale", "lm", "--quiet", "--out", str(out), *sets(sweep__sizes=["nano", "tiny"], sweep__fractions=[0.25, 0.5, 1], sweep__context=32,
            sweep__batch_size=8, sweep__threads=1, sweep__workers=1, sweep__min_steps=0, fit__bootstrap=0, fit__noise_sims=0),
            "--set", "data.max_bytes=30000", "--set", "data.eval_tokens=1000"]
    assert main(argv) == 0
    assert re.search(r"^6 of 6 points done", capsys.readouterr().out, re.M)
    assert json.loads((out / "scale" / "fit.json").read_text())["fit"]["data_correction"] == "muennighoff"
    points, _ = collect_points(out)
    full_tokens = max(p.d for p in points)
    for p in points:
        assert p.d == pytest.approx(full_tokens, rel=0.05)  # as long as the full data, whatever the fraction
        assert p.d / p.unique == pytest.approx(1 / p.fraction, rel=0.05)  # by repeating its own share
    effective = sorted({round(float(effective_tokens(p.d, p.unique))) for p in points})
    assert len(effective) == 3 and effective[0] < 0.95 * full_tokens  # 4 epochs of a quarter are worth less than the full data (0.93x)
    (out / "scale" / "fit.json").unlink()
    assert main(["scale", "fit", str(out)]) == 0  # sweep.json says how it was swept, and holds the recipe's fit table
    fit = json.loads((out / "scale" / "fit.json").read_text())
    assert fit["fit"]["data_correction"] == "muennighoff" and fit["fit"]["n_bootstrap"] == 0 and fit["fit"]["fixed_E"] == 0
    runs_only = tmp_path / "runs-only"
    shutil.copytree(out / "runs", runs_only)
    with pytest.raises(GuimoError, match="fit.correction=muennighoff"):  # a folder of runs alone does not
        build_report(runs_only, n_bootstrap=0)
    assert main([*argv, "--set", "sweep.repeat_to_full=false"]) == 2  # resuming with another design would mix two in one fit
    assert "repeat_to_full: True -> False" in capsys.readouterr().err


def test_workers_zero_is_one_line(tmp_path, capsys):
    assert main(["scale", "lm", "--workers", "0", "--out", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: workers must be at least 1") and err.count("\n") == 1


def test_a_moved_flag_names_its_recipe_key(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["scale", "lm", "--sizes", "nano", "--out", str(tmp_path / "s")])
    assert e.value.code == 2
    assert "--sizes is a recipe key now: use --set sweep.sizes=A,B,..." in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_scale_help_fits_on_a_screen(capsys):
    with pytest.raises(SystemExit) as e:
        main(["scale", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    options = re.findall(r"^  (--[a-z-]+)", text, re.M)
    assert len(text.splitlines()) <= 40 and len(options) <= 15, (len(text.splitlines()), options)
    assert {"--config", "--set", "--budget", "--data", "--out", "--ray"} <= set(options)


def test_fit_plan_and_economics_in_the_non_embedding_count(micro_sweep, tmp_path, capsys):
    """fit.params=non_embedding is recorded in fit.json, and plan and economics read N in that count."""
    copy = tmp_path / "sweep"
    shutil.copytree(micro_sweep, copy)
    assert main(["scale", "fit", str(copy), *sets(fit__params="non_embedding", fit__bootstrap=3, fit__noise_sims=0)]) == 0
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
    """`guimo scale recommend` (the shipped recipe, made tiny): data fractions are nested shares of the users' interactions
    over one catalogue, training is sized in examples, and the report is the NDCG learning curve with its check and verdict."""
    market = ["data.generator.users=800", "data.generator.interactions=12000", "data.generator.chain_groups=20",
              "data.generator.items=200", "data.generator.categories=10", "eval.sampled=0", "eval.val_cases=200"]
    out = tmp_path / "sweep"
    argv = ["scale", "recommend", "--quiet", "--out", str(out),
            *sets(sweep__sizes=["d16x1", "d32x1"], sweep__fractions=[0.125, 0.25, 0.5, 1], sweep__seeds=1, sweep__context=20, sweep__batch_size=32,
                  sweep__epochs=3, sweep__lr_ref=0.01, sweep__evals=2, sweep__lr_probe=[0.1, 1], sweep__probe_extend=0, sweep__workers=1,
                  sweep__threads=1, fit__bootstrap=10, fit__noise_sims=0)]
    assert main(argv + [a for kv in market for a in ("--set", kv)]) == 0
    out_text = capsys.readouterr().out
    fit = json.loads((out / "scale" / "fit.json").read_text())
    c = fit["curve"]
    assert f"ndcg@10(n) = {c['a']:.4g} + {c['b']:.4g} n^-{c['c']:.4g}" in out_text
    for size in ("d16x1", "d32x1"):  # one line per model size, its 2x / 4x from fit.json
        k = fit["curves"][size]
        assert f"  {size} ({k['parameters']:,} parameters): 2x data {k['predicted_2x']['value']:.4f}, 4x {k['predicted_4x']['value']:.4f}" in out_text
    verdict = fit["verdict"]
    assert verdict["kind"] == "curve" and verdict["check"]["criterion"] == 0.10  # the recipe's criterion for a business metric
    assert verdict["passed"] == (fit["curve_check"]["relative_error"] <= 0.10)
    assert [p["multiple"] for p in verdict["predictions"]] == [2, 4] and verdict["predictions"][1]["value"] == c["predicted_4x"]["value"]
    assert any("2x and 4x the model are not predicted" in x for x in verdict["cannot_support"])
    record = json.loads((out / "sweep.json").read_text())
    assert [p["status"] for p in record["points"]] == ["done"] * 8
    for size, choice in record["lr_probe"].items():  # NDCG: the probe keeps the highest validation value
        assert choice["metric"] == "val ndcg@10" and choice["scores"][f"{choice['lr_scale']:g}"] == max(choice["scores"].values())
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
    assert all(p["best_step"] for p in fit["points"]) and "were still improving when they stopped" in report  # sweep.evals=2: validated


def test_scale_sweep_starts_from_a_run_config_file(tmp_path, capsys):
    """sweep.config: every point starts from the run recipe (its data section included); the recipe's context and
    batch become the sweep's, its lr is carried to width 64 by the lr rule, and a run key set on the command line still wins."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('seed = 0\n[data]\nmax_bytes = 60000\nvocab_size = 300\neval_tokens = 2000\n'
                      '[model]\nd_model = 16\nmax_len = 24\n[train]\nbatch_size = 4\nlr = 0.004\nweight_decay = 0.05\n')
    scale = write_recipe(tmp_path / "scale.toml", {"config": "recipe.toml", "sizes": ["d64x1"], "fractions": [1.0], "evals": 3, "lr_exponent": 1.0},
                         fit={"bootstrap": 0, "noise_sims": 0})
    out = tmp_path / "sweep"
    argv = ["scale", "lm", "--config", str(scale), "--quiet", "--out", str(out), "--set", "train.weight_decay=0.02"]
    assert main(argv) == 2  # one point cannot be fitted: the sweep ran, the fit says why
    assert "L(N, D) has 5 parameters and needs at least 5 points" in capsys.readouterr().err
    cfg = json.loads((out / "runs" / "d64x1-f1-s0" / "manifest.json").read_text())["config"]
    assert cfg["model"]["max_len"] == 24 and cfg["train"]["batch_size"] == 4 and cfg["data"]["max_bytes"] == 60000
    assert cfg["train"]["lr"] == pytest.approx(0.004 * (16 / 64) ** 1, rel=1e-4)  # lr_ref at 64 = the recipe's lr at 16 by the rule (lr_exponent 1)
    assert cfg["train"]["weight_decay"] == 0.02  # --set goes last
    record = json.loads((out / "sweep.json").read_text())
    assert record["spec"]["config"] == str(tmp_path / "recipe.toml") and record["points"][0]["status"] == "done" and record["spec"]["lr_exponent"] == 1
    steps = record["points"][0]["steps"]
    assert cfg["train"]["eval_every"] == steps // 3  # sweep.evals 3: three validations, the best checkpoint scored
    log = [json.loads(line) for line in (out / "runs" / "d64x1-f1-s0" / "train_log.jsonl").read_text().splitlines()]
    assert sum("eval" in r for r in log) >= 3


def test_scale_recipe_errors(tmp_path, capsys):
    """A missing recipe, a missing run config, a mistyped value and an unknown key each give one line naming the file or key."""
    assert main(["scale", "lm", "--config", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.toml'}: recipe not found\n"
    assert main(["scale", "lm", "--set", f"sweep.config={tmp_path / 'nope.toml'}", "--out", str(tmp_path / "s")]) == 2
    assert "nope.toml: config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nbatch_size = 'many'\n")
    assert main(["scale", "lm", "--set", f"sweep.config={bad}", "--out", str(tmp_path / "s")]) == 2
    assert "batch_size" in capsys.readouterr().err
    assert main(["scale", "lm", "--set", "sweep.seeds=two", "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err == "error: 'sweep.seeds' must be an integer; got 'two'\n"
    assert main(["scale", "lm", "--set", "sweep.sizez=nano", "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.startswith("error: --set: unknown sweep key 'sizez'; valid keys: sweep.sizes, ")
    assert main(["scale", "lm", "--set", "fit.fix_e=0", "--out", str(tmp_path / "s")]) == 2
    assert "unknown config key 'fit.fix_e'" in capsys.readouterr().err
    assert main(["scale", "lm", "--set", "data.vocab=300", "--out", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().err.startswith("error: --set: [run] unknown config key 'data.vocab'")
    assert not (tmp_path / "s").exists()  # refused before any work


def test_probe_only_stops_before_the_grid_and_the_same_command_resumes_from_it(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["scale", "lm", "--config", str(micro_recipe(tmp_path / "m.toml", PROBE_OVERRIDES, fractions=[0.5, 0.75, 1.0], sizes=["nano", "tiny"])),
            *sets(sweep__lr_probe=[0.5, 1], sweep__probe_extend=0), "--quiet", "--out", str(out)]
    assert main(argv + ["--set", "sweep.probe_only=true"]) == 0
    text = capsys.readouterr().out
    lines = [x for x in text.splitlines() if re.match(r"(nano|tiny) x", x)]
    record = json.loads((out / "sweep.json").read_text())
    assert [x.split()[0] for x in lines] == ["nano", "tiny"]
    for line in lines:  # each printed choice is the recorded one
        size, choice = line.split()[0], record["lr_probe"][line.split()[0]]
        assert line.startswith(f"{size} x{choice['lr_scale']:g} of the lr rule")
    assert "without sweep.probe_only trains the grid" in text
    assert not (out / "runs").exists() and len(list((out / "probe").iterdir())) == 4
    assert main(argv) == 0  # the grid and the fit, the probe resumed
    record = json.loads((out / "sweep.json").read_text())
    assert all(p.get("resumed") for p in record["probes"]) and [p["status"] for p in record["points"]] == ["done"] * 6
    capsys.readouterr()
    assert main(["scale", "lm", "--set", "sweep.probe_only=true", "--out", str(tmp_path / "x")]) == 2  # no multipliers to probe
    assert "probe_only needs lr probe multipliers (sweep.lr_probe)" in capsys.readouterr().err


def test_mup_sweep_gives_every_size_one_lr_and_the_base_width(tmp_path, capsys):
    """The shipped lm recipe trains in muP: the base width reaches every point's model and the width rule is off."""
    out = tmp_path / "sweep"
    argv = ["scale", "lm", "--quiet", "--out", str(out),
            *sets(sweep__sizes=["d32x1", "d96x1"], sweep__fractions=[1], sweep__context=24, sweep__batch_size=4, sweep__threads=1, sweep__workers=1,
                  sweep__min_steps=0, sweep__lr_ref=0.01, sweep__repeat_to_full="false"), "--set", "data.max_bytes=60000", "--set", "data.eval_tokens=2000"]
    assert main(argv) == 2  # two points cannot be fitted: the sweep ran, the fit says why
    assert "needs at least 5 points" in capsys.readouterr().err
    for size in ("d32x1", "d96x1"):  # d96: 3 heads, which do not divide the base width; its heads are the base's 32 wide
        cfg = json.loads((out / "runs" / f"{size}-f1-s2" / "manifest.json").read_text())["config"]
        assert cfg["model"]["mup_base_width"] == 32 and cfg["model"]["mup_base_head_dim"] == 32  # d32: one head of 32
        assert cfg["train"]["lr"] == pytest.approx(0.01)
        assert cfg["model"]["mup_output_mult"] == 8.0 and cfg["data"]["vocab_size"] == 300  # the recipe's [run] table
    assert json.loads((out / "sweep.json").read_text())["spec"]["lr_exponent"] == 0


@pytest.mark.parametrize("extra, message", [
    (["--set", "sweep.lr_exponent=0.5"], "with lr_exponent 0.5: muP already scales the hidden lr by width"),
    (["--set", "model.mup_base_width=-8"], "mup_base_width must be positive"),
])
def test_mup_sweep_errors(tmp_path, capsys, extra, message):
    assert main(["scale", "lm", "--quiet", "--out", str(tmp_path / "s"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before anything trained


def test_probe_sizes_probe_one_model_and_carry_its_choice_to_the_others(tmp_path, capsys):
    """sweep.probe_sizes: only the named sizes are probed; every other size trains at the nearest probed width's choice."""
    out = tmp_path / "sweep"
    argv = ["scale", "lm", "--quiet", "--out", str(out), *TINY_LM,
            *sets(sweep__sizes=["nano", "tiny"], sweep__fractions=[0.5, 1], sweep__context=32, sweep__batch_size=8, sweep__threads=1, sweep__workers=1,
                  sweep__min_steps=0, sweep__repeat_to_full="false", sweep__lr_probe=[0.5, 4], sweep__probe_sizes=["nano"], sweep__probe_extend=0,
                  fit__bootstrap=0, fit__noise_sims=0)]
    assert main(argv + ["--set", "sweep.probe_only=true"]) == 0
    text = capsys.readouterr().out
    record = json.loads((out / "sweep.json").read_text())
    assert sorted(p["run"] for p in record["probes"]) == ["probe/nano-f0.5-lrx0.5", "probe/nano-f0.5-lrx4"]
    nano = record["lr_probe"]["nano"]
    assert record["lr_probe"]["tiny"]["lr_scale"] == nano["lr_scale"] and record["lr_probe"]["tiny"]["from"] == "nano"
    assert f"tiny x{nano['lr_scale']:g} of the lr rule, carried from nano's probe" in text
    assert main(argv) == 2  # the grid at the carried lr; four points cannot pin five parameters, which the fit says
    assert "needs at least 5 points" in capsys.readouterr().err
    lrs = {p["run"]: p["lr"] for p in json.loads((out / "sweep.json").read_text())["points"]}
    assert lrs["runs/tiny-f1-s2"] == lrs["runs/nano-f1-s2"] == pytest.approx(0.008485281374238571 * nano["lr_scale"], rel=1e-5)  # muP: one lr


def test_probe_sizes_must_be_swept_and_probed(tmp_path, capsys):
    base = ["scale", "lm", "--set", "sweep.sizes=nano", "--out", str(tmp_path / "s")]
    assert main(base + sets(sweep__lr_probe=[1, 2], sweep__probe_sizes=["tiny"])) == 2
    assert "probe size(s) tiny not among the sweep's sizes (nano)" in capsys.readouterr().err
    assert main(base + ["--set", "sweep.probe_sizes=nano"]) == 2
    assert "probe_sizes needs lr probe multipliers" in capsys.readouterr().err


def test_a_value_probe_needs_a_key_and_numbers(tmp_path, capsys):
    base = ["scale", "lm", "--set", "sweep.sizes=nano", "--out", str(tmp_path / "s")]
    assert main(base + ["--set", "sweep.probe_key=model.mup_output_mult"]) == 2
    assert "a value probe needs a key and its values (sweep.probe_key and sweep.probe_values)" in capsys.readouterr().err
    assert main(base + sets(sweep__probe_key="model.mup_output_mult", sweep__probe_values=[1, "two"])) == 2
    assert "'sweep.probe_values' must be a number; got 'two'" in capsys.readouterr().err
    assert main(base + sets(sweep__probe_key="train.lr", sweep__probe_values=[1, 2])) == 2
    assert "probe the lr with sweep.lr_probe" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before any work


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
