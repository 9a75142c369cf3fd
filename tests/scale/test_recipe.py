"""Scale recipes: every shipped one loads and reproduces the bench record it names; --set routes and type-checks."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from guimo.errors import GuimoError
from guimo.scale.recipe import RECIPES, Recipe, load_recipe, sweep_spec, with_sets

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(RECIPES.glob("*.toml")) + sorted((ROOT / "bench").glob("scale_*.toml"))
RESULTS = ROOT / "bench" / "results"


def _scenario(path: Path) -> str:
    """The scenario a recipe names (its `scenario` key), else the one its file name says."""
    from guimo.config import load_file

    return load_file(path).get("scenario") or ("recommend" if "recommend" in path.name else "lm")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_recipe_loads_and_builds_its_sweep(path):
    from guimo.scenarios import SCENARIOS

    if _scenario(path) not in SCENARIOS:
        pytest.skip(f"the {_scenario(path)} scenario is not registered")
    recipe = load_recipe(_scenario(path), path)
    spec = sweep_spec(recipe)
    assert spec.sizes and spec.fractions and recipe.description
    assert spec.scenario == _scenario(path) and spec.overrides == recipe.run


def test_the_shipped_scenarios_are_the_ones_with_a_default():
    from guimo.scale.recipe import shipped

    assert {p.stem for p in RECIPES.glob("*.toml")} == {"lm", "recommend", "categorize", "support", "credit", "fraud"}
    assert load_recipe("lm").source == str(shipped("lm"))


def _bench_lm_args(command: str) -> dict[str, str]:
    """The flags of a recorded `python bench/scale_lm.py ...` command."""
    words = shlex.split(command)[2:]
    flags, i = {}, 0
    while i < len(words):
        if i + 1 < len(words) and not words[i + 1].startswith("--"):
            flags[words[i]] = words[i + 1]
            i += 2
        else:
            flags[words[i]] = "true"
            i += 1
    return flags


@pytest.mark.parametrize("record, recipe", [
    ("scale_lm_stdlib-repeat-fixE-seed2.json", "guimo/recipes/scale/lm.toml"),
    ("scale_lm_shakespeare-repeat-fixE-seeds23.json", "bench/scale_lm_shakespeare.toml"),
    ("scale_lm_zh-poetry-repeat-fixE-seed2.json", "bench/scale_lm_zh_poetry.toml"),
])
def test_lm_recipes_reproduce_the_bench_records(record, recipe):
    """Each data-constrained record's design, as bench/scale_lm.py ran it, is its recipe's: grid, seeds, lr, muP, data, fit."""
    rec = json.loads((RESULTS / record).read_text())
    r = load_recipe("lm", ROOT / recipe)
    spec = sweep_spec(r)
    assert spec.sizes == rec["sizes"].split(",") and spec.fractions == [float(f) for f in rec["fractions"].split(",")]
    assert (spec.seeds, spec.seed, spec.repeat_to_full, spec.epochs) == (rec["seeds"], rec["first_seed"], True, rec["epochs"])
    assert (spec.context, spec.batch_size, spec.min_steps, spec.lr_batch_exponent) == (rec["context"], rec["batch_size"], rec["min_steps"], rec["lr_batch_exponent"])
    assert spec.lr_ref == rec["lr_ref"] and spec.lr_exponent == 0  # muP: one lr
    assert (spec.threads, spec.workers) == (rec["threads"], rec["workers"])
    run = dict(o.split("=", 1) for o in r.run)
    assert int(run["model.mup_base_width"]) == rec["mup"] and float(run["model.mup_output_mult"]) == rec["mup_output_mult"]
    assert int(run["data.vocab_size"]) == rec["vocab_size"] and run["data.eval_tokens"] == "100000000"
    assert int(run.get("data.max_bytes", 0)) == (rec["max_bytes"] or 0) and run.get("data.cap", "head") == rec["cap"]
    flags = _bench_lm_args(rec["command"])
    corpus = flags.get("--corpus", "stdlib")
    assert ("data.path" in run) == (corpus != "stdlib") and (corpus == "stdlib" or Path(run["data.path"]).parts[-2:] == {
        "shakespeare": ("tinyshakespeare", "input.txt"), "zh-poetry": ("zh", "zh_poetry.txt")}[corpus])
    assert r.fit.fix_E == rec["fixed_E"] == 0 and r.fit.bootstrap == 200
    assert (r.verdict.max_relative_error, r.verdict.min_ratio) == (0.03, 4.0)  # bench/scale_lm.py's target_met criterion


@pytest.mark.parametrize("record, recipe", [
    ("scale_recommend_marketplace.json", "guimo/recipes/scale/recommend.toml"),
    ("scale_recommend_beauty.json", "bench/scale_recommend_beauty.toml"),
])
def test_recommend_recipes_reproduce_the_bench_records(record, recipe):
    """The recorded `guimo scale recommend` commands, flag by flag, are the recipes' settings."""
    rec = json.loads((RESULTS / record).read_text())
    words = shlex.split(rec["command"])
    flags = dict(zip(words[words.index("recommend") + 1::2], words[words.index("recommend") + 2::2]))
    spec = sweep_spec(load_recipe("recommend", ROOT / recipe))
    assert spec.sizes == flags["--sizes"].split(",") and spec.fractions == [float(f) for f in flags["--data-fractions"].split(",")]
    assert (spec.seeds, spec.epochs, spec.evals, spec.threads, spec.workers) == (
        int(flags["--seeds"]), float(flags["--epochs"]), int(flags["--evals"]), int(flags["--threads"]), int(flags["--workers"]))
    if "--config" in flags:  # Beauty: the run recipe's context, batch and lr, as the record's command took them
        assert Path(spec.config).resolve() == (ROOT / flags["--config"]).resolve() and spec.min_steps == int(flags["--min-steps"])
    else:
        assert (spec.context, spec.batch_size, spec.lr_ref) == (int(flags["--context"]), int(flags["--batch-size"]), float(flags["--lr-ref"]))
    assert load_recipe("recommend", ROOT / recipe).fit.bootstrap == int(flags["--bootstrap"])


def test_set_routes_recipe_keys_and_run_keys():
    r = with_sets(load_recipe("lm"), ["sweep.sizes=nano,tiny", "sweep.fractions=0.5,1", "fit.fix_E=none", "verdict.max_relative_error=0.05",
                                      "data.vocab_size=512", "sweep.repeat_to_full=false"])
    spec = sweep_spec(r, workers=1, budget_s=60.0)
    assert spec.sizes == ["nano", "tiny"] and spec.fractions == [0.5, 1.0] and spec.repeat_to_full is False
    assert (spec.workers, spec.budget_s, spec.threads) == (1, 60.0, 2)  # the command line's value, else the recipe's
    assert r.fit.fix_E is None and r.verdict.max_relative_error == 0.05
    assert spec.overrides[-1] == "data.vocab_size=512" and "data.vocab_size=300" in spec.overrides  # a --set run key after the recipe's
    assert load_recipe("lm").fit.fix_E == 0  # the loaded recipe itself is untouched


@pytest.mark.parametrize("text, message", [
    ("[sweeps]\nsizes = ['nano']\n", "unknown recipe key 'sweeps'"),
    ("scenario = 'recommend'\n", "a recipe for 'recommend', not 'lm'"),
    ("[sweep]\nbudget_s = 60\n", "unknown sweep key 'budget_s'"),
    ("[fit]\nbootstrap = 'many'\n", "'fit.bootstrap' must be an integer"),
    ("[run]\ntrain.lrr = 0.1\n", "[run] unknown config key 'train.lrr'"),
    ("[verdict]\nmax_relative_error = 0\n", "verdict.max_relative_error must be positive"),
])
def test_recipe_errors_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(GuimoError) as e:
        load_recipe("lm", path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)


def test_a_scenario_without_a_shipped_recipe_gets_the_sweep_defaults():
    r = load_recipe("nosuch-scenario")
    assert isinstance(r, Recipe) and r.sweep == {} and r.run == [] and r.source.startswith("(defaults")
