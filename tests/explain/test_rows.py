"""explain_frame on a regression predictor built from real parts (a fitted TableEncoder, an FT-Transformer, a LightGBM
booster saved as a run saves it): both columns in the target's units, adding up to the predictions shown."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
lgb = pytest.importorskip("lightgbm")


def test_regression_explanations_are_in_the_targets_units(tmp_path):
    import torch

    from guimo.data.tabular import TableEncoder, infer_columns
    from guimo.evaluate.baselines_tab import lightgbm_matrix
    from guimo.explain.rows import explain_frame
    from guimo.inference.tabular import LIGHTGBM, TabularPredictor
    from guimo.models.tabular import FTTransformer, TabularConfig

    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"bmi": rng.normal(26, 4, n), "bp": rng.normal(90, 12, n), "sex": rng.choice(["f", "m"], n)})
    df["progression"] = 150 + 8 * (df["bmi"] - 26) + 0.5 * (df["bp"] - 90) + np.where(df["sex"] == "m", 10, -10) + rng.normal(0, 5, n)
    columns = infer_columns(df, "progression")
    assert columns.task == "regression"
    encoder = TableEncoder.fit(df, columns)
    x_num, x_cat, y = encoder.transform(df)
    y_mean, y_std = float(y.mean()), float(y.std())
    booster = lgb.train({"objective": "regression", "num_threads": 1, "verbose": -1, "min_data_in_leaf": 10},
                        lgb.Dataset(lightgbm_matrix(x_num, x_cat), (y - y_mean) / y_std, categorical_feature=[x_num.shape[1]]), 30)
    (tmp_path / LIGHTGBM).write_text(booster.model_to_string())
    torch.manual_seed(0)
    model = FTTransformer(TabularConfig(n_num=encoder.n_num, cat_cardinalities=encoder.cardinalities, task="regression", d_model=16, n_layer=1, n_head=2))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    table = {"task": "regression", "target": "progression", "classes": [], "y_mean": y_mean, "y_std": y_std}
    predictor = TabularPredictor(model.eval(), encoder, table, None, run_path=tmp_path)

    rows = df.drop(columns=["progression"]).iloc[:5]
    shown = predictor.predict_frame(rows)["prediction"].to_numpy()
    xn, xc = predictor.encode(rows)
    tree_pred = booster.predict(lightgbm_matrix(xn, xc)) * y_std + y_mean
    for e, pred, tp in zip(explain_frame(predictor, rows), shown, tree_pred):
        assert e.explained is None and "progression" in e.units
        assert e.output == pytest.approx(pred, abs=1e-3)  # the prediction a user is shown, in the target's units
        gap = e.output - e.baseline_output
        assert abs(sum(f.attribution for f in e.features) - gap) <= e.completeness_error + 1e-6
        assert e.tree_raw_score == pytest.approx(tp, abs=1e-6)  # LightGBM's prediction, also in the target's units
        assert e.tree_expected + sum(f.tree for f in e.features) == pytest.approx(tp, abs=1e-6)
        assert {f.feature for f in e.features} == {"bmi", "bp", "sex"}
