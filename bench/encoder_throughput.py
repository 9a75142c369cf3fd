"""Text encoder throughput (sentences/s, batch 32, 1 and 2 threads): guimo fp32 / bf16 / int8 vs
sentence-transformers on the same all-MiniLM-L6-v2 and CPU, interleaved; and what bf16 and int8 cost in accuracy.

    python bench/encoder_throughput.py                 # about 5-10 min on 2 busy cores
    python bench/encoder_throughput.py --rounds 5 --note "other jobs paused"
    python bench/encoder_throughput.py --render        # rewrite the section from bench/results/encoder_throughput.json

Each round runs every contender once per thread count in a rotated order (A B C D, B C D A, ...),
so a neighbour's burst hits all of them alike; the table gives medians over rounds and each
contender's median ratio to sentence-transformers within the same round. The sentences are
SciFact's claims when ../shared/data/scifact is present (real query lengths), else the embedded
corpus's documents and queries. Accuracy: cosine of bf16/int8 embeddings against guimo fp32, and
dense nDCG@10 on the embedded corpus with each dtype (and on SciFact's test queries with
``--scifact-ndcg``, which encodes its 5,183 abstracts once per dtype: ~30 min of CPU).
Writes bench/results/encoder_throughput.json and the `text_throughput` section of docs/benchmarks/text.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULT = ROOT / "bench" / "results" / "encoder_throughput.json"
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
BATCH = 32


def sentences(n: int) -> tuple[list[str], str]:
    if (SCIFACT / "queries.jsonl").is_file():
        with open(SCIFACT / "queries.jsonl", encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f][:n]
        return texts, f"the first {len(texts)} SciFact claims"
    from guimo.data.retrieval import generate

    g = generate(0)
    texts = (list(g.corpus.values()) + list(g.queries.values()))[:n]
    return texts, f"{len(texts)} texts of the embedded cloud-docs corpus"


def contenders() -> dict:
    """name -> encode(texts) callable, all on the packaged MiniLM."""
    import sentence_transformers as st

    from guimo.models.text_encoder import TextEncoder, packaged_model_dir

    ref = st.SentenceTransformer(str(packaged_model_dir()), device="cpu", local_files_only=True)
    encoders = {d: TextEncoder(dtype=d) for d in ("fp32", "bf16", "int8")}
    out = {"sentence-transformers fp32": lambda t: ref.encode(t, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True)}
    for d, enc in encoders.items():
        out[f"guimo {d}"] = (lambda e: lambda t: e.encode(t, batch_size=BATCH))(enc)
    return out, encoders


def throughput(texts: list[str], rounds: int, threads: list[int]) -> list[dict]:
    import torch

    fns, _ = contenders()
    names = list(fns)
    for fn in fns.values():  # warm-up: first-call allocations and kernel choices
        fn(texts[:BATCH])
    rows = []
    for t in threads:
        torch.set_num_threads(t)
        per: dict[str, list[float]] = {n: [] for n in names}
        ratios: dict[str, list[float]] = {n: [] for n in names}
        loads = []
        for r in range(rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            this: dict[str, float] = {}
            for n in order:
                t0 = time.perf_counter()
                fns[n](texts)
                this[n] = len(texts) / (time.perf_counter() - t0)
                per[n].append(this[n])
            for n in names:
                ratios[n].append(this[n] / this["sentence-transformers fp32"])
            loads.append(round(os.getloadavg()[0], 2))
        for n in names:
            rows.append({"contender": n, "threads": t, "sentences_per_s": round(statistics.median(per[n]), 1),
                         "ratio_vs_st": round(statistics.median(ratios[n]), 3), "rounds": per[n], "load_1min": loads})
    return rows


def agreement(texts: list[str], scifact_ndcg: bool) -> dict:
    import torch

    from guimo.data.retrieval import generate, load_beir, score_rankings

    _, encoders = contenders()
    ref = encoders["fp32"].encode(texts, batch_size=BATCH)
    out: dict = {}
    for d in ("bf16", "int8"):
        got = encoders[d].encode(texts, batch_size=BATCH)
        cos = (got * ref).sum(-1)
        out[d] = {"cos_mean": round(cos.mean().item(), 5), "cos_min": round(cos.min().item(), 5)}

    def ndcg(enc, data, qrels) -> float:
        doc_ids = list(data.corpus)
        qids = list(qrels)
        D = enc.encode([data.corpus[i] for i in doc_ids], batch_size=BATCH)
        Q = enc.encode([data.queries[q] for q in qids], batch_size=BATCH)
        top = torch.topk(Q @ D.T, min(10, len(doc_ids)), dim=1).indices
        return score_rankings({q: [doc_ids[r] for r in top[i].tolist()] for i, q in enumerate(qids)}, qrels, recall_ks=())["ndcg@10"]

    g = generate(0)
    g_qrels = {q: rel for split in g.qrels.values() for q, rel in split.items()}
    sets = [("embedded", g, g_qrels)]
    if scifact_ndcg and SCIFACT.is_dir():
        s = load_beir(SCIFACT, splits=("test",))
        sets.append(("scifact_test", s, s.qrels["test"]))
    for name, data, qrels in sets:
        out[f"ndcg@10_{name}"] = {d: round(ndcg(enc, data, qrels), 4) for d, enc in encoders.items()}
    return out


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"Command: `{r['command']}` — {r['date']} — {m['cpu']} ({', '.join(m['flags']) or 'no listed ISA flags'}), torch {m['torch']}; "
        f"{r['texts']}, batch {BATCH}, medians of {r['rounds']} interleaved rounds; 1-minute load average "
        f"{min(x for row in r['rows'] for x in row['load_1min'])}-{max(x for row in r['rows'] for x in row['load_1min'])} (2 cores shared). {r.get('note') or ''}",
        "",
        "| contender | threads | sentences/s | vs sentence-transformers (same round) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        lines.append(f"| {row['contender']} | {row['threads']} | {row['sentences_per_s']:,.1f} | {row['ratio_vs_st']:.2f}x |")
    a = r["agreement"]
    lines += ["", "Accuracy against guimo fp32 (which matches sentence-transformers at cosine >= 0.9999, tests/models/test_text_encoder.py):", "",
              "| dtype | mean cosine | worst cosine | " + " | ".join(f"dense nDCG@10 {k[8:]}" for k in a if k.startswith("ndcg")) + " |",
              "| --- | ---: | ---: | " + " | ".join("---:" for k in a if k.startswith("ndcg")) + " |"]
    for d in ("fp32", "bf16", "int8"):
        cos = a.get(d, {"cos_mean": 1.0, "cos_min": 1.0})
        lines.append(f"| {d} | {cos['cos_mean']:.4f} | {cos['cos_min']:.4f} | " + " | ".join(f"{a[k][d]:.4f}" for k in a if k.startswith("ndcg")) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--texts", type=int, default=256, help="sentences encoded per contender per round")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--scifact-ndcg", action="store_true", help="also dense nDCG@10 on SciFact test per dtype (~30 min of CPU)")
    p.add_argument("--note", default="", help="a sentence on the conditions (e.g. 'other jobs paused')")
    p.add_argument("--render", action="store_true")
    a = p.parse_args(argv)
    from benchdoc import page, write_section

    if a.render:
        r = json.loads(RESULT.read_text())
    else:
        import torch

        from guimo.device import cpu_info

        texts, described = sentences(a.texts)
        cpu = cpu_info()
        r = {"command": "python bench/encoder_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
             "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "machine": {"cpu": cpu["model"], "flags": cpu["flags"], "cores": cpu["cores"], "torch": torch.__version__},
             "texts": described, "rounds": a.rounds, "note": a.note,
             "rows": throughput(texts, a.rounds, [int(t) for t in a.threads.split(",")])}
        torch.set_num_threads(max(int(t) for t in a.threads.split(",")))
        r["agreement"] = agreement(texts, a.scifact_ndcg)
        RESULT.write_text(json.dumps(r, indent=2) + "\n")
    body = markdown(r)
    print(body)
    write_section("text_throughput", body, heading="Text encoder throughput and bf16/int8 accuracy (bench/encoder_throughput.py)", doc=page("text"))


if __name__ == "__main__":
    main()
