"""The verdict in words: who wins the headline, and every metric where a baseline beats the transformer."""

from __future__ import annotations

from guimo.evaluate.verdict import baseline_leads, headline_sentence, lead_sentences, verdict

# The default run's finding: the transformer wins the full-ranking table, item-kNN is ahead on
# HR@10 and HR@20 under the sampled protocol.
REC = {
    "headline": "ndcg@10", "higher_is_better": True,
    "model": {"hr@10": 0.324, "recall@10": 0.324, "ndcg@10": 0.2216, "hr@20": 0.41, "recall@20": 0.41, "mrr": 0.2, "cases": 6000},
    "baselines": {"markov": {"hr@10": 0.2477, "recall@10": 0.2477, "ndcg@10": 0.1943, "hr@20": 0.30, "recall@20": 0.30, "mrr": 0.18, "cases": 6000},
                  "item_knn": {"hr@10": 0.30, "recall@10": 0.30, "ndcg@10": 0.15, "hr@20": 0.40, "recall@20": 0.40, "mrr": 0.12, "cases": 6000}},
    "sampled": {"model": {"hr@10": 0.60, "ndcg@10": 0.5152, "hr@20": 0.70},
                "baselines": {"markov": {"hr@10": 0.50, "ndcg@10": 0.3763, "hr@20": 0.60},
                              "item_knn": {"hr@10": 0.62, "ndcg@10": 0.40, "hr@20": 0.75}}},
}


def test_a_baseline_ahead_under_the_sampled_protocol_is_named_with_its_metrics():
    assert lead_sentences(REC) == ["item_knn is ahead of the transformer on hr@10, hr@20 (sampled protocol)."]
    leads = baseline_leads(REC)
    assert {(l.baseline, l.metric, l.protocol) for l in leads} == {("item_knn", "hr@10", "sampled"), ("item_knn", "hr@20", "sampled")}


def test_the_headline_sentence_names_the_winner_and_the_strongest_baseline():
    assert headline_sentence(REC) == ("On the headline metric ndcg@10, the transformer wins: 0.2216 against 0.1943 "
                                      "for markov (14.1% higher), the strongest baseline.")


def test_a_baseline_that_wins_the_headline_is_said_to_win_it():
    metrics = {**REC, "model": {**REC["model"], "ndcg@10": 0.10, "hr@10": 0.20}}
    assert headline_sentence(metrics).startswith("On the headline metric ndcg@10, markov wins: 0.1943 against 0.1000 for the transformer")
    full = [s for s in lead_sentences(metrics) if "sampled" not in s]
    assert full == ["markov is ahead of the transformer on hr@10, ndcg@10.", "item_knn is ahead of the transformer on hr@10, ndcg@10."]


def test_recall_is_not_repeated_beside_hit_rate_and_counts_are_not_compared():
    metrics = {**REC, "model": {**REC["model"], "hr@10": 0.10, "recall@10": 0.10, "cases": 1}}
    metrics["sampled"] = None
    named = {l.metric for l in baseline_leads(metrics)}
    assert named == {"hr@10"}  # not recall@10 (the same number), not cases


def test_lower_is_better_for_language_model_metrics():
    lm = {"headline": "bits_per_byte", "higher_is_better": False,
          "model": {"loss": 2.0, "perplexity": 7.39, "bits_per_byte": 1.20},
          "baselines": {"bigram": {"loss": 2.5, "perplexity": 12.2, "bits_per_byte": 1.10}, "unigram": {"loss": 4.0, "perplexity": 54.6, "bits_per_byte": 2.1}}}
    assert lead_sentences(lm) == ["bigram is ahead of the transformer on bits_per_byte."]
    assert headline_sentence(lm) == "On the headline metric bits_per_byte, bigram wins: 1.1000 against 1.2000 for the transformer (8.3% lower)."


def test_no_baseline_ahead_says_so():
    clean = {**REC, "sampled": None}
    assert verdict(clean)[1:] == ["No baseline beats the transformer on any metric."]
