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
from itertools import accumulate, chain
from operator import itemgetter

from rapidfuzz import fuzz, process

from engine.lexicon.matchers import Hit, TermInfo

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]*[A-Za-z0-9+#]|[A-Za-z]{2,}")
#: (text skipped, word) pairs: the words ``_WORD.finditer`` finds, in one C-level
#: ``findall``; running sums of the pieces' lengths give their offsets.
_GAP_WORD = re.compile(r"([\s\S]*?)(" + _WORD.pattern + ")")
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
        # A near miss keeps its first letter (``_accept``): each query is scored only
        # against the names that share it, ~1/20 of the vocabulary.
        self._by_initial: dict[str, list[int]] = {}
        for c, v in enumerate(self.choices):
            self._by_initial.setdefault(v[0], []).append(c)
        self._known: dict[str, tuple[tuple[int, float], ...]] = {}
        self._near: dict[str, tuple[tuple[int, float], ...]] = {}  # the known queries with near misses

    def hits(self, text: str, spans: list[tuple[int, int]], max_per_term: int = 3) -> list[Hit]:
        """Words and word pairs of ``text[spans]`` close to (but not equal to) a vocabulary name."""
        if not self.choices:
            return []
        # Per-word work stays in C (findall, map, set): a README has ~900 prose words
        # and ~5 near misses, so Python only touches the words that are one.
        runs = []
        for s, e in spans:
            pairs = _GAP_WORD.findall(text, s, e)
            words = list(map(str.lower, map(itemgetter(1), pairs)))
            ends = list(accumulate(map(len, chain.from_iterable(pairs)), initial=s))[2::2]
            runs.append((words, ends, list(map(" ".join, zip(words, words[1:])))))
        # Short words are queried too: no name is shorter than MIN_LEN, so they can
        # only score below SHORT_CUTOFF and are refused (cheaper than filtering them).
        queries = set()
        for words, _, pairs in runs:
            queries.update(words)
            queries.update(pairs)
        matches = self._lookup(queries)
        if not matches:
            return []
        # Positions (at most ``max_per_term`` per query, in text order) of those found.
        where: dict[str, list[tuple[int, int]]] = {}
        for words, ends, pairs in runs:
            for i in [i for i, w in enumerate(words) if w in matches]:
                lst = where.setdefault(words[i], [])
                if len(lst) < max_per_term:
                    lst.append((ends[i] - len(words[i]), ends[i]))
            for i in [i for i, g in enumerate(pairs) if g in matches]:
                lst = where.setdefault(pairs[i], [])
                if len(lst) < max_per_term:
                    lst.append((ends[i] - len(words[i]), ends[i + 1]))
        hits: list[Hit] = []
        for q, locs in where.items():
            for c, score in matches[q]:
                info = self.infos[c]
                fuzzy_info = TermInfo(info.tag, "fuzzy", f"{q}~{self.choices[c]}", info.weight * score * FUZZY_SHARE, info.where)
                hits.extend(Hit(fuzzy_info, a, b) for a, b in locs)
        return hits

    def _lookup(self, queries: set[str]) -> dict[str, tuple[tuple[int, float], ...]]:
        """Near misses of each query (only queries that have some), computing unseen ones."""
        new = sorted(queries.difference(self._known))
        if new:
            if len(self._known) + len(new) > CACHE_LIMIT:
                self._known.clear()
                self._near.clear()
            found: dict[int, list[tuple[int, float]]] = {}
            groups: dict[str, list[int]] = {}
            for r, q in enumerate(new):
                if q[0] in self._by_initial:
                    groups.setdefault(q[0], []).append(r)
            for initial, rows_of in groups.items():
                cols_of = self._by_initial[initial]
                matrix = process.cdist([new[r] for r in rows_of], [self.choices[c] for c in cols_of],
                                       scorer=fuzz.ratio, score_cutoff=CUTOFF, workers=1)
                rows, cols = matrix.nonzero()  # row-major: each query's names in vocabulary order
                for r, c, s in zip(rows.tolist(), cols.tolist(), matrix[rows, cols].tolist()):
                    score = self._accept(new[rows_of[r]], self.choices[cols_of[c]], s / 100.0)
                    if score:
                        found.setdefault(rows_of[r], []).append((cols_of[c], score))
            for r, q in enumerate(new):
                self._known[q] = tuple(found.get(r, ()))
                if r in found:
                    self._near[q] = self._known[q]
        return {q: self._near[q] for q in self._near.keys() & queries}

    @staticmethod
    def _accept(query: str, name: str, score: float) -> float:
        if query == name:
            return 0.0  # exact: the phrase matcher has it
        # Short words need a closer match ("openai" is not "openapi"), and a near
        # miss keeps its first letter ("the assistant" is not "home assistant").
        if (len(query) < 8 and score < SHORT_CUTOFF / 100.0) or query[0] != name[0]:
            return 0.0
        return score

