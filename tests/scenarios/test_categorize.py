"""`guimo run categorize`: the generated catalogue end to end, user CSVs and PriceRunner's columns."""

from __future__ import annotations

import pytest

from guimo.errors import GuimoError
from tests.conftest import shared_data

pytest.importorskip("sklearn")
TINY = ["generator.products=80", "train.max_steps=20", "train.batch_size=16", "train.eval_every=20",
        "train.checkpoint_every=20", "train.lr=3e-3", "train.warmup_steps=4", 'eval.baselines=["tfidf_svm"]']


def run(tmp_path, *overrides: str, data: str | None = None, name: str = "run"):
    from guimo.cli.run import resolve_config
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    scenario = get("categorize")
    cfg = resolve_config(scenario, None, list(TINY) + list(overrides), data)
    return run_pipeline("categorize", cfg, tmp_path / name, quiet=True, set_keys=set())


def test_generated_catalogue_end_to_end_beats_tfidf(tmp_path):
    from guimo.io import read_json

    run_dir = run(tmp_path)
    metrics = read_json(run_dir.path / "metrics.json")
    model, tfidf = metrics["model"]["accuracy"], metrics["baselines"]["tfidf_svm"]["accuracy"]
    # 20 steps of fine-tuning on ~170 titles: the pretrained encoder reads unseen model names and
    # spec lines that TF-IDF's n-grams have never met (the test products are other clusters)
    assert model >= 0.85, metrics["model"]
    assert model >= tfidf, (model, tfidf)
    assert run_dir.manifest["stages"]["preprocess"]["grouped"] is True
    # the predictor the server and `guimo predict` use answers with the catalogue's categories
    predictor = get_predictor(run_dir)
    out = predictor.classify(["samsung galaxy s21 128gb phantom black dual sim", "bosch serie 6 60cm 13 place dishwasher"])
    assert [o["label"] for o in out] == ["Mobile Phones", "Dishwashers"]


def get_predictor(run_dir):
    from guimo.scenarios import get

    return get("categorize").load_predictor(run_dir)


def test_user_csv_with_named_columns_and_a_bad_line(tmp_path):
    good = tmp_path / "titles.csv"
    rows = [("apple iphone 13 128gb blue", "Phones"), ("samsung galaxy a52 5g 128 gb", "Phones"),
            ("lg oled55c1 55 inch 4k", "TVs"), ("sony kd-50x85 50\" hdr", "TVs")] * 6
    good.write_text("name,kind\n" + "".join(f'"{t}",{c}\n' for t, c in rows))
    with pytest.raises(GuimoError, match=r"no column 'title'|'name'.*'kind'|columns"):
        run(tmp_path, "data.text_field=title", data=str(good), name="a")
    bad = tmp_path / "bad.csv"
    bad.write_text("title,category\nlg oled55c1,TVs\nsony kd-50x85,TVs,extra\n")
    with pytest.raises(GuimoError, match=r"bad\.csv:3"):
        run(tmp_path, data=str(bad), name="b")


def test_pricerunner_is_recognised_by_its_header():
    from guimo.scenarios.categorize import with_source_fields
    from guimo.scenarios.textclass import TextDataConfig

    folder = shared_data("pricerunner")
    data = with_source_fields(TextDataConfig(path=str(folder)))
    assert (data.text_field, data.label_field, data.group_field) == ("Product Title", "Category Label", "Cluster ID")
    assert data.path.endswith("pricerunner_aggregate.csv")
    kept = with_source_fields(TextDataConfig(path=str(folder), group_field="Merchant ID"))
    assert kept.group_field == "Merchant ID"  # a field the user set is theirs
