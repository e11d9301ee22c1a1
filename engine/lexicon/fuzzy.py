"""Near-miss names with rapidfuzz: typos, spacing, and short forms.

``postgres`` ~ ``postgresql``, ``web assembly`` ~ ``webassembly``, ``kubernets`` ~
``kubernetes``. Exact hits are the phrase matcher's job; this adds only what it misses,
and only from the prose sections, where names are used rather than quoted in code.

Words repeat across a catalogue ("the", "install", "library"), so each distinct word
or word pair is scored against the vocabulary once per ``FuzzyNames`` and remembered:
after the first few hundred READMEs almost every query is a dictionary lookup.
"""
from __future__ import annotations

import re

from rapidfuzz import fuzz, process

from engine.lexicon.matchers import Hit, TermInfo

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]*[A-Za-z0-9+#]|[A-Za-z]{2,}")
MIN_LEN = 5
CUTOFF = 88.0
SHORT_CUTOFF = 94.0
FUZZY_SHARE = 0.7  # a near miss counts this share of the exact term's weight
CACHE_LIMIT = 500_000  # remembered queries; cleared (not evicted one by one) when full


class FuzzyNames:
    """Fuzzy lookup of a fixed vocabulary of names (aliases and tag names)."""

    def __init__(self, vocab: list[tuple[str, TermInfo]]) -> None:
        kept = [(v, i) for v, i in vocab if len(v) >= MIN_LEN]
        self.choices = [v for v, _ in kept]
        self.infos = [i for _, i in kept]
        self._known: dict[str, tuple[tuple[int, float], ...]] = {}

    def hits(self, text: str, spans: list[tuple[int, int]], max_per_term: int = 3) -> list[Hit]:
        """Words and word pairs of ``text[spans]`` close to (but not equal to) a vocabulary name."""
        if not self.choices:
            return []
        where: dict[str, list[tuple[int, int]]] = {}
        for s, e in spans:
            words = [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text, s, e)]
            grams = [(w, a, b) for w, a, b in words if len(w) >= MIN_LEN]
            grams += [(w + " " + w2, a, b2) for (w, a, _), (w2, _, b2) in zip(words, words[1:])]
            for g, a, b in grams:
                lst = where.get(g)
                if lst is None:
                    where[g] = [(a, b)]
                elif len(lst) < max_per_term:
                    lst.append((a, b))
        matches = self._lookup(list(where))
        hits: list[Hit] = []
        for q, found in matches.items():
            for c, score in found:
                info = self.infos[c]
                fuzzy_info = TermInfo(info.tag, "fuzzy", f"{q}~{self.choices[c]}", info.weight * score * FUZZY_SHARE, info.where)
                hits.extend(Hit(fuzzy_info, a, b) for a, b in where[q])
        return hits

    def _lookup(self, queries: list[str]) -> dict[str, tuple[tuple[int, float], ...]]:
        """Near misses of each query (only queries that have some), computing unseen ones."""
        new = [q for q in queries if q not in self._known]
        if new:
            if len(self._known) + len(new) > CACHE_LIMIT:
                self._known.clear()
            matrix = process.cdist(new, self.choices, scorer=fuzz.ratio, score_cutoff=CUTOFF, workers=1)
            found: dict[int, list[tuple[int, float]]] = {}
            rows, cols = matrix.nonzero()
            for r, c in zip(rows.tolist(), cols.tolist()):
                score = self._accept(new[r], self.choices[c], float(matrix[r, c]) / 100.0)
                if score:
                    found.setdefault(r, []).append((c, score))
            for r, q in enumerate(new):
                self._known[q] = tuple(found.get(r, ()))
        return {q: self._known[q] for q in queries if self._known[q]}

    @staticmethod
    def _accept(query: str, name: str, score: float) -> float:
        if query == name:
            return 0.0  # exact: the phrase matcher has it
        # Short words need a closer match ("openai" is not "openapi"), and a near
        # miss keeps its first letter ("the assistant" is not "home assistant").
        if (len(query) < 8 and score < SHORT_CUTOFF / 100.0) or query[0] != name[0]:
            return 0.0
        return score

