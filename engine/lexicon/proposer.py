"""The lexicon stage end to end: README -> ranked candidates with evidence.

Scoring, in words: every hit counts ``term weight x section weight``; repeated hits
of one term saturate (the first counts fully, the rest logarithmically) so a word
repeated 50 times in a changelog cannot outvote the tagline; a tag's raw score is the
sum over its terms times the tag weight; implications and preferences between tags
then move score; ``1 - exp(-raw / TAU)`` maps raw scores to [0, 1).
"""
from __future__ import annotations

import gc
import math
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from operator import attrgetter

from engine.lexicon.fuzzy import FuzzyNames
from engine.lexicon.matchers import CompiledRules, Hit, project_names
from engine.lexicon.nlp import get_nlp, lower_same_length
from engine.lexicon.readme import URL_SPANS, WEIGHTS, Document, segment_readme
from engine.lexicon.types import Candidate, Evidence
from engine.rules import RulePack
from engine.taxonomy import Taxonomy

TAU = 2.5
NEGATIVE_WINDOW = 40  # characters: a negative phrase this close vetoes a hit
REPEAT_SHARE = 0.35  # weight of log(1 + rest) for repeated hits of one term
PREFER_FACTOR = 0.6
PROSE = ("title", "tagline", "intro", "heading", "body", "list")


def _squash(raw: float) -> float:
    return 1.0 - math.exp(-raw / TAU)


class Lexicon:
    """Proposes candidate tags for documents, for one rule pack and taxonomy."""

    def __init__(self, pack: RulePack, taxonomy: Taxonomy) -> None:
        self.pack = pack
        self.taxonomy = taxonomy
        self.rules = CompiledRules(pack, taxonomy)
        self.fuzzy = FuzzyNames(self.rules.fuzzy_vocab)

    def analyze(self, text: str) -> tuple[Document, list[Candidate]]:
        """Segmented document (the decision stage builds its prompt from it) and candidates."""
        doc = segment_readme(text)
        return doc, self.propose(text, doc)

    def propose(self, text: str, doc: Document | None = None) -> list[Candidate]:
        """All tags with any evidence, best first (ties broken by taxonomy order)."""
        with _collector_paused():
            return self._propose(text, doc)

    def _propose(self, text: str, doc: Document | None) -> list[Candidate]:
        doc = doc or segment_readme(text)
        low = lower_same_length(text)
        urls = [(m.start(), m.end()) for m in URL_SPANS.finditer(low)]
        # Words inside addresses are never evidence (see ``_outside``), and they are
        # about a third of a README's tokens (badges, links): the token pipeline gets
        # them blanked out, same length, so offsets do not move. Regexes still see them.
        sdoc = get_nlp()(_blanked(low, urls))
        hits, negs = self.rules.run(sdoc, low, project_names(doc.title), [(s.start, s.end, s.kind) for s in doc.segments])
        hits = _outside(hits, urls)
        prose = [(s.start, s.end) for s in doc.segments if s.kind in PROSE]
        hits += self.fuzzy.hits(text, _merge(prose))
        return self._score(doc, hits, negs)

    def _score(self, doc: Document, hits: list[Hit], negs: list[Hit]) -> list[Candidate]:
        # A learned pack's common words make ~2k hits per README: this loop is the
        # lexicon's hot path, so per-term strings come precomputed (``TermInfo.rule``)
        # and sections are walked alongside the sorted hits instead of searched.
        neg_by_tag: dict[str, list[Hit]] = defaultdict(list)
        for n in negs:
            neg_by_tag[n.term.tag].append(n)
        per_term: dict[tuple[str, str], list[Evidence]] = defaultdict(list)
        vetoed: dict[str, list[Evidence]] = defaultdict(list)
        seen: set[tuple[str, int, int]] = set()
        text = doc.text
        doc_len = max(len(text), 1)
        segments = doc.segments
        starts = [seg.start for seg in segments] + [math.inf]
        i = -1
        next_start = starts[0]
        body_w = WEIGHTS["body"]
        seg_end, seg_kind, seg_w = -1, "body", body_w
        seen_add = seen.add
        for info, start, end in _in_order(hits):
            tag = info.tag
            key = (tag, start, end)
            if key in seen:  # the same span via two terms of one tag counts once
                continue
            seen_add(key)
            while start >= next_start:  # hits come sorted by start
                i += 1
                seg_end, seg_kind = segments[i].end, segments[i].kind
                seg_w = WEIGHTS.get(seg_kind, 1.0)
                next_start = starts[i + 1]
            kind, section_w = (seg_kind, seg_w) if i >= 0 and start < seg_end else ("body", body_w)
            if info.where is not None:
                if kind not in info.where:
                    continue
                section_w = 1.0
            # Later text is a little less about the project itself.
            position_w = 1.0 / (1.0 + 0.5 * start / doc_len)
            ev = Evidence(tag, info.rule, text[start:end], start, end, kind, round(info.weight * section_w * position_w, 4))
            vetoes = neg_by_tag.get(tag)
            veto = vetoes and next((n for n in vetoes if n.start - NEGATIVE_WINDOW <= start and end <= n.end + NEGATIVE_WINDOW), None)
            if veto:
                vetoed[tag].append(Evidence(**{**ev.__dict__, "weight": 0.0, "vetoed_by": veto.term.label}))
                continue
            per_term[(tag, info.rule)].append(ev)

        raw: dict[str, float] = defaultdict(float)
        evidence: dict[str, list[Evidence]] = defaultdict(list)
        for (tag, _), evs in per_term.items():
            if len(evs) == 1:  # most terms hit once: the same sum, without the sort
                raw[tag] += evs[0].weight
            else:
                ws = sorted([e.weight for e in evs], reverse=True)
                raw[tag] += ws[0] + REPEAT_SHARE * math.log1p(sum(ws[1:]))
            evidence[tag].extend(evs)
        notes: dict[str, list[str]] = defaultdict(list)
        for tag in list(raw):
            rule = self.rules.rules.get(tag)
            if rule is not None:
                raw[tag] *= rule.weight
        self._apply_relations(raw, notes)
        order = {t.name: i for i, t in enumerate(self.taxonomy)}
        cands = [
            Candidate(tag=t, score=_squash(r), raw=r, evidence=evidence.get(t, []), vetoed=vetoed.get(t, []), notes=notes.get(t, []),
                      admit=getattr(self.rules.rules.get(t), "admit", None))
            for t, r in raw.items() if r > 0
        ]
        for t, v in vetoed.items():
            if t not in raw:
                cands.append(Candidate(tag=t, score=0.0, raw=0.0, vetoed=v, notes=["all hits vetoed"]))
        cands.sort(key=lambda c: (-c.score, order.get(c.tag, 0)))
        return cands

    def _apply_relations(self, raw: dict[str, float], notes: dict[str, list[str]]) -> None:
        """Implications add a share of a tag's score to another; preferences damp the generic tag."""
        base = dict(raw)
        for tag, score in base.items():
            rule = self.rules.rules.get(tag)
            if rule is None:
                continue
            for other, share in rule.implies.items():
                target = self.taxonomy.get(other)
                if target is not None and share > 0:
                    raw[target.name] += share * score
                    notes[target.name].append(f"+{share * score:.2f} implied by {tag}")
        base = dict(raw)
        for tag, score in base.items():
            rule = self.rules.rules.get(tag)
            if rule is None:
                continue
            for other in rule.prefer_over:
                target = self.taxonomy.get(other)
                if target is not None and target.name in base and score >= 0.5 * base[target.name]:
                    raw[target.name] *= PREFER_FACTOR
                    notes[target.name].append(f"x{PREFER_FACTOR} {tag} preferred over it")


_pause_lock = threading.Lock()
_pause_depth = 0
_pause_restore = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while one README is proposed for.

    A learned pack's common words make ~2k hits per README, and the hits and their
    evidence live until the README is scored: that many live allocations trigger full
    collections, which walk the whole heap (the model, spaCy's vocabulary) and took a
    third of rules-mode time (``bench/lexicon_speed.py``, synonym list's learned pack:
    41 -> 62 READMEs/s per core without them). Reference counting frees what one
    README made when it is done; anything cyclic waits for the next collection after
    it, so the pause is bounded by one README. Nested and threaded use keep the
    collector off until the last one leaves, then restore the state the first found.
    """
    global _pause_depth, _pause_restore
    with _pause_lock:
        if _pause_depth == 0:
            _pause_restore = gc.isenabled()
            gc.disable()
        _pause_depth += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pause_depth -= 1
            if _pause_depth == 0 and _pause_restore:
                gc.enable()


_KIND_LABEL = attrgetter("term.kind", "term.label")
_END = attrgetter("end")
_START = attrgetter("start")


def _in_order(hits: list[Hit]) -> list[Hit]:
    """Hits by start, longest first, then by term kind and label: three stable sorts
    on C-level keys, the order of one sort on (start, -end, kind, label)."""
    out = sorted(hits, key=_KIND_LABEL)
    out.sort(key=_END, reverse=True)  # reverse keeps equal keys in their order
    out.sort(key=_START)
    return out


def _outside(hits: list[Hit], spans: list[tuple[int, int]]) -> list[Hit]:
    """Drop hits inside addresses: a badge URL's "workflows" is not evidence."""
    if not spans:
        return hits
    import bisect

    starts = [s for s, _ in spans]
    keep = []
    for h in hits:
        i = bisect.bisect_right(starts, h.start) - 1
        if i >= 0 and h.end <= spans[i][1]:
            continue
        keep.append(h)
    return keep


def _blanked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span replaced by as many spaces (offsets unchanged)."""
    if not spans:
        return text
    parts, pos = [], 0
    for s, e in spans:
        parts += (text[pos:s], " " * (e - s))
        pos = e
    parts.append(text[pos:])
    return "".join(parts)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
