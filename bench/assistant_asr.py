"""Speech recognition on the asr_smoke audio: WER and ms per utterance, grammar vs general model vs auto (issue #24).

    OMP_NUM_THREADS=1 python bench/assistant_asr.py               # measure (about a minute on a quiet machine)
    python bench/assistant_asr.py --render                        # the section again from bench/results/assistant_asr.json

The 20 commands of ``../shared/data/asr_smoke/`` in two synthetic voices (Festival's CMU ARCTIC "slt" HTS voice,
espeak-ng's en-us) go through ``guimo.assistant.asr.Recognizer`` over the packaged home, in each mode:

- ``grammar``: the JSGF generated from the home and the command patterns, decoded as its minimal automaton;
- ``lm``: pocketsphinx's general US-English language model;
- ``auto``: the grammar, and the general model when the grammar finds no whole sentence or its confidence is low;
- ``home.gram``: the hand-written 20-command grammar shipped with asr_smoke (the issue's reference figures),
  decoded with the same audio preparation, for scale: it knows only these commands.

WER is over all 20 references (100 words) and over the 19 in-scope ones ("make me a cup of coffee" is out of
scope: no device makes coffee, and the generated grammar does not contain it). Times are pocketsphinx decoding
only (audio already read), per utterance, interleaved by round (A B C D A B C D ...) so the machine's load
falls on every contender alike; median and p95 over rounds x utterances. pocketsphinx decodes on one thread.
Target: grammar ASR <= 100 ms per utterance.

Writes bench/results/assistant_asr.json (date, CPU and ISA flags, threads, load average) and the ``asr``
section of docs/benchmarks/assistant.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdoc import page, write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "asr_smoke"
RECORD = ROOT / "bench" / "results" / "assistant_asr.json"
VOICES = {"festival_slt_hts": "Festival (CMU ARCTIC slt, HTS)", "espeak_en-us": "espeak-ng en-us"}
CONTENDERS = ("grammar", "lm", "auto", "home.gram")
OUT_OF_SCOPE = "make me a cup of coffee"
TARGET_MS = 100.0
COMMAND = "OMP_NUM_THREADS=1 python bench/assistant_asr.py"


def word_errors(ref: str, hyp: str) -> int:
    """Word-level edit distance (substitutions + deletions + insertions)."""
    r, h = ref.split(), hyp.split()
    row = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, row[0] = row[:], i
        for j, hw in enumerate(h, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (rw != hw))
    return row[-1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class HandGrammar:
    """asr_smoke's home.gram through pocketsphinx's own JSGF reading, with the Recognizer's audio preparation."""

    def __init__(self, path: Path):
        import pocketsphinx

        from guimo.assistant.asr import decoder_pcm

        self.prepare = decoder_pcm
        self.decoder = pocketsphinx.Decoder(jsgf=str(path), logfn=os.devnull)

    def transcribe(self, samples) -> tuple[str, float]:
        pcm = self.prepare(samples)
        start = time.perf_counter()
        self.decoder.reinit_feat()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return (hyp.hypstr if hyp else ""), (time.perf_counter() - start) * 1000


def measure(rounds: int) -> dict[str, Any]:
    import pocketsphinx

    from guimo.assistant.asr import Recognizer
    from guimo.assistant.audio import read_wav
    from guimo.assistant.grammar import build, compile_fsa
    from guimo.assistant.home import Home
    from guimo.device import cpu_info

    load_before = os.getloadavg()
    home = Home.load()
    t0 = time.perf_counter()
    grammar = build(home)
    t1 = time.perf_counter()
    compile_fsa.cache_clear()
    fsa = compile_fsa(grammar.text)
    t2 = time.perf_counter()
    recognizers: dict[str, Any] = {}
    build_ms: dict[str, float] = {"jsgf_text": (t1 - t0) * 1000, "automaton": (t2 - t1) * 1000}
    for mode in ("grammar", "lm", "auto"):
        start = time.perf_counter()
        recognizers[mode] = Recognizer(home, mode)
        build_ms[f"recognizer_{mode}"] = (time.perf_counter() - start) * 1000
    recognizers["home.gram"] = HandGrammar(DATA / "home.gram")
    jsgf_fsg = pocketsphinx.Decoder(lm=None, logfn=os.devnull).parse_jsgf(grammar.text)
    jsgf_fsg.writefile(str(RECORD.with_suffix(".fsg.tmp")))
    fsg_lines = RECORD.with_suffix(".fsg.tmp").read_text().splitlines()
    RECORD.with_suffix(".fsg.tmp").unlink()
    size = {"automaton_states": fsa.states, "automaton_arcs": len(fsa.arcs),
            "pocketsphinx_jsgf_states": int(next(line.split()[1] for line in fsg_lines if line.startswith("NUM_STATES"))),
            "pocketsphinx_jsgf_transitions": sum(1 for line in fsg_lines if line.startswith("TRANSITION")),
            "patterns": grammar.patterns, "words": len(grammar.words)}

    rows = [line.split("\t") for line in (DATA / "transcripts.tsv").read_text().splitlines() if line.strip()]
    results: dict[str, Any] = {}
    for voice in VOICES:
        audio = [(name, ref, read_wav(DATA / voice / name)[0]) for name, ref in rows]
        per: dict[str, dict[str, Any]] = {c: {"ms": [], "hyps": {}, "fallbacks": 0, "modes": {}} for c in CONTENDERS}
        for round_ in range(rounds):
            for name, ref, samples in audio:
                for contender in CONTENDERS:  # interleaved: each utterance by every contender in turn
                    rec = recognizers[contender]
                    if contender == "home.gram":
                        text, ms = rec.transcribe(samples)
                        fallback, mode = False, "grammar"
                    else:
                        tr = rec.transcribe(samples)
                        text, ms, fallback, mode = tr.text, tr.ms, tr.fallback, tr.mode
                    per[contender]["ms"].append(ms)
                    if round_ == 0:
                        per[contender]["hyps"][name] = text
                        per[contender]["fallbacks"] += int(fallback)
                        per[contender]["modes"][mode] = per[contender]["modes"].get(mode, 0) + 1
        results[voice] = {}
        for contender, p in per.items():
            all_words = sum(len(ref.split()) for _, ref in rows)
            in_scope = [(n, ref) for n, ref in rows if ref != OUT_OF_SCOPE]
            results[voice][contender] = {
                "wer": sum(word_errors(ref, p["hyps"][n]) for n, ref in rows) / all_words,
                "wer_in_scope": sum(word_errors(ref, p["hyps"][n]) for n, ref in in_scope) / sum(len(r.split()) for _, r in in_scope),
                "sentences_exact": sum(p["hyps"][n] == ref for n, ref in rows),
                "median_ms": statistics.median(p["ms"]), "p95_ms": percentile(p["ms"], 0.95),
                "fallbacks": p["fallbacks"], "modes": p["modes"], "hyps": p["hyps"]}
    import importlib.metadata

    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": COMMAND,
        "cpu": cpu_info(), "threads": 1, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
        "pocketsphinx": importlib.metadata.version("pocketsphinx"), "rounds": rounds, "utterances": len(rows),
        "build_ms": {k: round(v, 1) for k, v in build_ms.items()}, "grammar_size": size, "results": results,
        "out_of_scope_heard_as": {v: results[v]["auto"]["hyps"][next(n for n, r in rows if r == OUT_OF_SCOPE)] for v in VOICES},
    }
    g = results["festival_slt_hts"]["grammar"]
    met = g["median_ms"] <= TARGET_MS
    record["headline"] = {"text": f"{g['median_ms']:.0f} ms median, p95 {g['p95_ms']:.0f} ms per utterance, WER "
                                  f"{g['wer_in_scope']:.1%} on the in-scope Festival commands (load {load_before[0]:.1f})",
                          "met": met}
    return record


def render(record: dict[str, Any]) -> str:
    cpu = record["cpu"]
    flags = [f for f in ("avx512_bf16", "amx_bf16") if f in cpu.get("flags", [])]
    lines = [f"`{record['command']}` — {record['date'][:16].replace('T', ' ')} UTC, {cpu.get('model', '?')} "
             f"({', '.join(flags) or 'no bf16 ISA'}), 1 thread (pocketsphinx {record['pocketsphinx']}), load average "
             f"{record['load_before'][0]:.2f} before / {record['load_after'][0]:.2f} after, {record['rounds']} rounds "
             f"x {record['utterances']} utterances per voice, interleaved."
             + (f" {record['note']}." if record.get("note") else ""), "",
             f"**Target: grammar ASR <= {TARGET_MS:.0f} ms per utterance: "
             + ("met" if record["headline"]["met"] else "NOT met") + f"** ({record['headline']['text']}).", "",
             "| voice | decoder | WER (20 commands) | WER (19 in scope) | exact sentences | median ms | p95 ms | fell back to the LM |",
             "|---|---|---|---|---|---|---|---|"]
    if record["load_before"][0] > 2:  # a shared machine: say what the figures can and cannot carry
        fest = record["results"]["festival_slt_hts"]
        ratio = fest["grammar"]["median_ms"] / fest["home.gram"]["median_ms"]
        lines[-2:-2] = [f"Measured at a load average of {record['load_before'][0]:.0f} on {record['cpu'].get('cores', '?')} cores: absolute "
                        f"times are inflated by the neighbours' jobs; what carries over is the ratio within the same "
                        f"interleaved rounds: the generated grammar decodes in {ratio:.1f}x the time of the 20-command "
                        f"home.gram (the issue measured home.gram at 50-80 ms on a quiet machine). The target needs a "
                        f"quiet machine: to run, `{record['command']}`.", ""]
    names = {"grammar": "generated grammar", "lm": "general LM", "auto": "auto (grammar, LM fallback)",
             "home.gram": "asr_smoke home.gram (hand-written, 20 commands)"}
    for voice, label in VOICES.items():
        for contender in CONTENDERS:
            r = record["results"][voice][contender]
            fb = str(r["fallbacks"]) if contender == "auto" else "—"
            lines.append(f"| {label} | {names[contender]} | {r['wer']:.1%} | {r['wer_in_scope']:.1%} | {r['sentences_exact']}/20 | "
                         f"{r['median_ms']:.0f} | {r['p95_ms']:.0f} | {fb} |")
    s = record["grammar_size"]
    b = record["build_ms"]
    lines += ["",
              f"The generated grammar ({s['patterns']} patterns, {s['words']} words) as pocketsphinx reads JSGF: "
              f"{s['pocketsphinx_jsgf_states']:,} states, {s['pocketsphinx_jsgf_transitions']:,} transitions (every rule "
              f"copied at each reference); as the minimal automaton the recogniser decodes: {s['automaton_states']:,} states, "
              f"{s['automaton_arcs']:,} arcs (the JSGF expansion decoded a command in 1.4-3.4 s at a load of 3-7; the "
              f"automaton in tens of ms). Build: grammar text {b['jsgf_text']:.0f} ms, automaton {b['automaton']:.0f} ms "
              f"(cached per grammar text), Recognizer grammar/auto {b['recognizer_grammar']:.0f} / {b['recognizer_auto']:.0f} ms, "
              f"lm {b['recognizer_lm']:.0f} ms.", "",
              "The out-of-scope command (\"make me a cup of coffee\") in auto mode was heard as: "
              + "; ".join(f"{VOICES[v]}: \"{t}\"" for v, t in record["out_of_scope_heard_as"].items())
              + ". A grammar can only output its own sentences: speech close enough to one is forced onto it, "
                "and only the NLU's out-of-scope threshold and the device layer's checks stand behind it. "
                "The espeak voice (a formant synthesiser) is far from the acoustic model's training speech; "
                "there the general LM is mostly wrong, so auto's fallbacks rarely help."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds per utterance and decoder")
    parser.add_argument("--render", action="store_true", help="rewrite the section from the last record")
    parser.add_argument("--note", help="how the machine was kept quiet (e.g. 'run under nice -n -10'), shown with the figures")
    args = parser.parse_args()
    if args.render:
        record = json.loads(RECORD.read_text(encoding="utf-8"))
    else:
        if not DATA.exists():
            sys.exit(f"{DATA} not present (the shared datasets live beside the project as ../shared/data)")
        record = measure(args.rounds)
        record["note"] = args.note
        from guimo.io import atomic_write_json

        atomic_write_json(RECORD, record)
    body = render(record)
    write_section("asr", body, heading="Speech recognition (asr_smoke, pocketsphinx)", doc=page("assistant"))
    print(body)


if __name__ == "__main__":
    main()
