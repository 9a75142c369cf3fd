"""The price table: shipped defaults, partial overrides, and clear errors for bad tables."""

from __future__ import annotations

import pytest

from guimo.errors import GuimoError
from guimo.scale.prices import DEFAULT_PATH, load_prices


def test_shipped_table_loads_with_all_sections():
    p = load_prices()
    assert DEFAULT_PATH.name == "prices.toml" and DEFAULT_PATH.parent.name == "guimo"
    assert p.hardware.train_per_hour == pytest.approx(p.hardware.train_cpu_cores * p.hardware.cpu_core_per_hour + p.hardware.train_gpus * p.hardware.gpu_per_hour)
    assert p.requests.request_price("lm") == p.requests.per_1k_requests["lm"]
    assert p.requests.request_price("unknown-scenario") == p.requests.per_1k_requests["default"]
    assert {"prompt", "completion", "embedding"} <= set(p.requests.per_1k_tokens)
    assert p.cite("hardware.cpu_core_per_hour") == f"[hardware] cpu_core_per_hour = {p.hardware.cpu_core_per_hour:g}"
    assert p.cite("energy.included_in_hardware") in ("[energy] included_in_hardware = true", "[energy] included_in_hardware = false")


def test_partial_file_merges_over_defaults(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[hardware]\ncpu_core_per_hour = 0.1\n[requests.per_1k_requests]\nlm = 2.5\n')
    p = load_prices(f)
    assert p.hardware.cpu_core_per_hour == 0.1
    assert p.hardware.train_cpu_cores == load_prices().hardware.train_cpu_cores  # untouched default
    assert p.requests.per_1k_requests["lm"] == 2.5 and "default" in p.requests.per_1k_requests
    assert str(f) in p.source


@pytest.mark.parametrize(
    "text, message",
    [
        ("[hardware]\ncpu_core_per_hour = \n", r"p\.toml:2: bad price table"),
        ("[hardwar]\ncpu_core_per_hour = 1\n", "unknown config key 'hardwar'"),
        ("[hardware]\ncpu_core_per_hour = -0.5\n", "cpu_core_per_hour must be >= 0"),
        ("[hardware]\ncpu_core_per_hour = \"cheap\"\n", "must be a number"),
        ("[requests.per_1k_requests]\nlm = \"free\"\n", "per_1k_requests.lm must be a number"),
        ("[energy]\npue = 0.5\n", "pue must be >= 1"),
        ("[business.ecommerce]\nconversion_rate = 3\n", r"conversion_rate must be in \[0, 1\]"),
        ("[business.cloud]\nutilisations = []\n", "utilisations must be a non-empty list"),
    ],
)
def test_bad_tables_are_refused_with_the_file_named(tmp_path, text, message):
    f = tmp_path / "p.toml"
    f.write_text(text)
    with pytest.raises(GuimoError, match=message) as e:
        load_prices(f)
    assert str(f) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(GuimoError, match="price table not found"):
        load_prices(tmp_path / "nope.toml")
