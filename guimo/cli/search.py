"""`guimo search NAME "query"` and `guimo search NAME --batch queries.jsonl --out results.jsonl`."""

from __future__ import annotations

import argparse

BATCH = 256  # queries per search_many call in --batch (one embedding batch, one BM25 call)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search a collection (BM25, embeddings, or both fused)",
                       description="Search a collection made by `guimo index create`. One query prints a ranked "
                                   "table (or --json); --batch runs a JSONL file of queries, one "
                                   '{"id"?: ..., "query": "..."} per line, into one result line per query.')
    p.add_argument("name", metavar="NAME", help="collection name (under --home) or folder path")
    p.add_argument("query", nargs="?", help="the query text")
    p.add_argument("--k", type=int, default=10, help="how many results (default: 10)")
    p.add_argument("--mode", choices=("hybrid", "bm25", "dense"), default=None,
                   help="bm25 (keywords), dense (embeddings) or hybrid (both, fused); default: hybrid, "
                        "or bm25 for a collection without embeddings")
    p.add_argument("--fusion", choices=("rrf", "normalized"), default="rrf",
                   help="hybrid fusion: rrf (reciprocal rank, k=60; default) or normalized (min-max scores)")
    p.add_argument("--weights", metavar="BM25,DENSE",
                   help="with --fusion normalized: how much each retriever counts, e.g. 1,2 (default: equal)")
    p.add_argument("--pool", type=int, default=100, help="candidates per retriever before fusion (default: 100)")
    p.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                   help="keep documents whose metadata FIELD equals VALUE; repeat to AND several")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--batch", metavar="QUERIES.jsonl", help="run every query of this JSONL file")
    p.add_argument("--out", metavar="RESULTS.jsonl", help="with --batch: write results here (default: stdout)")
    p.add_argument("--home", help="folder of named collections (default: $GUIMO_INDEXES, else ./indexes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar in --batch")
    p.set_defaults(func=main)


def parse_filters(items: list[str]) -> dict[str, str]:
    """``["field=value", ...]`` to a dict; a malformed or repeated field is an error."""
    from guimo.errors import GuimoError

    out: dict[str, str] = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep or not field:
            raise GuimoError(f"--filter {item!r}: expected FIELD=VALUE")
        if field in out:
            raise GuimoError(f"--filter: field {field!r} given twice ({out[field]!r} and {value!r}); a document "
                             "has one value per field")
        out[field] = value
    return out


def parse_weights(text: str) -> list[float]:
    """``"1,2"`` -> [1.0, 2.0]: the bm25 and dense weights of normalized fusion."""
    from guimo.errors import GuimoError

    try:
        weights = [float(x) for x in text.split(",")]
    except ValueError:
        weights = []
    if len(weights) != 2:
        raise GuimoError(f"--weights {text!r}: expected two numbers BM25,DENSE, e.g. 1,2")
    return weights


def hit_json(coll, hit) -> dict:
    record = coll.get(hit.id)
    return {"id": hit.id, "score": round(hit.score, 6), "text": record.text if record else None,
            "metadata": hit.metadata}


def main(args: argparse.Namespace) -> int:
    import json

    from guimo.errors import GuimoError
    from guimo.index.collection import open_named

    if (args.query is None) == (args.batch is None):
        raise GuimoError('give one query ("...") or --batch QUERIES.jsonl')
    if args.out and not args.batch:
        raise GuimoError("--out goes with --batch")
    filters = parse_filters(args.filter)
    coll = open_named(args.name, args.home)
    known = coll.info()["metadata_fields"]
    for field in filters:  # a typo'd field would match nothing and look like an empty result
        if field not in known:
            raise GuimoError(f"--filter {field}=...: no document of {coll.name!r} has the field {field!r}; "
                             f"its metadata fields: {', '.join(known) or 'none'}")
    options = dict(k=args.k, mode=args.mode, filters=filters, fusion=args.fusion, pool=args.pool,
                   weights=parse_weights(args.weights) if args.weights else None)
    if args.batch:
        return _batch(coll, args, options)
    hits = coll.search(args.query, **options)
    if args.json:
        print(json.dumps({"collection": coll.name, "query": args.query, "mode": args.mode or coll.info()["modes"][0],
                          "hits": [hit_json(coll, h) for h in hits]}, ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("no results")
        return 0
    print(_table(coll, hits))
    return 0


def _table(coll, hits) -> str:
    import shutil

    width = shutil.get_terminal_size((120, 20)).columns
    rows = [(str(r), f"{h.score:.4f}", h.id, (coll.get(h.id).text if coll.get(h.id) else ""),
             " ".join(f"{k}={v}" for k, v in h.metadata.items())) for r, h in enumerate(hits, 1)]
    w = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for rank, score, doc_id, text, meta in rows:
        head = f"{rank.rjust(w[0])}  {score.rjust(w[1])}  {doc_id.ljust(w[2])}  "
        tail = f"  [{meta}]" if meta else ""
        room = max(20, width - len(head) - len(tail))
        text = " ".join(text.split())
        lines.append(head + (text if len(text) <= room else text[: room - 3] + "...") + tail)
    return "\n".join(lines)


def _batch(coll, args: argparse.Namespace, options: dict) -> int:
    import json
    import sys

    from guimo.index.records import read_queries
    from guimo.io import atomic_write_text
    from guimo.pipeline.progress import Progress

    queries = read_queries(args.batch)
    lines = []
    with Progress(args.quiet or not args.out) as progress, progress.task("search", total=len(queries)) as task:
        for s in range(0, len(queries), BATCH):
            chunk = queries[s : s + BATCH]
            for q, hits in zip(chunk, coll.search_many([q.text for q in chunk], **options)):
                row = ({"id": q.id} if q.id is not None else {}) | {"query": q.text,
                                                                    "hits": [hit_json(coll, h) for h in hits]}
                lines.append(json.dumps(row, ensure_ascii=False) + "\n")
            task.update(completed=s + len(chunk))
    if args.out:
        atomic_write_text(args.out, "".join(lines))
        print(f"{len(lines)} queries -> {args.out}", file=sys.stderr)
    else:
        sys.stdout.write("".join(lines))
    return 0
