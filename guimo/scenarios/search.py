"""`search` — hybrid retrieval: BM25 + a contrastively fine-tuned text encoder, optionally reranked.

Data: a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/{train,test}.tsv``; SciFact is
the benchmark) or the embedded generated cloud-docs corpus (``guimo.data.retrieval``). The train
qrels' queries are split into train and validation (settings are chosen there, never on test).

Model: the packaged all-MiniLM-L6-v2 in guimo's Transformer, fine-tuned in the shared loop on
(query, relevant document) pairs with InfoNCE (van den Oord et al. 2018; the DPR recipe of
Karpukhin et al. 2020): each query against its positive, every other document of the batch and
``data.hard_negatives`` BM25 hard negatives per query, mined once in preprocess (BM25's top
``data.mine_depth`` minus the judged positives). Documents that are positives of a row's query
are masked out of its negatives, so a shared or repeated document is never pushed away from a
query it answers. The temperature is ``model.temperature``.

Evaluate (test qrels, nDCG@10 and Recall@100): every system runs on the validation and the test
queries; the model is the fine-tuned system best on validation: the encoder alone, its RRF hybrid
with BM25, or (``rerank.enabled``) that hybrid with its top reranked by the cross-encoder. The
baselines are BM25, the frozen MiniLM and the RRF hybrid with the frozen MiniLM; every system's
test scores are listed under ``systems``.
The reranker (``guimo.models.reranker``) is a second model trained by the same loop into
``RUN/reranker/`` the first time evaluate runs with it enabled.

The run's encoder is loadable by ``TextEncoder(RUN)`` (collections: ``--encoder RUN``; the server:
``--encoder NAME=RUN``): weights + ``model_config.json`` + ``data/{tokenizer,encoder}.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from guimo.models.transformer import TransformerConfig
from guimo.scenarios.base import InitConfig, OptimizeConfig, TrainInputs
from guimo.train.config import TrainConfig

if TYPE_CHECKING:
    import torch

PAIRS, SPLIT, VAL_POOL = "pairs.jsonl", "split.json", "val_pool.json"  # in RUN/data/, written by preprocess


@dataclass
class SearchDataConfig:
    path: str | None = field(default=None, metadata={"help": "BEIR folder (corpus.jsonl, queries.jsonl, qrels/{train,test}.tsv); None: the embedded generated corpus"})
    val_fraction: float = field(default=0.1, metadata={"help": "share of the train qrels' queries held out to validate (choose settings there, not on test)"})
    hard_negatives: int = field(default=1, metadata={"help": "BM25 hard negatives per training pair (0: in-batch negatives only)"})
    mine_depth: int = field(default=30, metadata={"help": "BM25 candidates per query that hard negatives are drawn from (positives excluded)"})
    val_pool: int = field(default=30, metadata={"help": "validation ranks each val query's positives + BM25 top-N (a pool, so that validating is cheap)"})
    generator_seed: int = field(default=0, metadata={"help": "seed of the embedded corpus"})


@dataclass
class SearchModelConfig:
    temperature: float = field(default=0.05, metadata={"help": "InfoNCE softmax temperature on cosine similarities"})
    max_length: int = field(default=256, metadata={"help": "document tokens in training and inference (MiniLM was trained at 256)"})
    query_max_length: int = field(default=64, metadata={"help": "query tokens in training"})
    dropout: float = field(default=0.1, metadata={"help": "dropout while fine-tuning (BERT's own)"})


@dataclass
class SearchEvalConfig:
    depth: int = field(default=100, metadata={"help": "candidates each retriever returns, and the fused list's length (Recall@depth)"})
    rrf_k: int = field(default=60, metadata={"help": "reciprocal-rank fusion constant (Cormack et al. 2009)"})
    batch_size: int = field(default=32, metadata={"help": "texts per encoder batch"})


@dataclass
class RerankConfig:
    enabled: bool = field(default=False, metadata={"help": "train a cross-encoder and rerank the top of the hybrid list"})
    depth: int = field(default=30, metadata={"help": "hybrid candidates reranked per query"})
    negatives: int = field(default=3, metadata={"help": "BM25 hard negatives per positive in training"})
    max_length: int = field(default=256, metadata={"help": "tokens of query + document"})
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=200, batch_size=8, lr=3e-5, warmup_steps=20, weight_decay=0.01, eval_every=0, checkpoint_every=50, log_every=10))


@dataclass
class SearchConfig:
    seed: int = field(default=0, metadata={"help": "seeds the split, the negatives, data order and dropout"})
    data: SearchDataConfig = field(default_factory=SearchDataConfig)
    model: SearchModelConfig = field(default_factory=SearchModelConfig)
    # Sized for the embedded corpus (140 training pairs) on 2 CPU cores: seconds per step.
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=60, batch_size=16, lr=3e-5, warmup_steps=6, weight_decay=0.01, eval_every=20, checkpoint_every=20, log_every=5))
    init: InitConfig = field(default_factory=InitConfig)  # init.pretrained None: the packaged all-MiniLM-L6-v2
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    eval: SearchEvalConfig = field(default_factory=SearchEvalConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)


# -- data --------------------------------------------------------------------------------------


def load_data(run):
    from guimo.data.retrieval import load_beir

    return load_beir(run.data_dir / "beir", splits=("train", "test"))


def bm25_index(corpus: dict[str, str]):
    from guimo.index.sparse import SparseIndex

    return SparseIndex.build((d, t, None) for d, t in corpus.items())


def bm25_rankings(index, queries: dict[str, str], k: int):
    """query id -> BM25 hits (best first)."""
    qids = list(queries)
    return dict(zip(qids, index.search_many([queries[q] for q in qids], k=k)))


class ContrastiveSet:
    """(query, positive, hard negatives) examples, tokenized per batch for the shared loop.

    ``batch`` gives queries (B, Tq), documents (B * (1 + n), Td: the B positives first, then the
    negatives) and, per document, its corpus row; ``positives`` (B, P) holds each query's relevant
    rows (-1 padded) so the loss can mask them out of the negatives.
    """

    def __init__(self, tokenizer_file: Path, corpus: dict[str, str], queries: dict[str, str], examples: list[dict],
                 qrels: dict[str, dict[str, int]], negatives: int, max_length: int, query_max_length: int) -> None:
        from tokenizers import Tokenizer

        def tok(n: int):
            t = Tokenizer.from_file(str(tokenizer_file))
            t.no_padding()
            t.enable_truncation(n)
            return t

        self.q_tok, self.d_tok = tok(query_max_length), tok(max_length)
        self.pad_id = self.d_tok.token_to_id("[PAD]") or 0
        self.doc_ids = list(corpus)
        self.row = {d: i for i, d in enumerate(self.doc_ids)}
        self.corpus, self.queries, self.examples, self.qrels, self.negatives = corpus, queries, examples, qrels, negatives
        self.tokens_per_example = query_max_length + (1 + negatives) * max_length

    def __len__(self) -> int:
        return len(self.examples)

    def batch(self, indices: list[int]) -> dict[str, "torch.Tensor"]:
        import torch

        from guimo.models.text_encoder import pad_encodings

        ex = [self.examples[i] for i in indices]
        docs = [e["pos"] for e in ex] + [d for e in ex for d in e["negs"][: self.negatives]]
        q_ids, q_types, q_mask = pad_encodings(self.q_tok.encode_batch([self.queries[e["query"]] for e in ex]), self.pad_id)
        d_ids, d_types, d_mask = pad_encodings(self.d_tok.encode_batch([self.corpus[d] for d in docs]), self.pad_id)
        rel = [[self.row[d] for d in self.qrels[e["query"]]] for e in ex]
        positives = torch.full((len(ex), max(map(len, rel))), -1, dtype=torch.long)
        for r, rows in enumerate(rel):
            positives[r, : len(rows)] = torch.tensor(rows)
        return {"q_ids": q_ids, "q_types": q_types, "q_mask": q_mask, "d_ids": d_ids, "d_types": d_types, "d_mask": d_mask,
                "d_rows": torch.tensor([self.row[d] for d in docs]), "positives": positives}


def embed(model, ids, types, mask) -> "torch.Tensor":
    """Unit-norm mean-pooled embeddings (B, C) of a Transformer without a head (its forward = hidden states)."""
    from guimo.models.text_encoder import mean_pool

    return mean_pool(model(ids, key_mask=mask, token_type_ids=types).float(), mask)


def info_nce(model, batch: dict[str, "torch.Tensor"], temperature: float) -> "torch.Tensor":
    """InfoNCE: row i's positive is document column i; every other column is a negative unless it is
    a document relevant to query i (then it is masked out)."""
    import torch
    import torch.nn.functional as F

    q = embed(model, batch["q_ids"], batch["q_types"], batch["q_mask"])  # (B, C)
    d = embed(model, batch["d_ids"], batch["d_types"], batch["d_mask"])  # (B * (1 + n), C)
    logits = q @ d.T / temperature  # (B, D)
    B = q.shape[0]
    relevant = (batch["d_rows"][None, :, None] == batch["positives"][:, None, :]).any(-1)  # (B, D)
    own = torch.zeros_like(relevant)
    own[torch.arange(B), torch.arange(B)] = True
    logits = logits.masked_fill(relevant & ~own, float("-inf"))
    return F.cross_entropy(logits, torch.arange(B, device=logits.device))


def rank_pool(encoder, queries: dict[str, str], pools: dict[str, list[str]], corpus: dict[str, str], batch_size: int) -> dict[str, list[str]]:
    """Each query's pool ordered by cosine with its embedding (the validation ranking)."""
    docs = sorted({d for p in pools.values() for d in p})
    row = {d: i for i, d in enumerate(docs)}
    D = encoder.encode([corpus[d] for d in docs], batch_size=batch_size)
    qids = list(pools)
    Q = encoder.encode([queries[q] for q in qids], batch_size=batch_size)
    out = {}
    for i, q in enumerate(qids):
        rows = [row[d] for d in pools[q]]
        scores = (D[rows] @ Q[i]).tolist()
        out[q] = [pools[q][j] for j in sorted(range(len(rows)), key=lambda j: -scores[j])]
    return out


def dense_rankings(encoder, queries: dict[str, str], corpus: dict[str, str], k: int, batch_size: int):
    """query id -> top-k exact cosine hits over the whole corpus."""
    import torch

    from guimo.index.sparse import Hit

    doc_ids = list(corpus)
    D = encoder.encode([corpus[d] for d in doc_ids], batch_size=batch_size)
    qids = list(queries)
    Q = encoder.encode([queries[q] for q in qids], batch_size=batch_size)
    scores, rows = torch.topk(Q @ D.T, min(k, len(doc_ids)), dim=1)
    return {q: [Hit(doc_ids[r], float(s)) for r, s in zip(rows[i].tolist(), scores[i].tolist())] for i, q in enumerate(qids)}


def ids(rankings) -> dict[str, list[str]]:
    return {q: [h.id for h in hits] for q, hits in rankings.items()}


# -- the scenario ------------------------------------------------------------------------------


class SearchScenario:
    name = "search"
    summary = "hybrid search: BM25 + contrastively fine-tuned MiniLM (+ cross-encoder reranker) vs BM25, frozen MiniLM, frozen hybrid (default: generated cloud docs)"
    config_cls = SearchConfig
    presets: dict[str, dict[str, dict[str, Any]]] = {}
    model_config_cls = TransformerConfig
    headline = "ndcg@10"
    higher_is_better = True
    serve_kind = "embedding"

    def settled_config(self, run, cfg: SearchConfig) -> SearchConfig:
        """``cfg`` with ``init.pretrained`` resolved to the packaged MiniLM when unset."""
        if cfg.init.pretrained:
            return cfg
        from guimo.models.text_encoder import packaged_model_dir

        return dataclasses.replace(cfg, init=dataclasses.replace(cfg.init, pretrained=str(packaged_model_dir())))

    def collect(self, ctx) -> dict[str, Any]:
        from guimo.data.fetch import fingerprint
        from guimo.data.retrieval import generate, load_beir, write_beir

        d = ctx.cfg.data
        data = generate(d.generator_seed) if d.path is None else load_beir(d.path, splits=("train", "test"))
        root = write_beir(data, ctx.run.data_dir / "beir")
        files = sorted(p for p in root.rglob("*") if p.is_file())
        fp = fingerprint([(p.relative_to(root).as_posix(), p.read_bytes()) for p in files])
        return {"source": d.path or "embedded:cloud-docs", "fingerprint": fp, "bytes": sum(p.stat().st_size for p in files),
                "documents": len(data.corpus), "queries": len(data.queries)}

    def preprocess(self, ctx) -> dict[str, Any]:
        import json
        import random

        from guimo.errors import GuimoError
        from guimo.io import atomic_write_json, atomic_write_text
        from guimo.models.text_encoder import write_encoder_files

        cfg, d = ctx.cfg, ctx.cfg.data
        data = load_data(ctx.run)
        train_q = sorted(data.qrels["train"])
        random.Random(cfg.seed).shuffle(train_q)
        n_val = int(round(len(train_q) * d.val_fraction))
        if not 0 <= d.val_fraction < 1 or (d.val_fraction > 0 and n_val == 0):
            raise GuimoError(f"data.val_fraction={d.val_fraction} leaves no validation queries out of {len(train_q)}")
        val_q, fit_q = sorted(train_q[:n_val]), sorted(train_q[n_val:])
        index = bm25_index(data.corpus)
        rng = random.Random(cfg.seed + 1)
        mined = bm25_rankings(index, {q: data.queries[q] for q in fit_q}, d.mine_depth + 10)
        lines, examples = [], 0
        for q in fit_q:
            positives = set(data.qrels["train"][q])
            candidates = [h.id for h in mined[q] if h.id not in positives][: d.mine_depth]
            for pos in sorted(positives):
                negs = rng.sample(candidates, min(len(candidates), max(d.hard_negatives, 8)))
                lines.append(json.dumps({"query": q, "pos": pos, "negs": negs, "candidates": candidates}) + "\n")
                examples += 1
        atomic_write_text(ctx.run.data_dir / PAIRS, "".join(lines))
        pools = {}
        for q, hits in bm25_rankings(index, {q: data.queries[q] for q in val_q}, d.val_pool).items():
            pools[q] = list(dict.fromkeys([*data.qrels["train"][q], *(h.id for h in hits)]))
        atomic_write_json(ctx.run.data_dir / SPLIT, {"train": fit_q, "val": val_q})
        atomic_write_json(ctx.run.data_dir / VAL_POOL, pools)
        source = self.settled_config(ctx.run, cfg).init.pretrained
        write_encoder_files(ctx.run.data_dir, source, cfg.model.max_length)
        return {"documents": len(data.corpus), "train_queries": len(fit_q), "val_queries": len(val_q),
                "test_queries": len(data.qrels["test"]), "train_pairs": examples, "hard_negatives": d.hard_negatives}

    def model_config(self, ctx) -> TransformerConfig:
        # The architecture comes from the pretrained checkpoint (init.pretrained); these two are ours.
        return TransformerConfig(max_len=ctx.cfg.model.max_length, dropout=ctx.cfg.model.dropout, lm_head=False, causal=False)

    def build_model(self, model_config):
        from guimo.models.transformer import Transformer

        return Transformer(model_config)

    def _prepared(self, run) -> tuple[Any, list[dict], dict, dict]:
        from guimo.io import iter_jsonl, read_json

        pairs = [rec for _, rec in iter_jsonl(run.data_dir / PAIRS)]
        return load_data(run), pairs, read_json(run.data_dir / SPLIT), read_json(run.data_dir / VAL_POOL)

    def train_inputs(self, ctx) -> TrainInputs:
        from guimo.models.text_encoder import TOKENIZER_FILE, TextEncoder

        cfg = ctx.cfg
        data, examples, split, pools = self._prepared(ctx.run)
        tok = ctx.run.data_dir / TOKENIZER_FILE
        train = ContrastiveSet(tok, data.corpus, data.queries, examples, data.qrels["train"], cfg.data.hard_negatives,
                               cfg.model.max_length, cfg.model.query_max_length)
        temperature = cfg.model.temperature

        def loss_fn(model, batch):
            return info_nce(model, batch, temperature)

        def evaluate(model) -> dict[str, float]:
            return validate(TextEncoder.from_model(model, tok, cfg.model.max_length), data, split, pools, cfg.eval.batch_size)

        return TrainInputs(train_set=train, loss_fn=loss_fn, evaluate=evaluate, metric=self.headline, higher_is_better=True)

    def evaluate(self, ctx, model) -> dict[str, Any]:
        """Every system on the validation and test queries (one encoding of the corpus per encoder);
        the model is the fine-tuned system (dense, hybrid, hybrid reranked) best on validation."""
        from guimo.data.retrieval import score_rankings
        from guimo.index.fusion import normalized_fusion, rrf
        from guimo.models.text_encoder import TOKENIZER_FILE, TextEncoder

        cfg, e = ctx.cfg, ctx.cfg.eval
        data, examples, split, pools = self._prepared(ctx.run)
        qrels = {"test": data.qrels["test"], "val": {q: data.qrels["train"][q] for q in split["val"]}}
        asked = {q: data.queries[q] for part in qrels.values() for q in part}
        tuned = TextEncoder.from_model(model, ctx.run.data_dir / TOKENIZER_FILE, cfg.model.max_length)
        frozen = TextEncoder(cfg.init.pretrained, max_length=cfg.model.max_length, device=tuned.device)
        bm25 = bm25_rankings(bm25_index(data.corpus), asked, e.depth)
        dense_frozen = dense_rankings(frozen, asked, data.corpus, e.depth, e.batch_size)
        dense_tuned = dense_rankings(tuned, asked, data.corpus, e.depth, e.batch_size)

        def fuse(dense):
            return {q: rrf([bm25[q], dense[q]], k=e.rrf_k, top=e.depth) for q in asked}

        def fuse_scores(dense):  # min-max normalised scores, summed: keeps how far apart the scores are
            return {q: normalized_fusion([bm25[q], dense[q]], top=e.depth) for q in asked}

        systems = {"bm25": bm25, "dense_frozen": dense_frozen, "hybrid_frozen": fuse(dense_frozen),
                   "hybrid_frozen_normalized": fuse_scores(dense_frozen),
                   "dense_tuned": dense_tuned, "hybrid_tuned": fuse(dense_tuned),
                   "hybrid_tuned_normalized": fuse_scores(dense_tuned)}
        candidates = ["dense_tuned", "hybrid_tuned", "hybrid_tuned_normalized"]
        info = None
        if cfg.rerank.enabled:
            reranker, info = self.reranker(ctx, data, examples, split, pools)
            hybrid = systems["hybrid_tuned"]
            systems["hybrid_tuned_reranked"] = {q: rerank(reranker, asked[q], hybrid[q], data.corpus, cfg.rerank.depth) for q in asked}
            candidates.append("hybrid_tuned_reranked")
        scores = {part: {name: score_rankings(ids(r), rel, recall_ks=(e.depth,)) for name, r in systems.items()}
                  for part, rel in qrels.items() if rel}
        # chosen on validation (the first candidate wins a tie; without val queries, the last candidate)
        chosen = max(candidates, key=lambda n: (scores["val"][n]["ndcg@10"], -candidates.index(n))) if "val" in scores else candidates[-1]
        out: dict[str, Any] = {
            "split": "test",
            "protocol": {"queries": len(qrels["test"]), "val_queries": len(qrels["val"]), "documents": len(data.corpus),
                         "fusion": f"RRF k={e.rrf_k}, or min-max normalised score fusion (_normalized), over top-{e.depth} of each",
                         "model": f"{chosen}: the best fine-tuned system on validation among {', '.join(candidates)}"},
            "model": scores["test"][chosen],
            "chosen": chosen,
            "baselines": {n: scores["test"][n] for n in ("bm25", "dense_frozen", "hybrid_frozen", "hybrid_frozen_normalized")},
            "systems": scores["test"],
            "val": scores.get("val", {}).get(chosen, {}),
            "val_systems": scores.get("val", {}),
        }
        if info is not None:
            out["reranker"] = info
        return out

    def reranker(self, ctx, data, examples: list[dict], split: dict, pools: dict):
        """The run's cross-encoder: loaded from ``RUN/reranker/`` or trained there by the shared loop."""
        import random

        from guimo.models.reranker import PairSet, Reranker, listwise_loss, sample_negatives
        from guimo.train.loop import fit

        rc, folder = ctx.cfg.rerank, ctx.run.path / "reranker"
        if (folder / "config.json").is_file():
            return Reranker.load(folder), {"loaded": str(folder)}
        reranker = Reranker.pretrained(ctx.cfg.init.pretrained, max_length=rc.max_length, seed=ctx.cfg.seed)
        rng = random.Random(ctx.cfg.seed + 2)
        triples = [(data.queries[x["query"]], data.corpus[x["pos"]],
                    [data.corpus[d] for d in sample_negatives(x["candidates"], set(data.qrels["train"][x["query"]]), rc.negatives, rng)])
                   for x in examples]
        triples = [t for t in triples if len(t[2]) == rc.negatives]
        val = {q: data.queries[q] for q in split["val"]}

        def evaluate(model) -> dict[str, float]:
            from guimo.data.retrieval import score_rankings

            ranked = {q: [d for _, d in sorted(zip(reranker.score(val[q], [data.corpus[d] for d in pool]), pool), key=lambda t: -t[0])]
                      for q, pool in pools.items()}
            return score_rankings(ranked, {q: data.qrels["train"][q] for q in pools}, recall_ks=())

        result = fit(reranker.model, PairSet(reranker, triples, rc.negatives), listwise_loss, rc.train, out_dir=folder,
                     seed=ctx.cfg.seed, evaluate=evaluate if pools else None, metric="ndcg@10", higher_is_better=True)
        reranker.model.eval()
        reranker.save(folder)
        return reranker, {"steps": result.steps, "wall_time_s": round(result.wall_time_s, 1), "best_val": result.best_metric,
                          "train_examples": len(triples)}

    def load_predictor(self, run, device: str = "cpu"):
        """The run's fine-tuned encoder (``embed`` for /v1/embeddings, ``encode`` for dense collections)."""
        from guimo.models.text_encoder import TextEncoder

        return TextEncoder.from_run(run.path if hasattr(run, "path") else run, device=device)


def validate(encoder, data, split: dict, pools: dict, batch_size: int) -> dict[str, float]:
    """nDCG@10 of the encoder ranking each validation query's pool (its positives + BM25 top-N)."""
    from guimo.data.retrieval import score_rankings

    if not pools:
        return {"ndcg@10": 0.0}
    model = encoder.model
    was_training = model.training
    model.eval()
    try:
        ranked = rank_pool(encoder, {q: data.queries[q] for q in split["val"]}, pools, data.corpus, batch_size)
    finally:
        model.train(was_training)
    return score_rankings(ranked, {q: data.qrels["train"][q] for q in pools}, recall_ks=())


def rerank(reranker, query: str, hits: Sequence, corpus: dict[str, str], depth: int) -> list:
    """``hits`` with its first ``depth`` reordered by the cross-encoder's scores (the rest keep their order)."""
    from guimo.index.sparse import Hit

    head, tail = list(hits[:depth]), list(hits[depth:])
    scores = reranker.score(query, [corpus[h.id] for h in head])
    order = sorted(range(len(head)), key=lambda i: -scores[i])
    return [Hit(head[i].id, float(scores[i]), head[i].metadata) for i in order] + tail


SCENARIO = SearchScenario()
