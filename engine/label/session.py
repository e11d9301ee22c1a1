"""A labelling session: which README comes next, the engine's suggestion for it, and the
decisions written to the label file.

Order (``--order``):
- ``file``: as the input lists them; ``random``: a seeded shuffle.
- ``uncertain`` (active learning): the item the engine is least sure of first. A
  background thread scores the input in small chunks; each pick takes the smallest
  margin among the items scored so far, so the first item shows after one chunk, not
  after the whole input. A stated share of picks (``random_share``) is a seeded random
  item instead, flagged ``random`` in its line: labels of those items alone are an
  unbiased sample, and so is the agreement measured on them.
- ``review``: a batch run's answers, the least confident first (its own answer is the
  suggestion); ``adjudicate``: a ``--compare`` file, in its order.

Margin: with a decision head, the smallest distance of any shortlisted tag's
probability from the head's threshold (the tag closest to flipping); without one, the
smallest distance of a chosen tag's confidence from 0.5; an empty answer is 0.

Positions ``k`` are slots in the order shown: on reopening, the items decided before
come first (so that going back reaches them) and labelling resumes after them.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from engine.errors import E_INPUT, E_MAX_TAGS, TagsmithError
from engine.label.store import Decision, LabelStore, utc_now
from engine.taxonomy import Taxonomy

ORDERS = ("file", "random", "uncertain")
#: Items scored per background step: a pick waits at most this many items' tagging.
CHUNK = 4
#: Tags numbered for the digit keys.
NUMBERED = 9


@dataclass
class LabelItem:
    """One README to label; ``answer``: a batch run's tags (review); ``annotators``: each
    annotator's tags (adjudication)."""

    id: str
    text: str
    answer: list[str] | None = None
    annotators: dict[str, list[str]] | None = None


@dataclass
class Suggestion:
    """What the page pre-checks, and how sure the engine is."""

    tags: list[str]
    confidence: dict[str, float]
    margin: float  # uncertain order: smaller first
    certainty: float  # review order: the answer's lowest confidence, smaller first
    numbered: list[str]  # the tags the digit keys toggle, suggestion first
    html: str  # the report's item section: tags, candidates and evidence, README marked


def head_margin(exp: dict[str, Any]) -> float:
    """How close the answer is to changing (see the module docstring)."""
    dec = exp.get("decision") or {}
    head, thr = dec.get("head"), dec.get("head_threshold")
    if head and thr is not None:
        return round(min(abs(v["prob"] - thr) for v in head), 6)
    conf = [c["confidence"] for c in exp.get("chosen", [])]
    return round(min(abs(c - 0.5) for c in conf), 6) if conf else 0.0


@dataclass
class Agreement:
    """Labels against the suggestions they were made from."""

    n: int = 0
    exact: int = 0
    hits: int = 0  # tags in both
    label_tags: int = 0
    suggested_tags: int = 0

    def add(self, tags: list[str], suggestion: list[str]) -> None:
        self.n += 1
        self.exact += set(tags) == set(suggestion)
        self.hits += len(set(tags) & set(suggestion))
        self.label_tags += len(tags)
        self.suggested_tags += len(suggestion)

    def to_dict(self) -> dict[str, Any]:
        both = self.label_tags + self.suggested_tags
        return {"n": self.n, "exact": round(self.exact / self.n, 4) if self.n else None,
                "micro_f1": round(2 * self.hits / both, 4) if both else None}


@dataclass
class _Slot:
    id: str
    pick: str
    margin: float | None = None


@dataclass
class SessionSettings:
    max_tags: int = 3
    order: str = "file"
    random_share: float = 0.2  # uncertain order: share of picks that are random (flagged)
    seed: int = 0
    annotator: str = ""
    review: bool = False
    background: bool = True  # score ahead in a thread (uncertain, review)


class LabelSession:
    """Items, their suggestions and the label file; thread-safe (the page's requests
    run in a thread pool, the scorer in its own thread)."""

    def __init__(self, items: list[LabelItem], tagger: Any, taxonomy: Taxonomy, store: LabelStore,
                 settings: SessionSettings = SessionSettings()) -> None:
        if settings.order not in ORDERS:
            raise TagsmithError(E_INPUT, f"order must be one of {', '.join(ORDERS)}, got {settings.order!r}")
        if not 0 <= settings.random_share <= 1:
            raise TagsmithError(E_INPUT, f"the random share must be in [0, 1], got {settings.random_share}")
        self.tagger, self.taxonomy, self.store, self.settings = tagger, taxonomy, store, settings
        self.items = {it.id: it for it in items}
        self.ids = list(self.items)
        self._rank = {rid: i for i, rid in enumerate(self.ids)}
        self.kind = ("review" if settings.review else
                     "adjudicate" if any(it.annotators for it in items) else settings.order)
        self._shuffled = list(self.ids)
        random.Random(settings.seed).shuffle(self._shuffled)
        self.slots = [_Slot(rid, str(store.latest[rid].get("pick", "file")), store.latest[rid].get("margin"))
                      for rid in store.latest if rid in self.items]
        self.start = len(self.slots)
        self._placed = {s.id for s in self.slots}
        self._sugg: dict[str, Suggestion] = {}
        self._model = threading.Lock()  # one tagging call at a time
        self._pick = threading.Lock()  # one pick at a time: slots never race
        self._scored = threading.Condition()
        self._scoring_done = self.kind not in ("uncertain", "review")
        self._stop = False
        self._thread: threading.Thread | None = None
        if not self._scoring_done:
            if settings.background:
                self._thread = threading.Thread(target=self._score_all, name="tagsmith-label-scorer", daemon=True)
                self._thread.start()
            else:
                self._score_all()

    # -- the engine's side ------------------------------------------------------
    def _suggest(self, rids: list[str]) -> None:
        from engine.report.batch import report_item
        from engine.report.html import render_item

        todo = [r for r in rids if r not in self._sugg]
        if not todo:
            return
        with self._model:
            todo = [r for r in todo if r not in self._sugg]
            results = self.tagger.tag_many([{"id": r, "text": self.items[r].text} for r in todo], self.taxonomy,
                                           self.settings.max_tags) if todo else []
        for rid, res in zip(todo, results):
            it = self.items[rid]
            exp = res.explanation.to_dict()
            conf = {c["tag"]: round(c["confidence"], 4) for c in exp["chosen"]}
            tags = list(it.answer) if it.answer is not None else list(res.tags)
            if it.answer is not None:  # review: how sure the engine is of the batch's answer
                certainty = min((conf.get(t, 0.0) for t in tags), default=0.0) if list(res.tags) == tags else 0.0
            else:
                certainty = min(conf.values(), default=0.0)
            numbered: list[str] = []
            for t in [*tags, *[t for a in (it.annotators or {}).values() for t in a], *[c["tag"] for c in exp["candidates"]]]:
                if t in self.taxonomy.names and t not in numbered:
                    numbered.append(t)
            html = render_item(report_item(rid, tags, exp, it.text))
            with self._scored:
                self._sugg[rid] = Suggestion(tags, conf, head_margin(exp), round(certainty, 6), numbered[:NUMBERED], html)
                self._scored.notify_all()

    def _score_all(self) -> None:
        todo = [r for r in self.ids if r not in self.store.latest]
        for s in range(0, len(todo), CHUNK):
            if self._stop:
                break
            self._suggest(todo[s:s + CHUNK])
        with self._scored:
            self._scoring_done = True
            self._scored.notify_all()

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join()

    # -- order ------------------------------------------------------------------
    def _open(self) -> list[str]:
        return [r for r in self.ids if r not in self._placed and r not in self.store.latest]

    def _random_slot(self, k: int) -> bool:
        return random.Random(f"{self.settings.seed}/{k}").random() < self.settings.random_share

    def _next_slot(self, k: int) -> _Slot | None:
        open_ = self._open()
        if not open_:
            return None
        if self.kind in ("file", "adjudicate"):
            return _Slot(open_[0], self.kind)
        left = set(open_)
        shuffled = next(r for r in self._shuffled if r in left)
        if self.kind == "random":
            return _Slot(shuffled, "random")
        if self.kind == "uncertain" and self._random_slot(k):
            return _Slot(shuffled, "random")
        with self._scored:  # rank what is scored so far; wait for a first score if none is
            self._scored.wait_for(lambda: self._scoring_done or any(r in self._sugg for r in left))
            scored = [r for r in open_ if r in self._sugg]
        if not scored:  # scoring stopped early
            return _Slot(open_[0], self.kind)
        key = (lambda r: self._sugg[r].margin) if self.kind == "uncertain" else (lambda r: self._sugg[r].certainty)
        best = min(scored, key=lambda r: (key(r), self._rank[r]))
        return _Slot(best, self.kind, key(best))

    # -- what the page calls ----------------------------------------------------
    def item(self, k: int) -> dict[str, Any]:
        """Slot ``k``: picked now when it is the next one; ``{"end": true}`` past the last."""
        with self._pick:
            if k < 0 or k > len(self.slots):
                raise TagsmithError(E_INPUT, f"no item {k}: items 0..{len(self.slots)} can be opened")
            if k == len(self.slots):
                slot = self._next_slot(k)
                if slot is None:
                    return {"k": k, "end": True, **self.progress()}
                self.slots.append(slot)
                self._placed.add(slot.id)
            slot = self.slots[k]
        self._suggest([slot.id])
        s, it = self._sugg[slot.id], self.items[slot.id]
        last = self.store.latest.get(slot.id)
        if slot.margin is None and slot.pick == "random" and self.kind == "uncertain":
            slot.margin = s.margin
        return {"k": k, "id": slot.id, "pick": slot.pick, "margin": slot.margin, "suggestion": s.tags,
                "confidence": s.confidence, "numbered": s.numbered, "html": s.html, "annotators": it.annotators,
                "decision": None if last is None else {"tags": last.get("tags", []), "skipped": bool(last.get("skipped"))},
                **self.progress()}

    def decide(self, k: int, tags: list[str], seconds: float, skipped: bool = False) -> dict[str, Any]:
        """Write the decision on slot ``k``: one line, durable before this returns."""
        if not 0 <= k < len(self.slots):
            raise TagsmithError(E_INPUT, f"no item {k} has been shown")
        names = set(self.taxonomy.names)
        tags = [] if skipped else list(tags)
        unknown = [t for t in tags if t not in names]
        if unknown:
            raise TagsmithError(E_INPUT, f"not in the tag list (names must be exact): {unknown}", field="tags")
        if len(set(tags)) != len(tags):
            raise TagsmithError(E_INPUT, f"a tag is repeated: {tags}", field="tags")
        if len(tags) > self.settings.max_tags:
            raise TagsmithError(E_MAX_TAGS, f"at most {self.settings.max_tags} tags, got {len(tags)}", field="tags")
        slot = self.slots[k]
        it = self.items[slot.id]
        self._suggest([slot.id])
        extra = {"annotators": it.annotators} if it.annotators else {}
        self.store.append(Decision(slot.id, tags, it.text, self._sugg[slot.id].tags, round(max(0.0, float(seconds)), 3),
                                   self.settings.annotator, utc_now(), skipped, slot.pick, slot.margin, extra))
        return self.progress()

    def progress(self) -> dict[str, Any]:
        """Counts and running agreement with the suggestions (all items; random picks alone)."""
        every, rand = Agreement(), Agreement()
        decided = 0
        for rid, row in self.store.latest.items():
            if rid not in self.items:
                continue
            decided += 1
            if row.get("skipped") or "suggestion" not in row:
                continue
            every.add(row.get("tags", []), row["suggestion"])
            if row.get("pick") == "random":
                rand.add(row.get("tags", []), row["suggestion"])
        return {"total": len(self.ids), "decided": decided, "scored": len(self._sugg), "shown": len(self.slots),
                "kind": self.kind, "agreement": every.to_dict(), "agreement_random": rand.to_dict()}
