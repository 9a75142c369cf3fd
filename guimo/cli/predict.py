"""`guimo predict RUN` — labels from any classification run: one text, or a file of rows.

The verb dispatches on what the run's predictor takes (``input_kind``), never on the scenario's
name: text classifiers (`support`, `categorize`) read a text field; a predictor of records (the
tabular scenarios) receives each row as it is. Input rows come from JSONL (one object per line)
or CSV (a header row); the output format follows ``--out``'s suffix (``.csv`` or JSONL), each
output row the input row plus the prediction. A bad line is named by file and line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterator

PREDICTION_FIELDS = ("label", "confidence", "out_of_scope")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="classify texts (or rows) with a finished classification run",
        description=(
            "Print the label, its calibrated confidence and out_of_scope for --text, or classify every row of "
            "--batch IN.jsonl (one {\"text\": ...} per line) or IN.csv into --out OUT.jsonl / OUT.csv "
            "(the input row plus label, confidence, out_of_scope; --scores adds every label's probability)."
        ),
    )
    p.add_argument("run", help="run directory of a finished classification run (e.g. guimo run support)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", action="append", help="a text to classify (repeatable)")
    what.add_argument("--batch", metavar="IN", help="JSONL or CSV input, one row per line")
    p.add_argument("--out", metavar="OUT", help="output file for --batch: .csv, else JSONL (required with --batch)")
    p.add_argument("--text-field", default="text", help="the text field of --batch rows (default: text)")
    p.add_argument("--scores", action="store_true", help="include every label's probability")
    p.add_argument("--batch-size", type=int, default=256, help="rows classified per call (default: 256)")
    p.add_argument("--json", action="store_true", help="--text: print one JSON object per text")
    p.add_argument("--explain", action="store_true", help="tabular runs, --batch: add each row's top attributions (an "
                   "'explanation' field: the transformer's Integrated Gradients beside LightGBM's TreeSHAP; see guimo explain)")
    p.add_argument("--top", type=int, default=5, help="--explain: columns per row, largest attributions first (default: 5)")
    p.set_defaults(func=main)


def load(run_path: str):
    """The run's predictor, checked to be a classifier."""
    from guimo import scenarios
    from guimo.errors import GuimoError
    from guimo.pipeline.rundir import RunDir

    run = RunDir.open(run_path)
    scenario = scenarios.get(run.scenario)
    if getattr(scenario, "serve_kind", None) not in ("classification", "faq", "assistant"):  # assistant: its NLU run's intents
        raise GuimoError(f"{run.path} is a '{run.scenario}' run; guimo predict classifies with classification runs "
                         f"(scenarios whose serve_kind is classification) and assistant runs (intents), and answers with faq runs")
    return scenario.load_predictor(run)


def main(args: argparse.Namespace) -> int:
    import json

    from guimo.errors import GuimoError

    if args.batch_size < 1:
        raise GuimoError("--batch-size must be at least 1")
    if args.batch and not args.out:
        raise GuimoError("--batch needs --out OUT.jsonl (or OUT.csv)")
    if args.out and not args.batch:
        raise GuimoError("--out goes with --batch")
    if args.explain and not args.batch:
        raise GuimoError("--explain goes with --batch (one row: guimo explain RUN --row ROW)")
    predictor = load(args.run)
    kind = getattr(predictor, "input_kind", "text")
    if args.text:
        if kind != "text":
            raise GuimoError(f"{args.run}: this model classifies records, not texts; pass them with --batch IN.csv")
        if hasattr(predictor, "answer"):  # an FAQ run (guimo.faq.predictor): the entry's answer, or no answer
            for text, res in zip(args.text, predictor.answer(list(args.text))):
                if args.json:
                    print(json.dumps({"text": text, **res}, ensure_ascii=False))
                else:
                    print(f"{'no answer' if res['no_answer'] else res['answer']}\tscore {res['score'] or 0:.3f}"
                          f"{'' if res['no_answer'] else chr(9) + 'id ' + str(res['id'])}")
            return 0
        for text, res in zip(args.text, predictor.classify(list(args.text))):
            res = res if args.scores else {k: v for k, v in res.items() if k != "scores"}
            if args.json:
                print(json.dumps({"text": text, **res}, ensure_ascii=False))
            else:
                print(f"{res['label']}\tconfidence {res['confidence']:.3f}\tout_of_scope {str(res.get('out_of_scope', False)).lower()}")
        return 0
    n = classify_file(predictor, args.batch, args.out, kind=kind, text_field=args.text_field, scores=args.scores,
                      batch_size=args.batch_size, explain_top=args.top if args.explain else None)
    print(f"wrote {n} predictions to {args.out}")
    return 0


def classify_file(predictor, src: str | Path, out: str | Path, *, kind: str = "text", text_field: str = "text",
                  scores: bool = False, batch_size: int = 256, explain_top: int | None = None) -> int:
    """Classify every row of ``src`` into ``out`` (written atomically, in input order); returns the row count.

    ``explain_top`` (records only): each output row gets an ``explanation`` (``guimo.explain.rows``) with that many
    columns; in a CSV it is one JSON text cell.
    """
    from guimo.errors import GuimoError, where

    if explain_top is not None and kind != "records":
        raise GuimoError("--explain explains tabular runs (rows of columns); this run classifies texts")

    rows = list(read_rows(src))
    if not rows:
        raise GuimoError(f"{src}: no rows")
    inputs = []
    for line, rec in rows:
        if kind == "text":
            value = rec.get(text_field)
            if text_field not in rec:
                raise GuimoError(f"{where(src, line)}: no field '{text_field}' (fields: {', '.join(map(str, rec)) or 'none'}); "
                                 f"name it with --text-field")
            if not isinstance(value, str) or not value.strip():
                raise GuimoError(f"{where(src, line)}: '{text_field}' must be a non-empty string, got {value!r}")
            inputs.append(value)
        else:
            inputs.append(rec)
    results: list[dict[str, Any]] = []
    for s in range(0, len(inputs), batch_size):
        results += (predictor.answer if hasattr(predictor, "answer") else predictor.classify)(inputs[s : s + batch_size])
    if explain_top is not None:
        from guimo.explain.rows import explain_records

        explanations = []
        for s in range(0, len(inputs), batch_size):
            explanations += explain_records(predictor, inputs[s : s + batch_size], top=explain_top, strict=False)
        results = [{**res, "explanation": e} for res, e in zip(results, explanations)]
    merged = []
    for (_, rec), res in zip(rows, results):
        extra = res if scores else {k: v for k, v in res.items() if k != "scores"}
        merged.append({**rec, **extra})
    write_rows(out, merged)
    return len(merged)


def read_rows(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line, row) of a JSONL file, or of a CSV/TSV file with a header (line = where the row starts)."""
    from guimo.errors import GuimoError

    path = Path(path)
    if not path.is_file():
        raise GuimoError(f"{path}: file not found")
    if path.suffix.lower() in (".csv", ".tsv"):
        from guimo.io import iter_csv

        yield from iter_csv(path)
        return
    from guimo.io import iter_jsonl

    yield from iter_jsonl(path)


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """JSONL, or CSV when ``path`` ends in .csv (nested values such as scores as JSON text)."""
    import json

    from guimo.io import atomic_write_text

    path = Path(path)
    if path.suffix.lower() != ".csv":
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return
    import csv
    import io

    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([json.dumps(v) if isinstance(v, (dict, list)) else ("true" if v is True else "false" if v is False else v)
                    for v in (r.get(c, "") for c in columns)])
    atomic_write_text(path, buf.getvalue())
