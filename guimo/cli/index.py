"""`guimo index create|add|delete|list|info`: build and change search collections from JSON lines.

A collection is a folder (``guimo.index.collection``); a bare NAME lives under ``./indexes`` (or
``--home`` / ``$GUIMO_INDEXES``), as runs live under ``./runs``, and a NAME with a '/' is a path.
"""

from __future__ import annotations

import argparse

HOME_HELP = "folder of named collections (default: $GUIMO_INDEXES, else ./indexes)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="create and change search collections (BM25 + embeddings)",
                       description="Create a search collection from JSON lines and keep it current: add or replace "
                                   "documents, delete them by id, list and describe collections. Search them with "
                                   "`guimo search`.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    c = verbs.add_parser("create", help="make a collection, optionally from a JSONL file",
                         description="Make a collection. Each line of --data is a JSON object with an id field, a text "
                                     "field, and any other fields, which become metadata for --filter.")
    _name(c)
    src = c.add_mutually_exclusive_group()
    src.add_argument("--data", help="JSONL documents to add (one object per line)")
    src.add_argument("--demo", choices=("cloud-docs", "shop-faq"),
                     help="embedded demo documents instead of --data: cloud-docs (200 generated cloud documentation "
                          "pages; metadata service, action) or shop-faq (16 shop FAQ entries)")
    c.add_argument("--text-field", default="text", help="field holding the text to search (default: text)")
    c.add_argument("--id-field", default="id", help="field holding the unique document id (default: id)")
    c.add_argument("--encoder", default=None,
                   help="embedding model: minilm (default, the packaged all-MiniLM-L6-v2), a sentence-transformers "
                        "folder, or a search run directory")
    c.add_argument("--no-dense", action="store_true", help="BM25 only: no embeddings (faster to build, no dense/hybrid)")
    _common(c)
    c.set_defaults(func=create_main)

    a = verbs.add_parser("add", help="add or replace documents from a JSONL file",
                         description="Add documents; a document whose id the collection already holds replaces it.")
    _name(a)
    a.add_argument("--data", required=True, help="JSONL documents (the collection's id and text fields)")
    _common(a)
    a.set_defaults(func=add_main)

    d = verbs.add_parser("delete", help="delete documents by id", description="Delete documents by id; unknown ids are "
                                                                                "counted and reported, not an error.")
    _name(d)
    d.add_argument("ids", nargs="*", metavar="ID", help="document ids")
    d.add_argument("--ids", dest="ids_file", help="file with one id per line")
    _common(d)
    d.set_defaults(func=delete_main)

    ls = verbs.add_parser("list", help="list the collections", description="List the collections under the home folder.")
    ls.add_argument("--home", help=HOME_HELP)
    ls.add_argument("--json", action="store_true", help="a JSON list instead of the table")
    ls.set_defaults(func=list_main)

    i = verbs.add_parser("info", help="a collection's settings and counts (JSON)")
    _name(i)
    i.add_argument("--home", help=HOME_HELP)
    i.set_defaults(func=info_main)


def _name(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="collection name (under --home) or folder path")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", help=HOME_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_records(coll, records: list, quiet: bool) -> int:
    """Add with a progress bar over the embedding (the slow part)."""
    from guimo.pipeline.progress import Progress

    if not coll.has_dense or quiet:
        return coll.add(records)
    with Progress(quiet) as progress, progress.task("embed", total=len(records)) as task:
        return coll.add(records, on_progress=lambda done, total: task.update(completed=done, total=total))


def create_main(args: argparse.Namespace) -> int:
    import shutil

    from guimo.errors import GuimoError
    from guimo.index.collection import Collection, resolve
    from guimo.index.records import read_records

    folder = resolve(args.name, args.home)
    # Read and check every line before anything is created: a bad line leaves no half collection.
    records = list(read_records(args.data, text_field=args.text_field, id_field=args.id_field)) if args.data else []
    if args.demo:
        from guimo.index.demo import demo_records
        from guimo.index.records import to_record

        if (args.text_field, args.id_field) != ("text", "id"):
            raise GuimoError("--demo documents have the fields id and text; drop --text-field/--id-field")
        records = [to_record(r, origin=f"demo {args.demo}") for r in demo_records(args.demo)]
    existed = folder.exists()
    coll = Collection.create(folder, encoder=args.encoder, text_field=args.text_field, id_field=args.id_field,
                             dense=not args.no_dense)
    try:
        _add_records(coll, records, args.quiet)
    except BaseException:
        if not existed:  # ours and never used: an interrupted create leaves nothing behind
            shutil.rmtree(folder, ignore_errors=True)
        raise
    print(f"created {coll.name} at {folder}: {len(coll)} documents, search modes {', '.join(coll.info()['modes'])}")
    return 0


def add_main(args: argparse.Namespace) -> int:
    from guimo.index.collection import open_named
    from guimo.index.records import read_records

    coll = open_named(args.name, args.home)
    records = list(read_records(args.data, text_field=coll.text_field, id_field=coll.id_field))
    replaced = sum(r.id in coll for r in records)
    _add_records(coll, records, args.quiet)
    print(f"{coll.name}: added {len(records) - replaced}, replaced {replaced}; {len(coll)} documents")
    return 0


def delete_main(args: argparse.Namespace) -> int:
    from guimo.errors import GuimoError
    from guimo.index.collection import open_named
    from guimo.io import read_text_strict

    ids = list(args.ids)
    if args.ids_file:
        try:
            ids += [line.strip() for line in read_text_strict(args.ids_file).splitlines() if line.strip()]
        except FileNotFoundError:
            raise GuimoError(f"{args.ids_file}: file not found") from None
    if not ids:
        raise GuimoError("give the ids to delete (ID ... or --ids FILE)")
    coll = open_named(args.name, args.home)
    removed = coll.delete(ids)
    unknown = len(set(ids)) - removed
    note = f" ({unknown} id(s) not in the collection)" if unknown else ""
    print(f"{coll.name}: deleted {removed}{note}; {len(coll)} documents")
    return 0


def list_main(args: argparse.Namespace) -> int:
    import json

    from guimo.index.collection import Collection, home, list_collections

    from guimo.errors import GuimoError

    rows = []
    for folder in list_collections(args.home):
        try:
            info = Collection.open(folder).info()
        except GuimoError as e:  # one unreadable collection must not hide the others
            info = {"name": folder.name, "documents": None, "modes": [], "encoder": None,
                    "updated": f"unreadable: {e}", "path": str(folder)}
        rows.append({k: info[k] for k in ("name", "documents", "modes", "encoder", "updated", "path")})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no collections under {home(args.home)} (create one with `guimo index create NAME --data docs.jsonl`)")
        return 0
    cells = [("name", "documents", "modes", "encoder", "updated")] + [
        (r["name"], "-" if r["documents"] is None else str(r["documents"]), ",".join(r["modes"]) or "-", r["encoder"] or "-", r["updated"] or "-") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    print("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells))
    return 0


def info_main(args: argparse.Namespace) -> int:
    import json

    from guimo.index.collection import open_named

    print(json.dumps(open_named(args.name, args.home).info(), indent=2))
    return 0
