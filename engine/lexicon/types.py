"""Results of the lexicon stage: candidates that carry their evidence."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Evidence(NamedTuple):
    """One reason for (or against) a tag: what matched, where, and how much it counted.

    A tuple with named fields, not a dataclass: a learned pack's README keeps ~1,800 of
    them, and a frozen dataclass cost ~4x as much to make and twice the objects for the
    garbage collector to walk (its ``__dict__``). It is as immutable."""

    tag: str
    rule: str  # e.g. "phrase:helm chart", "alias:kubernetes", "fuzzy:postgres~postgresql"
    text: str  # the matched text as it stands in the document
    start: int  # character offsets into the document text
    end: int
    section: str
    weight: float  # contribution before saturation (0 for vetoed hits)
    vetoed_by: str | None = None

    def to_dict(self) -> dict:
        d = {"tag": self.tag, "rule": self.rule, "text": self.text, "start": self.start, "end": self.end,
             "section": self.section, "weight": self.weight}
        if self.vetoed_by is not None:
            d["vetoed_by"] = self.vetoed_by
        return d


@dataclass
class Candidate:
    """A tag proposed by the lexicon, with a score in [0, 1) and its evidence."""

    tag: str  # exact taxonomy name
    score: float
    raw: float
    evidence: list[Evidence] = field(default_factory=list)
    vetoed: list[Evidence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # implications, preferences applied
    admit: float | None = None  # the rule's admission score (see TagRule.admit)

    def to_dict(self, max_evidence: int = 8) -> dict:
        ev = sorted(self.evidence, key=lambda e: -e.weight)[:max_evidence]
        return {
            "tag": self.tag,
            "score": round(self.score, 4),
            "raw": round(self.raw, 4),
            "evidence": [e.to_dict() for e in ev],
            "vetoed": [e.to_dict() for e in self.vetoed[:max_evidence]],
            "notes": list(self.notes),
        }
