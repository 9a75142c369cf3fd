"""`guimo recommend RUN` — top-K next items for a known user, a live session, or a JSONL batch."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recommend",
        help="recommend next items from a finished recommend run",
        description=(
            "Top-K next items in the dataset's own item ids. --user looks up a known user's history; "
            "--history takes a live session (oldest first; an empty one gets the most popular items). Item ids "
            "that are not in the run's catalogue are left out with a warning that names them, and a history "
            "with no known item is an error unless --allow-unknown (then: the most popular items). --batch scores a JSONL file with one {\"user\": ..., \"history\": [...]} "
            "per line (history may be omitted for known users) into --out, one result line per input line."
        ),
    )
    p.add_argument("run", help="run directory of a finished `guimo run recommend`")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a user id from the training data")
    who.add_argument("--history", help="comma-separated item ids, oldest first (a live session)")
    who.add_argument("--batch", metavar="IN.jsonl", help="JSONL input, one history per line")
    p.add_argument("--out", metavar="OUT.jsonl", help="output file for --batch (required with it)")
    p.add_argument("--k", type=int, default=10, help="number of items to return (default: 10)")
    p.add_argument("--include-seen", action="store_true", help="allow items already in the history")
    p.add_argument("--allow-unknown", action="store_true",
                   help="answer a history with no known item with the most popular items instead of an error")
    p.add_argument("--chunk", type=int, default=1024, help="--batch: histories scored at once (default: 1024)")
    p.add_argument("--topk", choices=("auto", "exact", "ann"), default=None,
                   help="top-k over the catalogue: exact, ann (the item vector index, built once and cached in RUN/ann_index/) "
                        "or auto (ann from the run's serve.min_items up); default: the run's serve.topk")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import json

    from guimo.errors import GuimoError
    from guimo.pipeline.rundir import RunDir

    run = RunDir.open(args.run)
    if run.scenario != "recommend":
        raise GuimoError(f"{run.path} is a '{run.scenario}' run, not a recommend run")
    if args.k < 1:
        raise GuimoError("--k must be at least 1")
    from guimo.inference.recommend import RecPredictor

    predictor = RecPredictor.from_run(run, topk=args.topk)
    exclude = not args.include_seen
    if args.batch:
        if not args.out:
            raise GuimoError("--batch needs --out OUT.jsonl")
        n = score_batch(predictor, args.batch, args.out, k=args.k, exclude_seen=exclude, chunk=args.chunk, quiet=args.quiet,
                        allow_unknown=args.allow_unknown)
        if not args.quiet:
            print(f"wrote {n} recommendations to {args.out}")
        return 0
    if args.user is not None:
        history = predictor.users([args.user])[0]
        record = {"user": args.user}
    else:
        history = [h.strip() for h in args.history.split(",") if h.strip()]
        record = {}
        check_known(predictor, history, "--history", allow_unknown=args.allow_unknown)
    rec = predictor.recommend([history], k=args.k, exclude_seen=exclude)[0]
    print(json.dumps({**record, **rec}))
    return 0


def check_known(predictor, history: list[str], where: str, *, allow_unknown: bool) -> None:
    """Warn (stderr) about ids not in the catalogue; a non-empty history with none known is a GuimoError
    unless ``allow_unknown`` (its answer would be the popular items, whatever the user meant)."""
    import sys

    from guimo.errors import GuimoError

    unknown = predictor.unknown(history)
    if not unknown:
        return
    message = predictor.unknown_message(unknown, len(history))
    none_known = len(unknown) == len(set(map(str, history)))
    if none_known and not allow_unknown:
        raise GuimoError(f"{where}: none of its items is known: {message}; "
                         "pass --allow-unknown to get the most popular items instead")
    then = "answering with the most popular items" if none_known else "they are left out"
    print(f"warning: {where}: {message}; {then}", file=sys.stderr)


def score_batch(predictor, in_path: str, out_path: str, *, k: int, exclude_seen: bool, chunk: int = 1024, quiet: bool = True,
                allow_unknown: bool = False) -> int:
    """Score every line of ``in_path`` into ``out_path`` (written atomically); returns the line count.

    Each output line names its history's ids that are not in the catalogue (``unknown_items``); a
    line whose non-empty history has no known item is a GuimoError naming file:line unless
    ``allow_unknown``, and a count of the lines with unknown ids goes to stderr.
    """
    import json
    import sys

    from guimo.errors import GuimoError, where
    from guimo.io import atomic_write_text, iter_jsonl
    from guimo.pipeline.progress import Progress

    cases: list[tuple[dict, list[str]]] = []
    for line, record in iter_jsonl(in_path):
        history = record.get("history")
        if history is None:
            if "user" not in record:
                raise GuimoError(f"{where(in_path, line)}: needs \"history\" (a list of item ids) or a known \"user\"")
            if not predictor.knows_user(str(record["user"])):
                raise GuimoError(f"{where(in_path, line)}: unknown user {record['user']!r} and no \"history\"")
            history = predictor.users([str(record["user"])])[0]
        elif not isinstance(history, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in history):
            raise GuimoError(f"{where(in_path, line)}: \"history\" must be a list of item ids (strings or integers)")
        out = {"user": record["user"]} if "user" in record else {}
        history = [str(i) for i in history]
        unknown = predictor.unknown(history)
        if unknown and len(unknown) == len(set(history)) and not allow_unknown:
            raise GuimoError(f"{where(in_path, line)}: none of the history's items is known: "
                             f"{predictor.unknown_message(unknown, len(history))}; pass --allow-unknown to get the most popular items instead")
        cases.append((out, history))
    lines = []
    with Progress(quiet=quiet) as progress, progress.task("recommend", total=len(cases)) as bar:
        for start in range(0, len(cases), chunk):
            part = cases[start : start + chunk]
            recs = predictor.recommend([h for _, h in part], k=k, exclude_seen=exclude_seen)
            lines.extend(json.dumps({**head, **rec}) + "\n" for (head, _), rec in zip(part, recs))
            bar.update(advance=len(part))
    atomic_write_text(out_path, "".join(lines))
    with_unknown = sum(1 for _, h in cases if predictor.unknown(h))
    if with_unknown:
        print(f"warning: {with_unknown} of {len(cases)} histories in {in_path} hold item ids not in the catalogue of "
              f"{predictor.name}; they were left out (listed under \"unknown_items\" in {out_path}; known item ids look like "
              f"{', '.join(predictor.id_examples())})", file=sys.stderr)
    return len(lines)
