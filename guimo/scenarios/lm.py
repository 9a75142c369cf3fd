"""`lm` — the large model itself: a GPT-style causal language model on real text.

Data: the standard library's Python source by default (or --data: a text file, a folder, a
JSONL with "text"); byte-level BPE trained with HF `tokenizers` on the training split only.
Metrics: loss (nats/token), perplexity and bits per byte, which stays comparable across
tokenizers. Baselines on the same tokens and targets: unigram and interpolated bigram models.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from guimo.errors import GuimoError
from guimo.models.transformer import PRESETS, TransformerConfig
from guimo.scenarios.base import InitConfig, OptimizeConfig, TrainInputs
from guimo.train.config import TrainConfig

EOS = "<|endoftext|>"


@dataclass
class LMDataConfig:
    path: str | None = field(default=None, metadata={"help": "text file, folder of text files, .jsonl with 'text', or URL; None: embedded stdlib corpus"})
    vocab_size: int = field(default=2048, metadata={"help": "BPE vocabulary size incl. the end-of-text token"})
    max_bytes: int | None = field(default=None, metadata={"help": "use at most this many bytes of the corpus (documents in order; data.cap says which)"})
    cap: str = field(default="head", metadata={"help": "how max_bytes keeps documents: head (the leading ones) or spread (every k-th, then the cut: a sample across an ordered corpus such as the stdlib)"})
    fraction: float = field(default=1.0, metadata={"help": "use this share of the training tokens, spread over the whole split (data-scaling sweeps)"})
    val_fraction: float = field(default=0.05, metadata={"help": "share of documents held out for validation"})
    test_fraction: float = field(default=0.05, metadata={"help": "share of documents held out for test"})
    eval_tokens: int = field(default=100_000, metadata={"help": "tokens scored per validation/test evaluation"})
    tokenizer_bytes: int | None = field(default=2_000_000, metadata={"help": "learn BPE merges from about this many bytes of the training split, every k-th document (None: all of it)"})

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError("data.fraction must be in (0, 1]")
        if self.cap not in ("head", "spread"):
            raise ValueError(f"data.cap must be 'head' or 'spread', not {self.cap!r}")
        if self.vocab_size < 260:
            raise ValueError("data.vocab_size must be at least 260 (256 bytes + merges + specials)")


# The language model's presets: the shared sizes with an untied output embedding. A separate
# output matrix learns next-token statistics directly; measured on the stdlib corpus (tiny, batch
# 32, lr 6e-3, 300 steps) it reached 1.45 bits per byte where the tied model was at 1.67.
LM_PRESETS: dict[str, dict] = {name: {**values, "tie_weights": False} for name, values in PRESETS.items()}


@dataclass
class LMConfig:
    seed: int = field(default=0, metadata={"help": "seeds data order, init and dropout"})
    data: LMDataConfig = field(default_factory=LMDataConfig)
    model: TransformerConfig = field(default_factory=lambda: TransformerConfig(**LM_PRESETS["tiny"]))
    # Defaults sized so that `guimo run lm` finishes in under 3 minutes on 2 shared cores and beats
    # the bigram baseline (docs/benchmarks/lm.md, "LM default run"). Measured on the stdlib corpus:
    # batch 16 costs less per example than 32 here and learned as much per example; lr 6e-3 beat
    # 3e-3 and 1e-2. A cosine schedule that completes matters more than its length (a run stopped by
    # the clock at step 502 of 600 was 6% worse than one that finished). A fixed 500 steps, no time
    # budget: the same command gives the same weights on any machine (the 120 s budget this preset
    # had let a busy machine's clock change the numbers; here every run reached 500 steps within it,
    # 87-105 s of training). `--set train.max_time_s=SECONDS` opts into a budget that picks the
    # step count (at most max_steps) once from the first steps' speed and records it.
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=500, batch_size=16, lr=6e-3, warmup_steps=30, eval_every=250, checkpoint_every=250))
    init: InitConfig = field(default_factory=InitConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)


class TokenBlocks:
    """Contiguous windows of T+1 tokens (stride T): inputs are the first T, targets the last T."""

    def __init__(self, tokens, block: int) -> None:
        import torch

        self.tokens = torch.as_tensor(tokens.astype("int64"))
        self.block = block
        self.tokens_per_example = block
        self.n = max(0, (len(self.tokens) - 1) // block)

    def __len__(self) -> int:
        return self.n

    def batch(self, indices: list[int]):
        import torch

        starts = torch.tensor(indices) * self.block
        rows = self.tokens[starts[:, None] + torch.arange(self.block + 1)]  # (B, T+1)
        return {"x": rows[:, :-1], "y": rows[:, 1:]}


def lm_loss(model, batch):
    import torch.nn.functional as F

    logits = model(batch["x"])  # (B, T, V)
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), batch["y"].reshape(-1))


class LMScenario:
    name = "lm"
    summary = "GPT-style causal language model on text (default: the Python standard library source)"
    config_cls = LMConfig
    model_config_cls = TransformerConfig
    presets = {"model": LM_PRESETS}
    headline = "bits_per_byte"
    higher_is_better = False
    serve_kind = "completion"

    # -- collect -------------------------------------------------------------------------------
    def collect(self, ctx) -> dict[str, Any]:
        from guimo.data.fetch import fetch, fingerprint, is_url
        from guimo.data.text import cap_bytes, read_documents, stdlib_documents
        from guimo.io import atomic_write_text

        source = ctx.cfg.data.path
        if source is None:
            docs, label = stdlib_documents(), "embedded:python-stdlib"
        else:
            local = fetch(source) if is_url(source) else source
            docs, label = read_documents(local), source
        if ctx.cfg.data.max_bytes:
            docs = cap_bytes(docs, ctx.cfg.data.max_bytes, spread=ctx.cfg.data.cap == "spread")
        raw = "".join(json.dumps({"name": n, "text": t}, ensure_ascii=False) + "\n" for n, t in docs)
        atomic_write_text(ctx.run.data_dir / "raw.jsonl", raw)
        encoded = [(n, t.encode()) for n, t in docs]
        return {"source": label, "files": len(docs), "bytes": sum(len(b) for _, b in encoded), "fingerprint": fingerprint(encoded)}

    # -- preprocess ----------------------------------------------------------------------------
    def preprocess(self, ctx) -> dict[str, Any]:
        import numpy as np

        from guimo.data.text import split_single
        from guimo.io import atomic_write_bytes, iter_jsonl

        d = ctx.cfg.data
        docs = [(r["name"], r["text"]) for _, r in iter_jsonl(ctx.run.data_dir / "raw.jsonl")]
        splits = split_single(docs, d.val_fraction, d.test_fraction)
        pretrained = ctx.cfg.init.pretrained
        if pretrained:  # the checkpoint's embeddings only mean something with its own tokenizer
            tok = pretrained_tokenizer(pretrained)
        else:
            tok = train_tokenizer(tokenizer_sample([t for _, t in splits["train"]], d.tokenizer_bytes), d.vocab_size)
        from guimo.io import atomic_write_text

        atomic_write_text(ctx.run.data_dir / "tokenizer.json", tok.to_str())
        eos = tok.token_to_id(EOS)
        info: dict[str, Any] = {"vocab_size": tok.get_vocab_size(), "tokenizer": f"pretrained:{pretrained}" if pretrained else "trained"}
        for split, items in splits.items():
            ids: list[int] = []
            for enc in tok.encode_batch([t for _, t in items]):
                ids.extend(enc.ids)
                ids.append(eos)
            arr = np.asarray(ids, dtype=np.uint16 if tok.get_vocab_size() < 65536 else np.uint32)
            if split == "train" and d.fraction < 1:
                arr = spread_fraction(arr, d.fraction)
            buf = io.BytesIO()
            np.save(buf, arr)
            atomic_write_bytes(ctx.run.data_dir / f"{split}.npy", buf.getvalue())
            info[f"{split}_tokens"] = int(len(arr))
            info[f"{split}_documents"] = len(items)
        if info["train_tokens"] < 2 * ctx.cfg.model.max_len:
            raise GuimoError(f"training split has only {info['train_tokens']} tokens; need at least {2 * ctx.cfg.model.max_len} (more data or smaller model.max_len)")
        info["bytes_per_token"] = round(sum(len(t.encode()) for _, t in splits["train"]) / max(1, info["train_tokens"]), 3)
        return info

    # -- init / train --------------------------------------------------------------------------
    def model_config(self, ctx) -> TransformerConfig:
        import dataclasses

        vocab = ctx.run.manifest["stages"]["preprocess"]["vocab_size"]
        return dataclasses.replace(ctx.cfg.model, vocab_size=vocab, causal=True, lm_head=True)

    def build_model(self, model_config: TransformerConfig):
        from guimo.models.transformer import Transformer

        return Transformer(model_config)

    def train_inputs(self, ctx) -> TrainInputs:
        block = ctx.cfg.model.max_len
        train = TokenBlocks(load_tokens(ctx.run, "train"), block)
        val = load_tokens(ctx.run, "val")
        token_bytes = token_byte_lengths(load_tokenizer(ctx.run))
        n_eval = ctx.cfg.data.eval_tokens

        def evaluate(model) -> dict[str, float]:
            return score_lm(model, val[: n_eval + 1], block, token_bytes)

        return TrainInputs(train_set=train, loss_fn=lm_loss, evaluate=evaluate, metric="loss", higher_is_better=False)

    # -- evaluate ------------------------------------------------------------------------------
    def evaluate(self, ctx, model) -> dict[str, Any]:
        from guimo.evaluate.lm import BigramModel, UnigramModel, score_counts

        n_eval = ctx.cfg.data.eval_tokens
        block = model.cfg.max_len
        train, val, test = (load_tokens(ctx.run, s) for s in ("train", "val", "test"))
        token_bytes = token_byte_lengths(load_tokenizer(ctx.run))
        test = test[: n_eval + 1]
        vocab = model.cfg.vocab_size
        unigram = UnigramModel.fit(train, vocab)
        bigram = BigramModel.fit(train, vocab, unigram, tune_on=val[: n_eval + 1])
        # Score the baselines on exactly the transformer's targets: every block's T targets.
        ctx_ids, tgt_ids = block_targets(test, block)
        scores = score_positions(model, test, block, token_bytes)
        baseline_nll = {"unigram": unigram.nll(ctx_ids, tgt_ids), "bigram": bigram.nll(ctx_ids, tgt_ids)}
        return {
            "split": "test",
            "eval_tokens": int(len(tgt_ids)),
            "model": scores.summary(),
            "baselines": {name: score_counts(nll, tgt_ids, token_bytes) for name, nll in baseline_nll.items()},
            "val": score_lm(model, val[: n_eval + 1], block, token_bytes),
            "baseline_params": {"bigram_lambda": bigram.lam},
            "breakdown": position_breakdown_of(scores, baseline_nll, block),
        }

    # -- serve ---------------------------------------------------------------------------------
    def load_predictor(self, run, device: str = "cpu") -> "LMPredictor":
        from guimo.models.load import load_model  # not guimo.pipeline.runner: serving imports no training code

        return LMPredictor(load_model(self, run, device=device), load_tokenizer(run), name=run.path.name)


# -- tokenizer and token files -----------------------------------------------------------------


def spread_fraction(tokens, fraction: float, segments: int = 64):
    """The leading ``fraction`` of each of ``segments`` equal parts of the token stream.

    A corpus is usually ordered (the stdlib by module name), so a leading slice is a different
    distribution from the rest: on the stdlib the first quarter holds no encodings/ codec tables
    while the test split does, and a data-scaling sweep measured that, not data size. Equal parts
    keep every region of the corpus in proportion, stay contiguous within each part, and nest
    (a smaller fraction's tokens are a subset of a larger one's).
    """
    n = len(tokens)
    keep = max(2, int(n * fraction))
    if keep >= n:
        return tokens
    import numpy as np

    bounds = np.linspace(0, n, segments + 1).astype(int)
    parts = [tokens[a : a + max(1, int((b - a) * fraction))] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    return np.concatenate(parts)[:keep] if parts else tokens[:keep]


def tokenizer_sample(texts: list[str], max_bytes: int | None) -> list[str]:
    """Every k-th training document, k chosen so that about ``max_bytes`` remain.

    BPE training time grows with the text while the merges settle early: on the stdlib corpus a
    2 MB sample took a quarter of the time of all 11 MB and encoded held-out text within ~2% as
    compactly. Striding over the (sorted) documents keeps every part of the corpus represented.
    """
    total = sum(len(t) for t in texts)
    if max_bytes is None or total <= max_bytes:
        return texts
    return texts[:: max(1, round(total / max_bytes))]


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE (GPT-2 style) trained on the training split only."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def pretrained_tokenizer(folder: str | Path):
    """The tokenizer saved beside a Hugging Face GPT-2-style checkpoint.

    ``tokenizer.json`` (any fast tokenizer) or GPT-2's ``vocab.json`` + ``merges.txt`` (byte-level
    BPE). It must know the end-of-text token (documents are joined with it) and fit the model's
    vocabulary, or the run would train on ids the checkpoint's embeddings never meant.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        tok = Tokenizer(models.BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt")))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    else:
        raise GuimoError(f"{folder}: no tokenizer.json (or vocab.json + merges.txt) beside the pretrained weights; "
                         "the checkpoint's embeddings only mean something with the tokenizer it was trained with")
    if tok.token_to_id(EOS) is None:
        raise GuimoError(f"{folder}: the pretrained tokenizer has no {EOS} token to separate documents with")
    try:
        model_vocab = json.loads((folder / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    except (OSError, ValueError, KeyError):
        model_vocab = None  # load_pretrained reports a missing or malformed config.json
    if model_vocab is not None and tok.get_vocab_size() > model_vocab:
        raise GuimoError(f"{folder}: the tokenizer has {tok.get_vocab_size()} tokens but the model only {model_vocab} embeddings")
    return tok


def load_tokenizer(run):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(run.data_dir / "tokenizer.json"))


def load_tokens(run, split: str):
    import numpy as np

    return np.load(run.data_dir / f"{split}.npy")


def token_byte_lengths(tok):
    """Bytes of text each token stands for (ByteLevel: one vocabulary char per byte; specials 0)."""
    import numpy as np

    lengths = np.zeros(tok.get_vocab_size(), dtype=np.int64)
    specials = {EOS}
    for token, i in tok.get_vocab().items():
        lengths[i] = 0 if token in specials else len(token)
    return lengths


def block_targets(tokens, block: int):
    """(context token, target token) pairs for the targets a blocked transformer evaluation scores."""
    n = (len(tokens) - 1) // block * block
    return tokens[:n].astype("int64"), tokens[1 : n + 1].astype("int64")


@dataclass
class PositionScores:
    """A model's summed NLL (nats), targets and bytes at each position of the block, over every block.

    Position p predicts its target from p + 1 tokens of context. Summing these gives the overall
    loss and bits per byte; bucketing them gives `guimo.evaluate.breakdown.position_breakdown`.
    """

    nll: Any  # (T,) float64
    tokens: Any  # (T,) int64: targets scored at each position
    bytes: Any  # (T,) int64: bytes of text those targets stand for

    def summary(self) -> dict[str, float]:
        from guimo.evaluate.lm import lm_summary

        return lm_summary(float(self.nll.sum()), int(self.tokens.sum()), int(self.bytes.sum()))


def score_lm(model, tokens, block: int, token_bytes, batch_size: int = 16) -> dict[str, float]:
    """Mean loss, perplexity and bits per byte of ``model`` on ``tokens`` in blocks of ``block``."""
    return score_positions(model, tokens, block, token_bytes, batch_size).summary()


def score_positions(model, tokens, block: int, token_bytes, batch_size: int = 16) -> PositionScores:
    """Score ``tokens`` in blocks of ``block`` and keep the sums per position in the block."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    ds = TokenBlocks(tokens, block)
    if len(ds) == 0:
        raise GuimoError(f"evaluation split has fewer than {block + 1} tokens")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    nll_at = torch.zeros(block, dtype=torch.float64)
    bytes_at = torch.zeros(block, dtype=torch.int64)
    tb = torch.as_tensor(token_bytes)
    with torch.no_grad():
        for start in range(0, len(ds), batch_size):
            b = ds.batch(list(range(start, min(len(ds), start + batch_size))))
            logits = model(b["x"].to(device))  # (B, T, V)
            y = b["y"].to(device)
            nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none").view_as(y)  # (B, T)
            nll_at += nll.double().sum(0).cpu()
            bytes_at += tb[b["y"]].sum(0)
    model.train(was_training)
    return PositionScores(nll_at.numpy(), np.full(block, len(ds), dtype=np.int64), bytes_at.numpy())


def position_breakdown_of(scores: PositionScores, baselines_nll: dict, block: int) -> dict:
    """Bits per byte by context position for the model and count baselines on the same targets.

    ``baselines_nll`` maps a baseline name to its per-target NLL in `block_targets` order (block by
    block), so position = index mod ``block``.
    """
    import numpy as np

    from guimo.evaluate.breakdown import position_breakdown

    nll_at = {"model": scores.nll}
    for name, nll in baselines_nll.items():
        nll_at[name] = np.asarray(nll, dtype=np.float64).reshape(-1, block).sum(0)
    return {"context_position": position_breakdown(block, scores.bytes, nll_at)}


# -- inference ---------------------------------------------------------------------------------


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of text or a stop string) or "length"


class LMPredictor:
    """Text in, text out: what `guimo generate` and the server's /v1/completions use."""

    def __init__(self, model, tokenizer, name: str = "lm") -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.eos = tokenizer.token_to_id(EOS)
        self.max_len = model.cfg.max_len

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text).ids)

    def stream(self, prompt: str, *, max_tokens: int = 64, temperature: float = 1.0, top_k: int | None = None,
               top_p: float = 1.0, seed: int | None = None, stop: list[str] | None = None) -> Iterator[str]:
        """Yield text pieces as they are sampled; stops at end-of-text, a stop string or max_tokens.

        After exhaustion ``self.last`` holds the Completion (token counts, finish reason).
        """
        from guimo.generate import sample

        ids = self.tokenizer.encode(prompt).ids or [self.eos]
        text = _TextAssembler(self.tokenizer, self.eos, stop)
        for t in sample(self.model, ids, max_new_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed):
            piece = text.add(t)
            if piece:
                yield piece
            if text.finish:
                break
        piece = text.close()
        if piece:
            yield piece
        self.last = Completion(text.text, len(ids), len(text.ids), text.finish or "length")

    def complete(self, prompt: str, **kwargs) -> Completion:
        for _ in self.stream(prompt, **kwargs):
            pass
        return self.last

    def complete_batch(self, prompts: list[str], **kwargs) -> list[Completion]:
        """The same Completions as `complete` on each prompt, decoded together in one batch."""
        for _ in self.stream_batch(prompts, [kwargs] * len(prompts)):
            pass
        return self.last_batch

    def stream_batch(self, prompts: list[str], params: list[dict], *, cancelled=None) -> Iterator[tuple[int, str]]:
        """Decode many prompts at once (the server's micro-batches); yield ``(row, text piece)``.

        ``params[i]`` holds row i's `stream` keyword arguments. ``cancelled(i)`` (optional) is
        asked after every step: True stops row i with finish reason "cancelled" (a client that
        left is billed only for the tokens produced). Rows that cannot share the context window
        run one by one after the batch. Afterwards ``self.last_batch`` holds one Completion per row.
        """
        from guimo.generate import batch_fits, sample_batch

        ids = [self.tokenizer.encode(p).ids or [self.eos] for p in prompts]
        kw = [dict(max_tokens=64, temperature=1.0, top_k=None, top_p=1.0, seed=None, stop=None) | p for p in params]
        order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
        group: list[int] = []
        for i in order:  # shortest prompts first: the largest group that fits the window together
            if batch_fits([len(ids[j]) for j in group + [i]], [kw[j]["max_tokens"] for j in group + [i]], self.max_len):
                group.append(i)
        results: list[Completion | None] = [None] * len(prompts)
        if group:
            texts = {i: _TextAssembler(self.tokenizer, self.eos, kw[i]["stop"]) for i in group}
            finished = [False] * len(group)
            steps = sample_batch(self.model, [ids[i] for i in group], max_new_tokens=[kw[i]["max_tokens"] for i in group],
                                 temperature=[kw[i]["temperature"] for i in group], top_k=[kw[i]["top_k"] for i in group],
                                 top_p=[kw[i]["top_p"] for i in group], seeds=[kw[i]["seed"] for i in group], finished=finished)
            for step in steps:
                for r, t in enumerate(step):
                    if t is None:
                        continue
                    i = group[r]
                    piece = texts[i].add(t)
                    if piece:
                        yield i, piece
                    if texts[i].finish:
                        finished[r] = True
                    elif cancelled is not None and cancelled(i):
                        texts[i].finish, finished[r] = "cancelled", True
            for i in group:
                piece = texts[i].close()
                if piece:
                    yield i, piece
                results[i] = Completion(texts[i].text, len(ids[i]), len(texts[i].ids), texts[i].finish or "length")
        for i in range(len(prompts)):
            if results[i] is None:
                for piece in self.stream(prompts[i], **kw[i]):
                    yield i, piece
                results[i] = self.last
        self.last_batch = results

    def embed(self, texts: list[str]) -> tuple[list[list[float]], list[int]]:
        """Mean-pooled final hidden states (one vector per text) and each text's token count."""
        import torch

        vectors, counts = [], []
        device = next(self.model.parameters()).device
        with torch.no_grad():
            for text in texts:
                ids = (self.tokenizer.encode(text).ids or [self.eos])[-self.max_len :]
                h = self.model.encode(torch.tensor([ids], device=device))  # (1, T, C)
                v = h.mean(dim=1)[0]
                vectors.append((v / v.norm().clamp_min(1e-12)).tolist())
                counts.append(len(ids))
        return vectors, counts


class _TextAssembler:
    """Sampled token ids -> text pieces: waits for whole UTF-8 characters, cuts at stop strings.

    ``finish`` becomes "stop" at end-of-text or a stop string; ``text`` is what the caller gets.
    """

    def __init__(self, tokenizer, eos: int, stop: list[str] | None) -> None:
        self.tokenizer, self.eos, self.stop = tokenizer, eos, stop
        self.ids: list[int] = []
        self.text, self.emitted, self.finish = "", 0, None

    def add(self, t: int) -> str:
        if t == self.eos:
            self.finish = "stop"
            return ""
        self.ids.append(t)
        self.text = self.tokenizer.decode(self.ids)
        if self.stop and any(s in self.text for s in self.stop):
            cut = min(self.text.index(s) for s in self.stop if s in self.text)
            piece = self.text[self.emitted : cut] if cut > self.emitted else ""
            self.text, self.finish, self.emitted = self.text[:cut], "stop", max(self.emitted, cut)
            return piece
        if self.text.endswith("\ufffd"):
            return ""  # wait for the rest of a multi-byte character
        piece = self.text[self.emitted :]
        self.emitted = len(self.text)
        return piece

    def close(self) -> str:
        """What is left to emit when generation ran out of tokens (a cut-off character, say)."""
        if self.emitted < len(self.text) and self.finish is None:
            piece, self.emitted = self.text[self.emitted :], len(self.text)
            return piece
        return ""


SCENARIO = LMScenario()
