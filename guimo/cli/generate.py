"""`guimo generate RUN --prompt TEXT` — sample from a trained language model, streaming to stdout."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="sample text from a trained language model run (KV cache, streaming)",
        description=(
            "Continue PROMPT with the run's language model and print the text as it is sampled. "
            "Decoding uses a KV cache (one position per new token). Temperature 0 is greedy; top-k "
            "keeps the K most likely tokens; top-p keeps the smallest set whose probability reaches P."
        ),
    )
    p.add_argument("run", help="run directory of a finished `guimo run lm`")
    p.add_argument("--prompt", required=True, help="text to continue ('-' reads it from stdin)")
    p.add_argument("--max-tokens", type=int, default=128, help="new tokens to sample at most (default 128)")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy (default 0.8)")
    p.add_argument("--top-k", type=int, default=None, help="sample only among the K most likely tokens")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass in (0, 1] (default 0.95)")
    p.add_argument("--seed", type=int, default=None, help="seed for a reproducible sample")
    p.add_argument("--stop", action="append", default=[], metavar="STR", help="stop before this string (repeatable)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from guimo import scenarios
    from guimo.errors import GuimoError
    from guimo.pipeline.rundir import RunDir

    if args.max_tokens < 1:
        raise GuimoError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    if args.temperature < 0:
        raise GuimoError(f"--temperature must be >= 0, got {args.temperature}")
    if not 0 < args.top_p <= 1:
        raise GuimoError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.top_k is not None and args.top_k < 1:
        raise GuimoError(f"--top-k must be at least 1, got {args.top_k}")
    run = RunDir.open(args.run)
    scenario = scenarios.get(run.scenario)
    if getattr(scenario, "serve_kind", None) != "completion":
        raise GuimoError(f"{run.path} is a '{run.scenario}' run; generate needs a language model run (guimo run lm)")
    run.weights_path()  # a clear error when training has not finished
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    predictor = scenario.load_predictor(run)
    for piece in predictor.stream(prompt, max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                                  top_p=args.top_p, seed=args.seed, stop=args.stop or None):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
