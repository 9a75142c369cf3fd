"""The end-of-run table: metrics as rows, models as columns, other protocols in a table apart."""

from __future__ import annotations

from guimo.cli.summary import print_summary
from guimo.io import atomic_write_json
from guimo.pipeline.rundir import RunDir


def _run(tmp_path, metrics):
    run = RunDir.create(tmp_path / "r", "recommend", {})
    atomic_write_json(run / "metrics.json", metrics)
    return run


def test_rows_are_metrics_and_sampled_numbers_stay_apart(tmp_path, capsys):
    run = _run(tmp_path, {
        "split": "test", "headline": "ndcg@10",
        "model": {"ndcg@10": 0.2216, "hr@10": 0.324, "cases": 6000},
        "baselines": {"markov": {"ndcg@10": 0.1943, "hr@10": 0.2477}},
        "sampled": {"model": {"ndcg@10": 0.5152}, "baselines": {"markov": {"ndcg@10": 0.3763}}},
        "protocol": {"sampled": "100 uniform negatives"},
    })
    print_summary(run)
    out = capsys.readouterr().out
    main, sampled = out.split("sampled protocol (100 uniform negatives)")
    assert "ndcg@10 (headline)" in main and "0.2216" in main and "0.1943" in main
    assert "0.5152" not in main and "0.5152" in sampled and "0.3763" in sampled
    assert "evaluated on 6,000 cases" in sampled  # counts go to the caption, not a metric row
    assert "│ cases" not in out


def test_no_metrics_yet_still_prints_the_footer(tmp_path, capsys):
    run = RunDir.create(tmp_path / "r", "lm", {})
    print_summary(run)
    assert "wall time 0.0 s" in capsys.readouterr().out
