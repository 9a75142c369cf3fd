"""`recommend` — sequential recommendation: predict a user's next item from their history.

Data: the synthetic marketplace (embedded default, `guimo.data.marketplace`) or an interaction
log (`guimo.data.interactions`: SASRec/BERT4Rec text, one line per user, MovieLens, RecBole
``.inter``, CSV, Parquet). Model: SASRec with cross-entropy (SASRec+) on the shared transformer
core (`guimo.models.sasrec`). Protocol: leave-one-out or global temporal split; full ranking over
the catalogue with seen items filtered, sampled-100 reported apart (`guimo.evaluate.ranking`);
baselines popularity, item-kNN and a Markov chain (`guimo.evaluate.baselines_rec`).
Inference: `guimo.inference.recommend.RecPredictor`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from guimo.data.marketplace import MarketplaceConfig
from guimo.inference.recommend import AnnSettings
from guimo.models.sasrec import PRESETS, SASRecConfig
from guimo.scenarios.base import InitConfig, OptimizeConfig, TrainInputs
from guimo.scenarios.recommend_defaults import AutoConfig
from guimo.train.config import TrainConfig


@dataclass
class RecDataConfig:
    path: str | None = field(default=None, metadata={"help": "interaction file/folder or URL; None: the embedded synthetic marketplace"})
    format: Literal["auto", "sasrec", "user_lines", "movielens", "recbole", "csv", "parquet"] = field(default="auto", metadata={"help": "file format (auto: from name and content)"})
    user_col: str = field(default="user_id", metadata={"help": "user column (recbole/csv/parquet)"})
    item_col: str = field(default="item_id", metadata={"help": "item column (recbole/csv/parquet)"})
    time_col: str | None = field(default="timestamp", metadata={"help": "timestamp column (recbole/csv/parquet); None: file order. A name you set must exist; the default, absent, means file order (collect says so)"})
    rating_col: str = field(default="rating", metadata={"help": "rating column, used with min_rating"})
    delimiter: str | None = field(default=None, metadata={"help": "csv delimiter (None: sniffed from the header)"})
    min_rating: float | None = field(default=None, metadata={"help": "keep only interactions rated at least this (None: all)"})
    categories: str | None = field(default=None, metadata={"help": "file with item categories (header with item_col and category_col), e.g. RecBole .item"})
    category_col: str = field(default="category", metadata={"help": "category column of the categories file"})
    k_core: int = field(default=0, metadata={"help": "keep users and items with >= k interactions, iterated (0: off)"})
    min_seq_len: int = field(default=3, metadata={"help": "drop users with fewer interactions (after k-core)"})
    max_seq_len: int | None = field(default=None, metadata={"help": "keep each user's most recent N interactions (None: all)"})
    fraction: float = field(default=1.0, metadata={"help": "keep users (in an order hashed from their ids, so a smaller share is a subset of a larger one) holding this share of the interactions; learning curves (the catalogue stays whole)"})
    split: Literal["loo", "temporal"] = field(default="loo", metadata={"help": "loo: last item test, second-to-last val; temporal: global time cuts"})
    val_fraction: float = field(default=0.1, metadata={"help": "temporal split: share of interactions in the validation period"})
    test_fraction: float = field(default=0.1, metadata={"help": "temporal split: share of interactions in the test period"})
    generator: MarketplaceConfig = field(default_factory=MarketplaceConfig)


@dataclass
class RecEvalConfig:
    ks: list[int] = field(default_factory=lambda: [10, 20], metadata={"help": "cut-offs for HR/Recall/NDCG/coverage"})
    filter_seen: bool = field(default=True, metadata={"help": "rank only items the user has not interacted with"})
    sampled: int = field(default=100, metadata={"help": "negatives of the sampled protocol (reported apart; 0: skip)"})
    val_cases: int | None = field(default=2_000, metadata={"help": "validation cases scored during training (random subset; None: all)"})
    chunk: int = field(default=512, metadata={"help": "users scored at once (memory: chunk x catalogue floats)"})
    baselines: list[str] = field(default_factory=lambda: ["popularity", "item_knn", "markov"], metadata={"help": "baselines to evaluate"})


@dataclass
class RecommendConfig:
    seed: int = field(default=0, metadata={"help": "seeds init, data order, dropout and negatives"})
    data: RecDataConfig = field(default_factory=RecDataConfig)
    # Defaults sized for the embedded marketplace (3,000 items: the full softmax is affordable and
    # learns much faster per step than a sampled one) on 2 CPU cores. With data.path, the settings
    # you do not set are chosen from your data after preprocess (`auto`, recommend_defaults.py):
    # the loss by catalogue size, an epoch budget with early stopping, batch and context from the
    # sequence lengths. bench/recommend_beauty.toml is the Beauty recipe.
    model: SASRecConfig = field(default_factory=lambda: SASRecConfig(dropout=0.1, loss="ce"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=400, batch_size=128, lr=1e-2, warmup_steps=30, weight_decay=0.0, eval_every=100,
        patience=3, checkpoint_every=100, log_every=20))
    init: InitConfig = field(default_factory=InitConfig)
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(search_width=False))
    eval: RecEvalConfig = field(default_factory=RecEvalConfig)
    auto: AutoConfig = field(default_factory=AutoConfig)
    # Serving: exact top-k or the item vector index (guimo.inference.recommend.AnnSettings); read when a
    # predictor loads (`guimo recommend`, `guimo serve`), never by the pipeline's stages.
    serve: AnnSettings = field(default_factory=AnnSettings)


AUTO_SETTINGS = "auto_settings.json"  # in RUN/data/: the settings preprocess chose, applied by every later stage


def load_data(run):
    from guimo.data.recdata import Prepared

    return Prepared.load(run.data_dir)


def model_scorer(model, max_len: int):
    """``histories -> (B, N + 1)`` scores of a SASRec model (for `evaluate_ranking`)."""
    import torch

    from guimo.models.sasrec import pad_right

    device = next(model.parameters()).device

    def score(histories):
        seq, lengths = pad_right(histories, max_len)
        with torch.no_grad():
            return model.score_next(seq.to(device), lengths.to(device))

    return score


def target_frequencies(sequences, n_items: int):
    """(N + 1,) float tensor: each item's share of the next-item targets (every item but the first of a sequence)."""
    import numpy as np
    import torch

    counts = np.bincount(np.concatenate([s[1:] for s in sequences] + [np.zeros(0, dtype=np.int64)]), minlength=n_items + 1)
    return torch.from_numpy(counts / max(1, counts.sum())).float()


def rec_breakdown(histories, targets, train_sequences, n_items: int, ranks: dict, ks) -> dict:
    """Test metrics by history length and by target popularity (`guimo.evaluate.breakdown`), from
    ranks the evaluation already holds: what a shop needs to decide where the model pays."""
    import numpy as np

    from guimo.evaluate.breakdown import history_length_breakdown, popularity_breakdown

    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in train_sequences] + [np.zeros(0, dtype=np.int64)])
    counts = np.bincount(flat, minlength=n_items + 1)
    cut = [k for k in ks if k == 10] or list(ks[:1])  # the headline's cut-off where the config has it
    return {
        "history_length": history_length_breakdown(np.array([len(h) for h in histories]), ranks, cut),
        "target_popularity": popularity_breakdown(np.asarray(targets), counts, ranks, cut),
    }


def rank_model(model, histories, targets, n_items: int, ecfg: RecEvalConfig, sampled: bool, seed: int,
               keep_ranks: bool = False) -> dict:
    from guimo.evaluate.ranking import evaluate_ranking

    was_training = model.training
    model.eval()
    try:
        return evaluate_ranking(model_scorer(model, model.cfg.max_len), histories, targets, n_items, ks=ecfg.ks,
                                filter_seen=ecfg.filter_seen, sampled=ecfg.sampled if sampled else 0, chunk=ecfg.chunk, seed=seed,
                                keep_ranks=keep_ranks)
    finally:
        model.train(was_training)


class RecommendScenario:
    name = "recommend"
    summary = "sequential recommendation: SASRec+ next-item transformer vs popularity, item-kNN, Markov (default: synthetic marketplace)"
    config_cls = RecommendConfig
    model_config_cls = SASRecConfig
    presets = {"model": PRESETS}
    headline = "ndcg@10"
    higher_is_better = True
    serve_kind = "recommendation"

    def collect(self, ctx) -> dict[str, Any]:
        import io

        import numpy as np

        from guimo.data.fetch import fetch, fingerprint, is_url
        from guimo.data.interactions import Columns, read_categories, read_interactions
        from guimo.io import atomic_write_bytes, atomic_write_json

        d = ctx.cfg.data
        if d.path is None:
            from guimo.data.marketplace import generate

            raw, categories = generate(d.generator)
            label = "embedded:marketplace"
        else:
            local = fetch(d.path) if is_url(d.path) else d.path
            named = d.time_col != RecDataConfig.time_col or "data.time_col" in (getattr(ctx, "set_keys", None) or ())
            raw = read_interactions(local, d.format, Columns(d.user_col, d.item_col, d.time_col, d.rating_col, time_required=named),
                                    d.delimiter, d.min_rating)
            if np.isnan(raw.times).all():
                ctx.progress.log(f"{d.path}: no timestamps; each user's events keep the file's order")
            categories = read_categories(d.categories, d.item_col, d.category_col) if d.categories else None
            label = d.path
        buf = io.BytesIO()
        np.savez(buf, users=raw.users, items=raw.items, times=raw.times)
        atomic_write_bytes(ctx.run.data_dir / "raw.npz", buf.getvalue())
        if categories is not None:
            atomic_write_json(ctx.run.data_dir / "raw_categories.json", categories)
        fp = fingerprint([("users", raw.users.tobytes()), ("items", raw.items.tobytes()), ("times", raw.times.tobytes())])
        return {"source": label, "interactions": len(raw), "bytes": len(buf.getvalue()), "fingerprint": fp,
                "timestamps": bool(np.isfinite(raw.times).any())}  # false: each user's events in file order

    def preprocess(self, ctx) -> dict[str, Any]:
        import numpy as np

        from guimo.data.interactions import Interactions, build_sequences, keep_users, split_sequences
        from guimo.data.recdata import Prepared
        from guimo.errors import GuimoError
        from guimo.io import read_json

        d = ctx.cfg.data
        with np.load(ctx.run.data_dir / "raw.npz", allow_pickle=False) as z:
            raw = Interactions(z["users"], z["items"], z["times"])
        seqs = build_sequences(raw, d.k_core, d.min_seq_len, d.max_seq_len)
        if not 0 < d.fraction <= 1:
            raise GuimoError(f"data.fraction {d.fraction} is not in (0, 1]")
        if d.fraction < 1:
            seqs = keep_users(seqs, d.fraction)
        split = split_sequences(seqs, d.split, d.val_fraction, d.test_fraction)
        if len(split.val_users) == 0 or len(split.test_users) == 0:
            raise GuimoError("the split left no validation or test cases; check data.split, data.min_seq_len and the fractions")
        item_cat, names, uncategorised = None, [], []
        cat_file = ctx.run.data_dir / "raw_categories.json"
        if cat_file.exists():
            from guimo.data.recdata import UNKNOWN_CATEGORY, encode_categories

            item_cat, names, uncategorised = encode_categories(seqs.item_ids, read_json(cat_file))
            if uncategorised:
                ctx.progress.log(f"{len(uncategorised)} of {len(seqs.item_ids)} items have no category in {d.categories} "
                                 f"(e.g. {', '.join(uncategorised[:3])}): they share the category '{UNKNOWN_CATEGORY}'")
        prep = Prepared(seqs, split, item_cat, names)
        prep.save(ctx.run.data_dir)
        from guimo.data.recdata import NextItemWindows

        auto = self.choose_settings(ctx, prep)
        lengths = seqs.lengths
        return {
            "auto_settings": auto,
            "users": len(seqs), "items": prep.n_items, "interactions": int(lengths.sum()),
            "mean_length": round(float(lengths.mean()), 2), "split": d.split,
            "train_interactions": int(split.train_end.sum()), "val_cases": len(split.val_users),
            "train_examples": len(NextItemWindows(prep.train_sequences(), self.settled_config(ctx.run, ctx.cfg).model.max_len)),  # one epoch's windows
            "test_cases": len(split.test_users), "categories": len(names), "items_without_category": len(uncategorised),
        }

    def choose_settings(self, ctx, prep) -> dict[str, dict[str, Any]]:
        """Choose the settings the user did not set from the data (`recommend_defaults.choose_defaults`),
        save them to ``data/auto_settings.json``, print one line each; return them for the manifest.

        ``ctx.set_keys`` None (a config built in code, e.g. by a sweep or a test) takes every value as set.
        """
        from guimo.io import atomic_write_json
        from guimo.scenarios.recommend_defaults import DataStats, choose_defaults, settings_of

        cfg = ctx.cfg
        set_keys = getattr(ctx, "set_keys", None)
        if set_keys is None:
            settings: dict[str, dict[str, Any]] = {}
        else:
            chosen, reasons = choose_defaults(DataStats.of(prep, embedded=cfg.data.path is None), cfg, set_keys)
            settings = settings_of(chosen, reasons)
        atomic_write_json(ctx.run.data_dir / AUTO_SETTINGS, settings)
        for key, s in settings.items():
            ctx.progress.log(f"chose {key}={s['value']}: {s['why']}")
        return settings

    def settled_config(self, run, cfg) -> RecommendConfig:
        """``cfg`` with the settings preprocess chose for the data (none before preprocess, or when nothing
        was chosen): the config init, train, evaluate and optimize use; ``manifest["config"]`` keeps the user's."""
        from guimo.io import read_json
        from guimo.scenarios.recommend_defaults import apply_settings

        path = run.path / "data" / AUTO_SETTINGS
        return apply_settings(cfg, read_json(path)) if path.exists() else cfg

    def model_config(self, ctx) -> SASRecConfig:
        prep = load_data(ctx.run)
        use_cats = ctx.cfg.model.use_categories and prep.item_cat is not None
        return dataclasses.replace(
            ctx.cfg.model, n_items=prep.n_items, n_categories=len(prep.category_names) if use_cats else 0,
            item_categories=[int(c) for c in prep.item_cat] if use_cats else [],
        )

    def build_model(self, model_config: SASRecConfig):
        from guimo.models.sasrec import SASRec

        return SASRec(model_config)

    def train_inputs(self, ctx) -> TrainInputs:
        from guimo.data.recdata import NextItemWindows

        cfg = ctx.cfg
        prep = load_data(ctx.run)
        sequences = prep.train_sequences()
        train = NextItemWindows(sequences, cfg.model.max_len)
        hist, targets = prep.cases("val", cfg.eval.val_cases, seed=cfg.seed)
        item_freq = None
        if cfg.model.loss == "sampled" and cfg.model.in_batch_negatives:
            item_freq = target_frequencies(sequences, prep.n_items)

        def loss_fn(model, batch):
            if item_freq is None:
                return model(batch["seq"], batch["target"])
            return model(batch["seq"], batch["target"], item_freq.to(batch["seq"].device))

        def evaluate(model) -> dict[str, float]:
            return rank_model(model, hist, targets, prep.n_items, cfg.eval, sampled=False, seed=cfg.seed)["full"]

        return TrainInputs(train_set=train, loss_fn=loss_fn, evaluate=evaluate, metric=self.headline, higher_is_better=True)

    def evaluate(self, ctx, model) -> dict[str, Any]:
        from guimo.evaluate.baselines_rec import fit_baselines
        from guimo.evaluate.ranking import evaluate_ranking

        cfg, e = ctx.cfg, ctx.cfg.eval
        prep = load_data(ctx.run)
        test_h, test_t = prep.cases("test")
        val_h, val_t = prep.cases("val")
        model_test = rank_model(model, test_h, test_t, prep.n_items, e, sampled=True, seed=cfg.seed, keep_ranks=True)
        out: dict[str, Any] = {
            "split": "test",
            "protocol": {
                "split": cfg.data.split, "ranking": "full catalogue", "filter_seen": e.filter_seen,
                "cases": len(test_h), "items": prep.n_items,
                "sampled": f"{e.sampled} uniform negatives not in the history (reported under 'sampled')" if e.sampled else None,
                "sampled_negatives": e.sampled,
            },
            "model": model_test["full"],
            "baselines": {},
            "sampled": {"model": model_test.get("sampled"), "baselines": {}},
            "val": rank_model(model, val_h, val_t, prep.n_items, e, sampled=False, seed=cfg.seed)["full"],
        }
        ranks = {"model": model_test["ranks"]}
        train_sequences = prep.train_sequences()
        for name, baseline in fit_baselines(train_sequences, prep.n_items, e.baselines).items():
            res = evaluate_ranking(baseline, test_h, test_t, prep.n_items, ks=e.ks, filter_seen=e.filter_seen,
                                   sampled=e.sampled, chunk=e.chunk, seed=cfg.seed, keep_ranks=True)
            out["baselines"][name] = res["full"]
            out["sampled"]["baselines"][name] = res.get("sampled")
            ranks[name] = res["ranks"]
        out["breakdown"] = rec_breakdown(test_h, test_t, train_sequences, prep.n_items, ranks, e.ks)
        return out

    def load_predictor(self, run, device: str = "cpu"):
        from guimo.inference.recommend import RecPredictor

        return RecPredictor.from_run(run, device=device)


SCENARIO = RecommendScenario()
