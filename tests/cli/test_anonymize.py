"""`guimo anonymize IN OUT`: streamed CSV, keys, reports and bad input, run as a user runs it."""

import json
import os
import stat

import pandas as pd
import pytest

from guimo.cli import main
from guimo.privacy.planted import planted_table


@pytest.fixture()
def planted_csv(tmp_path):
    df, truth = planted_table(300, seed=5)
    path = tmp_path / "customers.csv"
    df.to_csv(path, index=False)
    return path, truth


def test_streams_a_csv_and_leaves_no_planted_value(tmp_path, planted_csv, capsys):
    src, truth = planted_csv
    out = tmp_path / "out.csv"
    rc = main(["anonymize", str(src), str(out), "--names", "customer", "--mode", "mask", "--chunk-rows", "70", "--quiet"])
    assert rc == 0
    text = out.read_text()
    real = [p for p in truth if p.kind != "lookalike"]
    assert not [p for p in real if p.value in text or p.value.replace(" ", "") in text]
    before, after = pd.read_csv(src, dtype=str, keep_default_na=False), pd.read_csv(out, dtype=str, keep_default_na=False)
    assert after.shape == before.shape and after["order_no"].equals(before["order_no"])  # leading zeros kept
    assert set(after["customer"]) == {"[NAME]"}
    report = json.loads((tmp_path / "out.csv.report.json").read_text())
    assert report["rows"] == 300 and report["columns"]["customer"] == {"name": 300}
    assert report["columns"]["resident_id"]["cn_resident_id"] == sum(p.kind == "cn_resident_id" and p.column == "resident_id" for p in truth)
    assert "resident_id: cn_resident_id" in capsys.readouterr().out


def test_new_key_then_key_file_give_joinable_pseudonyms(tmp_path, monkeypatch):
    monkeypatch.delenv("GUIMO_ANONYMIZE_KEY", raising=False)
    (tmp_path / "a.csv").write_text("email,amount\nzoe.li@example.com,3\nbob.w@example.org,4\n")
    (tmp_path / "b.csv").write_text("contact,note\nZoe.Li@example.com,vip\n")
    key = tmp_path / "keys" / "anon.key"
    assert main(["anonymize", str(tmp_path / "a.csv"), str(tmp_path / "a.out.csv"), "--new-key", str(key), "--quiet"]) == 0
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert main(["anonymize", str(tmp_path / "b.csv"), str(tmp_path / "b.out.csv"), "--key-file", str(key), "--quiet"]) == 0
    a, b = pd.read_csv(tmp_path / "a.out.csv"), pd.read_csv(tmp_path / "b.out.csv")
    assert a.at[0, "email"] == b.at[0, "contact"] and a.at[0, "email"].startswith("EMAIL_")
    assert a["amount"].tolist() == [3, 4]
    monkeypatch.setenv("GUIMO_ANONYMIZE_KEY", key.read_text().strip())  # the same key from the environment
    assert main(["anonymize", str(tmp_path / "b.csv"), str(tmp_path / "c.out.csv"), "--quiet"]) == 0
    assert pd.read_csv(tmp_path / "c.out.csv").at[0, "contact"] == a.at[0, "email"]


def test_parquet_in_and_columns_restrict_the_scan(tmp_path):
    df = pd.DataFrame({"email": ["a.b@example.com"], "backup": ["c.d@example.com"]})
    df.to_parquet(tmp_path / "in.parquet")
    assert main(["anonymize", str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"), "--mode", "mask",
                 "--columns", "email", "--quiet"]) == 0
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out.iloc[0].tolist() == ["[EMAIL]", "c.d@example.com"]


def test_bad_input_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GUIMO_ANONYMIZE_KEY", raising=False)
    src = tmp_path / "in.csv"
    src.write_text("email,n\na@example.com,1\nb@example.com,2,3\n")
    assert main(["anonymize", str(src), str(tmp_path / "o.csv"), "--mode", "mask", "--quiet"]) == 2
    assert f"{src}:3: malformed CSV" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists() and not list(tmp_path.glob(".o.csv.*"))  # no half-written output
    src.write_text("email,n\na@example.com,1\n")
    assert main(["anonymize", str(src), str(tmp_path / "o.csv"), "--quiet"]) == 2
    assert "need a secret key" in capsys.readouterr().err
    assert main(["anonymize", str(src), str(src), "--mode", "mask"]) == 2
    assert main(["anonymize", str(src), str(tmp_path / "o.csv"), "--mode", "mask", "--names", "nobody"]) == 2
    assert "no columns nobody" in capsys.readouterr().err
    key = tmp_path / "k"
    key.write_text("x" * 40)
    assert main(["anonymize", str(src), str(tmp_path / "o.csv"), "--new-key", str(key)]) == 2
    assert "exists" in capsys.readouterr().err
