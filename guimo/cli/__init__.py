"""The `guimo` command: a plain dict of subcommand modules, each with `register(subparsers)`.

Command modules import only argparse at module level, so `guimo --help` stays fast; the work
happens in the function each one sets as ``func``. Every `GuimoError` becomes one line on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module

from guimo.errors import GuimoError

# name -> module with register(subparsers). Order is the order of `guimo --help`.
COMMANDS: dict[str, str] = {
    "run": "guimo.cli.run",
    "runs": "guimo.cli.runs",
    "show": "guimo.cli.runs",
    "generate": "guimo.cli.generate",
    "recommend": "guimo.cli.recommend",
    "predict": "guimo.cli.predict",
    "anonymize": "guimo.cli.anonymize",
    "explain": "guimo.cli.explain",
    "assistant": "guimo.cli.assistant",
    "index": "guimo.cli.index",
    "search": "guimo.cli.search",
    "serve": "guimo.cli.serve",
    "keys": "guimo.cli.keys",
    "usage": "guimo.cli.usage",
    "principles": "guimo.cli.principles",
    "scale": "guimo.cli.scale",
    "economics": "guimo.cli.scale",
}


def build_parser() -> argparse.ArgumentParser:
    import guimo

    parser = argparse.ArgumentParser(
        prog="guimo",
        description="Train, measure and serve transformer models for businesses that live on scale effects.",
    )
    parser.add_argument("--version", action="version", version=f"guimo {guimo.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in dict.fromkeys(COMMANDS.values()):
        import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads that sleep at barriers instead of spinning: on a shared 2-core machine (load
    # ~10) a tiny-model training step took ~2.5 s with 2 spinning threads, ~0.4 s with 1 thread and
    # ~0.25 s with 2 passive ones. Read when torch loads libgomp, so it must precede `import torch`.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except GuimoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130
