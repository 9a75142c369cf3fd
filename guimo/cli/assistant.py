"""`guimo assistant RUN` — talk to the smart-home assistant of an `assistant` run.

One input form per call: ``--text`` (repeatable), ``--wav`` (repeatable), ``--interactive`` (a
prompt loop on stdin; `quit`, `exit` or end of input stops it) or ``--batch IN.jsonl --out
OUT.jsonl`` (one ``{"text": ...}`` or ``{"wav": PATH}`` per line, a relative PATH read from IN's
folder). Each input is one turn through ``guimo.assistant.core.Assistant``: the transcript, the
parsed commands with confidences, the device actions, the devices' new states and the reply.
``--dry-run`` plans the actions without changing any device. Device states persist in a SQLite
file (``--state``; by default one per home under the user data directory).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

QUIT = {"quit", "exit", "q", "退出"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "assistant",
        help="run the smart-home voice assistant of an assistant run on text, speech or a batch",
        description=(
            "Parse typed or spoken smart-home commands with a finished `guimo run assistant` run, check them "
            "against the home (home.toml), apply them to the persisted device states and reply. Prints the "
            "transcript, the commands with their confidences, the actions, the new device states and the reply "
            "(--json: one JSON object per input)."
        ),
    )
    p.add_argument("run", help="run directory of a finished assistant run (guimo run assistant)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", action="append", help='an utterance, e.g. "turn off the kitchen lights" (repeatable)')
    what.add_argument("--wav", action="append", metavar="FILE", help="a spoken command, a WAV file (any rate; repeatable)")
    what.add_argument("--interactive", action="store_true", help="a prompt loop: one utterance per line; quit, exit or EOF ends it")
    what.add_argument("--batch", metavar="IN", help='JSONL input: one {"text": ...} or {"wav": PATH} per line (needs --out)')
    p.add_argument("--out", metavar="OUT", help="--batch: write one JSON turn per input line to OUT.jsonl")
    p.add_argument("--dry-run", action="store_true", help="plan the actions, but change no device")
    p.add_argument("--json", action="store_true", help="print one JSON object per input instead of the table")
    p.add_argument("--say", metavar="OUT.wav", help="also speak the reply into OUT.wav with espeak-ng (several turns: OUT-1.wav, OUT-2.wav, ...)")
    p.add_argument("--home", metavar="HOME.toml", help="the home's rooms and devices (default: the packaged example home)")
    p.add_argument("--state", metavar="PATH", help="the SQLite file of the device states (default: one per home in the user data directory)")
    p.add_argument("--quiet", action="store_true", help="print only the reply (with --json: unchanged)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from guimo.errors import GuimoError

    if args.batch and not args.out:
        raise GuimoError("--batch needs --out OUT.jsonl")
    if args.out and not args.batch:
        raise GuimoError("--out goes with --batch")
    if args.say and args.batch:
        raise GuimoError("--say speaks the replies of --text, --wav or --interactive, not of a --batch")
    if args.say:
        check_say(args.say)
    for wav in args.wav or ():
        if not Path(wav).is_file():
            raise GuimoError(f"{wav}: file not found")
    from guimo.assistant.core import Assistant

    assistant = Assistant.open(args.run, home_path=args.home, state_path=args.state)
    if args.batch:
        n = run_batch(assistant, args.batch, args.out, dry_run=args.dry_run)
        print(f"wrote {n} turns to {args.out}")
        return 0
    if args.interactive:
        return interactive(assistant, args, sys.stdin, sys.stdout)
    turns = (assistant.handle_texts(args.text, dry_run=args.dry_run) if args.text
             else [assistant.handle_audio(w, dry_run=args.dry_run) for w in args.wav])
    for i, turn in enumerate(turns):
        show(assistant, turn, args, sys.stdout)
        speak(turn, args.say, i, len(turns))
    return 0


def interactive(assistant, args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """One turn per line until quit/exit/EOF; a bad line prints its error and the loop goes on."""
    from guimo.errors import GuimoError

    tty = stdin.isatty()
    if tty and not args.json:
        print("Say something to the home (quit to stop).", file=stdout)
    n = 0
    while True:
        if tty:
            print("> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line or line.strip().lower() in QUIT:
            return 0
        if not line.strip():
            continue
        try:
            turn = assistant.handle_text(line, dry_run=args.dry_run)
        except GuimoError as e:
            print(f"error: {e}", file=sys.stderr)
            continue
        show(assistant, turn, args, stdout)
        speak(turn, args.say, n, None)
        n += 1


def show(assistant, turn, args: argparse.Namespace, out: TextIO) -> None:
    """The turn as one JSON object (``--json``), the reply alone (``--quiet``) or a readable table."""
    if args.json:
        import json

        print(json.dumps(turn_record(assistant, turn, dry_run=args.dry_run), ensure_ascii=False), file=out, flush=True)
    elif args.quiet:
        print(turn.reply, file=out, flush=True)
    else:
        print(render(turn, assistant.states(turn) if not args.dry_run else {}), file=out, flush=True)


def turn_record(assistant, turn, *, dry_run: bool) -> dict[str, Any]:
    """A turn as plain JSON: the Turn's fields plus ``states`` (the touched devices' states now)."""
    record = turn.to_dict()
    record["states"] = {} if dry_run else assistant.states(turn)
    record["dry_run"] = dry_run
    return record


def render(turn, states: dict[str, dict]) -> str:
    """Transcript, commands (intent, confidence, slots with their confidences), actions, states, reply, timings."""
    lines = [f"transcript  {turn.transcript or '(nothing heard)'}"]
    if turn.asr:
        conf, ms = turn.asr.get("confidence"), turn.asr.get("ms")
        lines[-1] += (f"   [asr {turn.asr.get('mode')}{'' if conf is None else f', confidence {conf:.2f}'}"
                      f"{'' if ms is None else f', {ms:.0f} ms decoding'}]")
    if turn.commands:
        lines.append("commands")
        for i, c in enumerate(turn.commands, 1):
            slots = "  ".join(f"{k}={v}" + (f" ({c.slot_confidences[k]:.2f})" if k in c.slot_confidences else "")
                              for k, v in c.slots.items())
            intent = "out_of_scope" if c.out_of_scope else c.intent
            lines.append(f"  {i}  {intent:<16} {c.confidence:.2f}  {c.language}  {slots}".rstrip())
    if turn.actions:
        lines.append("actions")
        for i, a in enumerate(turn.actions, 1):
            for j, member in enumerate([a] if not a.group else a.group):  # a command over several devices: one line each
                changes = " ".join(f"{k}={_value(v)}" for k, v in member.changes.items())
                lines.append(f"  {str(i) if j == 0 else '':<2} {member.status:<8} {member.device or '-':<20} {changes}".rstrip())
    if states:
        lines.append("states")
        for device, state in states.items():
            lines.append(f"  {device:<20} " + " ".join(f"{k}={_value(v)}" for k, v in state.items()))
    lines.append(f"reply       {turn.reply}")
    lines.append("ms          " + "  ".join(f"{k} {v:.1f}" for k, v in turn.timings_ms.items())
                 + ("   (the first audio also starts the recogniser)" if turn.asr and turn.timings_ms.get("asr", 0) > 2 * (turn.asr.get("ms") or 0) + 500 else ""))
    return "\n".join(lines)


def _value(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


# -- --say --------------------------------------------------------------------------------


def check_say(out: str) -> None:
    """Fail before any device changes when the reply cannot be spoken (espeak-ng missing, not a .wav)."""
    from guimo.assistant.speech import espeak_binary
    from guimo.errors import GuimoError

    if Path(out).suffix.lower() != ".wav":
        raise GuimoError(f"--say {out}: the spoken reply is a WAV file; give a name ending in .wav")
    if espeak_binary() is None:
        raise GuimoError("--say needs espeak-ng, which is not installed (Debian/Ubuntu: apt-get install espeak-ng; "
                         "macOS: brew install espeak-ng); run without --say to get the reply as text")


def speak(turn, out: str | None, index: int, total: int | None) -> Path | None:
    """Speak the reply into ``out`` (the only turn) or ``out`` numbered (``reply-1.wav``, ...)."""
    if not out or not turn.reply:
        return None
    from guimo.assistant.speech import say

    path = Path(out)
    if total != 1:
        path = path.with_name(f"{path.stem}-{index + 1}{path.suffix}")
    lang = turn.commands[0].language if turn.commands else "en"
    return say(turn.reply, path, lang=lang)


# -- --batch ------------------------------------------------------------------------------


def read_batch(src: str | Path) -> list[tuple[int, str, str]]:
    """(line, "text" | "wav", value) for every line of a JSONL batch, all checked (WAVs read) before any
    device changes, so a bad line stops the batch with nothing applied."""
    from guimo.assistant.audio import read_wav
    from guimo.assistant.core import check_text
    from guimo.errors import GuimoError, where
    from guimo.io import iter_jsonl

    src = Path(src)
    items = []
    for line, rec in iter_jsonl(src):
        given = [k for k in ("text", "wav") if k in rec]
        if len(given) != 1:
            raise GuimoError(f"{where(src, line)}: give exactly one of 'text' and 'wav' (fields: {', '.join(map(str, rec)) or 'none'})")
        kind, value = given[0], rec[given[0]]
        if not isinstance(value, str) or not value.strip():
            raise GuimoError(f"{where(src, line)}: '{kind}' must be a non-empty string, got {value!r}")
        if kind == "text":
            value = check_text(value)
        else:
            path = Path(value).expanduser()
            path = path if path.is_absolute() else src.parent / path
            if not path.is_file():
                raise GuimoError(f"{where(src, line)}: WAV file not found: {path}")
            try:
                read_wav(path)
            except GuimoError as e:
                raise GuimoError(f"{where(src, line)}: {e}") from None
            value = str(path)
        items.append((line, kind, value))
    if not items:
        raise GuimoError(f"{src}: no lines")
    return items


def run_batch(assistant, src: str | Path, out: str | Path, *, dry_run: bool = False) -> int:
    """Every line of ``src`` in order, one turn each, into ``out`` (JSONL, written atomically at the end).

    The texts are parsed together in one NLU call; actions still run line by line in file order, so
    a later line sees what an earlier one changed (audio lines are transcribed and parsed in turn).
    """
    import json

    from guimo.io import atomic_write_text

    items = read_batch(src)
    parses, nlu_ms = assistant.parse([v for _, kind, v in items if kind == "text"])
    texts = iter(parses)
    rows = []
    for line, kind, value in items:
        if kind == "text":
            turn = assistant.act(value, next(texts), dry_run=dry_run, timings={"nlu": nlu_ms})
        else:
            turn = assistant.handle_audio(value, dry_run=dry_run)
        rows.append({"line": line, kind: value, **turn_record(assistant, turn, dry_run=dry_run)})
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)
