"""Economics figures against hand calculations (default price table unless stated)."""

from __future__ import annotations

import json
import math

import pytest

from guimo.errors import GuimoError
from guimo.scale import economics as ec
from guimo.scale.prices import load_prices

# The shipped table: 2 cores x $0.035/h = $0.07/h for training and for one serving replica.
PER_HOUR = 0.07


@pytest.fixture
def prices():
    p = load_prices()
    assert p.hardware.train_per_hour == pytest.approx(PER_HOUR) and p.hardware.serve_per_hour == pytest.approx(PER_HOUR)
    return p


def by_name(figs, start):
    (f,) = [f for f in figs if f.name.startswith(start)]
    return f


def test_training_cost_one_hour(prices, tmp_path):
    figs = ec.training_cost("run-a", 3600.0, prices, source="run-a/manifest.json")
    assert by_name(figs, "training rent").value == pytest.approx(0.07)
    assert by_name(figs, "training energy").value == pytest.approx(2 * 10 * 1.3 / 1000)  # 0.026 kWh
    cost = by_name(figs, "training cost")
    assert cost.value == pytest.approx(0.07)  # energy is in the cloud rent
    assert "3,600.0 s" in cost.measured and "cpu_core_per_hour = 0.035" in cost.assumed
    f = tmp_path / "onprem.toml"
    f.write_text("[energy]\nincluded_in_hardware = false\n")
    onprem = ec.training_cost("run-a", 3600.0, load_prices(f))
    assert by_name(onprem, "training cost").value == pytest.approx(0.07 + 0.026 * 0.15)


def test_cost_per_1k_and_serving_rows(prices):
    assert ec.cost_per_1k(0.07, 10.0) == pytest.approx(0.07 / 36000 * 1000)
    rows = [ec.LoadRow(1, False, 5.0, 100, 150, 200), ec.LoadRow(8, True, 20.0, 300, 400, 500)]
    figs = ec.serving_costs(rows, prices, source="load.json")
    assert [f.value for f in figs] == pytest.approx([0.07 / (5 * 3.6), 0.07 / (20 * 3.6)])
    assert "batching on" in figs[1].name and "20.00 req/s" in figs[1].measured


def test_replicas_for_target(prices):
    rows = [ec.LoadRow(1, False, 5.0, 100, 150, 200), ec.LoadRow(8, True, 20.0, 300, 400, 500)]
    strict = ec.replicas_for(rows, prices, traffic_rps=12.0, p99_ms=250, source="x")
    assert strict[0].value == 3  # ceil(12 / 5): only the unbatched point meets 250 ms
    assert strict[1].value == pytest.approx(3 * 0.07)
    assert strict[2].value == pytest.approx(3 * 0.07 / (12 * 3.6))
    loose = ec.replicas_for(rows, prices, traffic_rps=12.0, p99_ms=600, source="x")
    assert loose[0].value == 1
    with pytest.raises(GuimoError, match="best measured p99 is 200 ms"):
        ec.replicas_for(rows, prices, traffic_rps=12.0, p99_ms=50, source="x")


def test_public_cloud_margin_and_break_even(prices):
    figs = ec.public_cloud(10.0, prices, scenario="lm", measured="load.json")  # lm sells at $1.00 per 1,000
    half = by_name(figs, "public cloud gross margin at 50%")
    assert half.value == pytest.approx(1 - 0.07 / (5 * 3.6))
    assert by_name(figs, "public cloud break-even traffic").value == pytest.approx(0.07 / 3.6)
    assert by_name(figs, "public cloud break-even utilisation").value == pytest.approx(0.07 / 3.6 / 10)
    assert "per_1k_requests] lm = 1" in half.assumed


def test_ecommerce_by_hand(prices):
    figs = ec.ecommerce(0.06, 0.04, 0.002, prices, measured="rec/metrics.json", cost_source="load")
    assert by_name(figs, "e-commerce relative").value == pytest.approx(0.5)
    orders = 1e6 * 0.03 * 0.25 * 1.0 * 0.5
    assert by_name(figs, "e-commerce incremental orders").value == pytest.approx(orders)  # 3,750
    assert by_name(figs, "e-commerce incremental revenue").value == pytest.approx(orders * 45)
    assert by_name(figs, "e-commerce incremental gross profit").value == pytest.approx(orders * 45 * 0.3)
    assert by_name(figs, "e-commerce inference cost").value == pytest.approx(1e6 * 4 / 1000 * 0.002)
    assert by_name(figs, "e-commerce net").value == pytest.approx(orders * 45 * 0.3 - 8.0)
    with pytest.raises(GuimoError, match="baseline NDCG@10 must be positive"):
        ec.ecommerce(0.06, 0.0, 0.002, prices, measured="", cost_source="")


def test_consumer_device_by_hand(prices):
    """Memory = int8 file x overhead against memory_mb; latency = multiply-adds / int8 rate against the per-token budget."""
    cands = [ec.DeviceCandidate("small", 1e6, 2.0e6, 1.2e6),
             ec.DeviceCandidate("big", 2e8, 2.0e8, 2.1e8),  # 250 MB with the overhead (fits 256), 10.5 ms (fits 50)
             ec.DeviceCandidate("huge", 3e8, 2.1e8, 3.1e8)]  # 262.5 MB: memory stops it
    assert ec.device_fit(cands[1], prices) == pytest.approx((250.0, 10.5, True))
    figs = ec.consumer_device(prices, cands, quality=lambda n: 3.0 - math.log10(n) / 10, cloud_cost_per_1k=0.002, cost_source="load")
    assert by_name(figs, "largest model on the device: big").value == 2e8
    assert by_name(figs, "device memory for big").value == pytest.approx(2.0e8 * 1.25 / 1e6)
    assert by_name(figs, "device latency per token of big").value == pytest.approx(2.1e8 / 20e9 * 1000)
    assert by_name(figs, "expected loss of big").value == pytest.approx(3.0 - math.log10(2e8) / 10)
    assert by_name(figs, "next size up, huge: does not fit (memory 262.5 > 256 MB)").value == 3e8
    assert by_name(figs, "cloud fallback").value == pytest.approx(20 * 730 * 0.05 / 1000 * 0.002)
    slow = [ec.DeviceCandidate("slow", 1e6, 1e6, 2e9)]  # 100 ms per token: latency stops it
    figs = ec.consumer_device(prices, slow, cloud_cost_per_1k=0.002, cost_source="load")
    assert by_name(figs, "largest model on the device: none").value == 0
    assert by_name(figs, "next size up, slow: does not fit (latency 100.0 > 50 ms)")


def test_int8_file_bytes_is_what_save_int8_writes(tmp_path):
    """The device's memory figure sizes models on the meta device; it must be the real int8 file's tensors (the
    safetensors header, a few KB of JSON, aside), embeddings and the tied head kept in float32."""
    import torch

    from guimo.models.transformer import PRESETS, Transformer, TransformerConfig, count_parameters
    from guimo.optimize import quantize as q8

    cfg = TransformerConfig(vocab_size=2048, **PRESETS["tiny"])
    with torch.device("meta"):
        meta = Transformer(cfg)
    model = Transformer(cfg).eval()
    qmodel, names = q8.quantize(model)
    assert q8.quantizable(meta) == names and "head" not in names and "blocks.0.mlp.fc" in names  # the tied head found on meta tensors too
    written = q8.save_int8(tmp_path / "m.int8.safetensors", qmodel, model, names)
    estimate = q8.int8_file_bytes(meta)
    assert 0 < written - estimate < 8192
    assert estimate > 2 * count_parameters(cfg)["total"]  # not 1 byte per parameter: the float embeddings dominate a small model


def test_load_throughput_formats_and_errors(tmp_path):
    good = tmp_path / "load.json"
    good.write_text(json.dumps({"scenario": "lm", "rows": [
        {"concurrency": 1, "batching": False, "requests_per_s": 4.0, "p50_ms": 200, "p95_ms": 240, "p99_ms": 260},
        {"concurrency": 8, "batching": True, "requests_per_s": 12.5, "latency_ms": {"p50": 500, "p95": 600, "p99": 650}},
    ]}))
    rows, meta = ec.load_throughput(good)
    assert meta == {"scenario": "lm"} and rows[1].p99_ms == 650 and rows[1].batching
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"concurrency": 1, "batching": False, "p99_ms": 3}]))
    with pytest.raises(GuimoError, match=r"bad\.json: row 0 lacks 'requests_per_s'"):
        ec.load_throughput(bad)
    bad.write_text("[]")
    with pytest.raises(GuimoError, match="non-empty list of rows"):
        ec.load_throughput(bad)
    bad.write_text(json.dumps([{"concurrency": 1, "batching": False, "requests_per_s": 0, "p50_ms": 1, "p95_ms": 1, "p99_ms": 1}]))
    with pytest.raises(GuimoError, match="must be positive"):
        ec.load_throughput(bad)


def test_every_figure_names_its_sources(prices):
    figs = ec.public_cloud(10.0, prices, scenario="recommend", measured="m") + ec.ecommerce(0.06, 0.04, 0.002, prices, measured="m", cost_source="c")
    assert all(f.measured or f.assumed for f in figs)
    md = ec.figures_markdown(figs)
    assert md.count("\n") == len(figs) + 2 and "from assumption" in md


def test_rows_for_picks_the_served_scenario(tmp_path):
    f = tmp_path / "serve_load.json"
    row = {"concurrency": 1, "batching": True, "p50_ms": 1, "p95_ms": 2, "p99_ms": 3}
    f.write_text(json.dumps({"meta": {"date": "x"}, "rows": [{**row, "model": "lm", "requests_per_s": 5.0}, {**row, "model": "recommend", "requests_per_s": 50.0}]}))
    rows, meta = ec.load_throughput(f)
    assert meta == {"meta": {"date": "x"}}
    assert [r.requests_per_s for r in ec.rows_for(rows, "recommend")] == [50.0]
    with pytest.raises(GuimoError, match="no rows for 'fraud'"):
        ec.rows_for(rows, "fraud")
