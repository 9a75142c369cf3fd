"""bench/recommend_speed.py times guimo through the product: the recommend scenario's own data stages, dataset
and loss in ``guimo.train.loop.fit`` (issue #22, part 13: it once trained "guimo" with its own Adam loop and its
own copy of ``Prepared.cases``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import product  # noqa: E402
import recommend_speed  # noqa: E402


@pytest.fixture
def interactions(tmp_path) -> Path:
    """A RecBole .inter file: 60 users, 40 items, 12 interactions each, in time order."""
    rng = np.random.default_rng(0)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(60):
        for t, item in enumerate(rng.choice(40, size=12, replace=False)):
            lines.append(f"u{u}\ti{item}\t5\t{1000 * u + t}")
    path = tmp_path / "tiny.inter"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_recommend_speed_bench_trains_guimo_with_the_products_loop(interactions, monkeypatch):
    import guimo.train.loop as loop

    calls = []
    real_fit = loop.fit

    def counting_fit(model, train_set, loss_fn, cfg, **kw):  # calls through: the real loop trains
        calls.append((type(train_set).__name__, cfg.max_steps, cfg.batch_size, cfg.lr, cfg.precision))
        return real_fit(model, train_set, loss_fn, cfg, **kw)

    monkeypatch.setattr(loop, "fit", counting_fit)
    out = recommend_speed.bench_guimo(interactions, steps=4, batch=16)
    assert calls == [("NextItemWindows", 7, 16, 1e-3, "fp32")]  # 3 warm-up steps + 4 timed, RecBole's lr, fp32
    assert out["trainer"] == "guimo.train.loop.fit"
    assert out["users"] == 60 and out["items"] == 40
    assert out["targets_per_s"] > out["sequences_per_s"] > 0  # every position of a window is a target


def test_prepared_runs_the_train_stage_inputs_of_the_run_folder(interactions, tmp_path):
    prep = product.prepare("recommend", [*recommend_speed.GUIMO_SETTINGS, "train.batch_size=16"], tmp_path / "run", data=str(interactions))
    assert prep.cfg.model.d_ff == 256 and prep.cfg.train.lr == 1e-3 and prep.inputs.metric == "ndcg@10"
    result, model, step_s = prep.train(5, tmp_path / "train", evaluate=True)
    assert result.steps == 5 and result.precision == "fp32" and step_s > 0
    assert result.best_metric is not None and 0 <= result.best_metric <= 1  # the run's own validation, at the end
    assert (tmp_path / "train" / "train_log.jsonl").exists()  # written by guimo.train.loop.fit
    again, _, _ = prep.train(5, tmp_path / "again", evaluate=True)
    assert again.best_metric == result.best_metric  # the same initial weights and seed every time
