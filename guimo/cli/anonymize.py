"""`guimo anonymize IN OUT` — replace personal data in a CSV/TSV or Parquet file.

CSV is streamed in chunks (``--chunk-rows``), every cell read as text and written back unchanged unless
it holds personal data, so a file larger than memory works and untouched columns keep their exact
spelling. The output appears atomically (a temporary file renamed at the end). A report of what was
found per column (counts, never values) goes to ``--report`` (default ``OUT.report.json``).

Pseudonyms need a key: ``--key-file FILE``, or ``--new-key FILE`` to create one (kept: the same key
makes the same pseudonyms in the next file, so joins keep working), or ``GUIMO_ANONYMIZE_KEY``.
"""

from __future__ import annotations

import argparse

KINDS_HELP = "email, iban, cn_resident_id, credit_card, ip, phone"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "anonymize",
        help="find personal data in a table and replace it by keyed pseudonyms or masks",
        description=("Find e-mails, phone numbers, card numbers (Luhn), IBANs, IP addresses, Chinese resident IDs and the "
                     "values of --names columns in IN (CSV, TSV or Parquet) and write OUT with each replaced by KIND_<hmac> "
                     "(--mode pseudonym: the same value gives the same pseudonym under the same key, in every file) or "
                     "[KIND] (--mode mask). Prints and saves a per-column report of what was found."),
    )
    p.add_argument("input", metavar="IN", help="CSV/TSV or Parquet file")
    p.add_argument("output", metavar="OUT", help="output file (.csv, .tsv or .parquet)")
    p.add_argument("--columns", help="comma-separated columns to scan (default: every column)")
    p.add_argument("--names", help="comma-separated columns that hold people's names (every value replaced)")
    p.add_argument("--mode", choices=("pseudonym", "mask"), default="pseudonym", help="pseudonym (default; needs a key) or mask")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--key-file", metavar="FILE", help="file holding the pseudonym key (else $GUIMO_ANONYMIZE_KEY)")
    key.add_argument("--new-key", metavar="FILE", help="create a random key in FILE (must not exist) and use it")
    p.add_argument("--kinds", help=f"comma-separated detectors to run (default: all of {KINDS_HELP})")
    p.add_argument("--phone-region", metavar="CC", help="also find national-format phone numbers of this country (e.g. GB)")
    p.add_argument("--report", metavar="FILE", help="where to write the JSON report (default: OUT.report.json)")
    p.add_argument("--chunk-rows", type=int, default=50_000, help="CSV rows processed at a time (default: 50000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _is_parquet(path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def main(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from guimo.errors import GuimoError
    from guimo.io import atomic_write_json
    from guimo.privacy.anonymize import KINDS, Anonymizer, load_key, new_key_file

    src, dst = Path(args.input), Path(args.output)
    if not src.exists():
        raise GuimoError(f"{src}: file not found")
    if src.resolve() == dst.resolve():
        raise GuimoError(f"{dst}: the output must be another file than the input (it is written while the input is read)")
    if args.chunk_rows < 1:
        raise GuimoError(f"--chunk-rows must be at least 1, got {args.chunk_rows}")
    key = None
    if args.mode == "pseudonym":
        key = new_key_file(args.new_key) if args.new_key else load_key(args.key_file)
    names = _split(args.names)
    kinds = _split(args.kinds) or [k for k in KINDS if k != "name"]
    anonymizer = Anonymizer(columns=_split(args.columns) or None, name_columns=names, mode=args.mode, key=key,
                            kinds=kinds + (["name"] if names else []), phone_region=args.phone_region)
    report_path = Path(args.report) if args.report else dst.with_name(dst.name + ".report.json")

    if _is_parquet(src) or _is_parquet(dst):
        report = _whole_file(src, dst, anonymizer)
    else:
        report = _stream_csv(src, dst, anonymizer, args.chunk_rows, quiet=args.quiet)
    report = {"input": str(src), "output": str(dst), **report}
    atomic_write_json(report_path, report)
    print(f"wrote {dst} ({report['rows']} rows, {report['cells_changed']} cells changed, mode {report['mode']}); "
          f"report {report_path}")
    for column, kinds_found in report["columns"].items():
        print(f"  {column}: " + ", ".join(f"{k} {n}" for k, n in kinds_found.items()))
    if not report["columns"]:
        print("  no personal data found", file=sys.stderr)
    return 0


def _whole_file(src, dst, anonymizer) -> dict:
    """Parquet in or out: read all of it (Parquet is columnar; streaming it row-wise buys little here)."""
    from guimo.data.tabular import read_table
    from guimo.io import atomic_write_bytes

    df = read_table(src)
    out, report = anonymizer.anonymize_frame(df)
    if _is_parquet(dst):
        import io

        buf = io.BytesIO()
        out.to_parquet(buf, index=False)
        atomic_write_bytes(dst, buf.getvalue())
    else:
        atomic_write_bytes(dst, out.to_csv(index=False, sep="\t" if dst.suffix.lower() == ".tsv" else ",").encode())
    return report


def _count_lines(path) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b"\n")
    return max(n - 1, 0)


def _stream_csv(src, dst, anonymizer, chunk_rows: int, *, quiet: bool) -> dict:
    """Read ``src`` in chunks of text cells, anonymise each, append it to a temporary file beside ``dst``
    and rename that over ``dst`` at the end (a failure leaves no half-written output)."""
    import pandas as pd
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from guimo.data.tabular import csv_error
    from guimo.errors import GuimoError
    from guimo.io import atomic_open
    from guimo.privacy.anonymize import merge_reports

    sep_in = "\t" if src.suffix.lower() == ".tsv" else ","
    sep_out = "\t" if dst.suffix.lower() == ".tsv" else ","
    report: dict = {}
    total = None if quiet else _count_lines(src)
    progress = Progress(TextColumn("anonymizing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), disable=quiet, transient=True)  # stdout is for the summary
    with atomic_open(dst, "w", encoding="utf-8", newline="") as f, progress:
        task = progress.add_task("rows", total=total)
        reader = pd.read_csv(src, sep=sep_in, dtype=str, keep_default_na=False, chunksize=chunk_rows, encoding="utf-8-sig")
        first = True
        try:
            for chunk in reader:
                if first:
                    missing = [c for c in list(anonymizer.columns or []) + list(anonymizer.name_columns) if c not in chunk.columns]
                    if missing:
                        raise GuimoError(f"{src}: no columns {', '.join(missing)}; the columns are: {', '.join(chunk.columns)}")
                out, part = anonymizer.anonymize_frame(chunk)
                out.to_csv(f, header=first, index=False, sep=sep_out)
                report = merge_reports(report, part) if report else part
                first = False
                progress.update(task, advance=len(chunk))
        except pd.errors.ParserError as e:
            raise csv_error(src, e) from None
        except pd.errors.EmptyDataError:
            raise GuimoError(f"{src}: empty file, expected a header row") from None
        except UnicodeDecodeError as e:
            raise GuimoError(f"{src}: not UTF-8 text ({e.reason})") from None
        if first:  # a header and no rows: write the header back
            f.write(sep_out.join(pd.read_csv(src, sep=sep_in, nrows=0, encoding="utf-8-sig").columns) + "\n")
            report = {"rows": 0, "mode": anonymizer.mode, "columns": {}, "cells_changed": 0}
    return report
