"""A README's hits as columns: which term, where, in the order scoring reads them.

A learned pack's common words ("install", "server", "test") are phrases of several
tags each, so one README makes ~1,900 hits with one (~180 with the hand pack). As
Python objects, one per hit, building, sorting and weighing them was the lexicon's
largest cost. Here the matchers' output stays in numpy arrays (term index, start,
end) from the match ids to the weights (``engine/lexicon/scoring.py``), and what a
candidate keeps stays rows too (``EvidenceList``), made into ``Evidence`` when read.

``TermTable`` holds what scoring needs of each term of a compiled pack, once: weight,
tag, section filter, the (tag, rule) group its repeats saturate in, and its rank in the
(kind, label) order that breaks ties between hits on one span. Terms made per README
(regex hits of ``{name}`` rules, fuzzy near misses) join a ``HitTable`` as ``extra``
terms, with the same columns computed for them.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import chain
from typing import Callable, Collection, NamedTuple

import numpy as np


@dataclass(frozen=True)
class TermInfo:
    tag: str  # exact taxonomy name
    kind: str  # alias | phrase | pattern | regex | name
    label: str  # human-readable term, for evidence
    weight: float
    where: frozenset[str] | None
    rule: str = field(init=False, repr=False, compare=False)  # "kind:label", as evidence names it

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", f"{self.kind}:{self.label}")


class Hit(NamedTuple):
    """One match of one term, as a regex, a near miss or a negative phrase gives it
    (the phrase matchers' thousands stay columns of a ``HitTable``)."""
    term: TermInfo
    start: int
    end: int


class TermTable:
    """Per-term columns of a compiled pack's matcher terms (index = term index)."""

    def __init__(self, infos: list[TermInfo], match_ids: list[int]) -> None:
        self.infos = infos
        order = np.argsort(np.asarray(match_ids, dtype=np.uint64), kind="stable")
        self._ids = np.asarray(match_ids, dtype=np.uint64)[order]
        self._id_term = order
        self.tag_ids: dict[str, int] = {}
        self.group_ids: dict[tuple[str, str], int] = {}
        self._pairs = sorted({(t.kind, t.label) for t in infos})
        self._pair_rank = {p: float(r) for r, p in enumerate(self._pairs)}
        tags, groups = self.tag_ids, self.group_ids
        self.columns = self._columns(infos, lambda k: tags.setdefault(k, len(tags)),
                                     lambda k: groups.setdefault(k, len(groups)), self._pair_rank)

    @staticmethod
    def _columns(infos: list[TermInfo], tag: Callable[[str], int], group: Callable[[tuple[str, str]], int],
                 ranks: dict[tuple[str, str], float]) -> dict[str, np.ndarray]:
        return {
            "weight": np.array([t.weight for t in infos], dtype=np.float64),
            "tag": np.array([tag(t.tag) for t in infos], dtype=np.int64),
            "where": np.array([t.where is not None for t in infos], dtype=bool),
            "group": np.array([group((t.tag, t.rule)) for t in infos], dtype=np.int64),
            "rank": np.array([ranks[(t.kind, t.label)] for t in infos], dtype=np.float64),
        }

    def terms_of(self, match_ids: np.ndarray) -> np.ndarray:
        """Term indices of spaCy match ids (the hashes of ``"<tag key>|<kind>|<n>"``)."""
        pos = np.searchsorted(self._ids, match_ids)
        pos[pos >= len(self._ids)] = 0
        if not np.array_equal(self._ids[pos], match_ids):
            raise KeyError("a match id the pack did not register")
        return self._id_term[pos]

    def extended(self, extra: list[TermInfo]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Columns and tag numbers with ``extra`` terms after the pack's. An extra term
        shares its tag's number and its (tag, rule) group with the pack's terms, and a
        (kind, label) the pack lacks ranks between its neighbours in sorted order.
        Nothing of the table changes (threads share it)."""
        if not extra:
            return self.columns, self.tag_ids
        ranks = self._pair_rank
        new = sorted({(t.kind, t.label) for t in extra} - ranks.keys())
        if new:
            ranks = dict(ranks)
            at: dict[int, list[tuple[str, str]]] = {}
            for p in new:
                at.setdefault(bisect_left(self._pairs, p), []).append(p)
            for pos, ps in at.items():  # between rank pos - 1 and pos, in their own order
                for j, p in enumerate(ps):
                    ranks[p] = pos - 1 + (j + 1) / (len(ps) + 1)
        tag, tags = _numbering(self.tag_ids)
        more = self._columns(extra, tag, _numbering(self.group_ids)[0], ranks)
        cols = {k: np.concatenate([v, more[k]]) for k, v in self.columns.items()}
        return cols, {**self.tag_ids, **tags} if tags else self.tag_ids


def _numbering(known: dict) -> tuple[Callable, dict]:
    """Numbers for keys: ``known``'s, else the next free ones, kept in the returned
    dict (``known`` stays as it is)."""
    new: dict = {}

    def number(key) -> int:
        n = known.get(key)
        return n if n is not None else new.setdefault(key, len(known) + len(new))

    return number, new


class HitTable:
    """One README's hits: ``term`` indexes the pack's ``TermTable`` (then ``extra``)."""

    def __init__(self, terms: TermTable, term: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        self.terms = terms
        self.term = term
        self.start = start
        self.end = end
        self.extra: list[TermInfo] = []
        self._extra_index: dict[int, int] = {}

    @classmethod
    def from_matches(cls, terms: TermTable, matches: Collection[tuple[int, int, int]], starts: list[int],
                     ends: list[int]) -> "HitTable":
        """spaCy's (match id, first token, end token) triples, tokens at ``starts``/``ends``."""
        n = len(matches)
        arr = np.fromiter(chain.from_iterable(matches), dtype=np.uint64, count=3 * n).reshape(n, 3)
        tok = arr[:, 1:].astype(np.int64)
        return cls(terms, terms.terms_of(arr[:, 0]), np.asarray(starts, dtype=np.int64)[tok[:, 0]],
                   np.asarray(ends, dtype=np.int64)[tok[:, 1] - 1])

    def __len__(self) -> int:
        return len(self.term)

    def info(self, t: int) -> TermInfo:
        """The term of term index ``t``: the pack's, then this README's own."""
        base = len(self.terms.infos)
        return self.terms.infos[t] if t < base else self.extra[t - base]

    def add(self, hits: list[Hit]) -> None:
        """Hits with any term (a regex's, a near miss's), after those already here."""
        if not hits:
            return
        base = len(self.terms.infos)
        idx = []
        for h in hits:
            k = self._extra_index.get(id(h.term))
            if k is None:
                k = self._extra_index[id(h.term)] = base + len(self.extra)
                self.extra.append(h.term)
            idx.append(k)
        self.term = np.concatenate([self.term, np.array(idx, dtype=np.int64)])
        self.start = np.concatenate([self.start, np.array([h.start for h in hits], dtype=np.int64)])
        self.end = np.concatenate([self.end, np.array([h.end for h in hits], dtype=np.int64)])

    def keep(self, mask: np.ndarray) -> None:
        self.term, self.start, self.end = self.term[mask], self.start[mask], self.end[mask]

    def outside(self, spans: list[tuple[int, int]]) -> None:
        """Drop hits that lie inside one of ``spans`` (sorted, not overlapping)."""
        if not spans or not len(self):
            return
        starts = np.array([s for s, _ in spans], dtype=np.int64)
        ends = np.array([e for _, e in spans], dtype=np.int64)
        i = np.searchsorted(starts, self.start, side="right") - 1
        inside = (i >= 0) & (self.end <= ends[np.maximum(i, 0)])
        self.keep(~inside)

    def hits(self) -> list[Hit]:
        """The rows as ``Hit`` tuples, in table order."""
        return [Hit(self.info(t), s, e) for t, s, e in zip(self.term.tolist(), self.start.tolist(), self.end.tolist())]
