"""The PaySim-like payment generator: seeded, the stated fraud rate, the planted patterns, learnable but not trivially."""

import numpy as np
import pytest

from guimo.data.payments import TARGET, generate_payments
from guimo.data.tabular import TableEncoder, infer_columns, time_split
from guimo.errors import GuimoError


@pytest.fixture(scope="module")
def stream():
    return generate_payments(20_000, fraud_rate=0.02, seed=3)


def test_seeded_and_rate_within_tolerance():
    a, b = generate_payments(5_000, seed=7), generate_payments(5_000, seed=7)
    assert a.equals(b) and not a.equals(generate_payments(5_000, seed=8))
    for rate in (0.005, 0.01, 0.05):
        df = generate_payments(10_000, fraud_rate=rate, seed=1)
        assert len(df) == 10_000 and abs(df[TARGET].mean() - rate) <= 0.0008  # one theft writes at most 8 rows
    with pytest.raises(GuimoError, match="fraud_rate"):
        generate_payments(1_000, fraud_rate=0.0)


def test_columns_have_no_balances_and_ids_are_detected(stream):
    assert not any("balance" in c.lower() for c in stream.columns)
    assert set(stream["type"]) == {"PAYMENT", "TRANSFER", "CASH_OUT", "CASH_IN", "DEBIT"}
    assert stream["step"].is_monotonic_increasing and stream["step"].between(0, 30 * 24 - 1).all()
    cols = infer_columns(stream, TARGET, time_column="step")
    assert sorted(cols.dropped_ids) == ["nameDest", "nameOrig"] and "type" in cols.categorical
    first = ~stream.duplicated("nameOrig")
    assert (stream.loc[first, "orig_prior_txns"] == 0).all() and stream.loc[first, "amount_to_orig_mean"].isna().all()


def test_fraud_patterns_transfer_then_cash_out_through_rings(stream):
    fraud = stream[stream[TARGET] == 1]
    assert set(fraud["type"]) == {"TRANSFER", "CASH_OUT"}
    received = {}  # account -> first row where it received a fraudulent transfer
    for i, row in fraud[fraud["type"] == "TRANSFER"].iterrows():
        received.setdefault(row["nameDest"], i)
    cash_outs = fraud[fraud["type"] == "CASH_OUT"]
    assert all(acct in received and received[acct] < i for i, acct in cash_outs["nameOrig"].items())
    victims_per_mule = fraud[fraud["type"] == "TRANSFER"].groupby("nameDest")["nameOrig"].nunique()
    assert (victims_per_mule >= 3).sum() >= 5  # mules shared across thefts: rings
    night = stream["step"] % 24 < 5
    honest_night = night[stream[TARGET] == 0].mean()
    assert honest_night < 0.06 < night[stream[TARGET] == 1].mean()  # honest payments sleep, fraud does not
    honest = stream[stream[TARGET] == 0]  # look-alikes: honest accounts that receive money then cash it out within hours
    assert ((honest["type"] == "CASH_OUT") & (honest["hours_since_last_in"] < 3) & (honest["amount_to_last_in"] > 0.95)).sum() > 50


def test_learnable_but_not_trivially(stream):
    import lightgbm as lgb

    from guimo.evaluate.tabular import binary_metrics

    cols = infer_columns(stream, TARGET, time_column="step")
    train, _, test = time_split(stream, "step")
    enc = TableEncoder.fit(train, cols)
    (xn, xc, y), (tn, tc, ty) = enc.transform(train), enc.transform(test)
    model = lgb.LGBMClassifier(n_estimators=150, learning_rate=0.05, n_jobs=1, verbose=-1, random_state=0)
    model.fit(np.hstack([xn, xc]), y, categorical_feature=list(range(xn.shape[1], xn.shape[1] + xc.shape[1])))
    m = binary_metrics(ty, model.predict_proba(np.hstack([tn, tc]))[:, 1])
    assert m["pr_auc"] > 10 * m["positive_rate"] and m["pr_auc"] < 0.9, m
