"""The README's tour runs as written: every command line in its ``bash`` block, in order.

The commands run in a fresh folder laid out like a checkout (``bench/`` linked in, ``../shared``
beside it), with ``.venv/bin`` first on PATH and a private ledger (``XDG_DATA_HOME``), so a line
that only works on the author's machine fails here. ``RULES`` says, for every README command,
how the test runs it:

- run it, in the default suite with ``small`` settings appended (documented overrides that make
  a minutes-long training take seconds), and exactly as written under ``-m slow``;
- or skip it, with the reason (minutes of training, a GPU, a PostgreSQL server), and check what
  can be checked in a second: its flags parse (``guimo``'s own argument parser), its config keys
  and files resolve (``guimo run ... --show-config``), its ``../shared/data`` paths exist.

A README command that no rule matches, or that two rules match, fails the test; so does a rule
that matches no command. ``guimo serve ... &`` starts in the background on a free port (``8000``
in the README is replaced everywhere), ``NAME=$(...)`` sets a variable for the later lines, and
``kill %1`` stops the server, which must exit cleanly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TOUR_HEADING = "## A short tour of the CLI"
PORT_IN_README = "8000"
COMMAND_TIMEOUT_S = 1800  # one command; a loaded shared machine runs the as-written trainings several times slower

# Small settings for the default suite: the embedded data and models shrunk so that each training
# takes seconds on one busy core. The slow run (`make test-slow`) drops them.
SMALL_RECOMMEND = ("--set data.generator.users=1500 --set data.generator.interactions=60000 --set train.max_steps=30 --set train.batch_size=32 "
                   "--set train.eval_every=30 --set train.checkpoint_every=30")
SMALL_LM = ("--set model=nano --set data.max_bytes=300000 --set data.vocab_size=512 --set data.eval_tokens=5000 "
            "--set train.max_steps=30 --set train.eval_every=15 --set train.checkpoint_every=15 --set train.warmup_steps=5")
# the text classifiers (tests/scenarios/test_support.py's and test_categorize.py's tiny settings): ~16 s of CPU each
SMALL_TEXT = ("--set train.max_steps=36 --set train.batch_size=16 --set train.warmup_steps=4 --set train.eval_every=12 "
              "--set train.checkpoint_every=0 --set train.lr=3e-3 --set 'eval.baselines=[\"tfidf_svm\"]'")
SMALL_SUPPORT = f"--set generator.per_intent=24 --set generator.out_of_scope=60 --set model.max_len=24 {SMALL_TEXT}"
SMALL_CATEGORIZE = f"--set generator.products=80 {SMALL_TEXT}"
SMALL_SEARCH = "--set train.max_steps=6 --set train.eval_every=6 --set train.checkpoint_every=6 --set train.warmup_steps=2 --set model.max_length=64"
# the assistant's NLU from scratch on 3,000 generated commands, for 300 steps (~25 s of one core): the tour checks that
# every assistant command answers; tests/scenarios/test_assistant.py measures what 1,000 steps learn
SMALL_ASSISTANT = ("--set init.pretrained=none --set model=scratch_small --set model.max_len=32 --set generator.n=3000 "
                   "--set generator.ood=200 --set train.max_steps=300 --set train.lr=2e-3 --set train.warmup_steps=20 "
                   "--set train.eval_every=150 --set train.checkpoint_every=0 --set optimize.quantize_tolerance=0.5")
# the tabular scenarios' tiny preset for a few dozen steps (seconds)
SMALL_TABULAR = "--set model=tiny --set train.max_steps=60 --set train.eval_every=20"
SMALL_FAQ = "--set train.max_steps=6 --set train.eval_every=6 --set train.checkpoint_every=6 --set train.warmup_steps=2 --set model.max_len=64"


@dataclass(frozen=True)
class Command:
    line: int  # 1-based line in README.md where the command starts
    text: str  # the command, continuation lines joined, comments stripped
    paragraph: int = 0  # the tour's blank-line-separated paragraph it stands in (0, 1, ...)


@dataclass
class Rule:
    """How the test treats the README commands that ``pattern`` (a regex) matches in full.

    ``small``: extra arguments appended in the default suite. ``slow_only``: why the default suite
    skips it (it runs, as written, under ``-m slow``). ``too_long``: why the slow run skips it (the
    default suite runs it with ``small``). ``skip``: why no test runs it at all. ``expect``: a check
    of the command's stdout.
    """

    pattern: str
    small: str = ""
    slow_only: str | None = None
    too_long: str | None = None
    skip: str | None = None
    expect: Callable[..., None] | None = None  # (stdout) or (stdout, the tour's folder)
    matched: list[Command] = field(default_factory=list)


def _json_lines(out: str) -> list[dict]:
    return [json.loads(ln) for ln in out.splitlines() if ln.strip().startswith("{")]


def expect_known_history(out: str) -> None:
    (rec,) = _json_lines(out)
    assert len(rec["items"]) == 10 and rec["unknown_items"] == [], rec  # the README's ids exist in the data


def expect_user(out: str) -> None:
    (rec,) = _json_lines(out)
    assert rec["user"] == "u00042" and len(rec["items"]) == 5, rec


def expect_answer(out: str) -> None:
    body = json.loads(out)
    assert "error" not in body, body


def expect_recommendations(out: str) -> None:
    body = json.loads(out)
    assert "error" not in body and len(body["data"][0]["items"]) == 5 and body["data"][0]["unknown_items"] == [], body


def expect_usage(out: str) -> None:
    assert "my-lm" in out and "recommend" in out, out


def expect_hybrid_hits(out: str) -> None:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 3 and "virtual machine" in lines[0], out  # the top hit is the virtual machine's page


def expect_filtered(out: str) -> None:
    hits = json.loads(out)
    hits = hits.get("hits", hits) if isinstance(hits, dict) else hits
    assert hits and all(h["metadata"]["service"] == "Kubernetes cluster" for h in hits), out


def expect_two_labels(out: str) -> None:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 2 and all("confidence" in ln and "out_of_scope" in ln for ln in lines), out


def expect_faq(out: str) -> None:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 2 and "refund" in lines[0].lower() and lines[1].startswith("no answer"), out  # an answer, then none


def expect_classifications(out: str) -> None:
    body = json.loads(out)
    assert "error" not in body and len(body["data"]) == 2, body
    assert all({"label", "confidence", "out_of_scope"} <= set(c) for c in body["data"]), body


def expect_embedding(out: str) -> None:
    body = json.loads(out)
    assert "error" not in body and len(body["data"][0]["embedding"]) == 384, body


def expect_refund_first(out: str) -> None:
    body = json.loads(out)
    assert "error" not in body, body
    assert json.dumps(body).count('"id": "1"') >= 1 and '"id": "2"' not in json.dumps(body), body  # k=1: the refund document


def expect_turn(out: str) -> None:
    assert "Traceback" not in out and out.strip(), out  # a table of commands, actions, states and the reply


def expect_json_turn(out: str) -> None:
    (turn,) = _json_lines(out)
    assert turn["transcript"] and turn["reply"] and turn["asr"]["mode"], turn


def expect_assistant(out: str) -> None:
    body = json.loads(out)
    assert "error" not in body and body.get("reply"), body


RULES: list[Rule] = [
    Rule(r"guimo run --out runs/recommend", small=SMALL_RECOMMEND),
    Rule(r"guimo recommend runs/recommend --history \S+ --k 10", expect=expect_known_history),
    Rule(r"guimo recommend runs/recommend --user u00042 --k 5", expect=expect_user),
    Rule(r"printf .* > users\.jsonl"),
    Rule(r"guimo recommend runs/recommend --batch users\.jsonl --out recs\.jsonl"),
    Rule(r"guimo run recommend --set model\.score_precision=bf16 --out runs/recommend-bf16",
         slow_only="a second training of the flagship, the first line with one key changed"),
    Rule(r"guimo run recommend --data \.\./shared/data/seqrec/Beauty_bert4rec\.txt .*--out runs/beauty",
         skip="with --data the budget is epochs with early stopping: 2,054 steps on Beauty, ~45 min here "
              "(500 steps took 638 s), and with data.fraction=0.1 the baselines' evaluation alone took 72 s"),
    Rule(r"guimo run recommend --config bench/recommend_beauty\.toml --out runs/beauty-recipe",
         skip="the tuned Beauty recipe trains for ~10 min"),
    Rule(r"guimo run lm --set model=tiny --set train\.max_steps=200 --out runs/my-lm", small=SMALL_LM),
    Rule(r"guimo run lm --show-config"),
    Rule(r"printf .* > my\.toml"),
    Rule(r"guimo run lm --config my\.toml --set train\.lr=1e-3 --out runs/my-lm-lr", small=SMALL_LM),
    Rule(r"guimo run lm --data \.\./shared/data/corpus/en/tinyshakespeare/input\.txt --set model=small .*--out runs/shakespeare",
         small="--set model=nano --set data.vocab_size=512 --set data.eval_tokens=5000 --set train.max_steps=20 --set train.eval_every=20",
         too_long="2000 steps of the small preset: many minutes on one core (not timed here)"),
    Rule(r"guimo run lm --data \S+ --set init\.pretrained=path/to/gpt2 .*",
         skip="needs a Hugging Face GPT-2 saved in a local folder; none ships with the repository or ../shared/data"),
    Rule(r"guimo run lm --out runs/my-lm --from evaluate"),
    Rule(r"guimo run lm --out runs/my-lm --from optimize .*", small="--set optimize.trials=2 --set optimize.trial_steps=20",
         too_long="20 Optuna trials of 200 steps each"),
    Rule(r"guimo runs", expect=lambda out: all(name in out for name in ("runs/my-lm", "runs/recommend"))),
    Rule(r"guimo show runs/my-lm", expect=lambda out: "runs/my-lm" in out),
    Rule(r"guimo generate runs/my-lm --prompt .*"),
    Rule(r"torchrun --nproc_per_node=2 -m guimo run lm .*--out runs/my-lm-ddp", small=SMALL_LM,
         slow_only="two training processes (29 s as written on a quiet machine); tests/train runs torchrun in the default suite"),
    Rule(r"guimo index create docs --demo cloud-docs"),
    Rule(r'guimo search docs "my virtual machine disk is full" --k 3', expect=expect_hybrid_hits),
    Rule(r'guimo search docs "resize" --mode bm25 --filter "service=Kubernetes cluster" --json', expect=expect_filtered),
    Rule(r"printf .* > kb\.jsonl"),
    Rule(r"guimo index add docs --data kb\.jsonl"),
    Rule(r"printf .* > queries\.jsonl"),
    Rule(r"guimo search docs --batch queries\.jsonl --out results\.jsonl"),
    Rule(r"guimo index delete docs kb1"),
    Rule(r"guimo run search --out runs/search", small=SMALL_SEARCH),
    Rule(r"guimo run search --data \.\./shared/data/scifact --out runs/scifact",
         skip="SciFact's 5,183 abstracts and 809 training queries: 20-40 min on 2 busy cores (bench/text_search.py)"),
    Rule(r"guimo index create tuned --demo cloud-docs --encoder runs/search"),
    Rule(r"guimo run support --out runs/support", small=SMALL_SUPPORT),
    Rule(r"guimo predict runs/support --text .*", expect=expect_two_labels),
    Rule(r"printf .* > tickets\.jsonl"),
    Rule(r"guimo predict runs/support --batch tickets\.jsonl --out tickets-labelled\.jsonl"),
    Rule(r"guimo run support --data \.\./shared/data/banking77 --out runs/banking77",
         skip="BANKING77's 10,003 training queries: a 25-min fine-tuning budget on 2 cores (bench/text_classify.py)"),
    Rule(r"guimo run faq --out runs/faq", small=SMALL_FAQ),
    Rule(r"guimo predict runs/faq --text .*", expect=expect_faq),
    Rule(r"guimo run support --faq \.\./shared/data/stackfaq --out runs/stackfaq",
         skip="StackFAQ's 719 entries and 1,249 rephrasings: a 10-min fine-tuning budget (bench/text_faq.py)"),
    Rule(r"guimo run categorize --out runs/categorize", small=SMALL_CATEGORIZE),
    Rule(r"guimo run categorize --data \.\./shared/data/pricerunner/\S+ --out runs/pricerunner",
         skip="PriceRunner's 35,311 titles: a 10-min fine-tuning budget and more (bench/text_categorize.py)"),
    Rule(r"guimo predict runs/categorize --text .*"),
    Rule(r"guimo scale support --data-fractions \S+ --out runs/scale-support",
         skip="four fine-tunings of MiniLM: 29.6 min at a load average of 14 (bench/scale_labels.py; tests/scale/test_text_curves.py runs a small one)"),
    Rule(r"guimo run assistant --out runs/assistant", small=SMALL_ASSISTANT),  # as written (make test-slow): MiniLM fine-tuned
    Rule(r'guimo assistant runs/assistant --text "turn off the kitchen lights and set the bedroom to 21 degrees"', expect=expect_turn),
    Rule(r'guimo assistant runs/assistant --text "打开客厅的灯"', expect=expect_turn),
    Rule(r"guimo assistant runs/assistant --wav \.\./shared/data/asr_smoke/\S+ --json", expect=expect_json_turn),
    Rule(r'guimo assistant runs/assistant --text "close the blinds" --dry-run --say reply\.wav',
         expect=lambda out, cwd: "Dry run" in out and (cwd / "reply.wav").stat().st_size > 1000),
    Rule(r"printf .* > cmds\.jsonl"),
    Rule(r"guimo assistant runs/assistant --batch cmds\.jsonl --out turns\.jsonl"),
    Rule(r"printf .* \| guimo assistant runs/assistant --interactive"),
    Rule(r"guimo run assistant --data \.\./shared/data/snips --out runs/snips",
         skip="SNIPS's 13,084 training utterances: a MiniLM fine-tuning of many minutes (bench/assistant.py)"),
    Rule(r"guimo run health --out runs/health", small=SMALL_TABULAR),
    Rule(r"guimo run health --set data\.dataset=diabetes --out runs/diabetes", small=SMALL_TABULAR,
         slow_only="a second tabular training; tests/scenarios/test_health.py runs the regression task"),
    Rule(r"guimo run fraud --out runs/fraud", small=f"--set data.rows=3000 --set data.fraud_rate=0.05 --set train.batch_size=64 {SMALL_TABULAR}",
         slow_only="a 200 s training budget as written; tests/scenarios/test_fraud.py runs a small one"),
    Rule(r"guimo run credit --data \.\./shared/data/german_credit/german\.csv --out runs/credit", small=SMALL_TABULAR,
         slow_only="tests/scenarios/test_credit.py runs German credit small"),
    Rule(r"guimo run health --set privacy\.epsilon=3 --out runs/health-dp", small=SMALL_TABULAR),
    Rule(r"head -n 6 runs/health/data/raw\.csv > rows\.csv"),
    Rule(r"guimo explain runs/health --row rows\.csv --index 0"),
    Rule(r"guimo predict runs/health --batch rows\.csv --out scored\.csv --explain --top 3"),
    Rule(r"guimo scale credit --data \S+ --data-fractions \S+ --out runs/scale-credit",
         skip="four trainings per share and size (tests/scale/test_tabular_curves.py runs a small curve)"),
    Rule(r"printf .* > customers\.csv"),
    Rule(r"guimo anonymize customers\.csv customers\.anon\.csv --names name --new-key anon\.key",
         expect=lambda out, cwd: "alice.smith@example.com" not in (cwd / "customers.anon.csv").read_text()),
    Rule(r"guimo anonymize customers\.csv customers\.masked\.csv --names name --mode mask",
         expect=lambda out, cwd: "4111 1111 1111 1112" in (cwd / "customers.masked.csv").read_text()  # fails Luhn: not a card
         and "4111 1111 1111 1111" not in (cwd / "customers.masked.csv").read_text()),
    Rule(r"KEY=\$\(guimo keys create .*\)"),
    Rule(r"ADMIN=\$\(guimo keys admin --name ops\)"),
    Rule(r"guimo serve runs/my-lm runs/recommend runs/support runs/assistant --encoder all-minilm-l6-v2 --console --port 8000 2> serve\.log &"),
    Rule(r"until curl -sf localhost:8000/readyz; do sleep 1; done"),
    Rule(r"curl -s localhost:8000/v1/completions .*", expect=expect_answer),
    Rule(r"curl -s localhost:8000/v1/recommendations .*", expect=expect_recommendations),
    Rule(r"curl -s localhost:8000/v1/classifications .*", expect=expect_classifications),
    Rule(r"curl -s localhost:8000/v1/embeddings .*", expect=expect_embedding),
    Rule(r"curl -s localhost:8000/v1/collections -H .*", expect=expect_answer),
    Rule(r"curl -s localhost:8000/v1/collections/help/documents .*", expect=expect_answer),
    Rule(r"curl -s localhost:8000/v1/search .*", expect=expect_refund_first),
    Rule(r"curl -s localhost:8000/v1/assistant -H \S+ \S+ \S+ --json .*", expect=expect_assistant),
    Rule(r"curl -s localhost:8000/v1/assistant -H \S+ \S+ \S+ -F model=assistant -F file=@\S+", expect=expect_assistant),
    Rule(r'curl -s -o /dev/null -w "%\{http_code\}\\n" localhost:8000/console/sign-in', expect=lambda out: out.strip() == "200"),
    Rule(r"guimo usage --tenant acme", expect=expect_usage),
    Rule(r"kill %1"),
    Rule(r"guimo serve runs/my-lm --ray .*", skip="needs the 'ray' extra and a PostgreSQL server (tests/serve/test_ray.py runs Ray Serve)"),
    Rule(r"guimo scale (lm|recommend) --budget 30m --out \S+", skip="a sweep runs for its budget, 30 min (tests/scale run small sweeps)"),
    Rule(r"guimo scale lm --config bench/scale_lm_shakespeare\.toml .*", skip="a benchmark's pre-registered design: 21.9 min when it was run"),
    Rule(r"guimo scale lm --budget 30m --ray .*", skip="needs the 'ray' extra; tests/scale's Ray test runs a sweep on a local Ray cluster"),
    Rule(r"guimo scale fit runs/scale(-repeat)?( .*)?", skip="needs the sweep above (tests/scale fit small sweeps)"),
    Rule(r"guimo scale plan .*", skip="needs the sweep above (tests/scale plan from small fits)"),
    Rule(r"guimo economics --throughput bench/results/serve_load\.json"),
    Rule(r"guimo principles backprop"),
]


# -- reading the README ---------------------------------------------------------------------------


def strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment (a ``#`` after whitespace, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def tour_commands(text: str) -> list[Command]:
    """The commands of the first ``bash`` block after the tour's heading, in order."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip() == TOUR_HEADING)
    begin = next(i for i in range(start, len(lines)) if lines[i].strip() == "```bash") + 1
    commands: list[Command] = []
    i, paragraph = begin, 0
    while lines[i].strip() != "```":
        if not lines[i].strip():
            paragraph += 1
        code = strip_comment(lines[i])
        first = i
        while code.endswith("\\"):  # continuation lines
            i += 1
            code = code[:-1].rstrip() + " " + strip_comment(lines[i]).strip()
        if code.strip():
            if lines[first][:1].isspace():
                raise AssertionError(f"README.md:{first + 1}: an indented line that is not a comment: {lines[first]!r}")
            commands.append(Command(first + 1, code.strip(), paragraph))
        i += 1
    return commands


WRITES = (r"--out\s+(\S+)", r">\s*(\S+)", r"--new-key\s+(\S+)", r"--say\s+(\S+)")  # what a command leaves for later lines


def tour_chains(commands: list[Command], *, reads: Callable[[Command], bool] = lambda c: True) -> list[list[Command]]:
    """The tour cut into chains that share nothing: paragraphs joined when one reads what another writes.

    A paragraph reads a path another one writes (``--out runs/x``, ``> file``) when the path appears in it as a whole
    word, so ``guimo serve runs/my-lm runs/recommend ...`` joins the paragraphs that train those runs. Each chain runs in
    order in its own folder, and the chains run on different test workers: the tour's wall time is its longest chain.
    A command for which ``reads`` is false reads nothing (``run_tour`` passes the commands no test runs: their flags
    are only parsed). Returned in README order of their first commands.
    """
    paragraphs = sorted({c.paragraph for c in commands})
    parent = {p: p for p in paragraphs}

    def root(p: int) -> int:
        while parent[p] != p:
            p = parent[p]
        return p

    for writer in commands:
        for pattern in WRITES:
            for path in re.findall(pattern, writer.text):
                for reader in commands:
                    if reader.paragraph != writer.paragraph and reads(reader) and re.search(rf"(?<![\w./-]){re.escape(path)}(?![\w.-])", reader.text):
                        parent[root(reader.paragraph)] = root(writer.paragraph)
    chains: dict[int, list[Command]] = {}
    for c in commands:
        chains.setdefault(root(c.paragraph), []).append(c)
    return list(chains.values())


def server_chain(chains: list[list[Command]]) -> int:
    """Index of the chain that starts the server (the one chain with a ``&`` line)."""
    (i,) = [i for i, chain in enumerate(chains) if any(c.text.endswith("&") for c in chain)]
    return i


def match_rules(commands: list[Command], *, stale_ok: bool = False) -> list[tuple[Command, Rule]]:
    """Each command with its one rule; fails on a command with no rule or two, and (unless ``stale_ok``: a part of the
    tour) on a rule that matches nothing."""
    for rule in RULES:
        rule.matched = []
    out, problems = [], []
    for cmd in commands:
        hits = [r for r in RULES if re.fullmatch(r.pattern, cmd.text)]
        if len(hits) != 1:
            why = "no rule in tests/test_readme.py RULES" if not hits else f"{len(hits)} rules: {[r.pattern for r in hits]}"
            problems.append(f"README.md:{cmd.line}: {cmd.text!r} matches {why}; add how the test runs it, or why it cannot")
            continue
        hits[0].matched.append(cmd)
        out.append((cmd, hits[0]))
    problems += [] if stale_ok else [f"rule {r.pattern!r} matches no README command (stale: remove it)" for r in RULES if not r.matched]
    assert not problems, "\n".join(problems)
    return out


def test_every_tour_command_has_a_rule():
    """Runs without the shared data and in a second: a README edit without a rule fails here first."""
    commands = tour_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 20
    match_rules(commands)


def test_strip_comment_keeps_hashes_inside_quotes():
    assert strip_comment("guimo x --prompt '# not a comment'  # a comment") == "guimo x --prompt '# not a comment'"
    assert strip_comment('echo "a#b" # c') == 'echo "a#b"'
    assert strip_comment("curl a#b") == "curl a#b"


# -- checks for the commands no test runs ---------------------------------------------------------


def check_skipped(cmd: Command, cwd: Path, env: dict[str, str]) -> None:
    """What can be checked in a second: the flags parse, ``guimo run``'s config resolves, data paths exist."""
    argv = shlex.split(cmd.text)
    for arg in argv:
        for part in arg.split("="):
            if part.startswith("../shared/data/") and SHARED_DATA.exists():
                assert (cwd / part).exists(), f"README.md:{cmd.line}: {part} does not exist"
    if argv[0] == "torchrun" and "guimo" in argv:  # torchrun ... -m guimo ARGS: check ARGS as guimo's
        argv = argv[argv.index("guimo"):]
    if argv[0] != "guimo":
        return
    from guimo.cli import build_parser

    try:
        build_parser().parse_args(argv[1:])
    except SystemExit as e:
        raise AssertionError(f"README.md:{cmd.line}: guimo does not accept {cmd.text!r} (see the usage message above)") from e
    if argv[1] == "run":  # the config resolves: file, presets and every --set key (in this process: no second torch import)
        import contextlib
        import io

        from guimo.cli import main

        err, here = io.StringIO(), Path.cwd()
        try:
            os.chdir(cwd)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                rc = main([*argv[1:], "--show-config"])
        finally:
            os.chdir(here)
        assert rc == 0, f"README.md:{cmd.line}: {cmd.text} --show-config exited {rc}:\n{err.getvalue()[-3000:]}"


# -- docs/api.md: one real request and answer per route --------------------------------------------

API_DOC = ROOT / "docs" / "api.md"
SHORT_LIST = 4  # numbers kept of a long vector in the page
SHORT_TEXT_LINES = 12  # lines kept of a long text answer (the metrics)


@dataclass
class ApiExample:
    line: int  # 1-based line of the curl command in docs/api.md
    command: str
    answer: str | None  # the answer block's text, None when the page has none yet
    kind: str | None  # "json" or "text"
    span: tuple[int, int] | None  # 0-based [first, last] lines of the answer block, fences included


def api_examples(text: str) -> list[ApiExample]:
    """Each one-line ```bash block holding a curl command, with the answer block right after it."""
    lines, out = text.splitlines(), []
    for i in range(len(lines) - 2):
        if lines[i].strip() == "```bash" and lines[i + 1].startswith("curl ") and lines[i + 2].strip() == "```":
            j = i + 3
            while j < len(lines) and not lines[j].strip():
                j += 1
            kind = lines[j].strip()[3:] if j < len(lines) and lines[j].strip() in ("```json", "```text") else None
            if kind is None:
                out.append(ApiExample(i + 2, lines[i + 1], None, None, None))
                continue
            end = next(k for k in range(j + 1, len(lines)) if lines[k].strip() == "```")
            out.append(ApiExample(i + 2, lines[i + 1], "\n".join(lines[j + 1 : end]), kind, (j, end)))
    return out


def _shorten(value):
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > SHORT_LIST and all(isinstance(v, (int, float)) for v in value):
            return value[:SHORT_LIST]
        return [_shorten(v) for v in value]
    return value


def render_answer(raw: str) -> tuple[str, str]:
    """("json", pretty JSON with long vectors cut) or ("text", the first lines)."""
    try:
        return "json", _dump(_shorten(json.loads(raw)))
    except ValueError:
        lines = raw.replace("\r\n", "\n").strip().splitlines()
        return "text", "\n".join(lines[:SHORT_TEXT_LINES])


def _dump(value, indent: str = "") -> str:
    """JSON with one key per line, but lists of plain values (and small objects) on one line."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or len(flat) <= 72 or (isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value)):
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {_dump(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    return "[\n" + ",\n".join(inner + _dump(v, inner) for v in value) + "\n" + indent + "]"


def shape(value):
    """The structure of a JSON value: keys, element shapes and types, not the numbers."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    return "number" if isinstance(value, (int, float)) else "string"


def api_shape(value):
    """``shape``, except that an assistant turn's commands, actions and states are what the model understood (data,
    not the route's shape: a tiny tour model may parse a command differently from the documented run): only its
    top-level keys count."""
    if isinstance(value, dict) and value.get("object") == "assistant.turn":
        return sorted(value)
    return shape(value)


def call_example(example: ApiExample, port: str, cwd: Path, env: dict[str, str]) -> str:
    cmd = example.command.replace(f"localhost:{PORT_IN_README}", f"localhost:{port}")
    r = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout, f"docs/api.md:{example.line}: {cmd} exited {r.returncode}: {r.stderr[-2000:]}"
    return r.stdout


def check_api_doc(port: str, cwd: Path, env: dict[str, str]) -> None:
    """Every example of docs/api.md against the tour's server: the answer keeps the documented shape."""
    examples = api_examples(API_DOC.read_text(encoding="utf-8"))
    assert len(examples) >= 12, f"docs/api.md has {len(examples)} curl examples"
    problems = []
    for ex in examples:
        if ex.answer is None:
            problems.append(f"docs/api.md:{ex.line}: no answer block (run python -m tests.test_readme --api-doc)")
            continue
        kind, got = render_answer(call_example(ex, port, cwd, env))
        if kind != ex.kind:
            problems.append(f"docs/api.md:{ex.line}: a {kind} answer, documented as {ex.kind}:\n{got[:1500]}")
        elif kind == "json" and api_shape(json.loads(got)) != api_shape(json.loads(ex.answer)):
            problems.append(f"docs/api.md:{ex.line}: the answer's shape changed:\n{got[:1500]}")
        elif kind == "text" and got.split(maxsplit=1)[:1] != ex.answer.split(maxsplit=1)[:1]:
            problems.append(f"docs/api.md:{ex.line}: the answer starts differently:\n{got[:1500]}")
    assert not problems, "\n".join(problems)


def test_api_doc_covers_every_route_with_an_answer():
    """Every route declared under guimo/serve/api/routes has its section in docs/api.md, and every
    curl example there has its recorded answer (the tour replays them against a live server)."""
    text = API_DOC.read_text(encoding="utf-8")
    declared = set()
    for path in sorted((ROOT / "guimo" / "serve" / "api" / "routes").glob("*.py")):
        declared |= {(m.upper(), route) for m, route in re.findall(r'@router\.(get|post|put|delete)\("([^"]+)"', path.read_text(encoding="utf-8"))}
    assert len(declared) >= 10, declared
    headings = {tuple(h.split(" ", 1)) for h in re.findall(r"^## ((?:GET|POST|PUT|DELETE) /\S+)", text, flags=re.M)}
    headings |= {tuple(h.split(" ", 1)) for h in re.findall(r"^## (?:GET|POST) \S+ and ((?:GET|POST) /\S+)", text, flags=re.M)}
    assert declared <= headings, f"docs/api.md has no section for {sorted(declared - headings)}"
    examples = api_examples(text)
    assert [ex.line for ex in examples if ex.answer is None] == [], "curl examples without an answer block"
    for ex in examples:
        if ex.kind == "json":
            json.loads(ex.answer)


def write_api_doc(port: str) -> None:
    """Rewrite docs/api.md's answer blocks from a live server (KEY in the environment)."""
    from guimo.io import atomic_write_text

    lines = API_DOC.read_text(encoding="utf-8").splitlines()
    examples = api_examples("\n".join(lines))
    answers = [render_answer(call_example(ex, port, Path.cwd(), dict(os.environ))) for ex in examples]  # in page order
    for ex, (kind, got) in reversed(list(zip(examples, answers))):  # edited from the end, so earlier line numbers hold
        block = ["", f"```{kind}", *got.splitlines(), "```"]
        if ex.span is None:
            lines[ex.line + 1 : ex.line + 1] = block
        else:
            lines[ex.span[0] - 1 : ex.span[1] + 1] = block
    atomic_write_text(API_DOC, "\n".join(lines) + "\n")


# -- running the tour ---------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checkout_layout(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder that looks like a fresh checkout to the tour: bench/ linked in, ../shared beside it."""
    cwd = tmp_path / "guimo"
    cwd.mkdir()
    (cwd / "bench").symlink_to(ROOT / "bench")
    if SHARED_DATA.exists():
        (tmp_path / "shared").symlink_to(SHARED_DATA.parent)
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "XDG_DATA_HOME": str(tmp_path / "xdg"), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for name in [n for n in env if n.startswith("GUIMO_SERVE_")]:  # the server's settings come from the README's flags alone
        del env[name]
    return cwd, env


def require_curl() -> None:
    """The tour's HTTP lines use ``curl --json`` (curl >= 7.82, 2022): skip, saying so, where it is missing or older."""
    import shutil

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed; the README's HTTP lines use it")
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]
    if tuple(int(x) for x in re.findall(r"\d+", version)[:2]) < (7, 82):
        pytest.skip(f"curl {version} has no --json (7.82+); the README's HTTP lines use it")


def run_tour(tmp_path: Path, *, small: bool, chains: str = "all") -> dict[str, float]:
    """Run the README tour's commands in order; returns each run command's wall seconds (for the report).

    ``chains``: "all" (every command, one folder), "server" (the chain that starts the server, ``tour_chains``) or
    "others" (every other chain, each in a folder of its own)."""
    require_curl()
    commands = tour_commands(README.read_text(encoding="utf-8"))
    match_rules(commands)
    if chains == "all":
        return run_chain(tmp_path, commands, small=small)
    rules = dict(match_rules(commands))
    parts = tour_chains(commands, reads=lambda c: rules[c].skip is None)
    served = server_chain(parts)
    if chains == "server":
        return run_chain(tmp_path, parts[served], small=small)
    seconds: dict[str, float] = {}
    for i, chain in enumerate(parts):
        if i != served:
            folder = tmp_path / f"chain{i}"
            folder.mkdir()
            seconds.update(run_chain(folder, chain, small=small))
    return seconds


def run_chain(tmp_path: Path, chain: list[Command], *, small: bool) -> dict[str, float]:
    """Run ``chain``'s commands in order in a fresh checkout-like folder under ``tmp_path``."""
    commands = match_rules(chain, stale_ok=True)
    cwd, env = checkout_layout(tmp_path)
    port = str(free_port())
    server: subprocess.Popen | None = None
    seconds: dict[str, float] = {}
    try:
        for cmd, rule in commands:
            needs_data = "../shared/data" in cmd.text
            if rule.skip or (small and rule.slow_only) or (not small and rule.too_long) or (needs_data and not SHARED_DATA.exists()):
                check_skipped(cmd, cwd, env)
                continue
            text = cmd.text.replace(f"localhost:{PORT_IN_README}", f"localhost:{port}").replace(f"--port {PORT_IN_README}", f"--port {port}")
            if small and rule.small:
                text = f"{text} {rule.small}"
            started = time.monotonic()
            if m := re.fullmatch(r"([A-Z_]+)=\$\((.*)\)", text):  # NAME=$(command): a variable for the later lines
                out = _run(cmd, m.group(2), cwd, env)
                env[m.group(1)] = out.strip()
            elif text.endswith("&"):  # the server, in the background
                assert server is None, f"README.md:{cmd.line}: a second background command while one runs"
                server = subprocess.Popen(["bash", "-c", f"exec {text[:-1].strip()}"], cwd=cwd, env=env, start_new_session=True)
            elif text == "kill %1":
                assert server is not None, f"README.md:{cmd.line}: kill %1 with nothing in the background"
                check_api_doc(port, cwd, env)  # the HTTP reference, against the same server
                server.send_signal(signal.SIGTERM)
                rc = server.wait(timeout=120)
                # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit when the log says so
                clean = rc in (0, -signal.SIGTERM) and "stopped: queues drained, ledger flushed" in _tail(cwd / "serve.log")
                assert clean, f"README.md:{cmd.line}: the server exited {rc} on SIGTERM:\n{_tail(cwd / 'serve.log')}"
                server = None
            else:
                if server is not None and server.poll() is not None:
                    raise AssertionError(f"the server exited {server.returncode}:\n{_tail(cwd / 'serve.log')}")
                out = _run(cmd, text, cwd, env, timeout=120 if text.startswith("until curl") else COMMAND_TIMEOUT_S,
                           log=cwd / "serve.log" if server is not None else None)
                if rule.expect is not None:
                    try:
                        rule.expect(*((out, cwd) if rule.expect.__code__.co_argcount == 2 else (out,)))  # (stdout[, the tour's folder])
                    except (AssertionError, ValueError, KeyError) as e:
                        raise AssertionError(f"README.md:{cmd.line}: {text}\nunexpected output ({e!r}):\n{out[-3000:]}") from None
            seconds[cmd.text] = round(time.monotonic() - started, 1)
            print(f"{seconds[cmd.text]:7.1f} s  README.md:{cmd.line}: {text}", flush=True)  # shown with -s, or on a failure
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    return seconds


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else f"({path.name} was not written)"


def _run(cmd: Command, text: str, cwd: Path, env: dict[str, str], *, timeout: float = COMMAND_TIMEOUT_S, log: Path | None = None) -> str:
    try:
        r = subprocess.run(["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"README.md:{cmd.line}: {text}\ndid not finish in {timeout:.0f} s" + (f"\nserver log:\n{_tail(log)}" if log else "")) from None
    if r.returncode != 0:
        raise AssertionError(f"README.md:{cmd.line}: {text}\nexited {r.returncode}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-3000:]}"
                             + (f"\nserver log:\n{_tail(log)}" if log else ""))
    return r.stdout


@pytest.mark.timeout(1800)  # 5.0 min at a load average of 6 with #23's text lines (72 s at ~1 before them); pyproject's 600 s is for single tests
def test_readme_tour_runs_in_order_with_small_settings(tmp_path):
    """The default suite: the chain of the tour that ends at the server (its trainings, the server, every HTTP line)
    runs in order, each command that takes minutes with its small settings. The other chains run in order too, in
    tests/test_readme_chains.py, on another worker (they read nothing this chain writes: ``tour_chains``)."""
    seconds = run_tour(tmp_path, small=True, chains="server")
    print(json.dumps(seconds, indent=1))


def test_tour_chains_cover_the_tour_once_and_keep_the_served_runs_with_the_server():
    commands = tour_commands(README.read_text(encoding="utf-8"))
    rules = dict(match_rules(commands))
    chains = tour_chains(commands, reads=lambda c: rules[c].skip is None)
    assert sorted(c.line for chain in chains for c in chain) == [c.line for c in commands]  # each command once
    assert all([c.line for c in chain] == sorted(c.line for c in chain) for chain in chains)  # README order kept
    served = chains[server_chain(chains)]
    serve = next(c for c in served if c.text.endswith("&"))
    runs = re.findall(r"runs/[\w.-]+", serve.text)
    assert len(runs) >= 3
    for run in runs:  # the run that the server loads is trained in the server's chain
        assert any(f"--out {run}" in c.text for c in served), run
    assert len(chains) >= 2, "the tour is one chain: nothing runs beside it"
    assert "kill %1" in {c.text for c in served}
    # a made-up tour: a paragraph that reads another's run joins it; an unrelated one stays apart
    toy = [Command(1, "guimo run lm --out runs/a", 0), Command(2, "guimo run fraud --out runs/b", 1),
           Command(3, "guimo show runs/a-2", 2), Command(4, "guimo show runs/a", 3)]
    assert [[c.line for c in chain] for chain in tour_chains(toy)] == [[1, 4], [2], [3]]


@pytest.mark.slow
@pytest.mark.timeout(7200)  # the trainings as written: 11.5 min at a load average of 0.2-6, over 10 min for the flagship alone at 18
def test_readme_tour_runs_as_written(tmp_path):
    """`make test-slow`: the same tour without the small settings (each command as a user pastes it)."""
    seconds = run_tour(tmp_path, small=False)
    print(json.dumps(seconds, indent=1))


if __name__ == "__main__":  # python -m tests.test_readme --api-doc [PORT]: regenerate docs/api.md's answers
    import argparse

    parser = argparse.ArgumentParser(description="Rewrite docs/api.md's answers from a running `guimo serve` (KEY in the environment).")
    parser.add_argument("--api-doc", action="store_true", required=True)
    parser.add_argument("port", nargs="?", default=PORT_IN_README)
    write_api_doc(parser.parse_args().port)
