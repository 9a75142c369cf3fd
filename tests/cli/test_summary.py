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
    main, sampled = " ".join(out.split()).split("Sampled protocol, as in older papers: each target ranked against 100 random items")
    assert "ndcg@10 (headline)" in main and "0.2216" in main and "0.1943" in main
    assert "0.5152" not in main and "0.5152" in sampled and "0.3763" in sampled
    assert "evaluated on 6,000 cases" in sampled  # counts go to the caption, not a metric row
    assert "│ cases" not in out


def test_no_metrics_yet_still_prints_the_footer(tmp_path, capsys):
    run = RunDir.create(tmp_path / "r", "lm", {})
    print_summary(run)
    assert "wall time 0.0 s" in capsys.readouterr().out


def test_the_caption_reads_in_one_line_and_a_baseline_ahead_is_said_in_words(tmp_path, capsys):
    """The default run's finding: item_knn ahead on HR@10 and HR@20 under the sampled protocol only."""
    run = _run(tmp_path, {
        "split": "test", "headline": "ndcg@10", "higher_is_better": True,
        "protocol": {"sampled": "100 uniform negatives not in the history (reported under 'sampled')", "sampled_negatives": 100},
        "model": {"hr@10": 0.33, "ndcg@10": 0.2216, "hr@20": 0.42},
        "baselines": {"item_knn": {"hr@10": 0.30, "ndcg@10": 0.18, "hr@20": 0.40}},
        "sampled": {"model": {"hr@10": 0.60, "ndcg@10": 0.51, "hr@20": 0.70},
                    "baselines": {"item_knn": {"hr@10": 0.62, "ndcg@10": 0.45, "hr@20": 0.75}}},
    })
    print_summary(run)
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines at the terminal width
    assert ("Sampled protocol, as in older papers: each target ranked against 100 random items the user has not seen "
            "instead of the whole catalogue (easier, so compare numbers only within this table):") in out
    assert "older papers' numbers, not comparable" not in out
    assert "item_knn is ahead of the transformer on hr@10, hr@20 (sampled protocol)." in out
    assert "On the headline metric ndcg@10, the transformer wins: 0.2216 against 0.1800 for item_knn" in out
