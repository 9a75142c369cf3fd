"""End to end on the asr_smoke audio: does the right device end in the right state? (issue #24)

    python bench/assistant_e2e.py --run runs/assistant     # an existing `guimo run assistant` run
    python bench/assistant_e2e.py --train                  # train one first (the default `guimo run assistant`)
    python bench/assistant_e2e.py --render                 # the section again from bench/results/assistant_e2e.json

The 20 commands of ``../shared/data/asr_smoke/`` (two synthetic voices: Festival's CMU ARCTIC "slt" HTS voice and
espeak-ng's en-us) go through what `guimo assistant RUN --wav FILE` runs: ``guimo.assistant.core.Assistant`` over
the packaged home (pocketsphinx with the grammar built from the home, falling back to the general language model;
the NLU run; the device layer). Each command starts from the home's first state with the ``pre`` changes below,
so every expected change is a real change, and succeeds when exactly the expected devices changed and each ended
in the expected state; an out-of-scope command succeeds when it is rejected and no device changed. The same
commands typed (the reference transcripts as text) separate recognition errors from parsing errors. Target: >= 95%
command success on the Festival voice; the espeak voice is reported.

Writes bench/results/assistant_e2e.json (machine, load average, threads, date) and the ``e2e`` section of
docs/benchmarks/assistant.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdoc import page, write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "asr_smoke"
RECORD = ROOT / "bench" / "results" / "assistant_e2e.json"
VOICES = {"festival_slt_hts": "Festival (CMU ARCTIC slt, HTS)", "espeak_en-us": "espeak-ng en-us"}
TARGET = 0.95
TRAIN_SETTINGS: list[str] = []  # the default `guimo run assistant`


@dataclass(frozen=True)
class Check:
    """A predicate on one attribute's final value, with the words the table shows."""

    text: str
    ok: Callable[[Any], bool]

    def __repr__(self) -> str:
        return self.text


def below(x: float) -> Check:
    return Check(f"< {x}", lambda v: v is not None and v < x)


def above(x: float) -> Check:
    return Check(f"> {x}", lambda v: v is not None and v > x)


@dataclass(frozen=True)
class Case:
    """What a command must do to the packaged home (guimo/assistant/home.toml).

    ``pre``: device -> changes applied before the command (so that the expected change is a change);
    ``expect``: device -> attribute -> value (or Check) after it; every other device must be untouched.
    ``outcome``: "done"; "rejected" (out of scope) or "clarify" (the reply asks back): nothing may change.
    """

    expect: dict[str, dict[str, Any]] = field(default_factory=dict)
    pre: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcome: str = "done"


LIGHTS = ("kitchen_light", "living_room_light", "bedroom_light", "bathroom_light", "porch_light", "hallway_light")
CASES: dict[str, Case] = {
    "cmd_01.wav": Case({"kitchen_light": {"on": True}}),  # turn on the kitchen lights
    "cmd_02.wav": Case({"kitchen_light": {"on": False}}, pre={"kitchen_light": {"on": True}}),  # turn off the kitchen lights
    "cmd_03.wav": Case({"bedroom_light": {"on": False}}),  # switch off the bedroom lamp (on at first)
    "cmd_04.wav": Case({"living_room_light": {"brightness": below(70)}}),  # dim the living room lights (70 at first)
    # set the thermostat to seventy two degrees: 72 is outside the Celsius thermostat's 10-30 and inside 50-86 F, so
    # the device layer reads it as Fahrenheit: 22.2 C, rounded to the thermostat's 0.5 step (20 C at first)
    "cmd_05.wav": Case({"thermostat": {"temperature": 22}}),
    "cmd_06.wav": Case({"bathroom_heater": {"temperature": above(22)}}),  # turn up the heat in the bathroom (22 C at first)
    "cmd_07.wav": Case({"front_door": {"locked": True}}),  # lock the front door (unlocked at first)
    "cmd_08.wav": Case({"back_door": {"locked": False}}),  # unlock the back door (locked at first)
    "cmd_09.wav": Case({"garage_door": {"position": 100}}),  # open the garage door (closed at first)
    "cmd_10.wav": Case({"living_room_blinds": {"position": 0}}),  # close the living room blinds (open at first)
    "cmd_11.wav": Case({"ceiling_fan": {"on": True}}),  # turn on the ceiling fan
    "cmd_12.wav": Case({"tv": {"on": False}}, pre={"tv": {"on": True}}),  # turn off the tv
    # make the lights brighter: every light that is on (living room 70, bedroom 60 at first; the others are off)
    "cmd_13.wav": Case({"living_room_light": {"brightness": above(70)}, "bedroom_light": {"brightness": above(60)}}),
    "cmd_14.wav": Case({"bedroom_light": {"color": "blue"}}),  # change the bedroom lights to blue
    "cmd_15.wav": Case({"vacuum": {"on": True}}),  # start the vacuum cleaner
    "cmd_16.wav": Case(outcome="rejected"),  # make me a cup of coffee: out of scope
    "cmd_17.wav": Case({"porch_light": {"on": True}}),  # turn on the porch light
    # set the lights to fifty percent: every light, switched on at 50 (the device layer's policy for a plural with a value)
    "cmd_18.wav": Case({d: {"brightness": 50, "on": True} for d in LIGHTS}),
    # turn off all the lights (three on first)
    "cmd_19.wav": Case({d: {"on": False} for d in ("kitchen_light", "living_room_light", "bedroom_light")},
                       pre={"kitchen_light": {"on": True}}),
    "cmd_20.wav": Case({"speaker": {"volume": below(40)}}),  # turn down the volume: the primary speaker (40 at first)
}


def judge(name: str, before: dict[str, dict], after: dict[str, dict], turn) -> tuple[bool, str]:
    """(success, why not) of one command: exactly the expected devices changed, each to its expected state."""
    case = CASES[name]
    changed = {d for d in after if after[d] != before.get(d)}
    statuses = [m.status for a in turn.actions for m in ([a, *a.group] if a.group else [a])]
    if case.outcome != "done":
        if changed:
            return False, f"changed {sorted(changed)}"
        if case.outcome not in statuses:
            return False, f"statuses {statuses}, expected {case.outcome}"
        return True, ""
    if changed != set(case.expect):
        return False, f"changed {sorted(changed)}, expected {sorted(case.expect)}"
    for device, attrs in case.expect.items():
        for attr, want in attrs.items():
            got = after[device].get(attr)
            if not (want.ok(got) if isinstance(want, Check) else got == want):
                return False, f"{device}.{attr} = {got!r}, expected {want!r}"
    return True, ""


def run_case(assistant, name: str, source) -> dict:
    """Reset the home, apply the case's ``pre``, run one turn (a WAV path or a text), judge it."""
    assistant.state.reset()
    for device, changes in CASES[name].pre.items():
        assistant.state.apply(device, changes)
    before = assistant.state.all()
    turn = assistant.handle_audio(source) if isinstance(source, Path) else assistant.handle_text(source)
    after = assistant.state.all()
    ok, why = judge(name, before, after, turn)
    return {"file": name, "transcript": turn.transcript, "ok": ok, "why": why, "reply": turn.reply,
            "commands": [{"intent": c.intent, "confidence": round(c.confidence, 4), "slots": c.slots, "out_of_scope": c.out_of_scope}
                         for c in turn.commands],
            "asr": turn.asr, "timings_ms": turn.timings_ms}


def measure(run: Path) -> dict:
    import torch

    from guimo.assistant.core import Assistant
    from guimo.device import cpu_info

    refs = dict(line.split("\t", 1) for line in (DATA / "transcripts.tsv").read_text(encoding="utf-8").splitlines() if line.strip())
    missing = set(refs) ^ set(CASES)
    if missing:
        sys.exit(f"{DATA / 'transcripts.tsv'} and CASES differ: {sorted(missing)}")
    load0 = os.getloadavg()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        assistant = Assistant.open(run, state_path=Path(tmp) / "state.sqlite")
        assistant.handle_audio(DATA / "festival_slt_hts" / "cmd_01.wav", dry_run=True)  # load the recogniser and the model once
        t0 = time.perf_counter()
        out["typed"] = [run_case(assistant, name, text.strip()) for name, text in sorted(refs.items())]
        for voice in VOICES:
            out[voice] = [run_case(assistant, name, DATA / voice / name) for name in sorted(refs)]
        wall = time.perf_counter() - t0
    summary = {}
    for key, rows in out.items():
        stages = sorted({k for r in rows for k in r["timings_ms"]})
        summary[key] = {"success": sum(r["ok"] for r in rows) / len(rows), "n": len(rows),
                        "wer": wer(refs, rows) if key != "typed" else 0.0,
                        "ms_p50": {s: round(statistics.median(r["timings_ms"][s] for r in rows if s in r["timings_ms"]), 2) for s in stages}}
    fest = summary["festival_slt_hts"]["success"]
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": f"python bench/assistant_e2e.py --run {run}", "run": str(run), "cpu": cpu_info(),
        "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_avg_start": [round(x, 2) for x in load0], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(wall, 1), "summary": summary, "rows": out,
        "headline": {"text": f"{fest:.0%} (Festival voice, {round(fest * 20)}/20 commands; espeak "
                             f"{summary['espeak_en-us']['success']:.0%}, typed {summary['typed']['success']:.0%})", "met": fest >= TARGET},
    }


def wer(refs: dict[str, str], rows: list[dict]) -> float:
    """Word error rate of the transcripts against the references (Levenshtein over words, summed)."""
    errors = words = 0
    for r in rows:
        ref, hyp = refs[r["file"]].split(), r["transcript"].split()
        d = list(range(len(hyp) + 1))
        for i, rw in enumerate(ref, 1):
            prev, d[0] = d[0], i
            for j, hw in enumerate(hyp, 1):
                prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
        errors, words = errors + d[-1], words + len(ref)
    return errors / max(words, 1)


def render(rec: dict) -> str:
    s, cpu = rec["summary"], rec["cpu"]
    rows = [("typed (reference transcripts)", "typed")] + [(f"spoken, {label}", key) for key, label in VOICES.items()]
    lines = [
        f"The 20 asr_smoke commands through `guimo assistant RUN --wav` (pocketsphinx, grammar from the packaged home, "
        f"general-LM fallback -> NLU run -> device layer): a command succeeds when exactly the expected devices end in "
        f"the expected state (out-of-scope: rejected, nothing changed). Target >= {TARGET:.0%} on the Festival voice "
        f"({'met' if rec['headline']['met'] else 'NOT met'}).",
        "",
        "| input | command success | WER | ms p50: audio | asr | nlu | device | total |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, key in rows:
        m = s[key]["ms_p50"]
        lines.append(f"| {label} | {s[key]['success']:.0%} ({round(s[key]['success'] * s[key]['n'])}/{s[key]['n']}) | "
                     f"{s[key]['wer']:.1%} | " + " | ".join(f"{m[k]:.1f}" if k in m else "-" for k in ("audio", "asr", "nlu", "device", "total")) + " |")
    fails = [(key, r) for key in ("typed", *VOICES) for r in rec["rows"][key] if not r["ok"]]
    if fails:
        lines += ["", "Failures:", ""]
        lines += [f"- {key} {r['file']}: heard \"{r['transcript']}\", parsed {parsed(r['commands'])}; {r['why']}" for key, r in fails]
    lines += ["",
              f"Measured {rec['date']} on {cpu.get('model')} ({cpu.get('cores')} cores; flags {', '.join(cpu.get('flags', [])) or 'none'}), "
              f"torch threads {rec['torch_threads']} (OMP_NUM_THREADS={rec['omp_num_threads']}), load average "
              f"{rec['load_avg_start'][0]} at the start, {rec['load_avg_end'][0]} at the end (a machine shared with other jobs).",
              f"Command: `{rec['command']}`; the run: `{rec.get('run_command') or 'guimo run assistant'}`"
              + (f" (its generated test set: intent accuracy {rec['run_metrics']['intent_accuracy']:.3f}, sentence accuracy "
                 f"{rec['run_metrics']['sentence_accuracy']:.3f})." if rec.get("run_metrics") else ".")]
    if rec.get("note"):
        lines += ["", rec["note"]]
    return "\n".join(lines)


def parsed(commands: list[dict]) -> str:
    """The NLU's reading of a turn, short: intent (or out_of_scope) with its confidence and slots."""
    return "; ".join(f"{'out_of_scope' if c['out_of_scope'] else c['intent']} {c['confidence']:.2f} "
                     + " ".join(f"{k}={v}" for k, v in c["slots"].items()) for c in commands) or "nothing"


def train(out: Path, settings: list[str]) -> Path:
    from guimo.cli.run import resolve_config
    from guimo.pipeline.runner import run_pipeline
    from guimo.scenarios import get

    cfg = resolve_config(get("assistant"), None, settings, None)
    run_pipeline("assistant", cfg, out, quiet=True, set_keys={s.split("=")[0] for s in settings})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="an assistant run directory to measure")
    ap.add_argument("--train", action="store_true", help="train `guimo run assistant` first (into runs/bench-assistant-<time>)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="settings for --train (default: none)")
    ap.add_argument("--render", action="store_true", help="rewrite the section from the record, run nothing")
    ap.add_argument("--note", help="a sentence for the section (what was not measured and why); kept in the record")
    args = ap.parse_args(argv)
    if args.render:
        rec = json.loads(RECORD.read_text(encoding="utf-8"))
        if args.note:
            rec["note"] = args.note
            from guimo.io import atomic_write_json

            atomic_write_json(RECORD, rec)
    else:
        if not DATA.exists():
            sys.exit(f"{DATA} not found (the shared datasets live beside the project as ../shared/data)")
        if args.train == bool(args.run):
            sys.exit("give --run RUN or --train")
        run = Path(args.run) if args.run else train(ROOT / "runs" / f"bench-assistant-{dt.datetime.now():%Y%m%d-%H%M%S}", args.set)
        if not (run / "metrics.json").is_file():
            sys.exit(f"{run}: not a finished run (no metrics.json)")
        rec = measure(run)
        argv = json.loads((run / "manifest.json").read_text(encoding="utf-8")).get("environment", {}).get("argv", [])
        rec["run_command"] = " ".join(["guimo", *argv[1:]]) if argv else None
        rec["note"] = args.note
        rec["run_metrics"] = {k: v for k, v in json.loads((run / "metrics.json").read_text(encoding="utf-8"))["model"].items()
                              if k in ("intent_accuracy", "slot_f1", "sentence_accuracy", "false_accept_rate")}
        from guimo.io import atomic_write_json

        atomic_write_json(RECORD, rec)
    print(render(rec))
    write_section("e2e", render(rec), heading="End to end: spoken commands to device states", doc=page("assistant"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
