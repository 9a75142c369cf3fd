"""`guimo explain RUN --row FILE_OR_JSON` — the features pushing one prediction of a tabular run up or down.

Prints the prediction, then every column (or the ``--top`` ones) with the transformer's Integrated Gradients
attribution beside the LightGBM baseline's TreeSHAP contribution (``guimo.explain.rows`` says what each measures and
relative to what), and the completeness check: the attributions sum to the output's distance from the baseline row.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="explain one prediction of a tabular run (fraud, credit, health): features pushing it up or down",
        description=(
            "Explain one row scored by a tabular run: each column's Integrated Gradients attribution to the "
            "transformer's calibrated output (log-odds for binary runs, the prediction for regression), beside the "
            "LightGBM baseline's TreeSHAP contribution. The row is an inline JSON object, or a file with one row: "
            ".json (an object), .jsonl (one line) or .csv/.tsv (a header and one row)."
        ),
    )
    p.add_argument("run", help="run directory of a finished tabular run (guimo run fraud|credit|health)")
    p.add_argument("--row", required=True, metavar="FILE_OR_JSON", help='the row: \'{"age": 41, ...}\' or a file holding one row')
    p.add_argument("--index", type=int, metavar="N", help="explain row N (from 0) of a file of several rows (a .jsonl or .csv, e.g. "
                   "the run's own data/raw.csv); without it the file must hold exactly one row")
    p.add_argument("--top", type=int, default=10, help="show the N columns with the largest attributions (default: 10; 0: all)")
    p.add_argument("--json", action="store_true", help="print the prediction and explanation as one JSON object")
    p.set_defaults(func=main)


def read_row(arg: str, index: int | None = None) -> dict[str, Any]:
    """The one row named by ``--row``: inline JSON, or a .json/.jsonl/.csv/.tsv file (row ``index`` of several)."""
    import json

    from guimo.errors import GuimoError

    text = arg.strip()
    if index is not None and index < 0:
        raise GuimoError("--index counts rows from 0")
    if text.startswith("{"):
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            raise GuimoError(f"--row: not a JSON object ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict):
            raise GuimoError("--row: expected a JSON object of column: value")
        return row
    path = Path(arg)
    if not path.is_file():
        raise GuimoError(f"--row {arg}: neither a JSON object nor a file")
    if path.suffix.lower() == ".json":
        from guimo.io import read_json

        row = read_json(path)
        if isinstance(row, list) and (len(row) == 1 or (index is not None and index < len(row))):
            row = row[index or 0]
        if not isinstance(row, dict):
            raise GuimoError(f"{path}: expected one JSON object (column: value), got {type(row).__name__}"
                             + (f" of {len(row)} items" if isinstance(row, list) else ""))
        return row
    from guimo.cli.predict import read_rows

    rows = list(read_rows(path))
    if index is not None:
        if index >= len(rows):
            raise GuimoError(f"{path}: --index {index}, but the file has {len(rows)} rows")
        return rows[index][1]
    if len(rows) != 1:
        raise GuimoError(f"{path}: {len(rows)} rows; --row explains one: pick it with --index N "
                         f"(guimo predict RUN --batch {path} --out OUT --explain explains them all)")
    return rows[0][1]


def load_tabular(run_path: str):
    """The run's predictor, checked to score rows (a tabular run)."""
    from guimo.cli.predict import load
    from guimo.errors import GuimoError

    predictor = load(run_path)
    if getattr(predictor, "input_kind", "text") != "records":
        raise GuimoError(f"{run_path}: guimo explain explains tabular runs (fraud, credit, health); this run classifies texts")
    return predictor


def main(args: argparse.Namespace) -> int:
    import json

    from guimo.errors import GuimoError
    from guimo.explain.rows import explain_records

    if args.top < 0:
        raise GuimoError("--top must be 0 (all) or more")
    row = read_row(args.row, args.index)
    predictor = load_tabular(args.run)
    explanation = explain_records(predictor, [row], top=args.top or None)[0]
    prediction = predictor.classify([row])[0]
    if args.json:
        print(json.dumps({"prediction": prediction, "explanation": explanation}, ensure_ascii=False))
        return 0
    print(render(prediction, explanation))
    return 0


def render(prediction: dict[str, Any], e: dict[str, Any]) -> str:
    """The side-by-side table a person reads."""
    if "prediction" in prediction:
        head = f"prediction {prediction['prediction']:.4g}"
    else:
        head = f"label {prediction['label']} (confidence {prediction['confidence']:.3f})"
    lines = [head + (f"; explaining the {e['explained']!r} score" if e["explained"] is not None else ""),
             f"output {e['output']:+.4f} ({e['units']}); baseline row (training medians, unseen categories) {e['baseline_output']:+.4f}", ""]
    trees = e["tree_raw_score"] is not None
    rows = [("column", "value", "transformer IG", "LightGBM TreeSHAP" if trees else "")]
    for f in e["features"]:
        value = "missing" if f["value"] is None else str(f["value"])
        rows.append((f["feature"], value if len(value) <= 24 else value[:21] + "...", f"{f['attribution']:+.4f}",
                     f"{f['tree']:+.4f}" if f["tree"] is not None else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}".rstrip())
    lines += ["", f"IG completeness: attributions of all columns sum to output - baseline = {e['output'] - e['baseline_output']:+.4f} "
                  f"(error {e['completeness_error']:.1e})"]
    if trees:
        lines.append(f"LightGBM: raw score {e['tree_raw_score']:+.4f} = its training average {e['tree_expected']:+.4f} + the contributions "
                     "(different model and reference: compare which columns lead and their signs)")
    return "\n".join(lines)
