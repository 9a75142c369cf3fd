"""`guimo scale --ray`: the sweep's points as Ray tasks on a local 2-CPU cluster give the points and the fit that two
process workers give (training is reproducible, so bit for bit). Needs the extra: pip install "ray[serve]>=2.47"."""

from __future__ import annotations

import json

import pytest

from guimo.scale.report import build_report
from guimo.scale.sweep import run_sweep

from .conftest import micro_spec

pytestmark = pytest.mark.slow


@pytest.fixture
def local_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _results(out):
    record = json.loads((out / "sweep.json").read_text())
    metrics = {p["run"]: json.loads((out / p["run"] / "metrics.json").read_text()) for p in record["points"]}
    return record, {run: (m["model"], m["val"]) for run, m in metrics.items()}  # test and validation metrics of the model


@pytest.mark.timeout(1800)  # a Ray worker's start and torch import took ~2 min on a loaded 2-core machine
def test_ray_sweep_gives_the_fit_of_two_workers(tmp_path, local_cluster):
    # one torch thread per point in both; 60 KB of the corpus: the points need not show scaling, only be the same
    spec = dict(workers=2, threads=2, overrides=["data.max_bytes=60000", "data.vocab_size=300", "data.eval_tokens=1000"])
    pool, on_ray = tmp_path / "workers", tmp_path / "ray"
    run_sweep(micro_spec(**spec), pool, quiet=True)
    run_sweep(micro_spec(**spec, ray="local"), on_ray, quiet=True)  # the cluster the fixture started (2 CPUs: 2 tasks at once)
    (rec_a, test_a), (rec_b, test_b) = _results(pool), _results(on_ray)
    assert [p["status"] for p in rec_b["points"]] == ["done"] * 6 and rec_b["spec"]["ray"] == "local"
    assert test_a == test_b  # every point's test and validation metrics, bit for bit
    for a, b in zip(rec_a["points"], rec_b["points"]):
        assert (a["run"], a["steps"], a["batch_size"], a["lr"], a["unique_tokens"]) == (b["run"], b["steps"], b["batch_size"], b["lr"], b["unique_tokens"])
    fit_a = build_report(pool, n_bootstrap=0, noise_sims=0)["fit"]["params"]
    fit_b = build_report(on_ray, n_bootstrap=0, noise_sims=0)["fit"]["params"]
    assert fit_a == fit_b
    reused = [json.loads((on_ray / p["run"] / "manifest.json").read_text())["stages"]["preprocess"].get("reused_from") for p in rec_b["points"]]
    assert sum(r is not None for r in reused) == 4  # the tasks shared each fraction's prepared data through the sweep folder, as workers do

