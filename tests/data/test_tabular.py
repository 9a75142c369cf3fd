"""Reading, column typing, encoding, loaders and splits of guimo.data.tabular."""

import json

import numpy as np
import pandas as pd
import pytest

from guimo.data.tabular import (Columns, TableEncoder, breast_cancer, diabetes, infer_columns, load_german_credit,
                                load_paysim, read_table, stratified_folds, stratified_split, time_split)
from guimo.errors import GuimoError
from tests.conftest import shared_data


def _frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 1, n)
    city = rng.choice(["paris", "berlin", "rome"], n)
    y = ((np.log(income) + (city == "rome") + rng.normal(0, 0.5, n)) > 10.3).astype(int)
    return pd.DataFrame({
        "customer_id": rng.permutation(n) + 10_000,  # planted id: unique integers named like an id
        "email": [f"user{i}@example.com" for i in range(n)],  # planted id: unique text
        "income": income,  # a real feature, different in every row but not an integer
        "age": rng.integers(18, 80, n),
        "city": city,
        "country": ["fr"] * n,
        "signup": [f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],  # dates: reported, not a category
        "salary": rng.permutation(np.arange(20_000, 20_000 + 400 * n, 400))[:n],  # integers, unique, a real feature
        "row": rng.permutation(n),  # row numbers under another name
        "churn": y,
    })


def test_read_table_csv_parquet_and_a_malformed_line(tmp_path):
    df = _frame(50)
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv"), read_table(tmp_path / "t.parquet"), check_dtype=False)
    lines = (tmp_path / "t.csv").read_text().splitlines()
    lines[5] += ",extra,fields"  # line 6 of the file has two fields too many
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(GuimoError, match=r"bad\.csv:6: malformed CSV.*Expected 10 fields in line 6, saw 12"):
        read_table(tmp_path / "bad.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(GuimoError, match="empty.csv: empty file"):
        read_table(tmp_path / "empty.csv")
    with pytest.raises(GuimoError, match="not found"):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "bom.csv").write_bytes("\ufeffname,n\nx,1\n".encode())  # as spreadsheets save it
    assert list(read_table(tmp_path / "bom.csv").columns) == ["name", "n"]


def test_infer_columns_drops_planted_ids_and_keeps_real_features():
    cols = infer_columns(_frame(), "churn")
    assert cols.task == "binary" and cols.classes == [0, 1]
    assert sorted(cols.dropped_ids) == ["customer_id", "email", "row"]
    assert cols.numeric == ["income", "age", "salary"] and cols.categorical == ["city"]
    assert cols.dropped["country"] == "constant" and "id-like" in cols.dropped["customer_id"]
    assert cols.dropped["signup"].startswith("date or time")
    assert Columns.from_json(json.loads(json.dumps(cols.to_json()))) == cols


def test_target_errors_and_task_detection():
    df = _frame(60)
    with pytest.raises(GuimoError, match=r"no target column 'label'.*customer_id, email, income, age, city, country, signup"):
        infer_columns(df, "label")
    with pytest.raises(GuimoError, match="one value only"):
        infer_columns(df.assign(churn=1), "churn")
    with pytest.raises(GuimoError, match="empty in 1 rows"):
        infer_columns(df.assign(churn=df.churn.where(df.index != 3)), "churn")
    assert infer_columns(df, "city").task == "multiclass"
    assert infer_columns(df.assign(churn=df.churn.astype(float)), "churn").classes == [0, 1]  # 0.0/1.0 as in PaySim
    reg = infer_columns(df, "income")
    assert reg.task == "regression" and reg.classes == []
    with pytest.raises(GuimoError, match="drop names 'nope'"):
        infer_columns(df, "churn", drop=["nope"])


def test_encoder_fits_on_train_only_handles_missing_unknown_and_round_trips():
    df = _frame(400)
    train, test = df.iloc[:300].copy(), df.iloc[300:].copy()
    train.loc[train.index[:30], "income"] = np.nan  # missing values in training: an indicator column
    cols = infer_columns(train, "churn")
    enc = TableEncoder.fit(train, cols)
    test.loc[test.index[0], "city"] = "tokyo"  # unseen category -> the unknown bucket
    test.loc[test.index[1], "age"] = np.nan
    x_num, x_cat, y = enc.transform(test)
    assert x_num.dtype == np.float32 and x_cat.dtype == np.int64 and y.dtype == np.int64
    assert enc.feature_names == ["income", "age", "salary", "income__missing", "city"]
    assert x_num.shape == (100, 4) and x_cat.shape == (100, 1) and enc.cardinalities == [4]
    assert x_cat[0, 0] == 0 and (x_cat[1:, 0] > 0).all()
    assert np.isfinite(x_num).all() and (x_num[:, 3] == 0).all()  # test rows have their income
    xt, _, _ = enc.transform(train)
    assert (xt[:30, 3] == 1).all() and abs(float(np.median(xt[30:, 0]))) < 0.1  # quantile scaling centres the median
    assert abs(float(xt[30:, 0].std()) - 1) < 0.15
    again = TableEncoder.from_json(json.loads(json.dumps(enc.to_json())))
    for a, b in zip(again.transform(test), (x_num, x_cat, y)):
        np.testing.assert_array_equal(a, b)
    scored = enc.transform(test.drop(columns=["churn"]))
    assert scored[2] is None
    with pytest.raises(GuimoError, match="lack the feature columns city"):
        enc.transform(test.drop(columns=["city"]))
    with pytest.raises(GuimoError, match=r"column 'age', data row 3: 'old' is not a number"):
        enc.transform(test.assign(age=["40", "50", "old"] + ["30"] * 97))
    std = TableEncoder.fit(train, cols, scaling="standard").transform(train)[0]
    assert abs(float(std[30:, 0].mean())) < 0.2 and np.isfinite(std).all()


def test_german_credit_loader():
    df, target, cost = load_german_credit(shared_data("german_credit", "german.csv"))
    assert df.shape == (1000, 21) and target == "bad_credit" and int(df[target].sum()) == 300
    assert cost == [[0.0, 1.0], [5.0, 0.0]]
    cols = infer_columns(df, target)
    assert len(cols.numeric) == 7 and len(cols.categorical) == 13 and cols.dropped_ids == []


def test_paysim_loader_drops_the_leaky_balances_and_detects_ids():
    path = shared_data("paysim_sample", "paysim_sample.csv")
    df, target, time_column = load_paysim(path, leaky=False)
    assert (target, time_column) == ("isFraud", "step") and int(df[target].sum()) == 1392
    assert not any("balance" in c for c in df.columns)
    cols = infer_columns(df, target, time_column=time_column)
    assert sorted(cols.dropped_ids) == ["nameDest", "nameOrig"] and "step" not in cols.features
    assert {"amount", "hour", "type"} <= set(cols.features)
    leaky, _, _ = load_paysim(path, leaky=True)
    assert {"oldbalanceOrg", "newbalanceDest"} <= set(leaky.columns)


def test_sklearn_health_sets():
    df, target = breast_cancer()
    assert df.shape == (569, 31) and int(df[target].sum()) == 212  # 212 malignant, the positive class
    assert infer_columns(df, target).task == "binary"
    df, target = diabetes()
    assert df.shape == (442, 11) and set(df["sex"].unique()) == {1.0, 2.0}  # original units, not scikit-learn's scaled
    assert infer_columns(df, target).task == "regression"


def test_time_split_keeps_order_and_whole_steps():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"step": rng.integers(0, 50, 1000), "x": rng.normal(size=1000)})
    train, val, test = time_split(df, "step")
    assert len(train) + len(val) + len(test) == 1000 and abs(len(train) - 700) < 40
    assert train.step.max() < val.step.min() and val.step.max() < test.step.min()
    with pytest.raises(GuimoError, match="leaves a part empty"):
        time_split(df.assign(step=1), "step")


def test_stratified_folds_and_split_keep_class_shares():
    y = np.array([0] * 900 + [1] * 100)
    folds = stratified_folds(y, k=5, seed=1)
    tests = np.concatenate([te for _, te in folds])
    assert len(folds) == 5 and sorted(tests.tolist()) == list(range(1000))
    assert all(y[te].sum() == 20 and not set(tr) & set(te) for tr, te in folds)
    assert [te.tolist() for _, te in stratified_folds(y, k=5, seed=1)] == [te.tolist() for _, te in folds]
    with pytest.raises(GuimoError, match="rarest has 3"):
        stratified_folds(np.array([0] * 50 + [1] * 3))
    tr, va, te = stratified_split(y, seed=0)
    assert (len(tr), len(va), len(te)) == (700, 150, 150) and y[va].sum() == 15
    reg = stratified_folds(np.random.default_rng(0).normal(size=100), k=5)
    assert all(len(te) == 20 for _, te in reg)
