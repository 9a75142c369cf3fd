"""Typed configs: files, --set overrides, presets, and every shipped preset and scenario default."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from guimo import scenarios
from guimo.config import apply_overrides, from_dict, load_file, merge, to_dict, valid_keys
from guimo.errors import GuimoError
from guimo.models.transformer import PRESETS, TransformerConfig


@dataclass
class Inner:
    steps: int = 10
    rate: float = 0.5
    flag: bool = False
    limit: float | None = None
    mode: Literal["fast", "exact"] = "fast"
    names: list[str] = field(default_factory=lambda: ["a"])
    sizes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError("steps must be >= 0")


@dataclass
class Outer:
    seed: int = 0
    label: str = "x"
    inner: Inner = field(default_factory=Inner)


SIZES = {"inner": {"short": {"steps": 3}, "long": {"steps": 300, "mode": "exact"}}}


# -- --set type checking -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "item, key, expected",
    [
        ("inner.steps=42", "steps", 42),
        ("inner.steps=1e3", "steps", 1000),
        ("inner.rate=3e-4", "rate", 3e-4),
        ("inner.rate=2", "rate", 2.0),
        ("inner.flag=true", "flag", True),
        ("inner.flag=off", "flag", False),
        ("inner.flag=1", "flag", True),
        ("inner.limit=none", "limit", None),
        ("inner.limit=2.5", "limit", 2.5),
        ("inner.mode=exact", "mode", "exact"),
        ("inner.names=x, y ,z", "names", ["x", "y", "z"]),
        ("inner.names=[\"p\", \"q\"]", "names", ["p", "q"]),
        ("inner.sizes=[1, 2, 3]", "sizes", [1, 2, 3]),
        ("inner.sizes=4,5", "sizes", [4, 5]),
    ],
)
def test_set_parses_by_declared_type(item, key, expected):
    cfg = apply_overrides(Outer(), [item])
    value = getattr(cfg.inner, key)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "item, message",
    [
        ("inner.steps=1.5", "'inner.steps' must be an integer; got '1.5'"),
        ("inner.steps=many", "'inner.steps' must be an integer"),
        ("inner.steps=true", "'inner.steps' must be an integer"),
        ("inner.rate=fast", "'inner.rate' must be a number"),
        ("inner.flag=maybe", "'inner.flag' must be true or false"),
        ("inner.mode=slow", "'inner.mode' must be one of fast, exact; got 'slow'"),
        ("inner.limit=lots", "'inner.limit'"),
        ("inner.sizes=1,two", "'inner.sizes' must be an integer"),
        ("inner.steps=-1", "invalid value for 'inner.steps': steps must be >= 0"),
        ("inner.steps", "bad --set 'inner.steps': expected key=value"),
        ("seed=none", "'seed' must be an integer"),
    ],
)
def test_set_refuses_bad_values(item, message):
    with pytest.raises(GuimoError) as e:
        apply_overrides(Outer(), [item])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(GuimoError) as e:
        apply_overrides(Outer(), ["inner.stesp=3"], SIZES)
    msg = str(e.value)
    assert "unknown config key 'inner.stesp'" in msg
    for key in valid_keys(Outer()):
        assert key in msg
    assert "inner=<name>" in msg  # presets are named too


def test_overrides_apply_in_order_and_leave_the_original_alone():
    base = Outer()
    cfg = apply_overrides(base, ["inner.steps=5", "inner.steps=6", "label=run-1"])
    assert (cfg.inner.steps, cfg.label) == (6, "run-1")
    assert base.inner.steps == 10


# -- presets -----------------------------------------------------------------------------------


def test_preset_replaces_the_section_then_later_keys_refine_it():
    cfg = apply_overrides(Outer(), ["inner=long", "inner.rate=0.1"], SIZES)
    assert (cfg.inner.steps, cfg.inner.mode, cfg.inner.rate) == (300, "exact", 0.1)


def test_unknown_preset_names_the_choices():
    with pytest.raises(GuimoError, match="unknown inner preset 'huge'; choose one of: short, long"):
        apply_overrides(Outer(), ["inner=huge"], SIZES)


@pytest.mark.parametrize("name", ["tiny", "small", "base"])
def test_model_presets_by_name(name):
    lm = scenarios.get("lm")
    cfg = apply_overrides(lm.config_cls(), [f"model={name}"], lm.presets)
    for key, value in PRESETS[name].items():
        assert getattr(cfg.model, key) == value


# -- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, text",
    [
        ("c.toml", 'seed = 7\n[inner]\nrate = 0.25\nmode = "exact"\nsizes = [1, 2]\nlimit = 3\n'),
        ("c.yaml", "seed: 7\ninner:\n  rate: 0.25\n  mode: exact\n  sizes: [1, 2]\n  limit: 3\n"),
        ("c.yml", "seed: 7\ninner: {rate: 0.25, mode: exact, sizes: [1, 2], limit: 3}\n"),
        ("c.json", json.dumps({"seed": 7, "inner": {"rate": 0.25, "mode": "exact", "sizes": [1, 2], "limit": 3}})),
    ],
)
def test_config_files(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    cfg = merge(Outer(), load_file(path))
    assert (cfg.seed, cfg.inner.rate, cfg.inner.mode, cfg.inner.sizes, cfg.inner.limit) == (7, 0.25, "exact", [1, 2], 3.0)
    assert cfg.inner.steps == 10  # untouched keys keep their defaults
    assert isinstance(cfg.inner.limit, float)


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.toml", "[inner\nrate = 1\n", "bad.toml: cannot parse config"),
        ("bad.yaml", "inner: [unclosed\n", "bad.yaml: cannot parse config"),
        ("bad.json", "{\"seed\": }", "bad.json: cannot parse config"),
        ("c.ini", "[inner]\n", "c.ini: config must be .toml, .yaml, .yml or .json"),
    ],
)
def test_malformed_config_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(GuimoError, match=message.replace(".", r"\.")):
        load_file(path)


def test_preset_by_name_in_a_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('seed = 3\ninner = "long"\n')
    cfg = merge(Outer(), load_file(path), SIZES)
    assert (cfg.seed, cfg.inner.steps, cfg.inner.mode) == (3, 300, "exact")
    path.write_text('inner = "huge"\n')
    with pytest.raises(GuimoError, match="unknown inner preset 'huge'; choose one of: short, long"):
        merge(Outer(), load_file(path), SIZES)


def test_missing_config_file(tmp_path):
    with pytest.raises(GuimoError, match="config file not found"):
        load_file(tmp_path / "none.toml")


def test_unknown_key_in_a_file_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[inner]\nsteps = 3\nrte = 0.1\n")
    with pytest.raises(GuimoError, match=r"unknown config key 'inner.rte'; valid keys: inner.steps, inner.rate"):
        merge(Outer(), load_file(path))


def test_wrong_type_in_a_file_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[inner]\nsteps = "ten"\n')
    with pytest.raises(GuimoError, match="'inner.steps' must be an integer"):
        merge(Outer(), load_file(path))


def test_scalar_where_a_section_belongs(tmp_path):
    with pytest.raises(GuimoError, match="config section 'inner' must be a table"):
        merge(Outer(), {"inner": 3})


def test_round_trip_through_json():
    cfg = apply_overrides(Outer(), ["inner.limit=1.5", "inner.names=q", "inner=short"], SIZES)
    assert from_dict(Outer, json.loads(json.dumps(to_dict(cfg)))) == cfg


# -- every shipped preset and scenario default ---------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_model_preset_builds(name):
    import torch

    from guimo.models.transformer import Transformer, count_parameters

    cfg = TransformerConfig(**PRESETS[name])
    with torch.device("meta"):
        model = Transformer(cfg)
    counts = count_parameters(cfg)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert 0 < counts["non_embedding"] < counts["total"]


def _scenario_cases():
    return [(name, section, preset) for name in scenarios.SCENARIOS for section, table in scenarios.get(name).presets.items() for preset in [None, *table]]


def _scenario_config(name, section, preset):
    """The scenario's default config, with ``section=preset`` applied when a preset is named."""
    sc = scenarios.get(name)
    cfg = sc.config_cls()
    return cfg if preset is None else apply_overrides(cfg, [f"{section}={preset}"], sc.presets)


@pytest.mark.parametrize("name, section, preset", _scenario_cases())
def test_every_scenario_default_and_preset(name, section, preset):
    """Each scenario's default config resolves, round-trips through JSON, and builds its model."""
    import torch

    sc = scenarios.get(name)
    cfg = _scenario_config(name, section, preset)
    assert from_dict(sc.config_cls, json.loads(json.dumps(to_dict(cfg)))) == cfg
    for required in ("seed", "model", "train", "init", "optimize"):
        assert hasattr(cfg, required), f"{name} config lacks '{required}'"
    if isinstance(cfg.model, sc.model_config_cls):  # model config needs no data: build it
        with torch.device("meta"):
            model = sc.build_model(cfg.model)
        assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", list(scenarios.SCENARIOS))
def test_every_config_field_is_documented(name):
    """Habit 9: every leaf field says what it is for (it becomes --help and docs)."""

    def undocumented(cls, prefix=""):
        out = []
        for f in dataclasses.fields(cls):
            tp = f.type if isinstance(f.type, type) else None
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default):
                out += undocumented(type(default), f"{prefix}{f.name}.")
            elif not f.metadata.get("help") and not (tp and dataclasses.is_dataclass(tp)):
                out.append(prefix + f.name)
        return out

    assert undocumented(scenarios.get(name).config_cls) == []


@pytest.mark.parametrize("name, section, preset", _scenario_cases())
def test_no_default_lets_the_clock_pick_the_step_count(name, section, preset):
    """Non-negotiable 4: nothing the wall clock decides may change a run's numbers, so no shipped default or preset sets
    a time budget (``max_time_s``, in ``train`` or any nested training section such as the reranker's); a user opts in
    with ``--set train.max_time_s=SECONDS``."""
    cfg = _scenario_config(name, section, preset)

    def budgets(node, path=""):
        found = [path + "max_time_s"] if getattr(node, "max_time_s", None) is not None else []
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if dataclasses.is_dataclass(value):
                found += budgets(value, f"{path}{f.name}.")
        return found

    assert budgets(cfg) == []
