"""docs/BENCHMARKS.md: one screen, one table of every headline figure, generated from bench/results/*.json.

    python bench/index.py           # rewrite docs/BENCHMARKS.md from bench/results
    python bench/index.py --check   # exit 1 when docs/BENCHMARKS.md is not what bench/results gives

Each row names what was measured (linked to its section of a detail page, docs/benchmarks/<area>.md), the
figure, the ratio against its comparison or target, the command (shortened; the page has it whole), the date
and the CPU. A headline is a function of one results file (:data:`HEADLINES`), so the table cannot drift from
the records; a record a script has not written yet is left out, and says so in the index's last line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchdoc import AREAS, DOC, markers, page, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

# Records before 2026-12-06 carry no CPU field. DEVELOPERS.md names the machine every one of them ran on, so
# the index says that, marked as filled in later rather than measured with the figure.
CPU_RECORDED_FROM = "2026-12-06"
RECORDED_LATER = {"model": "AMD EPYC (recorded later)", "flags": ["avx2", "avx512f", "avx512_bf16"], "recorded_later": True}


@dataclass(frozen=True)
class Row:
    """One headline: ``what`` links to ``section``'s heading in ``area``'s page."""

    area: str
    section: str  # the bench:NAME markers the figure's section sits between
    what: str
    figure: str
    versus: str
    command: str
    date: str
    cpu: str


# -- reading a record ---------------------------------------------------------------------------


def cpu_of(record: dict, path: Path) -> dict:
    """The record's ``cpu`` (guimo.device.cpu_info), or the recorded-later machine for records that predate it."""
    machine = record.get("machine") if isinstance(record.get("machine"), dict) else {}  # a scale record's is a string
    cpu = record.get("cpu") or record.get("meta", {}).get("cpu") or machine.get("cpu")
    if isinstance(cpu, str):  # {"machine": {"cpu": MODEL, "flags": [...]}} (bench/text_search.py)
        cpu = {"model": cpu, "flags": machine.get("flags", [])}
    if cpu is not None:
        return cpu
    if date_of(record, path) < CPU_RECORDED_FROM:
        return RECORDED_LATER
    raise ValueError(f"{path.relative_to(ROOT)}: no 'cpu' field (bench scripts record guimo.device.cpu_info() since {CPU_RECORDED_FROM})")


def date_of(record: dict, path: Path) -> str:
    date = record.get("date") or record.get("meta", {}).get("date")
    if not date:
        raise ValueError(f"{path.relative_to(ROOT)}: no 'date' field")
    return str(date)[:10]


def cpu_label(cpu: dict) -> str:
    """'AMD EPYC 9654 (avx512_bf16)', 'Intel Xeon ... (AMX)': the model and what makes bf16 fast on it."""
    if cpu.get("recorded_later"):
        return cpu["model"]
    flags = cpu.get("flags", [])
    isa = "AMX" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else "no bf16 ISA"
    return f"{cpu['model']} ({isa})"


def short_command(command: str, width: int = 60) -> str:
    """The command without its leading environment settings, cut to ``width`` (the page holds it whole)."""
    words = command.split()
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words.pop(0)
    text = " ".join(words)
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


# -- headlines, one function per kind of record ---------------------------------------------------


def lm_throughput(r: dict) -> list[tuple[str, str, str]]:
    rows = {row["contender"]: row for row in r["rows"]}
    out = []
    for name, label in (("guimo fp32", "LM training step, fp32"), ("guimo bf16", "LM training step, bf16 autocast")):
        if name in rows:
            row = rows[name]
            out.append((label, f"{row['tokens_per_s']:,.0f} tokens/s", f"{row['ratio_vs_hf_fp32']:.2f}x HF transformers fp32"))
    return out


def recommend_to_quality(r: dict) -> list[tuple[str, str, str]]:
    if "error" in r["recbole"]:
        return []
    level = max(v for _, _, v in r["recbole"]["curve"])
    t_g = next((t for t, _, v in r["guimo"]["curve"] if v >= level), None)
    t_rb = next(t for t, _, v in r["recbole"]["curve"] if v >= level)
    figure = f"{t_g:.0f} s to val NDCG@10 {level:.4f}" if t_g else f"val NDCG@10 {level:.4f} not reached"
    versus = f"{t_rb / t_g:.1f}x sooner than RecBole" if t_g else "—"
    return [(f"SASRec time to RecBole's best quality, {r['data']}", figure, versus + own_loop(r))]


def own_loop(r: dict) -> str:
    """Records before the bench trained guimo through the product's trainer say so (issue #22, part 13)."""
    return "" if r["guimo"].get("trainer") == "guimo.train.loop.fit" else " (bench's own training loop: re-measure)"


def recommend_speed(r: dict) -> list[tuple[str, str, str]]:
    g, rb = r["guimo"], r["recbole"]
    versus = "RecBole did not run" if "error" in rb else f"{g['targets_per_s'] / rb['targets_per_s']:.1f}x RecBole" + own_loop(r)
    return [(f"SASRec training speed, {r['data']}", f"{g['targets_per_s']:,.0f} targets/s", versus)]


def serve_load(r: dict) -> list[tuple[str, str, str]]:
    out = []
    for model, label in (("lm", "LM completions server"), ("recommend-beauty", "Recommender server, 54k items")):
        at = {row["batching"]: row for row in r["rows"] if row["model"] == model and row["concurrency"] == 16}
        if True in at and False in at:
            on, off = at[True], at[False]
            out.append((f"{label}, 16 clients, batching", f"{on['requests_per_s']:,.0f} req/s, p95 {on['p95_ms']:.0f} ms",
                        f"{on['requests_per_s'] / off['requests_per_s']:.1f}x unbatched"))
    return out


def scale_lm(r: dict) -> list[tuple[str, str, str]]:
    h = r.get("holdout_n") or {}
    if h.get("max_relative_error") is None:
        return []
    return [(f"LM scaling law, {r['corpus']}: held-out model {h['ratio']:.1f}x the fit",
             f"{pct(h['max_relative_error'])} max loss error", f"target 3%: {'met' if r.get('target_met') else 'NOT met'}")]


def scale_recommend(r: dict) -> list[tuple[str, str, str]]:
    out = []
    for size, c in r["curves"].items():
        check = c.get("check") or {}
        if check.get("relative_error") is None:
            continue
        out.append((f"Recommender learning curve, {r['dataset']} {size}: half data predicts full",
                    f"{pct(check['relative_error'])} NDCG@10 error", f"target 10%: {'met' if check['relative_error'] <= 0.10 else 'NOT met'}"))
    return out


def scale_labels(r: dict) -> list[tuple[str, str, str]]:
    """A classifier's learning curve of labels (bench/scale_labels.py): the recipe's half-label check (3%)."""
    chk = r.get("check")
    if not chk:
        return []
    return [(f"Label learning curve, {r['scenario']} ({r['data']}): half the labels predict full",
             f"{pct(chk['relative_error'])} accuracy error", f"target 3%: {'met' if chk['relative_error'] <= 0.03 else 'NOT met'}")]


def device_bf16(r: dict) -> list[tuple[str, str, str]]:
    out = []
    for w in r["workloads"]:
        if "relative_change" in w:
            versus = f"val {w['metric']} {w['relative_change']:+.1%} ({'equal' if w['equal_quality'] else 'NOT equal'})"
        elif "top10_changed" in w:
            versus = "top-10 changes: see page"
        else:
            versus = "speed only"
        out.append((f"bf16 on the CPU: {w['what']}", f"{w['bf16_speedup']:.2f}x fp32 speed", versus))
    return out


def recommend_defaults(r: dict) -> list[tuple[str, str, str]]:
    """The plain `guimo run recommend --data FILE` against the tuned recipe, per data set (issue #22, part 11)."""
    out = []
    for name, d in r["data"].items():
        if name == "marketplace":  # the embedded default's config is its recipe: a ratio of 1 by construction
            continue
        out.append((f"Plain `guimo run recommend --data FILE`, {name}", f"test NDCG@10 {d['plain']['test']['ndcg@10']:.4f}",
                    f"{d['ratio']:.2f}x the tuned recipe (target 0.90x: {'met' if d['met'] else 'NOT met'})"))
    return out


def index_bench(r: dict) -> list[tuple[str, str, str]]:
    """HNSW against the exact flat index at the largest N (issue #23: recall@10 >= 0.95 at 1M, >= 10x flat's speed),
    at the lowest swept ef_search that reaches the recall (the default chosen from it), else the main run's."""
    big = max(r["rows"], key=lambda row: row["n"])
    ok = [s for s in big["sweep"] if s["recall_at_10"] >= 0.95]
    pick = min(ok, key=lambda s: s["ef_search"]) if ok else {"ef_search": big.get("ef_search", 64), **big["hnsw"],
                                                                 "recall_at_10": big["recall_at_10"]}
    speed = big["flat"]["p50_ms"] / pick["p50_ms"]
    versus = f"{speed:.0f}x flat's speed (p50)"
    if big["n"] >= 1_000_000:
        versus += f"; target 0.95 at 10x: {'met' if pick['recall_at_10'] >= 0.95 and speed >= 10 else 'NOT met'}"
    return [(f"Vector index, HNSW, {big['n']:,} x {big['dim']}, ef_search {pick['ef_search']}",
             f"recall@10 {pick['recall_at_10']:.3f}, p50 {pick['p50_ms']:.2f} ms", versus)]


def text_part(what: str, target: str) -> "Extractor":
    """A part of docs/benchmarks/text.md (issue #23): its record's ``headline`` ({"text": "0.9412 (...)", "met": bool}),
    the figure before its parenthesis; SciFact's record (bench/text_search.py) gives its chosen system's nDCG@10."""

    def extract(r: dict) -> list[tuple[str, str, str]]:
        h = r.get("headline") or {}
        if "text" in h:
            figure, met = str(h["text"]).split(" (", 1)[0], h.get("met")
        elif "ndcg@10" in r.get("model", {}):
            figure, met = f"nDCG@10 {r['model']['ndcg@10']:.4f}", None
        else:
            return []
        met = met if met is not None else (r["model"]["ndcg@10"] >= 0.73 if "ndcg@10" in r.get("model", {}) else None)
        return [(what, figure, f"target {target}: " + ("met" if met else "NOT met" if met is False else "see page"))]

    return extract


def recommend_ann(r: dict) -> list[tuple[str, str, str]]:
    """Recommend top-10 through the item index against exact scoring (issue #23: recall@10 >= 0.99 at >= 5x
    today's batched exact throughput, test NDCG@10 unchanged to 3 decimals)."""
    if "speed_fetch" not in r:  # the first record (HNSW only, 2026-12-06)
        return []
    v = next(row["rows_per_s"] for row in r["speed"] if row["batch"] == 64 and row["histories"].startswith("random"))
    if "int8" in v:  # the default index since 2026-12-08: the int8 block scan
        spare = r["int8"]["default_spare_blocks"]
        q = next(row for row in r["spare"] if row["spare_blocks"] == spare)
        how, ratio = f"the int8 block scan ({spare} spare blocks)", v["int8"] / v["exact"]
    else:
        f = r["speed_fetch"]
        q = next(row for row in r["fetch"] if row["fetch"] == f)
        how, ratio = f"PQ fast-scan (fetch {f})", v["pq"] / v["exact"]
    met = q["recall@10"] >= 0.99 and ratio >= 5 and round(q["ndcg@10"], 3) == round(r["exact"]["ndcg@10"], 3)
    return [(f"Recommend top-10 over {r['items']:,} items via {how}, batch 64",
             f"recall@10 {q['recall@10']:.3f}, NDCG@10 {q['ndcg@10']:.4f} (exact {r['exact']['ndcg@10']:.4f})",
             f"{ratio:.2f}x exact's rows/s (target 0.99 at 5x: {'met' if met else 'NOT met'})")]


def encoder_throughput(r: dict) -> list[tuple[str, str, str]]:
    """guimo's MiniLM encoder in fp32 against sentence-transformers, batch 32, per thread count (issue #23: >= 1.0x)."""
    rows = sorted((row for row in r["rows"] if row["contender"] == "guimo fp32"), key=lambda row: row["threads"])
    if not rows:
        return []
    threads = " and ".join(str(row["threads"]) for row in rows)
    met = all(row["ratio_vs_st"] >= 1.0 for row in rows)
    return [(f"MiniLM encoder, fp32, batch 32, {threads} thread(s)", " / ".join(f"{row['sentences_per_s']:,.1f}" for row in rows) + " sentences/s",
             " / ".join(f"{row['ratio_vs_st']:.2f}x" for row in rows) + f" sentence-transformers (target 1.0x: {'met' if met else 'NOT met'})")]


def risk(r: dict) -> list[tuple[str, str, str]]:
    """The FT-Transformer against the best baseline per risk set, 5-fold means (issue #25: within 0.01 ROC-AUC on
    breast cancer and German credit, within 0.03 PR-AUC on the fraud sets); one row per set bench/risk.py recorded."""
    out = []
    for name, v in (r.get("sets") or {}).items():
        vd = v.get("verdict")
        if not vd:
            continue
        best = {"logistic_regression": "LR", "lightgbm": "LightGBM"}.get(vd["best_baseline"], vd["best_baseline"])
        out.append((f"FT-Transformer, {name.replace('_', ' ')}, {len(v['folds'])}-fold {vd['metric']}", f"{vd['model']:.3f}",
                    f"{best} {vd['best']:.3f} (target within {vd['tolerance']}: {'met' if vd['met'] else 'NOT met'})"))
    return out


Extractor = Callable[[dict], list[tuple[str, str, str]]]

# (results file, area, section, extractor): the headline records, in the order the index lists them.
HEADLINES: list[tuple[str, str, str, Extractor]] = [
    ("lm_throughput.json", "lm", "lm_throughput", lm_throughput),
    ("device_bf16.json", "device", "device_bf16", device_bf16),
    ("recommend_speed_ml-100k.json", "recommend", "recommend_speed", recommend_speed),
    ("recommend_to_quality_ml-100k.json", "recommend", "recommend_to_quality", recommend_to_quality),
    ("recommend_defaults.json", "recommend", "recommend_defaults", recommend_defaults),
    ("serve_load.json", "serve", "serve_load", serve_load),
    ("scale_lm_stdlib-repeat-fixE-seed2.json", "scale", "scale_lm", scale_lm),
    ("scale_lm_shakespeare-repeat-fixE-seeds23.json", "scale", "scale_lm", scale_lm),
    ("scale_lm_zh-poetry-repeat-fixE-seed2.json", "scale", "scale_lm", scale_lm),
    ("scale_recommend_beauty.json", "scale", "scale_recommend", scale_recommend),
    ("scale_recommend_marketplace.json", "scale", "scale_recommend", scale_recommend),
    ("scale_labels_support.json", "scale", "scale_labels", scale_labels),
    ("index_bench.json", "index", "index_bench", index_bench),
    ("recommend_ann.json", "recommend", "recommend-ann", recommend_ann),
    ("text_search.json", "text", "text_scifact", text_part("SciFact search nDCG@10, fine-tuned hybrid", ">= 0.73")),
    ("text_classify.json", "text", "banking77", text_part("BANKING77 intent accuracy, fine-tuned MiniLM", ">= 0.937")),
    ("text_categorize.json", "text", "pricerunner", text_part("PriceRunner category accuracy, fine-tuned MiniLM", ">= 0.975")),
    ("text_faq.json", "text", "stackfaq", text_part("StackFAQ answer nDCG@10, fine-tuned hybrid", ">= 0.90")),
    ("encoder_throughput.json", "text", "text_throughput", encoder_throughput),
    ("anonymize.json", "risk", "anonymize", text_part("PII anonymiser on planted values, 7 kinds", ">= 0.99 precision and recall per kind")),
    ("risk.json", "risk", "risk", risk),
    ("risk_privacy.json", "risk", "privacy", text_part("DP-SGD (Opacus) accuracy at epsilon 3, breast cancer", "within 0.02 of non-private")),
    ("assistant_snips_pretrained.json", "assistant", "assistant", text_part("SNIPS test, joint NLU (MiniLM + CRF)", ">= 98.5 / 96.5 / 91 %")),
    ("assistant_footprint.json", "assistant", "assistant", text_part("Assistant NLU on device, int8", "<= 25 MB, <= 20 ms p50")),
    ("assistant_e2e.json", "assistant", "e2e", text_part("Assistant end to end, asr_smoke commands (Festival voice)", ">= 95% command success")),
    ("assistant_asr.json", "assistant", "asr", text_part("Grammar speech recognition (pocketsphinx), asr_smoke Festival voice", "<= 100 ms per utterance")),
]


# sections whose several rows the index folds into one, so that the page stays one screen (tests/test_benchdoc.py)
FOLDED = {"lm_throughput", "device_bf16", "scale_lm", "scale_recommend", "risk"}


def fold(rows: list[Row]) -> Row:
    """One row for several of one section: what they share, then each one's figure and comparison by what sets it apart."""
    import os.path

    whats = [r.what for r in rows]
    head = os.path.commonprefix(whats)
    head = head[: max(head.rfind(" "), head.rfind(",")) + 1] if head and head[-1] not in " ,:" else head  # whole words
    tail = os.path.commonprefix([w[len(head):][::-1] for w in whats])[::-1]
    tail = tail[tail.find(" "):] if " " in tail and tail[0] not in " ,:" else tail if not tail or tail[0] in " ,:" else ""
    parts = [w[len(head): len(w) - len(tail)].strip(" ,:") for w in whats]
    what = head.rstrip(" ,:") + (f" ({tail.strip(' ,:')})" if tail.strip(" ,:") else "")
    figure = "; ".join(f"{p}: {r.figure}" for p, r in zip(parts, rows))
    versus = rows[0].versus if len({r.versus for r in rows}) == 1 else "; ".join(f"{p}: {r.versus}" for p, r in zip(parts, rows))
    cpus = {r.cpu for r in rows}
    return Row(rows[0].area, rows[0].section, what, figure, versus, rows[0].command, max(r.date for r in rows),
               rows[0].cpu if len(cpus) == 1 else "; ".join(sorted(cpus)))


def headline_rows() -> tuple[list[Row], list[str]]:
    """The index's rows (a FOLDED section's rows as one), and the headline records not written yet."""
    rows, missing = [], []
    for name, area, section, extract in HEADLINES:
        path = RESULTS / name
        if not path.exists():
            missing.append(name)
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        command = record.get("command") or record.get("meta", {}).get("command") or ""
        cpu = cpu_label(cpu_of(record, path))
        for what, figure, versus in extract(record):
            rows.append(Row(area, section, what, figure, versus, command, date_of(record, path), cpu))
    out: list[Row] = []
    for row in rows:
        if row.section not in FOLDED or any(r.section == row.section for r in out):
            if row.section not in FOLDED:
                out.append(row)
            continue
        same = [r for r in rows if (r.area, r.section) == (row.area, row.section)]
        out.append(fold(same) if len(same) > 1 else row)
    return out, missing


# -- anchors ------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[str]:
    """Every markdown heading's anchor in ``text``, a repeated one suffixed -1, -2 ... as GitHub does."""
    seen: dict[str, int] = {}
    out = []
    fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"#{1,6} (.+)", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.append(base if n == 0 else f"{base}-{n}")
    return out


def section_anchor(area: str, section: str) -> str:
    """The anchor of the heading right above section ``section``'s start marker in ``area``'s page."""
    text = page(area).read_text(encoding="utf-8")
    start, _ = markers(section)
    if start not in text:
        raise ValueError(f"{page(area).relative_to(ROOT)}: no section '{section}' ({start})")
    anchors = headings(text[: text.index(start)])
    if not anchors:
        raise ValueError(f"{page(area).relative_to(ROOT)}: section '{section}' has no heading above it")
    return anchors[-1]


# -- the index ----------------------------------------------------------------------------------

INTRO = """# guimo benchmarks

Every headline figure guimo has measured, one line each: what, the figure, how it compares with its baseline or
target, the command that made it, the date and the CPU. Click a row for its section: the setup, the full table,
the load on the machine and the caveats. The table is generated from `bench/results/*.json` by
`python bench/index.py`; a test checks it is up to date. These machines are shared, so figures are medians of
interleaved repeats and comparisons are ratios.
"""


PREREG = ROOT / "bench" / "prereg"


def prereg_list() -> str:
    """The scale page's list of pre-registrations, one link and title each, from bench/prereg/.

    The files stay where they were written: 30 results records, recipes and the pre-registrations themselves
    cite them by that path, and a pre-registration is a dated record not to be edited after the fact."""
    lines = ["Each scale experiment below was judged by a criterion written down before its runs, in `bench/prereg/`:", ""]
    for path in sorted(PREREG.glob("*.md")):
        title = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").removeprefix("Pre-registration: ")
        lines.append(f"- [{path.stem}](../../bench/prereg/{path.name}): {title}")
    return "\n".join(lines)


def render() -> str:
    rows, missing = headline_rows()
    lines = [INTRO, "| what | figure | vs | command | date | CPU |", "| --- | ---: | --- | --- | --- | --- |"]
    for row in rows:
        link = f"benchmarks/{row.area}.md#{section_anchor(row.area, row.section)}"
        lines.append(f"| [{row.what}]({link}) | {row.figure} | {row.versus} | `{short_command(row.command)}` | {row.date} | {row.cpu} |")
    pages = ", ".join(f"[{area}](benchmarks/{area}.md)" for area in AREAS)
    prereg = section_anchor("scale", "prereg")
    lines += ["", f"Detail pages: {pages}; the pre-registrations of the scale experiments are listed on the "
              f"[scale page](benchmarks/scale.md#{prereg})."]
    if missing:
        lines.append(f"Not measured yet: {', '.join(f'`bench/results/{m}`' for m in missing)}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 when docs/BENCHMARKS.md differs from what bench/results gives")
    args = p.parse_args(argv)
    if args.check:
        current = {DOC: DOC.read_text(encoding="utf-8") == render(), page("scale"): prereg_list() == section_text("scale", "prereg")}
        stale = [str(path.relative_to(ROOT)) for path, ok in current.items() if not ok]
        if stale:
            print(f"out of date: {', '.join(stale)}; run python bench/index.py", file=sys.stderr)
            return 1
        return 0
    sys.path.insert(0, str(ROOT))
    from guimo.io import atomic_write_text

    write_section("prereg", prereg_list(), heading="Pre-registrations", doc=page("scale"))
    text = render()
    atomic_write_text(DOC, text)
    print(text)
    return 0


def section_text(area: str, section: str) -> str | None:
    """What stands between section ``section``'s markers in ``area``'s page (None: no such section)."""
    text = page(area).read_text(encoding="utf-8")
    start, end = markers(section)
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


if __name__ == "__main__":
    sys.exit(main())
