"""Compile a rule pack into spaCy matchers and regexes for one taxonomy.

Each term gets a match id ``"<tag key>|<kind>|<n>"`` so a hit maps back to the
tag, the kind of rule and the term (with its weight and section filter).
"""
from __future__ import annotations

import re
import time

from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from engine.lexicon.described import described_rules
from engine.lexicon.hits import Hit, HitTable, TermInfo, TermTable
from engine.lexicon.nlp import get_nlp, lower_same_length, require_lex_attrs, token_offsets
from engine.lexicon.prefilter import NameTemplate, Occurrences, Prefiltered
from engine.rules import RulePack, TagRule
from engine.rules.schema import Term
from engine.taxonomy import Tag, Taxonomy


REGEX_BUDGET_S = 1.0


def _is_inflection(word: str, lemma: str) -> bool:
    """True when the lookup lemma is a form of the word ("charts" -> "chart").

    The lookup table also maps some short words to unrelated common lemmas ("ai" ->
    "have"); matching those on lemmas would fire on every "has" and "'s".
    """
    n = min(len(word), 3)
    return word[:n] == lemma[:n]


def _surface_needed(pattern: Doc, by_lemma: bool) -> bool:
    """Whether a phrase must be matched on its surface form too: unless the lemma
    matcher has it (``by_lemma``) and it is ASCII, as most phrases are.

    An ASCII phrase's surface matches are lemma matches of it on the same spans: texts
    and phrases are lowered alike (``lower_same_length``, which keeps only characters
    whose lower case is longer, and none of those lowers to ASCII), so a README token
    whose LOWER is an ASCII word is that very word, and a lemma depends on the word
    alone. Matching such phrases twice made ~1,400 duplicate matches per README with a
    learned pack."""
    return not (by_lemma and pattern.text.isascii())


class CompiledRules:
    """The pack's vocabulary for the tags of one taxonomy, ready to run on a Doc."""

    def __init__(self, pack: RulePack, taxonomy: Taxonomy) -> None:
        nlp = get_nlp()
        self.nlp = nlp
        # Lemmas catch inflections ("helm charts"); the lookup table is not always
        # consistent ("crossing" -> "cross"), so surface forms are matched as well.
        self.phrases = PhraseMatcher(nlp.vocab, attr="LEMMA")
        self.surface = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.negatives = PhraseMatcher(nlp.vocab, attr="LEMMA")
        self.tokens = Matcher(nlp.vocab)
        self.regexes: list[tuple[Prefiltered, TermInfo]] = []
        # Seconds of regex scanning one document may take, all rule regexes together
        # (~4 ms is typical): a backstop for patterns the load-time check cannot judge.
        self.regex_budget = REGEX_BUDGET_S
        self.timed_out: list[str] = []  # regexes cut short on the last document
        self.name_regexes: list[tuple[NameTemplate, TermInfo]] = []  # lowered, with {name}
        self._for_names: dict[tuple[str, ...], list[tuple[Prefiltered, TermInfo]]] = {}
        self.terms: dict[str, TermInfo] = {}
        self.rules: dict[str, TagRule] = {}
        self.fuzzy_vocab: list[tuple[str, TermInfo]] = []
        # The list's own aliases and descriptions (engine/lexicon/described.py).
        listed = described_rules(taxonomy, {t.name for t in taxonomy if t.key in pack.written})
        for tag in taxonomy:
            rule = pack.get(tag.name)
            if rule is None:
                self._add_name_only(tag)
            else:
                self.rules[tag.name] = rule
                self._add_rule(tag, rule)
            if tag.name in listed:
                self._add_rule(tag, listed[tag.name], layer="list")
        strings = nlp.vocab.strings
        self.table = TermTable(list(self.terms.values()), [strings.add(mid) for mid in self.terms])

    def _id(self, tag: Tag, kind: str, n: int) -> str:
        return f"{tag.key}|{kind}|{n}"

    def _add_phrase(self, tag: Tag, kind: str, n: int, term: Term) -> None:
        info = TermInfo(tag.name, kind, term.text, term.weight, frozenset(term.where) if term.where else None)
        mid = self._id(tag, kind, n)
        self.terms[mid] = info
        pattern = self.nlp(lower_same_length(term.text))
        by_lemma = all(_is_inflection(t.text, t.lemma_) for t in pattern)
        if by_lemma:
            self.phrases.add(mid, [pattern])
        if _surface_needed(pattern, by_lemma):
            self.surface.add(mid, [pattern])
        if kind in ("alias", "name", "list-alias"):
            self.fuzzy_vocab.append((term.text.lower(), info))

    def _add_name_only(self, tag: Tag) -> None:
        """A tag the pack does not know still gets evidence from its own name."""
        self._add_phrase(tag, "name", 0, Term(text=tag.words, weight=1.0))

    def _add_rule(self, tag: Tag, rule: TagRule, layer: str = "") -> None:
        """The rule's terms. ``layer="list"``: terms the tag list gave (its aliases, its
        description), whose evidence says so (``list-alias:``, ``description:``)."""
        alias, phrase = ("list-alias", "description") if layer == "list" else ("alias", "phrase")
        for i, t in enumerate(rule.aliases):
            self._add_phrase(tag, alias, i, t)
        for i, t in enumerate(rule.phrases):
            self._add_phrase(tag, phrase, i, t)
        if rule.patterns:  # the lexical attributes they read hold for every word
            require_lex_attrs(p.pattern for p in rule.patterns)
        for i, p in enumerate(rule.patterns):
            mid = self._id(tag, "pattern", i)
            label = " ".join(str(list(d.values())[0]) for d in p.pattern)
            self.terms[mid] = TermInfo(tag.name, "pattern", label, p.weight, frozenset(p.where) if p.where else None)
            self.tokens.add(mid, [p.pattern])
        for r in rule.regexes:
            info = TermInfo(tag.name, "regex", r.pattern, r.weight, frozenset(r.where) if r.where else None)
            if "{name}" in r.pattern:
                self.name_regexes.append((NameTemplate(lowered_pattern(r.pattern), re.MULTILINE), info))
            else:
                self.regexes.append((Prefiltered(lowered_pattern(r.pattern), re.MULTILINE), info))
        for i, neg in enumerate(rule.negatives):
            self.negatives.add(self._id(tag, "neg", i), [self.nlp(lower_same_length(neg))])
            self.terms[self._id(tag, "neg", i)] = TermInfo(tag.name, "negative", neg, 0.0, None)

    def run(self, doc: Doc, text: str, project_names: list[str] | None = None,
            sections: list[tuple[int, int, str]] | None = None) -> tuple[HitTable, list[Hit]]:
        """All positive hits (as columns: see ``engine/lexicon/hits.py``) and all
        negative (veto) hits in ``doc`` (built from ``text``, the lower-cased README:
        see ``lower_same_length``).

        ``sections`` (start, end, kind) lets a regex limited to some kinds scan only
        those stretches of the text instead of all of it.
        """
        strings = self.nlp.vocab.strings
        hits: list[Hit] = []
        # Lemma and surface matchers mostly find the same spans: each counts once here.
        matches = dict.fromkeys([*self.phrases(doc), *self.surface(doc), *(self.tokens(doc) if len(self.tokens) else ())])
        starts, ends = token_offsets(doc)
        terms = self.terms
        table = HitTable.from_matches(self.table, matches, starts, ends)
        regexes = self.regexes
        if project_names and self.name_regexes:
            regexes = regexes + self._name_regexes(tuple(project_names))
        # A regex whose words are absent is skipped; one whose alternatives need absent
        # words scans without them. Each word is searched for once per text.
        found = Occurrences(text)
        self.timed_out = []
        deadline = time.monotonic() + self.regex_budget
        runs: dict[frozenset[str], list[tuple[int, int]]] = {}
        merged = None if sections is None else _same_kind_merged(sections)
        for pre, info in regexes:
            if info.where is None or merged is None:
                stretches = [(0, len(text))]
            elif info.where not in runs:
                stretches = runs[info.where] = _runs(merged, info.where)
            else:
                stretches = runs[info.where]
            if not stretches:  # none of the sections it is limited to: nothing to scan
                continue
            rx = pre.for_text(text, found)
            if rx is None:
                continue
            try:
                for a, b in stretches:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    for m in rx.finditer(text, a, b, timeout=left):
                        if m.end() > m.start():
                            hits.append(Hit(info, m.start(), m.end()))
            except TimeoutError:
                # The document's regex budget is spent: this and later regexes yield
                # what they found so far (the README says so; the tests bound it).
                self.timed_out.append(info.label)

        negs = [Hit(terms[strings[mid]], starts[s], ends[e - 1]) for mid, s, e in self.negatives(doc)]
        table.add(hits)
        return table, negs

    def _name_regexes(self, names: tuple[str, ...]) -> list[tuple[Prefiltered, TermInfo]]:
        """``{name}`` templates compiled for one project's names (once per name set)."""
        hit = self._for_names.get(names)
        if hit is None:
            lowered = tuple(n.lower() for n in names)
            hit = [(t.for_names(lowered), i) for t, i in self.name_regexes]
            if len(self._for_names) >= 4096:
                self._for_names.clear()
            self._for_names[names] = hit
        return hit


def lowered_pattern(pattern: str) -> str:
    """The pattern for lower-cased text: literals lowered, escapes and group names kept.

    Rule regexes are case-insensitive. Running ``lowered_pattern(p)`` on lower-cased
    text (same offsets, see ``lower_same_length``) finds the same matches as
    ``re.IGNORECASE`` on the original, and is up to 10x faster: with IGNORECASE,
    Python's ``re`` cannot skip ahead on a leading alternation of literals.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            j = i + 2
            if pattern.startswith("N{", i + 1):
                j = pattern.index("}", i) + 1
            out.append(pattern[i:j])
            i = j
        elif pattern.startswith(("(?P<", "(?P="), i):
            j = pattern.index(">" if pattern[i + 3] == "<" else ")", i) + 1
            out.append(pattern[i:j])
            i = j
        elif pattern.startswith("{name}", i):
            out.append("{name}")
            i += 6
        else:
            out.append(c.lower() if len(c.lower()) == 1 else c)
            i += 1
    return "".join(out)


def _same_kind_merged(sections: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Consecutive sections of one kind as one (a README's ~250 lines are ~80 runs)."""
    out = sections[:1]
    for s, e, k in sections[1:]:
        if k == out[-1][2] and s == out[-1][1]:
            out[-1] = (out[-1][0], e, k)
        else:
            out.append((s, e, k))
    return out


def _runs(sections: list[tuple[int, int, str]], kinds: frozenset[str]) -> list[tuple[int, int]]:
    """Maximal stretches of consecutive sections whose kind is in ``kinds``."""
    out: list[tuple[int, int]] = []
    for s, e, k in sections:
        if k not in kinds:
            continue
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


_NAME = re.compile(r"[A-Za-z][\w.+\-]*[A-Za-z0-9+]|[A-Za-z]")


def project_names(title: str) -> list[str]:
    """Likely command/package names of a project from its title ("ripgrep (rg)" -> ripgrep, rg)."""
    names: list[str] = []
    for m in _NAME.finditer(title[:80]):
        word = m.group().lower()
        for cand in (word, re.sub(r"\.(?:js|py|rs|go|jl|rb)$", "", word), word.replace("-", "_"), word.replace("_", "-")):
            if len(cand) >= 2 and cand not in names:
                names.append(cand)
        if len(names) >= 2 and "(" not in title:
            break
    return names[:6]
