"""The lexicon stage end to end: README -> ranked candidates with evidence.

Scoring, in words: every hit counts ``term weight x section weight x position
weight``; repeated hits of one term saturate (the first counts fully, the rest
logarithmically) so a word repeated 50 times in a changelog cannot outvote the tagline
(``engine/lexicon/scoring.py``); a tag's raw score is the sum over its terms times the
tag weight; implications and preferences between tags then move score;
``1 - exp(-raw / TAU)`` maps raw scores to [0, 1).
"""
from __future__ import annotations

import gc
import math
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from engine.lexicon.fuzzy import FuzzyNames
from engine.lexicon.hits import Hit, HitTable
from engine.lexicon.matchers import CompiledRules, project_names
from engine.lexicon.nlp import get_nlp, lower_same_length
from engine.lexicon.readme import URL_SPANS, Document, segment_readme
from engine.lexicon.scoring import weigh
from engine.lexicon.types import Candidate
from engine.rules import RulePack
from engine.taxonomy import Taxonomy

TAU = 2.5
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
        # Words inside addresses are never evidence (``HitTable.outside``), and they are
        # about a third of a README's tokens (badges, links): the token pipeline gets
        # them blanked out, same length, so offsets do not move. Regexes still see them.
        sdoc = get_nlp()(_blanked(low, urls))
        hits, negs = self.rules.run(sdoc, low, project_names(doc.title), [(s.start, s.end, s.kind) for s in doc.segments])
        hits.outside(urls)
        prose = [(s.start, s.end) for s in doc.segments if s.kind in PROSE]
        hits.add(self.fuzzy.hits(text, _merge(prose)))
        return self._score(doc, hits, negs)

    def _score(self, doc: Document, hits: HitTable, negs: list[Hit]) -> list[Candidate]:
        weighed = weigh(hits, doc, negs)
        raw, evidence, vetoed = weighed.raw, weighed.evidence, weighed.vetoed
        notes: dict[str, list[str]] = defaultdict(list)
        raw = defaultdict(float, raw)
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
