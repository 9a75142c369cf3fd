"""`guimo principles gradient-descent|backprop|first-model`: the seed article's worked examples, checked.

The seed article is the essay on the principles of large models that guimo grew from; "the
article" in this command's help and output always means it (see ``ARTICLE`` below and
docs/principles.md). Thin wrappers over ``guimo.principles``: parse options, call the function,
print its tables (or ``--json``). Bad values raise GuimoError there, which the CLI turns into one
line and exit 2.
"""

from __future__ import annotations

import argparse


# Said once wherever a reader may meet "the article" first: the group's help and each example's.
ARTICLE = ("the article: the seed essay on the principles of large models that guimo grew from, which teaches "
           "gradient descent, backpropagation and a first PyTorch training script by worked examples")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "principles",
        help="gradient descent, backprop and a first model from guimo's seed article (its founding essay on "
             "large models), recomputed and checked against autograd",
        description=f"The seed article is the essay on the principles of large models that guimo grew from; it "
                    f"teaches gradient descent, backpropagation and a first PyTorch training script by worked "
                    f"examples. These commands recompute each example, reproduce it exactly where it is right, show "
                    f"where its printed numbers are not, and check every gradient against torch autograd. Below, "
                    f"'the article' means that essay. See docs/principles.md.",
    )
    cmds = p.add_subparsers(dest="example", metavar="EXAMPLE", required=True)

    gd = cmds.add_parser("gradient-descent", help="J(w) = (w*x - y)^2 by gradient descent, with its closed form",
                         description="Gradient descent on J(w) = (w*x - y)^2, gradient 2*(w*x - y)*x, from w0; "
                                     "stops when |gradient| <= tolerance. Diverges (with a warning) when lr > 1/x^2. "
                                     f"The defaults are the article's example ({ARTICLE}).")
    gd.add_argument("--x", type=float, default=2.0, help="input x, non-zero (default: 2)")
    gd.add_argument("--y", type=float, default=4.0, help="target y (default: 4)")
    gd.add_argument("--lr", type=float, default=0.01, help="learning rate > 0 (default: 0.01, the article's)")
    gd.add_argument("--steps", type=int, default=1000, help="most updates, >= 0 (default: 1000)")
    gd.add_argument("--tolerance", type=float, default=1e-6, help="stop when |dJ/dw| <= this, > 0 (default: 1e-6)")
    gd.add_argument("--w0", type=float, default=1.0, help="initial weight (default: 1, the article's)")
    gd.add_argument("--all-rows", action="store_true", help="print every step, not the first 10 and last 3")
    gd.add_argument("--json", action="store_true", help="print the result as JSON instead of tables")
    gd.set_defaults(func=gradient_descent_main)

    bp = cmds.add_parser("backprop", help="the article's network by hand-written backprop and by autograd, "
                                          "its published values checked; then a 2-2-1 network",
                         description="One backprop step on the article's element-wise network (lr 0.1, "
                                     "L = 1/2 sum e^2), checked against torch autograd to 1e-12 and compared "
                                     "with the article's published values; then gradient descent on a 2-2-1 "
                                     "network with matrix weights on XOR, every step checked the same way. "
                                     f"({ARTICLE[0].upper() + ARTICLE[1:]}.)")
    bp.add_argument("--activation", choices=("tanh", "sigmoid"), default="tanh", help="2-2-1 hidden activation (default: tanh)")
    bp.add_argument("--lr", type=float, default=0.2, help="2-2-1 learning rate > 0 (default: 0.2)")
    bp.add_argument("--steps", type=int, default=500, help="2-2-1 gradient steps, >= 1 (default: 500)")
    bp.add_argument("--seed", type=int, default=0, help="2-2-1 weight initialisation seed (default: 0)")
    bp.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    bp.set_defaults(func=backprop_main)

    fm = cmds.add_parser("first-model", help="the article's first training script, corrected, on XOR and a separable set",
                         description="The article's first training script: Linear(2,2) -> ReLU -> Linear(2,1), "
                                     "Adam lr 0.001, 100 epochs, BCEWithLogitsLoss, saved with safetensors; then how "
                                     "many of --seeds seeds reach 100% accuracy, for this configuration and for the "
                                     f"reliable one. ({ARTICLE[0].upper() + ARTICLE[1:]}.)")
    fm.add_argument("--dataset", choices=("xor", "linear", "both"), default="both", help="dataset (default: both)")
    fm.add_argument("--seed", type=int, default=0, help="seed of the run whose epochs are shown (default: 0)")
    fm.add_argument("--hidden", type=int, default=2, help="hidden width (default: 2, the article's)")
    fm.add_argument("--lr", type=float, default=0.001, help="Adam learning rate (default: 0.001, the article's)")
    fm.add_argument("--epochs", type=int, default=100, help="epochs (default: 100, the article's)")
    fm.add_argument("--batch-size", type=int, default=8, help="examples per step (default: 8)")
    fm.add_argument("--seeds", type=int, default=20, help="seeds in the reliability study, 0 to skip (default: 20)")
    fm.add_argument("--search", action="store_true", help="also run the grid search over hidden x lr x epochs on XOR (~30 s)")
    fm.add_argument("--out", help="folder for model.safetensors and log.jsonl per dataset (default: a new temp folder)")
    fm.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch table")
    fm.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    fm.set_defaults(func=first_model_main)


def gradient_descent_main(args: argparse.Namespace) -> int:
    from guimo.principles.gradient_descent import gradient_descent
    from guimo.principles.tables import gradient_descent_tables, print_tables

    r = gradient_descent(x=args.x, y=args.y, lr=args.lr, steps=args.steps, tolerance=args.tolerance, w0=args.w0)
    if args.json:
        return _print_json(r)
    print_tables(gradient_descent_tables(r, all_rows=args.all_rows))
    return 0


def backprop_main(args: argparse.Namespace) -> int:
    from guimo.principles.backprop import article_backprop
    from guimo.principles.mlp import mlp_backprop
    from guimo.principles.tables import article_tables, mlp_tables, print_tables

    from guimo.principles.threads import single_thread

    with single_thread():
        article = article_backprop()
        mlp = mlp_backprop(activation=args.activation, lr=args.lr, steps=args.steps, seed=args.seed)
    if args.json:
        return _print_json({"article": article, "mlp": mlp})
    print_tables(article_tables(article) + mlp_tables(mlp))
    return 0


def first_model_main(args: argparse.Namespace) -> int:
    import tempfile
    from contextlib import ExitStack

    from guimo.pipeline.progress import Progress
    from guimo.principles.first_model import DATASETS, FirstModelConfig, first_model_report
    from guimo.principles.tables import epoch_table, print_tables, search_table, seed_table
    from guimo.principles.threads import single_thread

    config = FirstModelConfig(hidden=args.hidden, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size).validate()
    datasets = DATASETS if args.dataset == "both" else (args.dataset,)
    out = args.out or tempfile.mkdtemp(prefix="guimo-first-model-")
    quiet = args.quiet or args.json
    with single_thread(), Progress(quiet=quiet) as progress, ExitStack() as bars:
        tasks = {}

        def on_epoch(name: str, epoch: int, loss: float, acc: float) -> None:
            if name not in tasks:
                tasks[name] = bars.enter_context(progress.task(name, total=config.epochs))
            tasks[name].update(completed=epoch, info=f"loss {loss:.4f}  accuracy {acc:.1%}")

        def on_study(done: int, total: int) -> None:
            if "seeds" not in tasks:
                tasks["seeds"] = bars.enter_context(progress.task("seed study", total=total))
            tasks["seeds"].update(completed=done, total=total)

        report = first_model_report(datasets, args.seed, config, args.seeds, out, args.search, on_epoch, on_study)
    if args.json:
        return _print_json(report)
    tables = [] if args.quiet else [epoch_table(r) for r in report.runs]
    if report.studies:
        tables.append(seed_table(report.studies))
    if report.search_rows:
        tables.append(search_table(report.search_rows))
    print_tables(tables)
    print(f"models and logs saved under {out}")
    return 0


def _print_json(obj) -> int:
    import dataclasses
    import json

    def default(o):
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)
        return str(o)

    print(json.dumps(dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj, indent=2, default=default))
    return 0
