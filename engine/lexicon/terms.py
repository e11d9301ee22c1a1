"""What a README says, as the set of terms a rule could match: lemma unigrams and
bigrams of its prose (title, tagline, intro, headings, body, lists), the same tokens
and lemmas the lexicon's phrase matcher sees. Addresses, code and boilerplate are left
out: a learned term must be a word a person would write in a rule. Read by the rule
miner (``engine/mining``) and by the neighbours' index (``engine/neighbours``)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from engine.lexicon.nlp import get_nlp, lower_same_length, token_offsets
from engine.lexicon.readme import URL_SPANS, segment_readme

PROSE = frozenset(("title", "tagline", "intro", "heading", "body", "list"))
_WORDLIKE = re.compile(r"^[a-z][a-z0-9+#.\-']*$")
MAX_CHARS = 40_000  # of a README mined (the lexicon's analysed share is larger; terms recur early)


def stopwords() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS) | {"use", "using", "used", "also", "eg", "etc", "like", "get", "make", "see", "way", "need",
                                    "want", "new", "one", "well", "just", "set", "run", "way", "support", "supports", "file"}


@dataclass(frozen=True)
class DocTerms:
    """A README's distinct terms, and a short line of prose holding each (for examples)."""

    terms: frozenset[str]
    lines: dict[str, str]


def doc_terms(text: str, keep_lines: bool = False) -> DocTerms:
    """Distinct lemma unigrams and bigrams of a README's prose."""
    text = text[:MAX_CHARS]
    low = lower_same_length(text)
    blanked = URL_SPANS.sub(lambda m: " " * (m.end() - m.start()), low)
    doc = get_nlp()(blanked)
    seg = segment_readme(text)
    stop = _STOP
    terms: set[str] = set()
    lines: dict[str, str] = {}
    prev: str | None = None
    starts = token_offsets(doc)[0]
    for i, tok in enumerate(doc):
        lemma = tok.lemma_
        start = starts[i]
        kind = seg.section_at(start).kind
        if kind not in PROSE or not _WORDLIKE.match(lemma) or len(lemma) < 2:
            prev = None
            continue
        if lemma in stop:
            prev = None
            continue
        found = [lemma] if prev is None else [lemma, f"{prev} {lemma}"]
        for term in found:
            if term not in terms:
                terms.add(term)
                if keep_lines:
                    lines[term] = _line_at(text, start)
        prev = lemma
    return DocTerms(frozenset(terms), lines)


def _line_at(text: str, pos: int, width: int = 90) -> str:
    """The line holding ``pos``, at most ``width`` characters either side of it (whole words)."""
    s = max(text.rfind("\n", 0, pos) + 1, pos - width)
    e = text.find("\n", pos)
    e = min(e if e >= 0 else len(text), pos + width)
    if s > 0 and text[s - 1] not in "\n ":
        s = text.find(" ", s, pos) + 1 or s
    if e < len(text) and text[e] not in "\n ":
        e = text.rfind(" ", pos, e) if text.rfind(" ", pos, e) > pos else e
    return " ".join(text[s:e].split())


_STOP = stopwords()
