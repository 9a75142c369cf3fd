"""guimo.privacy.anonymize: detectors with checksums, precision/recall on planted PII, pseudonyms, masks."""

import json

import pandas as pd
import pytest

from guimo.errors import GuimoError
from guimo.privacy.anonymize import Anonymizer, preprocess_anonymize
from guimo.privacy.planted import planted_table, score_detection

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def planted():
    return planted_table(400, seed=11)


@pytest.mark.parametrize("text,kind", [
    ("alice.smith@example.com", "email"),
    ("+44 20 7946 0958", "phone"),
    ("0044 20 7946 0958", "phone"),
    ("13812345678", "phone"),
    ("+86 138 1234 5678", "phone"),
    ("0086 138 1234 5678", "phone"),
    ("4111 1111 1111 1111", "credit_card"),
    ("378282246310005", "credit_card"),
    ("GB82 WEST 1234 5698 7654 32", "iban"),
    ("DE89370400440532013000", "iban"),
    ("192.168.1.20", "ip"),
    ("2001:db8::8a2e:370:7334", "ip"),
    ("11010519491231002X", "cn_resident_id"),
])
def test_each_detector_finds_its_kind(text, kind):
    found = Anonymizer(mode="mask").find(f"see {text}.")
    assert [(f.kind, f.start, f.end) for f in found] == [(kind, 4, 4 + len(text))]


def test_values_inside_chinese_text():
    anon = Anonymizer(mode="mask")
    text = "客户手机13812345678，卡号4111111111111111，邮箱wei.li@example.com，身份证11010519491231002X。"
    assert anon.anonymize_text(text)[0] == "客户手机[PHONE]，卡号[CREDIT_CARD]，邮箱[EMAIL]，身份证[CN_RESIDENT_ID]。"
    assert anon.find("ACC13812345678") == []  # an account code, not a phone
    assert anon.anonymize_text("电话：１３８１２３４５６７８")[0] == "电话：[PHONE]"  # fullwidth digits


@pytest.mark.parametrize("text", [
    "4111 1111 1111 1112",  # 16 digits failing Luhn
    "4708 0032 1696 0411",  # a Luhn-failing card whose second group starts with 00
    "1234567812345678",  # no card network starts with 1
    "110105194912310021",  # resident ID with a wrong check digit
    "110105194913310027",  # month 13
    "GB82 WEST 1234 5698 7654 33",  # IBAN failing mod-97
    "256.1.2.3", "v1.2.3", "12:30:45",  # not IP addresses
    "alice@localhost", "@alice_42",  # no dotted domain
    "ORD-1234567", "2024-01-05", "order 159179533", "12345678901", "0044207946095",  # no one's phone (a padded id)
])
def test_checksum_invalid_lookalikes_are_left_alone(text):
    assert Anonymizer(mode="mask").find(text) == []


def test_precision_and_recall_on_planted_pii(planted):
    df, truth = planted
    stats = score_detection(Anonymizer(mode="mask").find, df, truth)
    assert stats.pop("other") == {"planted": 0, "found": 0, "false_alarms": 0, "precision": 1.0, "recall": 1.0}
    for kind, s in stats.items():
        assert s["planted"] >= 50, kind
        assert s["precision"] >= 0.99 and s["recall"] >= 0.99, (kind, s)


def test_anonymised_table_holds_no_planted_raw_value_and_keeps_lookalikes(planted):
    df, truth = planted
    out, report = Anonymizer(key=KEY, name_columns=["customer"]).anonymize_frame(df)
    blob = "\n".join(out.astype(str).to_numpy().ravel())
    real = [p for p in truth if p.kind != "lookalike"]
    leaked = [p for p in real if p.value in blob or (p.kind in ("credit_card", "iban") and p.value.replace(" ", "") in blob)]
    assert leaked == []
    kept = [p for p in truth if p.kind == "lookalike" and p.value not in str(out.at[p.row, p.column])]
    assert kept == []
    assert out["amount"].equals(df["amount"]) and out["order_no"].equals(df["order_no"]) and out["city"].equals(df["city"])
    assert report["columns"]["customer"] == {"name": 400} and report["columns"]["card"]["credit_card"] > 200
    text = json.dumps(report)
    assert not any(p.value in text for p in real)


def test_pseudonyms_are_keyed_stable_across_files_and_normalised():
    a = pd.DataFrame({"who": ["Alice Smith"], "contact": ["Alice.Smith@Example.com"], "phone": ["+86 138 1234 5678"]})
    b = pd.DataFrame({"who": ["alice  smith"], "contact": ["mail alice.smith@example.com now"], "phone": ["13812345678"]})
    anon = Anonymizer(key=KEY, name_columns=["who"])
    (x, _), (y, _) = anon.anonymize_frame(a), anon.anonymize_frame(b)
    assert x.at[0, "who"] == y.at[0, "who"] and x.at[0, "who"].startswith("NAME_")
    assert y.at[0, "contact"] == f"mail {x.at[0, 'contact']} now" and x.at[0, "contact"].startswith("EMAIL_")
    assert x.at[0, "phone"] == y.at[0, "phone"]
    other, _ = Anonymizer(key=KEY[::-1], name_columns=["who"]).anonymize_frame(a)
    assert other.at[0, "contact"] != x.at[0, "contact"]
    assert anon.anonymize_text("0044 20 7946 0958")[0] == anon.anonymize_text("+44 20 7946 0958")[0]
    masked, _ = Anonymizer(mode="mask", name_columns=["who"]).anonymize_frame(b)
    assert masked.iloc[0].tolist() == ["[NAME]", "mail [EMAIL] now", "[PHONE]"]


def test_key_and_config_errors(monkeypatch):
    with pytest.raises(GuimoError, match="need a secret key.*--key-file"):
        Anonymizer()
    with pytest.raises(GuimoError, match="at least 16"):
        Anonymizer(key="short")
    with pytest.raises(GuimoError, match="unknown PII kinds passport"):
        Anonymizer(mode="mask", kinds=["passport"])
    with pytest.raises(GuimoError, match="no columns nope"):
        Anonymizer(mode="mask", columns=["nope"]).anonymize_frame(pd.DataFrame({"a": ["x"]}))
    assert Anonymizer(mode="mask", phone_region="GB").find("call 020 7946 0958")[0].kind == "phone"


def test_preprocess_hook_spares_the_target(monkeypatch):
    monkeypatch.delenv("GUIMO_ANONYMIZE_KEY", raising=False)
    df = pd.DataFrame({"email": ["a.b@example.com", "c.d@example.org"], "income": [1.5, 2.5],
                       "label": ["x@example.com", "y@example.com"]})
    out, report = preprocess_anonymize(df, target="label")
    assert out["email"].tolist() == ["[EMAIL]", "[EMAIL]"] and out["label"].equals(df["label"])
    assert report["mode"] == "mask" and out["income"].equals(df["income"])
    monkeypatch.setenv("GUIMO_ANONYMIZE_KEY", KEY)
    out, report = preprocess_anonymize(df, target="label")
    assert report["mode"] == "pseudonym" and out.at[0, "email"].startswith("EMAIL_")
