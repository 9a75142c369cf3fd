"""`guimo run [SCENARIO]` — the six stages into a run directory."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

STAGE_NAMES = ("collect", "preprocess", "init", "train", "evaluate", "optimize")


def register(sub: argparse._SubParsersAction) -> None:
    from guimo.scenarios import DEFAULT, SCENARIOS

    p = sub.add_parser(
        "run",
        help="run the six-stage pipeline for a scenario",
        description=(
            "Run collect -> preprocess -> init -> train -> evaluate -> optimize into a run directory. "
            "Re-running the same command resumes (finished stages are skipped, training continues "
            "from its last checkpoint); re-running it with other settings is refused, naming each changed key, "
            "unless --from names the first stage they change. A missing --data path stops before any run folder "
            f"is made. Scenarios: {', '.join(SCENARIOS)}."
        ),
    )
    p.add_argument("scenario", nargs="?", default=DEFAULT, help=f"scenario name (default: {DEFAULT})")
    p.add_argument("--data", help="data source: a local path or format-specific spec (default: the embedded data)")
    p.add_argument("--faq", metavar="FAQ", help="support only: build an FAQ answerer from FAQ (JSONL {id, question, answer, "
                                                "queries?} or StackFAQ XML) instead of an intent classifier; the same as "
                                                "`guimo run faq --data FAQ`")
    p.add_argument("--config", help="TOML/YAML/JSON config file (applied before --set)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. train.lr=3e-4, or load a preset, e.g. model=small (repeatable)")
    p.add_argument("--from", dest="from_stage", choices=STAGE_NAMES,
                   help="re-run from this stage using earlier artifacts, with the run's own config; --set may change "
                        "keys this stage and later ones read (e.g. --from train --set train.lr=...), not earlier ones")
    p.add_argument("--to", dest="to_stage", choices=STAGE_NAMES, help="stop after this stage")
    p.add_argument("--out", help="run directory (default: runs/<scenario>-<timestamp>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary table")
    p.add_argument("--show-config", action="store_true", help="print the resolved config and the valid keys, then exit")
    p.set_defaults(func=main)


def resolve_config(scenario, config_file: str | None, overrides: list[str], data: str | None, base=None):
    """Defaults (or ``base``) <- config file <- --data <- --set, type-checked at each step."""
    from guimo.config import apply_overrides, load_file, merge

    cfg = base if base is not None else scenario.config_cls()
    if config_file:
        cfg = merge(cfg, load_file(config_file), scenario.presets)
    if data:
        cfg = apply_overrides(cfg, [f"data.path={data}"])
    return apply_overrides(cfg, overrides, scenario.presets)


def user_keys(scenario, cfg, args: argparse.Namespace) -> set[str]:
    """The config keys this command sets (file, --data, --set), plus those an earlier command on the
    same run folder set (kept in its manifest): a scenario chooses only the others from the data."""
    from pathlib import Path

    from guimo.config import explicit_keys, load_file
    from guimo.io import read_json

    keys = explicit_keys(cfg, load_file(args.config) if args.config else {}, args.overrides, scenario.presets)
    if args.data:
        keys.add("data.path")
    manifest = Path(args.out) / "manifest.json" if args.out else None
    if manifest is not None and manifest.is_file():
        keys.update(read_json(manifest).get("set_keys", []))
    return keys


def stored_config(scenario, name: str, out: str | None, from_stage: str):
    """The config of the existing run ``out``, to re-run it ``--from`` a stage.

    A config that no longer parses (written by another guimo version, or edited) is an error: the
    defaults in its place would silently re-run the later stages with other settings.
    """
    from pathlib import Path

    from guimo.config import from_dict
    from guimo.errors import GuimoError
    from guimo.pipeline.rundir import MANIFEST, RunDir

    if not out:
        raise GuimoError(f"--from {from_stage} re-runs part of an existing run: name it with --out RUN")
    if not (Path(out) / MANIFEST).exists():
        return None  # run_pipeline says what is missing (no run there, or not its earlier stages)
    run = RunDir.open(out)
    if run.scenario != name:
        raise GuimoError(f"{out} holds a '{run.scenario}' run, not '{name}'")
    try:
        return from_dict(scenario.config_cls, run.config)
    except GuimoError as e:
        raise GuimoError(f"{run.path / MANIFEST}: its config does not fit this guimo's '{name}' config ({e}); "
                         f"re-run it from scratch into a new --out with the settings you want") from None


def main(args: argparse.Namespace) -> int:
    import json

    from guimo import scenarios
    from guimo.config import to_dict, valid_keys
    from guimo.pipeline.runner import run_pipeline

    if args.faq:  # `guimo run support --faq F`: the support desk's FAQ answerer is the faq scenario
        from guimo.errors import GuimoError

        if args.scenario != "support" or args.data:
            raise GuimoError("--faq goes with `guimo run support` and without --data: guimo run support --faq faq.jsonl")
        args.scenario, args.data = "faq", args.faq
    scenario = scenarios.get(args.scenario)
    base = None
    if args.from_stage:  # re-running part of an existing run keeps its config; --set changes it
        base = stored_config(scenario, args.scenario, args.out, args.from_stage)
    cfg = resolve_config(scenario, args.config, args.overrides, args.data, base)
    set_keys = user_keys(scenario, cfg, args)
    if args.show_config:
        print(json.dumps(to_dict(cfg), indent=2))
        print("valid keys:", ", ".join(valid_keys(cfg)), file=sys.stderr)
        return 0
    from guimo.pipeline.runner import join_process_group
    from guimo.train import distributed

    dist, _ = join_process_group(cfg)  # under torchrun: every rank must use rank 0's run path
    try:
        out = distributed.broadcast_object(args.out or f"runs/{args.scenario}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
        run = run_pipeline(args.scenario, cfg, out, from_stage=args.from_stage, to_stage=args.to_stage, quiet=args.quiet,
                           set_keys=set_keys)
    finally:
        distributed.shutdown()
    if not args.quiet and dist.is_main:
        from guimo.cli.summary import print_summary

        print_summary(run)
    return 0
