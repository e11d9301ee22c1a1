"""Hits -> evidence and raw scores per tag, computed over a ``HitTable``'s columns.

What each hit counts, in words: ``term weight x section weight x position weight``,
rounded to 4 decimals (a term limited to some sections counts its own weight there,
and nothing elsewhere); a span matched by several terms of one tag counts once, for
the first in (start, longest, kind, label) order; a negative phrase of the tag within
``NEGATIVE_WINDOW`` characters vetoes the hit; repeated hits of one term saturate (the
strongest counts fully, the rest ``REPEAT_SHARE x log(1 + their sum)``) so a word
repeated 50 times in a changelog cannot outvote the tagline.

The arithmetic is the per-hit loop's, operation for operation (numpy's float64 ``*``
and ``/`` round as Python's do; ``round_half`` agrees with ``round(x, 4)`` on every
value; sums run in Python, in the loop's order), so candidates, weights and
explanations are the same bytes. No ``Evidence`` is made here: each candidate's is an
``EvidenceList`` over the README's rows, made into tuples when it is read.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.lexicon.hits import Hit, HitTable, TermInfo
from engine.lexicon.readme import WEIGHTS, Document
from engine.lexicon.types import Evidence, EvidenceList, EvidenceRows

NEGATIVE_WINDOW = 40  # characters: a negative phrase this close vetoes a hit
REPEAT_SHARE = 0.35  # weight of log(1 + rest) for repeated hits of one term
DIGITS = 4  # evidence weights are rounded to this many decimals


@dataclass
class Weighed:
    """Per tag, in the order of each tag's first counted hit: its raw score (before
    the tag weight and relations), its evidence, and its vetoed hits."""

    raw: dict[str, float]
    evidence: dict[str, EvidenceList]
    vetoed: dict[str, list[Evidence]]


def weigh(table: HitTable, doc: Document, negs: list[Hit]) -> Weighed:
    """Evidence and raw scores of ``table``'s hits in ``doc`` (``negs``: veto hits)."""
    out = Weighed({}, {}, {})
    if not len(table):
        return out
    col, tag_ids = table.terms.extended(table.extra)
    info = table.info
    # Hits by start, longest first, then by the term's (kind, label); stable.
    order = np.lexsort((col["rank"][table.term], -table.end, table.start))
    term, start, end = table.term[order], table.start[order], table.end[order]
    tag = col["tag"][term]
    rows = _first_per_tag_and_span(tag, start, end)
    kinds, kind, section_w = _sections(doc, start[rows])
    rows, kind, section_w = _where_allowed(rows, col["where"], term, info, kinds, kind, section_w)
    term, start, end, tag = term[rows], start[rows], end[rows], tag[rows]
    # Later text is a little less about the project itself.
    position_w = 1.0 / (1.0 + 0.5 * start.astype(np.float64) / max(len(doc.text), 1))
    weight = round_half(col["weight"][term] * section_w * position_w)

    veto = _vetoes(tag_ids, tag, start, end, negs)
    for j in np.flatnonzero(veto >= 0).tolist():
        i, s, e = info(term[j]), int(start[j]), int(end[j])
        out.vetoed.setdefault(i.tag, []).append(
            Evidence(i.tag, i.rule, doc.text[s:e], s, e, kinds[kind[j]], 0.0, negs[veto[j]].term.label))
    counted = veto < 0
    if counted.any():
        _count(out, info, doc.text, kinds, col["group"], term[counted], start[counted], end[counted], tag[counted],
               kind[counted], weight[counted])
    return out


def _count(out: Weighed, info: Callable[[int], TermInfo], text: str, kinds: list[str],
           group_of_term: np.ndarray, term: np.ndarray, start: np.ndarray, end: np.ndarray, tag: np.ndarray,
           kind: np.ndarray, weight: np.ndarray) -> None:
    """Evidence and raw scores of the hits that count, into ``out``.

    Hits of one (tag, rule) form a group; groups are numbered in the order of their
    first hit, tags in the order of their first group, and the evidence lays each
    tag's hits out together, group after group (the per-hit loop's dict order)."""
    uniq, first_at, inverse = np.unique(group_of_term[term], return_index=True, return_inverse=True)
    number = np.empty(len(uniq), dtype=np.int64)
    number[np.argsort(first_at, kind="stable")] = np.arange(len(uniq))
    group = number[inverse.reshape(-1)]
    group_tag = np.empty(len(uniq), dtype=np.int64)
    group_tag[group] = tag
    tags, tag_first = np.unique(group_tag, return_index=True)
    tag_number = np.empty(len(tags), dtype=np.int64)
    tag_number[np.argsort(tag_first, kind="stable")] = np.arange(len(tags))
    group_tag = tag_number[np.searchsorted(tags, group_tag)]
    together = np.argsort(group_tag[group] * len(uniq) + group, kind="stable")
    rows = EvidenceRows(text, info, kinds, term[together], start[together], end[together], kind[together],
                        weight[together])
    W = rows.weight.tolist()

    # A group counts its strongest hit, and REPEAT_SHARE x log(1 + the rest's sum).
    sizes = np.bincount(group, minlength=len(uniq))
    laid = np.argsort(group_tag, kind="stable")  # the groups in the order ``together`` lays them out
    place = np.empty(len(uniq), dtype=np.int64)  # each group's first row in ``rows``
    place[laid] = np.cumsum(sizes[laid]) - sizes[laid]
    value = [W[p] for p in place.tolist()]
    for j in np.flatnonzero(sizes > 1).tolist():
        p = int(place[j])
        ws = sorted(W[p:p + int(sizes[j])], reverse=True)
        value[j] = ws[0] + REPEAT_SHARE * math.log1p(sum(ws[1:]))  # Python's sum, as the loop summed
    totals = [0.0] * len(tags)  # each tag's groups added in their order
    for t, v in zip(group_tag.tolist(), value):
        totals[t] += v
    ends = np.cumsum(np.bincount(group_tag[group], minlength=len(tags)))
    a = 0
    for t, (b, first) in enumerate(zip(ends.tolist(), rows.term[ends - 1].tolist())):
        name = rows.info(first).tag
        out.raw[name] = totals[t]
        out.evidence[name] = EvidenceList(rows, a, b)
        a = b


def _where_allowed(rows: np.ndarray, limited: np.ndarray, term: np.ndarray, info: Callable[[int], TermInfo], kinds: list[str],
                   kind: np.ndarray, section_w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A term limited to some sections counts its own weight there (section weight 1)
    and nothing elsewhere: ``rows`` (a mask) without those hits, and their kind and
    section weight. The span they held still counts as taken for their tag."""
    at = np.flatnonzero(rows)
    drop = []
    for j in np.flatnonzero(limited[term[at]]).tolist():
        if kinds[kind[j]] in info(term[at[j]]).where:
            section_w[j] = 1.0
        else:
            drop.append(j)
    if not drop:
        return rows, kind, section_w
    rows = rows.copy()
    rows[at[drop]] = False
    keep = np.ones(len(at), dtype=bool)
    keep[drop] = False
    return rows, kind[keep], section_w[keep]


def _first_per_tag_and_span(tag: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Mask of hits that are the first (in the given order, where equal spans are
    adjacent) of their tag on their span: one span counts once per tag."""
    n = len(tag)
    new_span = np.ones(n, dtype=bool)
    new_span[1:] = (start[1:] != start[:-1]) | (end[1:] != end[:-1])
    span = np.cumsum(new_span)
    o = np.lexsort((tag, span))  # stable: each (span, tag) run keeps the given order
    first = np.ones(n, dtype=bool)
    first[1:] = (span[o][1:] != span[o][:-1]) | (tag[o][1:] != tag[o][:-1])
    keep = np.zeros(n, dtype=bool)
    keep[o[first]] = True
    return keep


def _sections(doc: Document, start: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Each hit's section kind (an index into the returned kinds) and its weight: the
    last section starting at or before the hit, if the hit starts inside it, else body."""
    segs = doc.segments
    kinds = ["body", *sorted({s.kind for s in segs} - {"body"})]
    code = {k: i for i, k in enumerate(kinds)}
    weights = np.array([WEIGHTS["body"], *(WEIGHTS.get(k, 1.0) for k in kinds[1:])], dtype=np.float64)
    if not segs:
        kind = np.zeros(len(start), dtype=np.int64)
    else:
        seg_start = np.array([s.start for s in segs], dtype=np.int64)
        seg_end = np.array([s.end for s in segs], dtype=np.int64)
        seg_kind = np.array([code[s.kind] for s in segs], dtype=np.int64)
        i = np.searchsorted(seg_start, start, side="right") - 1
        j = np.maximum(i, 0)
        kind = np.where((i >= 0) & (start < seg_end[j]), seg_kind[j], 0)
    return kinds, kind, weights[kind]


def _vetoes(tag_ids: dict[str, int], tag: np.ndarray, start: np.ndarray, end: np.ndarray, negs: list[Hit]) -> np.ndarray:
    """For each hit, the index in ``negs`` of the first negative of its tag close
    enough to veto it (-1: none)."""
    veto = np.full(len(tag), -1, dtype=np.int64)
    by_tag: dict[str, list[int]] = {}
    for k, n in enumerate(negs):
        by_tag.setdefault(n.term.tag, []).append(k)
    for name, ks in by_tag.items():
        tid = tag_ids.get(name)
        idx = np.flatnonzero(tag == tid) if tid is not None else ()
        if not len(idx):
            continue
        s, e = start[idx], end[idx]
        free = np.ones(len(idx), dtype=bool)
        for k in ks:
            n = negs[k]
            hit = free & (n.start - NEGATIVE_WINDOW <= s) & (e <= n.end + NEGATIVE_WINDOW)
            veto[idx[hit]] = k
            free &= ~hit
    return veto


_HALF_GUARD = 1e-6  # products this close to a half are rounded by Python itself


def round_half(x: np.ndarray, digits: int = DIGITS) -> np.ndarray:
    """``round(v, digits)`` for each value, as Python rounds it.

    Python rounds the exact binary value to the nearest decimal and returns the float
    nearest to that decimal; ``rint(x * 10**digits) / 10**digits`` does the same except
    where the product's own rounding moves it across a half (or it is too large to
    carry a fraction): those few values go through ``round``.
    """
    scale = 10.0 ** digits
    y = x * scale
    out = np.rint(y) / scale
    odd = (np.abs(y - np.floor(y) - 0.5) < _HALF_GUARD) | ~(np.abs(y) < 2.0 ** 52)
    for j in np.flatnonzero(odd).tolist():
        out[j] = round(float(x[j]), digits)
    return out
