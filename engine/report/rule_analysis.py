"""How each rule behaves on a gold set: coverage, precision, overlaps, conflicts.

A rule (tag) "fires" on a document when it proposes that tag with a positive score;
a term fires when it contributes evidence. Precision is the share of documents it
fires on whose gold answer has the tag. Low-precision, high-coverage terms are the
ones to edit first.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.lexicon import Lexicon


@dataclass
class TagStats:
    tag: str
    gold: int = 0
    fires: int = 0
    hits: int = 0  # fires on documents whose gold has the tag
    top: int = 0  # ranked first
    top_hits: int = 0
    overlaps: Counter = field(default_factory=Counter)  # tags firing on the same documents
    conflicts: Counter = field(default_factory=Counter)  # gold tags of documents it wrongly fires on

    @property
    def precision(self) -> float:
        return self.hits / self.fires if self.fires else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.gold if self.gold else 0.0


@dataclass
class TermStats:
    tag: str
    term: str
    fires: int = 0
    hits: int = 0

    @property
    def precision(self) -> float:
        return self.hits / self.fires if self.fires else 0.0


def analyze(lexicon: Lexicon, gold: list[tuple[str, list[str]]]) -> tuple[dict[str, TagStats], list[TermStats]]:
    """``gold``: (text, gold tag names) pairs."""
    tags: dict[str, TagStats] = {t.name: TagStats(t.name) for t in lexicon.taxonomy}
    terms: dict[tuple[str, str], TermStats] = {}
    for text, gold_tags in gold:
        gset = set(gold_tags)
        for g in gset:
            if g in tags:
                tags[g].gold += 1
        cands = [c for c in lexicon.propose(text) if c.score > 0]
        fired = {c.tag for c in cands}
        for rank, c in enumerate(cands):
            st = tags[c.tag]
            st.fires += 1
            ok = c.tag in gset
            st.hits += ok
            if rank == 0:
                st.top += 1
                st.top_hits += ok
            st.overlaps.update(fired - {c.tag})
            if not ok:
                st.conflicts.update(gset)
            for rule in {e.rule for e in c.evidence}:
                ts = terms.setdefault((c.tag, rule), TermStats(c.tag, rule))
                ts.fires += 1
                ts.hits += ok
    return tags, sorted(terms.values(), key=lambda t: (t.precision, -t.fires, t.tag, t.term))


def format_analysis(tags: dict[str, TagStats], terms: list[TermStats], min_fires: int = 2, top_terms: int = 25) -> str:
    lines = [f"{'tag':<20} {'gold':>4} {'fires':>5} {'prec':>5} {'recall':>6} {'top1':>4} {'top1 prec':>9}  overlaps / conflicts"]
    for st in sorted(tags.values(), key=lambda s: (s.precision, -s.fires)):
        if not st.fires and not st.gold:
            continue
        over = ", ".join(f"{t}:{n}" for t, n in st.overlaps.most_common(3))
        conf = ", ".join(f"{t}:{n}" for t, n in st.conflicts.most_common(3))
        tp = st.top_hits / st.top if st.top else 0.0
        lines.append(f"{st.tag!s:<20} {st.gold:>4} {st.fires:>5} {st.precision:>5.2f} {st.recall:>6.2f} {st.top:>4} {tp:>9.2f}  {over} / {conf}")
    lines += ["", f"noisiest terms (firing on >= {min_fires} documents):", f"{'tag':<20} {'fires':>5} {'prec':>5}  term"]
    shown = [t for t in terms if t.fires >= min_fires][:top_terms]
    lines += [f"{t.tag!s:<20} {t.fires:>5} {t.precision:>5.2f}  {t.term}" for t in shown]
    return "\n".join(lines)
