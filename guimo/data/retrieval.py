"""Retrieval data in BEIR's format, an embedded generated corpus, and the qrels metrics.

A retrieval dataset is three things (Thakur et al. 2021, "BEIR"):

- ``corpus.jsonl``: one ``{"_id": ..., "title": ..., "text": ...}`` per line;
- ``queries.jsonl``: one ``{"_id": ..., "text": ...}`` per line (any ``metadata`` is ignored:
  SciFact's holds the gold evidence, which must never reach a model);
- ``qrels/{train,test}.tsv``: ``query-id<TAB>corpus-id<TAB>score`` with a header line, CRLF or LF.

Every malformed line is a ``GuimoError`` naming its file and line. ``generate`` makes a small
corpus with planted relevance for the embedded default and the tests: queries say in other words
what their document says (synonyms, reordering), so BM25 alone is imperfect and a trained dense
encoder has something to learn.

``ndcg_at_k`` and ``recall_at_k`` score a ranking against graded qrels the way BEIR's
``pytrec_eval`` does (nDCG with gains ``rel``, log2 discounts, the ideal from the qrels).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from guimo.errors import GuimoError

Qrels = dict[str, dict[str, int]]  # query id -> {doc id: relevance > 0}


@dataclass
class RetrievalData:
    """A corpus, its queries and the relevance judgements of each split."""

    corpus: dict[str, str]  # doc id -> "title. text" (what is indexed and encoded)
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, Qrels] = field(default_factory=dict)  # split name ("train", "test", ...) -> qrels

    def split_queries(self, split: str) -> dict[str, str]:
        """The queries judged in ``split``, in id order of the qrels file."""
        if split not in self.qrels:
            raise GuimoError(f"no qrels for split {split!r}; have: {', '.join(self.qrels) or 'none'}")
        return {q: self.queries[q] for q in self.qrels[split]}


def doc_text(title: str, text: str) -> str:
    """The text indexed for a document: its title and body, as BEIR's models see them."""
    title, text = title.strip(), text.strip()
    return f"{title}. {text}" if title and text else title or text


def read_jsonl_records(path: Path, required: Sequence[str]) -> Iterable[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line; a bad line or missing field names file:line."""
    if not path.is_file():
        raise GuimoError(f"{path}: not found")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise GuimoError(f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(rec, dict):
                raise GuimoError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
            for key in required:
                if key not in rec:
                    raise GuimoError(f"{path}:{n}: no field {key!r}; the line has: {', '.join(rec) or 'no fields'}")
            yield n, rec


def read_corpus(path: Path) -> dict[str, str]:
    corpus: dict[str, str] = {}
    for n, rec in read_jsonl_records(path, ("_id", "text")):
        doc_id = str(rec["_id"])
        if doc_id in corpus:
            raise GuimoError(f"{path}:{n}: duplicate document id {doc_id!r}")
        title, text = rec.get("title") or "", rec["text"]
        if not isinstance(text, str) or not isinstance(title, str):
            raise GuimoError(f"{path}:{n}: 'title' and 'text' must be strings")
        corpus[doc_id] = doc_text(title, text)
    if not corpus:
        raise GuimoError(f"{path}: no documents")
    return corpus


def read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for n, rec in read_jsonl_records(path, ("_id", "text")):
        qid, text = str(rec["_id"]), rec["text"]
        if not isinstance(text, str) or not text.strip():
            raise GuimoError(f"{path}:{n}: query {qid!r} has no text")
        if qid in queries:
            raise GuimoError(f"{path}:{n}: duplicate query id {qid!r}")
        queries[qid] = text
    return queries


def read_qrels(path: Path, corpus: Mapping[str, str], queries: Mapping[str, str]) -> Qrels:
    """Relevance > 0 judgements of one split; unknown query or document ids name their line."""
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if n == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
                continue  # the header
            if len(parts) != 3:
                raise GuimoError(f"{path}:{n}: expected 3 tab-separated fields (query-id, corpus-id, score), got {len(parts)}")
            qid, did, score = parts[0].strip(), parts[1].strip(), parts[2].strip()
            try:
                rel = int(float(score))
            except ValueError:
                raise GuimoError(f"{path}:{n}: score {score!r} is not a number") from None
            if qid not in queries:
                raise GuimoError(f"{path}:{n}: query id {qid!r} is not in queries.jsonl")
            if did not in corpus:
                raise GuimoError(f"{path}:{n}: corpus id {did!r} is not in corpus.jsonl")
            if rel > 0:
                qrels.setdefault(qid, {})[did] = rel
    if not qrels:
        raise GuimoError(f"{path}: no relevance judgements above 0")
    return qrels


def load_beir(folder: str | Path, splits: Sequence[str] = ("train", "test")) -> RetrievalData:
    """Read a BEIR folder; each split in ``splits`` must have ``qrels/<split>.tsv``."""
    root = Path(folder)
    if not root.is_dir():
        raise GuimoError(f"{root}: not a folder (a BEIR dataset is a folder with corpus.jsonl, queries.jsonl, qrels/)")
    corpus = read_corpus(root / "corpus.jsonl")
    queries = read_queries(root / "queries.jsonl")
    data = RetrievalData(corpus, queries)
    for split in splits:
        path = root / "qrels" / f"{split}.tsv"
        if not path.is_file():
            have = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
            raise GuimoError(f"{path}: not found (qrels present: {', '.join(have) or 'none'})")
        data.qrels[split] = read_qrels(path, corpus, queries)
    return data


def write_beir(data: RetrievalData, folder: str | Path) -> Path:
    """Write ``data`` as a BEIR folder (atomically per file); what collect stores and ``load_beir`` reads."""
    from guimo.io import atomic_write_text

    root = Path(folder)
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "corpus.jsonl", "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in data.corpus.items()))
    atomic_write_text(root / "queries.jsonl", "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in data.queries.items()))
    for split, qrels in data.qrels.items():
        rows = "".join(f"{q}\t{d}\t{r}\n" for q, docs in qrels.items() for d, r in docs.items())
        atomic_write_text(root / "qrels" / f"{split}.tsv", "query-id\tcorpus-id\tscore\n" + rows)
    return root


# -- metrics -----------------------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k = DCG@k / IDCG@k with DCG = sum_i rel_i / log2(i + 1), i = 1..k (BEIR, trec_eval)."""
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant documents found in the top k."""
    return len(set(ranked[:k]) & relevant.keys()) / len(relevant) if relevant else 0.0


def score_rankings(rankings: Mapping[str, Sequence[str]], qrels: Qrels, ks: Sequence[int] = (10,), recall_ks: Sequence[int] = (100,)) -> dict[str, float]:
    """Mean nDCG@k and Recall@k over the queries of ``qrels`` (a query with no ranking scores 0)."""
    out: dict[str, float] = {}
    n = max(1, len(qrels))
    for k in ks:
        out[f"ndcg@{k}"] = sum(ndcg_at_k(rankings.get(q, []), rel, k) for q, rel in qrels.items()) / n
    for k in recall_ks:
        out[f"recall@{k}"] = sum(recall_at_k(rankings.get(q, []), rel, k) for q, rel in qrels.items()) / n
    return {key: round(v, 5) for key, v in out.items()}


# -- the embedded corpus -----------------------------------------------------------------------

# Cloud-documentation topics: (subject, what the page covers, the words a user would use instead).
_SUBJECTS = ["object storage bucket", "virtual machine", "managed database", "load balancer", "container registry",
             "message queue", "DNS zone", "API gateway", "function app", "data warehouse", "VPN gateway", "key vault",
             "CDN endpoint", "search service", "Kubernetes cluster", "file share", "backup vault", "log workspace",
             "IoT hub", "email relay"]
_SUBJECT_WORDS = {"object storage bucket": "blob container", "virtual machine": "VM instance", "managed database": "hosted SQL server",
                  "load balancer": "traffic distributor", "container registry": "image repository", "message queue": "event bus",
                  "DNS zone": "domain records", "API gateway": "REST front door", "function app": "serverless code",
                  "data warehouse": "analytics store", "VPN gateway": "private tunnel", "key vault": "secret store",
                  "CDN endpoint": "edge cache", "search service": "full-text engine", "Kubernetes cluster": "k8s nodes",
                  "file share": "network drive", "backup vault": "snapshot archive", "log workspace": "telemetry sink",
                  "IoT hub": "device broker", "email relay": "SMTP sender"}
_ACTIONS = [("create", "provision a new", "set up a fresh"), ("delete", "permanently remove the", "get rid of my"),
            ("resize", "scale up or down the", "make bigger my"), ("secure", "restrict network access to the", "lock down my"),
            ("monitor", "view metrics and alerts of the", "watch the health of my"), ("migrate", "move to another region the", "relocate my"),
            ("price", "estimate the monthly cost of the", "how much I pay for my"), ("troubleshoot", "fix connection errors of the", "why cannot I reach my"),
            ("back up", "schedule snapshots of the", "keep copies of my"), ("rename", "change the display name of the", "give another label to my")]
_FILLER = ("The console shows the settings page. Changes apply within minutes. Use the command line tool for automation. "
           "Permissions are checked for every request. Regional limits apply.").split(". ")


def generate(seed: int = 0, *, train_share: float = 0.7) -> RetrievalData:
    """A 200-document cloud-docs corpus with one query per document, train/test qrels split by query.

    Each document describes one (subject, action) pair in the documentation's words; its query asks
    for the same thing partly in a user's words (a synonym for the subject or another phrase for
    the action), so the planted answer shares only some terms with the query.
    """
    rng = random.Random(seed)
    corpus, queries, pairs = {}, {}, []
    for s, subject in enumerate(_SUBJECTS):
        for a, (verb, doc_phrase, user_phrase) in enumerate(_ACTIONS):
            did, qid = f"d{s:02d}{a}", f"q{s:02d}{a}"
            filler = " ".join(rng.sample(_FILLER, 2))
            corpus[did] = f"How to {verb} a {subject}. This guide explains how to {doc_phrase} {subject} step by step. {filler}."
            # every other query names the subject (BM25 finds its 10 pages, not which action) or the
            # action's verb (BM25 finds its 20 pages, not which subject); the rest is in a user's words
            if (s + a) % 2:
                queries[qid] = f"{user_phrase} {subject}"
            else:
                queries[qid] = f"{verb} {_SUBJECT_WORDS[subject]}: {user_phrase} one"
            pairs.append((qid, did))
    rng.shuffle(pairs)
    cut = int(len(pairs) * train_share)
    qrels = {"train": {q: {d: 1} for q, d in pairs[:cut]}, "test": {q: {d: 1} for q, d in pairs[cut:]}}
    return RetrievalData(corpus, queries, qrels)
