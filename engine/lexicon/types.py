"""Results of the lexicon stage: candidates that carry their evidence."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Evidence:
    """One reason for (or against) a tag: what matched, where, and how much it counted."""

    tag: str
    rule: str  # e.g. "phrase:helm chart", "alias:kubernetes", "fuzzy:postgres~postgresql"
    text: str  # the matched text as it stands in the document
    start: int  # character offsets into the document text
    end: int
    section: str
    weight: float  # contribution before saturation (0 for vetoed hits)
    vetoed_by: str | None = None

    def __init__(self, tag: str, rule: str, text: str, start: int, end: int, section: str, weight: float,
                 vetoed_by: str | None = None) -> None:
        # The generated __init__ of a frozen dataclass sets each field through
        # object.__setattr__; a learned pack makes ~1,800 of these per README, and that
        # was a third of scoring. Filling __dict__ at once keeps the instance frozen.
        self.__dict__.update(tag=tag, rule=rule, text=text, start=start, end=end, section=section, weight=weight,
                             vetoed_by=vetoed_by)

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
