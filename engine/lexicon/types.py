"""Results of the lexicon stage: candidates that carry their evidence."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np

    from engine.lexicon.hits import TermInfo


class Evidence(NamedTuple):
    """One reason for (or against) a tag: what matched, where, and how much it counted.

    A tuple with named fields, not a dataclass: a learned pack's README has ~1,800
    pieces of evidence, and a frozen dataclass cost ~4x as much to make (and two
    objects, with its ``__dict__``). It is as immutable."""

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


class EvidenceRows:
    """One README's counted hits as columns (numpy arrays), shared by the
    ``EvidenceList`` of each of its candidates; ``info`` gives a term index's term
    (``HitTable.info``)."""

    __slots__ = ("text", "info", "kinds", "term", "start", "end", "kind", "weight")

    def __init__(self, text: str, info: Callable[[int], TermInfo], kinds: list[str], term: np.ndarray,
                 start: np.ndarray, end: np.ndarray, kind: np.ndarray, weight: np.ndarray) -> None:
        self.text, self.info, self.kinds = text, info, kinds
        self.term, self.start, self.end, self.kind, self.weight = term, start, end, kind, weight

    def make(self, a: int, b: int) -> list[Evidence]:
        """Rows ``a:b`` as ``Evidence`` tuples."""
        text, kinds, info = self.text, self.kinds, self.info
        new = tuple.__new__  # Evidence(...) without its Python-level __new__: ~2x faster
        out = []
        for t, s, e, k, w in zip(self.term[a:b].tolist(), self.start[a:b].tolist(), self.end[a:b].tolist(),
                                 self.kind[a:b].tolist(), self.weight[a:b].tolist()):
            i = info(t)
            out.append(new(Evidence, (i.tag, i.rule, text[s:e], s, e, kinds[k], w, None)))
        return out


class EvidenceList(Sequence):
    """A candidate's evidence as rows of its README's ``EvidenceRows``: a sequence of
    ``Evidence`` made on each access and not kept.

    A learned pack's README has ~1,800 pieces of evidence over ~90 candidates; as
    tuples kept for the whole batch they were a tenth of the lexicon's time, half of it
    in the garbage collector walking them. Rows in numpy arrays are not walked, and
    most candidates' evidence is never read (the head and the prompt read the
    shortlist's). Read it once into a list where it is read several times. Pickled, it
    is a plain list."""

    __slots__ = ("_rows", "_a", "_b")

    def __init__(self, rows: EvidenceRows, a: int, b: int) -> None:
        self._rows, self._a, self._b = rows, a, b

    def __len__(self) -> int:
        return self._b - self._a

    def __getitem__(self, i: Any) -> Any:  # an int gives an Evidence, a slice a list
        if isinstance(i, int):
            j = range(self._a, self._b)[i]  # IndexError as a list's
            return self._rows.make(j, j + 1)[0]
        return self._rows.make(self._a, self._b)[i]

    def __iter__(self) -> Iterator[Evidence]:
        return iter(self._rows.make(self._a, self._b))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, EvidenceList)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))

    def __reduce__(self) -> tuple:
        return (list, (list(self),))


@dataclass
class Candidate:
    """A tag proposed by the lexicon, with a score in [0, 1) and its evidence."""

    tag: str  # exact taxonomy name
    score: float
    raw: float
    evidence: Sequence[Evidence] = field(default_factory=list)  # an EvidenceList from the lexicon
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
