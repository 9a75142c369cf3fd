"""Joint intent + slot model: guimo's bidirectional Transformer (the packaged MiniLM, or random) with a
pooled intent head and a per-word slot head under a linear-chain CRF whose BIO constraints are hard.

- **Words, not word pieces.** Slots are tagged per word (``guimo.assistant.types.words``). The
  tokenizer runs on the pre-split words (``is_pretokenized``), so its ``word_ids`` say exactly which
  pieces belong to which word, and each word is read at its **first** piece (JointBERT's choice;
  "unbelievably" -> un ##bel ##ie ##va ##bly is read at "un", which has seen the rest through
  attention). A word the tokenizer turns into no piece at all (a lone combining accent) is
  re-encoded as [UNK] so that every word keeps a position; words past ``max_len`` pieces are cut and
  tagged O at inference.
- **Chinese.** MiniLM's vocabulary holds 244 CJK characters (no 打, 开, 客, 厅, 灯): every other
  one would be [UNK]. The characters of the training data that the vocabulary lacks are added to
  the run's tokenizer (``add_cjk_tokens``) and get rows of their own in ``extra_emb``, a small
  table beside the pretrained one, so the pretrained weights load unchanged.
- **The CRF.** Transitions into I-x from anything but B-x / I-x, and a start in I-x, are -inf, so
  Viterbi can never return an invalid sequence and the loss never spends mass on one. With
  ``crf=False`` the slot head is trained per word with cross-entropy (the CRF-free ablation); its
  decoding is still constrained Viterbi over the per-word log-probabilities, so tags stay valid.
- **Confidences.** ``marginals`` runs forward-backward; a span's confidence is the smallest
  marginal of its words' tags. Both heads are calibrated by a temperature fitted on validation data
  (the scenario fits them; the predictor applies them).

Shapes: B batch, T word pieces, W words, C = d_model, K intents, S slot tags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from guimo.models.text_classifier import load_tokenizer  # noqa: F401  (the one tokenizer loader; callers import it from here)
from guimo.models.transformer import Transformer, TransformerConfig

NEG_INF = float("-inf")


@dataclass
class JointNluConfig(TransformerConfig):
    causal: bool = field(default=False, metadata={"help": "False: every piece sees the whole utterance (BERT)"})
    norm_first: bool = field(default=False, metadata={"help": "post-norm, as BERT checkpoints are"})
    tie_weights: bool = field(default=False, metadata={"help": "no LM head to tie"})
    lm_head: bool = field(default=False, metadata={"help": "no vocabulary head"})
    embed_norm: bool = field(default=True, metadata={"help": "LayerNorm after the embeddings (BERT; a pretrained config sets it)"})
    extra_vocab: int = field(default=0, metadata={"help": "tokens added to the tokenizer (CJK characters); ids >= vocab_size use extra_emb"})
    n_intents: int = field(default=2, metadata={"help": "intent labels (set from the data)"})
    tags: list[str] = field(default_factory=lambda: ["O"], metadata={"help": "BIO tag names, O first (set from the data)"})
    pooling: Literal["mean", "cls"] = field(default="mean", metadata={"help": "intent head input: mean of the pieces or [CLS]"})
    head_dropout: float = field(default=0.1, metadata={"help": "dropout before both heads"})
    crf: bool = field(default=True, metadata={"help": "a CRF over the slot tags (False: per-word cross-entropy, constrained decoding)"})
    slot_loss_weight: float = field(default=1.0, metadata={"help": "loss = intent cross-entropy + this x slot loss"})
    encoder_lr_mult: float = field(default=1.0, metadata={"help": "encoder lr = train.lr x this (the heads train at train.lr)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_intents < 1:
            raise ValueError("n_intents must be at least 1")
        if not self.tags or self.tags[0] != "O":
            raise ValueError("tags must start with 'O'")
        allowed_tags(self.tags)  # validates the names
        if self.extra_vocab < 0 or not 0 <= self.head_dropout < 1 or self.encoder_lr_mult < 0:
            raise ValueError("extra_vocab and encoder_lr_mult must be >= 0 and head_dropout in [0, 1)")


# -- BIO constraints and the CRF -------------------------------------------------------------------


def allowed_tags(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(transitions (S, S), starts (S,)) booleans: may tag j follow tag i, may a sequence start with j.

    I-x may only follow B-x or I-x, and no sequence starts with I-x; everything else is allowed.
    """
    S = len(tags)
    parsed = []
    for t in tags:
        kind, _, name = t.partition("-")
        if t != "O" and (kind not in ("B", "I") or not name):
            raise ValueError(f"'{t}' is not a BIO tag")
        parsed.append((kind, name))
    trans = np.ones((S, S), dtype=bool)
    start = np.ones(S, dtype=bool)
    for j, (kind, name) in enumerate(parsed):
        if kind == "I":
            start[j] = False
            for i, (k2, n2) in enumerate(parsed):
                trans[i, j] = k2 in ("B", "I") and n2 == name
    return trans, start


def repair_bio(tags: Sequence[str]) -> list[str]:
    """I-x that does not continue an x span becomes B-x: conlleval reads it that way, and the CRF
    forbids the original (its gold path would have probability 0)."""
    out, prev = [], "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            t = "B-" + t[2:]
        out.append(t)
        prev = t
    return out


class CRF(nn.Module):
    """Linear-chain CRF over word tags with hard BIO constraints (masked scores are -inf).

    Sequences are left-aligned: ``mask`` (B, W) is True on a prefix of each row, at least one word.
    """

    def __init__(self, tags: Sequence[str]) -> None:
        super().__init__()
        trans_ok, start_ok = allowed_tags(tags)
        S = len(tags)
        self.transitions = nn.Parameter(torch.zeros(S, S))  # score of tag j after tag i
        self.start = nn.Parameter(torch.zeros(S))
        self.end = nn.Parameter(torch.zeros(S))
        self.register_buffer("trans_mask", torch.where(torch.from_numpy(trans_ok), 0.0, NEG_INF), persistent=False)
        self.register_buffer("start_mask", torch.where(torch.from_numpy(start_ok), 0.0, NEG_INF), persistent=False)

    def scores(self, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(transitions, start, end) with the constraints applied, divided by ``temperature``."""
        return ((self.transitions / temperature + self.trans_mask), (self.start / temperature + self.start_mask),
                self.end / temperature)

    def log_partition(self, em: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """log Z (B,) of emissions ``em`` (B, W, S): forward algorithm."""
        trans, start, end = self.scores(temperature)
        alpha = start + em[:, 0]  # (B, S)
        for t in range(1, em.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + em[:, t]  # (B, S)
            alpha = torch.where(mask[:, t : t + 1], nxt, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    def gold_score(self, em: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Unnormalised log score (B,) of the gold tags (B, W) (padding positions ignored)."""
        trans, start, end = self.scores()
        m = mask.to(em.dtype)
        score = start[tags[:, 0]] + (em.gather(2, tags.unsqueeze(2)).squeeze(2) * m).sum(1)
        score = score + (trans[tags[:, :-1], tags[:, 1:]] * m[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
        return score + end[last]

    def nll(self, em: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the gold tag sequences."""
        return (self.log_partition(em, mask) - self.gold_score(em, tags, mask)).mean()

    def marginals(self, em: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """P(tag of word t = s | utterance) (B, W, S) by forward-backward (0 on padding)."""
        trans, start, end = self.scores(temperature)
        em = em / temperature
        B, W, S = em.shape
        alphas = [start + em[:, 0]]
        for t in range(1, W):
            nxt = torch.logsumexp(alphas[-1].unsqueeze(2) + trans, dim=1) + em[:, t]
            alphas.append(torch.where(mask[:, t : t + 1], nxt, alphas[-1]))
        lengths = mask.sum(1)
        beta = end.expand(B, S).clone()
        betas = [beta] * W
        for t in range(W - 2, -1, -1):
            nxt = torch.logsumexp(trans.unsqueeze(0) + (em[:, t + 1] + betas[t + 1]).unsqueeze(1), dim=2)  # (B, S)
            betas[t] = torch.where((t + 1 < lengths).unsqueeze(1), nxt, end.expand(B, S))
        a, b = torch.stack(alphas, 1), torch.stack(betas, 1)  # (B, W, S)
        log_z = torch.logsumexp(a[torch.arange(B), lengths - 1] + end, dim=1)
        p = torch.exp(a + b - log_z[:, None, None]).clamp(max=1.0)  # float rounding can leave 1 + 1e-5
        return p * mask.unsqueeze(2)

    def viterbi(self, em: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The best valid tag sequence of each row (its own length)."""
        trans, start, end = self.scores()
        return viterbi(em, mask, trans, start, end)


def viterbi(em: torch.Tensor, mask: torch.Tensor, trans: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> list[list[int]]:
    """Max-scoring paths under ``trans`` (S, S), ``start`` and ``end`` (S,); -inf entries are never taken
    (an O path always exists, so every row has a finite best path)."""
    B, W, S = em.shape
    score = start + em[:, 0]
    back = []
    for t in range(1, W):
        cand = score.unsqueeze(2) + trans  # (B, S_prev, S)
        best, arg = cand.max(dim=1)
        nxt = best + em[:, t]
        keep = mask[:, t : t + 1]
        score = torch.where(keep, nxt, score)
        back.append(torch.where(keep, arg, torch.arange(S, device=em.device).expand(B, S)))  # padding: stay
    score = score + end
    last = score.argmax(1)
    lengths = mask.sum(1).tolist()
    paths = []
    for r in range(B):
        tag = int(last[r])
        path = [tag]
        for t in range(W - 2, -1, -1):
            tag = int(back[t][r, tag])
            path.append(tag)
        path.reverse()
        paths.append(path[: lengths[r]])
    return paths


# -- the model ------------------------------------------------------------------------------------


class JointNlu(Transformer):
    """The Transformer itself (so pretrained BERT weights load by name) plus ``intent_head``,
    ``slot_head``, the CRF and ``extra_emb`` for added tokens."""

    def __init__(self, cfg: JointNluConfig) -> None:
        super().__init__(cfg)
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.intent_head = nn.Linear(cfg.d_model, cfg.n_intents)
        self.slot_head = nn.Linear(cfg.d_model, len(cfg.tags))
        for lin in (self.intent_head, self.slot_head):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)
        self.crf = CRF(cfg.tags)
        self.extra_emb = nn.Embedding(cfg.extra_vocab, cfg.d_model) if cfg.extra_vocab else None
        if self.extra_emb is not None:
            nn.init.normal_(self.extra_emb.weight, std=0.02)
        trans_ok, start_ok = allowed_tags(cfg.tags)  # for the CRF-free decoder
        self.register_buffer("free_trans", torch.where(torch.from_numpy(trans_ok), 0.0, NEG_INF), persistent=False)
        self.register_buffer("free_start", torch.where(torch.from_numpy(start_ok), 0.0, NEG_INF), persistent=False)

    def lr_multipliers(self) -> list[tuple[nn.Parameter, float]]:
        """The pretrained encoder at ``encoder_lr_mult``; the new heads, CRF and added embeddings at the schedule's lr."""
        if self.cfg.encoder_lr_mult == 1.0:
            return []
        new = {id(p) for m in (self.intent_head, self.slot_head, self.crf, self.extra_emb) if m is not None for p in m.parameters()}
        return [(p, self.cfg.encoder_lr_mult) for p in self.parameters() if id(p) not in new]

    def hidden(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, T, C) of piece ids (B, T); ids past the base vocabulary read ``extra_emb``."""
        V = self.cfg.vocab_size
        x = self.tok_emb(ids.clamp(max=V - 1))
        if self.extra_emb is not None:
            extra = ids >= V
            if bool(extra.any()):
                x = torch.where(extra.unsqueeze(-1), self.extra_emb((ids - V).clamp(min=0)), x)
        return self.encode(ids.clamp(max=V - 1), key_mask=mask, inputs_embeds=x)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        """(intent logits (B, K), slot emissions (B, W, S)); ``first`` (B, W) is each word's first piece
        (any index on padding words)."""
        h = self.hidden(ids, mask)
        if self.cfg.pooling == "cls":
            pooled = h[:, 0]
        else:
            m = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        words = h.gather(1, first.unsqueeze(-1).expand(-1, -1, h.shape[-1]))  # (B, W, C)
        return self.intent_head(self.head_drop(pooled)), self.slot_head(self.head_drop(words))

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Intent cross-entropy + ``slot_loss_weight`` x (CRF negative log-likelihood, or per-word cross-entropy)."""
        intent, em = self(batch["ids"], batch["mask"], batch["first"])
        wmask = batch["word_mask"]
        y = batch["intent"]  # -1: an utterance with several commands, which trains the slot head only
        known = y >= 0
        loss = F.cross_entropy(intent[known], y[known]) if bool(known.any()) else intent.sum() * 0.0
        if self.cfg.crf:
            slot = self.crf.nll(em.float(), batch["tags"], wmask)
        else:
            slot = F.cross_entropy(em[wmask].float(), batch["tags"][wmask])
        return loss + self.cfg.slot_loss_weight * slot

    def decode(self, em: torch.Tensor, wmask: torch.Tensor, temperature: float = 1.0) -> tuple[list[list[int]], torch.Tensor]:
        """(best valid tag ids per row, marginals (B, W, S) at ``temperature``)."""
        em = em.float()
        if self.cfg.crf:
            return self.crf.viterbi(em, wmask), self.crf.marginals(em, wmask, temperature)
        logp = F.log_softmax(em, dim=-1)
        zeros = torch.zeros(len(self.cfg.tags), device=em.device)
        paths = viterbi(logp, wmask, self.free_trans, self.free_start, zeros)
        return paths, F.softmax(em / temperature, dim=-1) * wmask.unsqueeze(-1)


# -- tokens and words -----------------------------------------------------------------------------


def is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u4dbf" or "\u4e00" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def add_cjk_tokens(tokenizer, texts: Sequence[Sequence[str]]) -> list[str]:
    """Add every CJK character of ``texts`` (lists of words) the vocabulary lacks as a token; returns
    them in id order (their ids follow the base vocabulary: base_size + i)."""
    vocab = tokenizer.get_vocab()
    new = sorted({ch for words in texts for w in words for ch in w if is_cjk(ch) and ch not in vocab})
    if new:
        tokenizer.add_tokens(new)
    return new


def encode_words(tokenizer, sentences: Sequence[Sequence[str]], max_len: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sentence: (piece ids (T,) int32 with [CLS] ... [SEP], first piece index of each word (W,)
    int32, -1 for words cut by ``max_len``).

    A word that yields no piece (the normaliser removed all of it) is encoded as [UNK] instead, so
    each word has a position.
    """
    out = []
    encs = tokenizer.encode_batch([list(s) for s in sentences], is_pretokenized=True) if sentences else []
    for words, enc in zip(sentences, encs):
        firsts = _firsts(enc.word_ids, len(words))
        if any(f == -2 for f in firsts):  # a word with no piece: retry with [UNK] in its place
            fixed = [w if f != -2 else "[UNK]" for w, f in zip(words, firsts)]
            enc = tokenizer.encode(fixed, is_pretokenized=True)
            firsts = _firsts(enc.word_ids, len(words))
            firsts = [-1 if f == -2 else f for f in firsts]
        out.append((np.asarray(enc.ids, dtype=np.int32), np.asarray(firsts, dtype=np.int32)))
    return out


def _firsts(word_ids: Sequence[int | None], n_words: int) -> list[int]:
    """First piece index per word; -1 for words after the last kept piece (truncated), -2 for a word
    with no piece before the cut."""
    firsts = [-1] * n_words
    last_seen = -1
    for i, w in enumerate(word_ids):
        if w is not None and firsts[w] == -1:
            firsts[w] = i
            last_seen = max(last_seen, w)
    return [f if f >= 0 else (-2 if w < last_seen else -1) for w, f in enumerate(firsts)]


def pad_batch(encoded: Sequence[tuple[np.ndarray, np.ndarray]], pad_id: int) -> dict[str, torch.Tensor]:
    """ids, mask (B, T) and first, word_mask (B, W) right-padded; a word cut by max_len is masked out."""
    B = len(encoded)
    T = max(1, max(len(ids) for ids, _ in encoded))
    W = max(1, max(len(f) for _, f in encoded))
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.bool)
    first = torch.zeros((B, W), dtype=torch.long)
    wmask = torch.zeros((B, W), dtype=torch.bool)
    for r, (seq, f) in enumerate(encoded):
        ids[r, : len(seq)] = torch.from_numpy(seq.astype(np.int64))
        mask[r, : len(seq)] = True
        kept = int((f >= 0).sum()) if (f >= 0).all() else int(np.argmax(f < 0))  # a prefix of the words survives the cut
        first[r, :kept] = torch.from_numpy(f[:kept].astype(np.int64))
        wmask[r, :kept] = True
    return {"ids": ids, "mask": mask, "first": first, "word_mask": wmask}


@torch.inference_mode()
def predict(model: JointNlu, encoded: Sequence[tuple[np.ndarray, np.ndarray]], pad_id: int, batch_size: int = 64,
            slot_temperature: float = 1.0) -> tuple[np.ndarray, list[list[int]], list[np.ndarray]]:
    """(intent logits (N, K), best tag ids per sentence (its words; cut words tagged O = 0), marginals
    per sentence (W, S) at ``slot_temperature``) in input order. Eval mode, restored after."""
    logits, ems = emissions(model, encoded, pad_id, batch_size)
    paths, margs = decode(model, ems, slot_temperature, n_words=[len(f) for _, f in encoded])
    return logits, paths, margs


@torch.inference_mode()
def emissions(model: JointNlu, encoded: Sequence[tuple[np.ndarray, np.ndarray]], pad_id: int,
              batch_size: int = 64) -> tuple[np.ndarray, list[np.ndarray]]:
    """(intent logits (N, K), slot emissions per sentence (W_kept, S) for the words that kept a piece),
    in input order, in batches of rows sorted by length so each pads little."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    logits = np.zeros((len(encoded), model.cfg.n_intents), dtype=np.float32)
    ems: list[np.ndarray] = [np.zeros((0, 0), np.float32) for _ in encoded]
    try:
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            b = {k: v.to(device) for k, v in pad_batch([encoded[i] for i in rows], pad_id).items()}
            intent, em = model(b["ids"], b["mask"], b["first"])
            logits[rows] = intent.float().cpu().numpy()
            em = em.float().cpu().numpy()
            n = b["word_mask"].sum(1).tolist()
            for j, r in enumerate(rows):
                ems[r] = em[j, : max(1, n[j])]
    finally:
        model.train(was)
    return logits, ems


@torch.inference_mode()
def decode(model: JointNlu, ems: Sequence[np.ndarray], temperature: float = 1.0, batch_size: int = 256,
           n_words: Sequence[int] | None = None) -> tuple[list[list[int]], list[np.ndarray]]:
    """Best valid tags and marginals (W, S) at ``temperature`` from ``emissions``' output; a sentence's
    words past the kept ones (cut by max_len; ``n_words`` gives each sentence's length) are tagged O."""
    S = len(model.cfg.tags)
    paths: list[list[int]] = []
    margs: list[np.ndarray] = []
    device = next(model.parameters()).device
    for s in range(0, len(ems), batch_size):
        chunk = ems[s : s + batch_size]
        W = max(len(e) for e in chunk)
        em = torch.zeros((len(chunk), W, S))
        mask = torch.zeros((len(chunk), W), dtype=torch.bool)
        for r, e in enumerate(chunk):
            em[r, : len(e)] = torch.from_numpy(e)
            mask[r, : len(e)] = True
        best, marg = model.decode(em.to(device), mask.to(device), temperature)
        marg = marg.cpu().numpy()
        for r, e in enumerate(chunk):
            paths.append(list(best[r]))
            margs.append(marg[r, : len(e)])
    if n_words is not None:
        for i, n in enumerate(n_words):
            if n > len(paths[i]):
                extra = n - len(paths[i])
                paths[i] = paths[i] + [0] * extra
                pad = np.zeros((extra, S), np.float32)
                pad[:, 0] = 1.0
                margs[i] = np.concatenate([margs[i], pad])
    return paths, margs
