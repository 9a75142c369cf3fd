"""The speech recogniser's grammar: JSGF generated from the home and the command patterns.

A grammar limits pocketsphinx to the sentences a user can say to this home, which is what makes
grammar decoding fast and accurate in the domain (issue #24 measured 0-13% WER at 50-80 ms per
utterance, against 7-89% and 0.4-1.1 s for the general language model). It is generated, never
written by hand, from the same two sources as the NLU's training data, so the recogniser and the
model agree on the language:

- ``guimo.assistant.patterns.PATTERNS["en"]``: one JSGF rule per intent, an alternative per pattern
  (the mini-syntax is JSGF's own, rendered by ``patterns.jsgf``);
- ``home.vocabulary("en")``: one rule per slot, the names of this home's rooms, devices, colours and
  attribute words; number slots (brightness, temperature, volume, position) say numbers as words,
  zero to a hundred ("seventy two"), as a recogniser outputs them;
- ``CONNECTORS`` and ``FILLERS``: "... and then ..." joins several commands in one utterance;
  "please", "could you" may come before or after.

Only English is generated: the en-US acoustic model and dictionary are what pocketsphinx ships.
Every word must be in that dictionary (CMUdict), or the decoder drops the rule without an error
the caller sees; a name a user puts in home.toml that the dictionary lacks ("roomba") is left out of
the grammar and reported in ``Grammar.missing`` (pocketsphinx 5 has no letter-to-sound model to
guess a pronunciation). ``validate`` checks the generated text: every referenced rule defined,
none empty.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from guimo.errors import GuimoError

NUMBER_SLOTS = ("brightness", "temperature", "volume", "position")  # said as number words
DIGITS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
RESERVED = {"NULL", "VOID"}  # JSGF's special rules
_TOKEN = re.compile(r"^[a-z0-9'][a-z0-9'._-]*$")  # a word JSGF and the dictionary can both hold
_RULE = re.compile(r"^(public\s+)?<([A-Za-z0-9_.]+)>\s*=\s*(.*);\s*$")
_REF = re.compile(r"<([A-Za-z0-9_.]+)>")


@dataclass
class Grammar:
    """A generated grammar and what had to be left out of it."""

    text: str  # JSGF source, ready for pocketsphinx's add_jsgf_string
    lang: str
    words: set[str] = field(default_factory=set)  # every word the grammar can produce
    missing: dict[str, list[str]] = field(default_factory=dict)  # word -> what was dropped for it
    patterns: int = 0  # patterns kept

    def warning(self) -> str | None:
        """One line naming the words the dictionary lacks, or None when there are none."""
        if not self.missing:
            return None
        items = "; ".join(f"{word!r} ({', '.join(sorted(set(where)))})" for word, where in sorted(self.missing.items()))
        return (f"the speech recogniser's English dictionary lacks {len(self.missing)} word(s), left out of the "
                f"grammar (rename them in home.toml with dictionary words to say them): {items}")


def jsgf(home: Any, patterns: Mapping[str, Mapping[str, list[str]]] | None = None, *, lang: str = "en") -> str:
    """The JSGF grammar for ``home`` (a ``guimo.assistant.home.Home``) and the command ``patterns``.

    ``patterns`` is language -> intent -> pattern strings (default ``guimo.assistant.patterns.PATTERNS``).
    Words the recogniser's dictionary lacks are left out; ``build`` reports them.
    """
    return build(home, patterns, lang=lang).text


def build(home: Any, patterns: Mapping[str, Mapping[str, list[str]]] | None = None, *, lang: str = "en",
          lexicon: Callable[[str], bool] | None = None) -> Grammar:
    """Generate and validate the grammar; see the module docstring for its rules.

    Args:
        home: anything with ``vocabulary(lang) -> dict[slot, list[phrase]]`` (a Home).
        patterns: language -> intent -> patterns; default the packaged PATTERNS.
        lang: only "en" (the shipped acoustic model is US English).
        lexicon: ``word -> bool``, whether the recogniser can say a word; default CMUdict's words.
    Raises:
        GuimoError: for another language, a pattern that does not parse, or a grammar with no
        sayable command left.
    """
    from guimo.assistant import patterns as pattern_module

    if lang != "en":
        raise GuimoError(f"speech recognition grammar: no acoustic model for {lang!r}; pocketsphinx ships US English only")
    patterns = pattern_module.PATTERNS if patterns is None else patterns
    if lang not in patterns:
        raise GuimoError(f"speech recognition grammar: the patterns have no {lang!r} commands")
    known = lexicon or dictionary_words().__contains__
    grammar = Grammar(text="", lang=lang)

    def sayable(phrase: str, where: str) -> list[str] | None:
        tokens = phrase.lower().split()
        bad = [t for t in tokens if not _TOKEN.match(t) or not known(t)]
        for token in bad:
            grammar.missing.setdefault(token, []).append(where)
        return None if bad or not tokens else tokens

    def alternatives(phrases: Iterable[str], where: str) -> list[str]:
        kept: dict[str, None] = {}  # ordered set: the text is deterministic
        for phrase in phrases:
            tokens = sayable(str(phrase), f"{where} {phrase!r}")
            if tokens:
                kept[" ".join(tokens)] = None
        return list(kept)

    vocabulary = home.vocabulary(lang)
    slot_rules: dict[str, list[str]] = {}
    for slot, phrases in vocabulary.items():
        if slot in NUMBER_SLOTS:  # numbers are said as words, from <number>: keep only other words ("half")
            phrases = [p for p in phrases if not set(str(p).lower().split()) <= _NUMBER_WORDS | {"and"}
                       and not str(p).replace(".", "", 1).isdigit()]
        words_ = alternatives(phrases, slot)
        if slot in NUMBER_SLOTS:  # thermostats step by halves: "twenty one point five"
            words_ = ["<number> [point (zero | <digit>)]" if slot == "temperature" else "<number>", *words_]
        if words_:
            slot_rules[slot] = words_
    for slot in NUMBER_SLOTS:
        slot_rules.setdefault(slot, ["<number> [point (zero | <digit>)]" if slot == "temperature" else "<number>"])

    intent_rules: dict[str, list[str]] = {}
    for intent, items in patterns[lang].items():
        for pattern in items:
            seq = pattern_module.parse(pattern)
            literals = " ".join(_literals(seq, pattern_module))
            if literals and sayable(literals, f"pattern {pattern!r}") is None:
                continue  # a literal the dictionary lacks (already reported)
            lacking = pattern_module.slots_of(seq) - set(slot_rules)
            if lacking:
                continue  # this home has nothing to fill a slot with (no colours, say)
            body = pattern_module.jsgf(pattern, rule=lambda slot: f"<{slot}>").lower()
            intent_rules.setdefault(intent, []).append(body)
            grammar.patterns += 1
    if not intent_rules:
        raise GuimoError("speech recognition grammar: no command pattern can be said with this home's vocabulary "
                         + (grammar.warning() or ""))

    from guimo.assistant.patterns import CONNECTORS, FILLERS

    connectors = alternatives(CONNECTORS.get(lang, []), "connector")
    fillers = FILLERS.get(lang, {})
    before = alternatives(fillers.get("before", []), "filler")
    after = alternatives(fillers.get("after", []), "filler")

    utterance = "<command>"
    if connectors:
        utterance += " (<connector> <command>)*"
    if before:
        utterance = f"[<before>] {utterance}"
    if after:
        utterance += " [<after>]"
    lines = ["#JSGF V1.0;", f"grammar home_{lang};", f"public <utterance> = {utterance};",
             "<command> = " + " | ".join(f"<{intent}>" for intent in intent_rules) + ";"]
    lines += [f"<{intent}> = " + " | ".join(f"( {body} )" for body in bodies) + ";" for intent, bodies in intent_rules.items()]
    lines += [f"<{slot}> = " + " | ".join(words_) + ";" for slot, words_ in slot_rules.items()]
    lines += [f"<connector> = {' | '.join(connectors)};"] if connectors else []
    lines += [f"<before> = {' | '.join(before)};"] if before else []
    lines += [f"<after> = {' | '.join(after)};"] if after else []
    lines += NUMBER_RULES
    grammar.text = _prune("\n".join(lines) + "\n")
    problems = validate(grammar.text)
    if problems:  # a bug in this generator, not the user's input: say exactly what
        raise GuimoError("generated speech grammar is invalid: " + "; ".join(problems))
    grammar.words = _words(grammar.text)
    return grammar


NUMBER_RULES = [
    f"<digit> = {' | '.join(DIGITS)};",
    f"<teen> = {' | '.join(TEENS)};",
    f"<tens> = {' | '.join(TENS)};",
    "<below_hundred> = <digit> | <teen> | <tens> [<digit>];",
    # zero to 999: "seventy two", "a hundred", "two hundred and fifty" (a value out of a device's
    # range must still be heard, so the device layer can ask back instead of acting)
    "<number> = zero | <below_hundred> | [a | <digit>] hundred [[and] <below_hundred>];",
]
_NUMBER_WORDS = {"zero", "hundred", *DIGITS, *TEENS, *TENS}


def validate(text: str) -> list[str]:
    """Problems of a JSGF grammar as written by ``build`` (one rule per line), or [] when none.

    pocketsphinx accepts a grammar that references an undefined rule and then recognises nothing
    (the error goes only to its log), so this checks what matters before the decoder sees it:
    the header, a public rule, every referenced rule defined, no empty rule, balanced brackets.
    """
    problems: list[str] = []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("#JSGF"):
        problems.append("missing the '#JSGF V1.0;' header")
    rules: dict[str, str] = {}
    public = []
    for line in lines[1:]:
        if line.startswith("grammar ") or line.startswith("//"):
            continue
        match = _RULE.match(line)
        if not match:
            problems.append(f"not a rule definition: {line[:80]!r}")
            continue
        name, body = match.group(2), match.group(3).strip()
        if name in rules:
            problems.append(f"rule <{name}> defined twice")
        rules[name] = body
        if match.group(1):
            public.append(name)
        if not body:
            problems.append(f"rule <{name}> is empty")
        depth = {"(": 0, "[": 0}
        for ch in body:
            if ch in "([":
                depth[ch] += 1
            elif ch in ")]":
                depth["(" if ch == ")" else "["] -= 1
                if min(depth.values()) < 0:
                    break
        if any(depth.values()):
            problems.append(f"rule <{name}> has unbalanced brackets")
    if not public:
        problems.append("no public rule")
    for name, body in rules.items():
        for ref in _REF.findall(body):
            if ref not in rules and ref not in RESERVED:
                problems.append(f"rule <{name}> references undefined rule <{ref}>")
    return problems


@functools.lru_cache(maxsize=1)
def dictionary_words() -> frozenset[str]:
    """Every word of the recogniser's pronunciation dictionary (pocketsphinx's CMUdict), alternates folded."""
    import pocketsphinx

    path = pocketsphinx.get_model_path("en-us/cmudict-en-us.dict")
    with open(path, encoding="utf-8") as f:
        return frozenset(line.split(" ", 1)[0].split("(", 1)[0] for line in f if line.strip())


def _literals(seq: Any, pattern_module: Any) -> list[str]:
    """Every literal word of a parsed pattern, on any path."""
    out: list[str] = []
    for node in seq:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, pattern_module.Optional_):
            out += _literals(node.body, pattern_module)
        elif isinstance(node, pattern_module.Alt):
            for option in node.options:
                out += _literals(option, pattern_module)
    return out


def _prune(text: str) -> str:
    """Drop rules no public rule reaches (e.g. <teen> when no number slot survived), keeping line order."""
    lines = text.splitlines()
    rules = {m.group(2): (i, m.group(3)) for i, line in enumerate(lines) if (m := _RULE.match(line))}
    reached = {name for name, (i, _) in rules.items() if lines[i].startswith("public")}
    frontier = list(reached)
    while frontier:
        for ref in _REF.findall(rules[frontier.pop()][1]):
            if ref in rules and ref not in reached:
                reached.add(ref)
                frontier.append(ref)
    drop = {i for name, (i, _) in rules.items() if name not in reached}
    return "\n".join(line for i, line in enumerate(lines) if i not in drop) + "\n"


def _words(text: str) -> set[str]:
    """The words (terminals) a grammar written by ``build`` contains."""
    out: set[str] = set()
    for line in text.splitlines():
        match = _RULE.match(line)
        if match:
            body = _REF.sub(" ", match.group(3))
            out.update(t for t in re.split(r"[\s()\[\]|*+]+", body) if t)
    return out


# --- From JSGF to a minimal word automaton ------------------------------------------------------
# pocketsphinx turns JSGF into a finite-state grammar by copying every referenced rule at each
# reference, with no sharing: this home's grammar became 22,772 states and 160,085 transitions, and
# decoding one command took 1.4-3.4 s instead of ~50 ms, because every copy of "turn", "set", ...
# is searched in parallel. The same language as a minimal deterministic automaton (Brzozowski:
# determinise the reversed automaton, reverse, determinise again) has one arc per word per state,
# and is what the recogniser decodes with (``Fsa.transitions`` -> ``Decoder.create_fsg``).


@dataclass
class Fsa:
    """A word automaton: arcs ``(src, dst, word)``; state 0 starts; ``finals`` accept."""

    states: int
    arcs: list[tuple[int, int, str]]
    finals: set[int]

    def transitions(self) -> tuple[int, int, list[tuple]]:
        """(start, final, transitions) for pocketsphinx's ``create_fsg``: uniform probabilities per state,
        and a null transition from each accepting state to one added final state."""
        final = self.states
        out_degree = [0] * self.states
        for src, _, _ in self.arcs:
            out_degree[src] += 1
        for state in self.finals:
            out_degree[state] += 1
        trans: list[tuple] = [(src, dst, 1.0 / out_degree[src], word) for src, dst, word in self.arcs]
        trans += [(state, final, 1.0 / out_degree[state]) for state in sorted(self.finals)]
        return 0, final, trans

    def accepts(self, sentence: str) -> bool:
        """Whether the automaton accepts a sentence of space-separated words."""
        step = {(src, word): dst for src, dst, word in self.arcs}
        state = 0
        for word in sentence.split():
            if (state, word) not in step:
                return False
            state = step[(state, word)]
        return state in self.finals


@functools.lru_cache(maxsize=16)  # ~1-2 s per home; a server's tenants often share one home
def compile_fsa(text: str) -> Fsa:
    """The minimal deterministic word automaton of a grammar written by ``build``.

    Reads the subset of JSGF ``build`` writes (words, ``<rule>`` references, ``( | )``, ``[ ]``,
    ``*``, ``+``, ``<NULL>``), inlines rule references (a recursive rule is an error) and minimises.
    """
    rules: dict[str, str] = {}
    public = None
    for line in text.splitlines():
        match = _RULE.match(line.strip())
        if match:
            rules[match.group(2)] = match.group(3)
            if match.group(1) and public is None:
                public = match.group(2)
    if public is None:
        raise GuimoError("speech grammar: no public rule")
    nfa = _Nfa()
    start, end = nfa.state(), nfa.state()
    _Builder(rules, nfa).rule(public, start, end, ())
    # Brzozowski: det(rev(det(rev(A)))) is the minimal DFA of A
    first = _determinize(nfa.reversed(start, end))
    second = _determinize(first.reversed_nfa())
    return second.fsa()


class _Nfa:
    def __init__(self) -> None:
        self.arcs: list[list[tuple[str | None, int]]] = []

    def state(self) -> int:
        self.arcs.append([])
        return len(self.arcs) - 1

    def arc(self, src: int, dst: int, word: str | None = None) -> None:
        self.arcs[src].append((word, dst))

    def reversed(self, start: int, end: int) -> tuple[list[list[tuple[str | None, int]]], set[int], set[int]]:
        """(arcs, starts, finals) of the reversed automaton."""
        back: list[list[tuple[str | None, int]]] = [[] for _ in self.arcs]
        for src, arcs in enumerate(self.arcs):
            for word, dst in arcs:
                back[dst].append((word, src))
        return back, {end}, {start}


@dataclass
class _Dfa:
    arcs: list[dict[str, int]]
    finals: set[int]

    def reversed_nfa(self) -> tuple[list[list[tuple[str | None, int]]], set[int], set[int]]:
        back: list[list[tuple[str | None, int]]] = [[] for _ in self.arcs]
        for src, arcs in enumerate(self.arcs):
            for word, dst in arcs.items():
                back[dst].append((word, src))
        return back, set(self.finals), {0}

    def fsa(self) -> Fsa:
        return Fsa(len(self.arcs), [(src, dst, word) for src, arcs in enumerate(self.arcs)
                                    for word, dst in sorted(arcs.items())], set(self.finals))


def _determinize(automaton: tuple[list[list[tuple[str | None, int]]], set[int], set[int]]) -> _Dfa:
    """Subset construction with epsilon closures; DFA state 0 is the start."""
    arcs, starts, finals = automaton
    closures: dict[int, frozenset[int]] = {}

    def closure_of(state: int) -> frozenset[int]:
        if state not in closures:
            seen, stack = {state}, [state]
            while stack:
                for word, dst in arcs[stack.pop()]:
                    if word is None and dst not in seen:
                        seen.add(dst)
                        stack.append(dst)
            closures[state] = frozenset(seen)
        return closures[state]

    def close(states: Iterable[int]) -> frozenset[int]:
        out: set[int] = set()
        for state in states:
            out |= closure_of(state)
        return frozenset(out)

    first = close(starts)
    index = {first: 0}
    order = [first]
    out: list[dict[str, int]] = []
    while len(out) < len(order):
        current = order[len(out)]
        moves: dict[str, set[int]] = {}
        for state in current:
            for word, dst in arcs[state]:
                if word is not None:
                    moves.setdefault(word, set()).add(dst)
        row: dict[str, int] = {}
        for word in sorted(moves):
            target = close(moves[word])
            if target not in index:
                index[target] = len(order)
                order.append(target)
            row[word] = index[target]
        out.append(row)
    return _Dfa(out, {i for i, states in enumerate(order) if states & finals})


_SYMBOL = re.compile(r"<[A-Za-z0-9_.]+>|[()\[\]|*+]|[^\s()\[\]|*+<>]+")


class _Builder:
    """Thompson construction over rule bodies, rule references inlined (one copy per reference)."""

    def __init__(self, rules: dict[str, str], nfa: _Nfa):
        self.rules, self.nfa = rules, nfa

    def rule(self, name: str, start: int, end: int, stack: tuple[str, ...]) -> None:
        if name == "NULL":
            self.nfa.arc(start, end)
            return
        if name in stack:
            raise GuimoError(f"speech grammar: rule <{name}> refers to itself ({' -> '.join((*stack, name))})")
        if name not in self.rules:
            raise GuimoError(f"speech grammar: undefined rule <{name}>")
        tokens = _SYMBOL.findall(self.rules[name])
        pos = self.alternatives(tokens, 0, start, end, (*stack, name))
        if pos != len(tokens):
            raise GuimoError(f"speech grammar: rule <{name}>: unexpected {tokens[pos]!r}")

    def alternatives(self, tokens: list[str], pos: int, start: int, end: int, stack: tuple[str, ...]) -> int:
        while True:
            pos = self.sequence(tokens, pos, start, end, stack)
            if pos < len(tokens) and tokens[pos] == "|":
                pos += 1
                continue
            return pos

    def sequence(self, tokens: list[str], pos: int, start: int, end: int, stack: tuple[str, ...]) -> int:
        current = start
        while pos < len(tokens) and tokens[pos] not in ("|", ")", "]"):
            item_start, item_end = self.nfa.state(), self.nfa.state()
            token = tokens[pos]
            pos += 1
            if token in ("(", "["):
                pos = self.alternatives(tokens, pos, item_start, item_end, stack)
                closer = ")" if token == "(" else "]"
                if pos >= len(tokens) or tokens[pos] != closer:
                    raise GuimoError(f"speech grammar: rule <{stack[-1]}>: missing {closer!r}")
                pos += 1
                if token == "[":
                    self.nfa.arc(item_start, item_end)
            elif token.startswith("<"):
                self.rule(token[1:-1], item_start, item_end, stack)
            else:
                self.nfa.arc(item_start, item_end, token)
            if pos < len(tokens) and tokens[pos] in ("*", "+"):
                self.nfa.arc(item_end, item_start)  # repeat
                if tokens[pos] == "*":
                    self.nfa.arc(item_start, item_end)  # or none
                pos += 1
            self.nfa.arc(current, item_start)
            current = item_end
        self.nfa.arc(current, end)
        return pos
