"""The explanation of one answer, as data (JSON) that reports render."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from engine.lexicon.types import Candidate
from engine.report.calibration import confidence


@dataclass
class ChosenTag:
    tag: str
    rank: int
    rule_score: float
    model_prob: float | None  # constrained probability of this tag at its step, None without a model
    confidence: float  # in [0, 1], see engine.report.calibration
    reason: str


@dataclass
class Explanation:
    id: str | None
    mode: str
    model: str | None
    pack: str
    taxonomy: str
    max_tags: int
    chosen: list[ChosenTag]
    candidates: list[dict[str, Any]]
    decision: dict[str, Any] = field(default_factory=dict)
    rejected: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. the text was cut, a regex ran out of time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def build(
        cls,
        *,
        id: str | None,
        mode: str,
        model: str | None,
        pack: str,
        taxonomy: str,
        max_tags: int,
        tags: list[str],
        candidates: list[Candidate],
        rules_pick: list[str],
        decision: dict[str, Any],
        tag_prob: dict[str, float],
        notes: list[str] | None = None,
    ) -> "Explanation":
        by_tag = {c.tag: c for c in candidates}
        head = {h["tag"]: h for h in (decision or {}).get("head") or []}
        if head:
            return cls._build_head(id=id, mode=mode, model=model, pack=pack, taxonomy=taxonomy, max_tags=max_tags, tags=tags,
                                   candidates=candidates, decision=decision, head=head, notes=notes)
        chosen = []
        for i, t in enumerate(tags):
            c = by_tag.get(t)
            words = _evidence_words(c)
            if c and words:
                reason = f"rule score {c.score:.2f} from {words}"
            else:
                reason = "no rule evidence; chosen by the model"
            if t in tag_prob:
                reason += f"; model probability {tag_prob[t]:.2f}"
            rule_score = round(c.score, 4) if c else 0.0
            chosen.append(ChosenTag(t, i + 1, rule_score, tag_prob.get(t), confidence(rule_score, tag_prob.get(t)), reason))
        rejected = []
        for c in candidates[:8]:
            if c.tag in tags:
                continue
            allowed = decision.get("allowed") if decision else None
            on_shortlist = allowed == "all" or (isinstance(allowed, list) and c.tag in allowed)
            if decision and decision.get("target") is None and on_shortlist and len(tags) < max_tags:
                mass = first_mass(decision.get("steps") or [], c.tag)
                why = "on the shortlist, but the model closed the answer without it" + (f" (its mass at the first choice: {mass:.2f})" if mass is not None else "")
            elif c.tag in rules_pick:
                why = "picked by the rules but the model preferred the other tags"
            elif len(tags) >= max_tags:
                why = f"the answer already has the maximum of {max_tags} tags"
            elif tags and c.score < by_tag.get(tags[0], c).score * 0.8:
                why = f"rule score {c.score:.2f} is well below the top tag's"
            else:
                why = f"rule score {c.score:.2f} under the calibrated threshold"
            if c.notes:
                why += " (" + "; ".join(c.notes[:2]) + ")"
            rejected.append({"tag": c.tag, "why_not": why})
        return cls(
            id=id, mode=mode, model=model, pack=pack, taxonomy=taxonomy, max_tags=max_tags,
            chosen=chosen, candidates=[c.to_dict() for c in candidates[:12]],
            decision=decision, rejected=rejected, notes=list(notes or []),
        )

    @classmethod
    def _build_head(cls, *, id: str | None, mode: str, model: str | None, pack: str, taxonomy: str, max_tags: int,
                    tags: list[str], candidates: list[Candidate], decision: dict[str, Any], head: dict[str, dict[str, Any]],
                    notes: list[str] | None) -> "Explanation":
        """When a decision head chose: its probability is the confidence (it was fitted as
        a calibrated probability), and its log-odds parts say what carried each tag."""
        by_tag = {c.tag: c for c in candidates}
        threshold = float(decision.get("head_threshold", 0.5))
        chosen = []
        for i, t in enumerate(tags):
            c, h = by_tag.get(t), head.get(t)
            words = _evidence_words(c)
            prob = float(h["prob"]) if h else None
            reason = (f"head probability {prob:.2f} ({_parts(h)})" if h else "chosen by the model") + (f"; rule evidence: {words}" if words else "")
            if t in decision.get("head_unlearned", ()):
                reason += "; a tag the head has no labels for: scored by its shared weights alone"
            reason += _neighbour_reason(decision.get("neighbours"), t)
            chosen.append(ChosenTag(t, i + 1, round(c.score, 4) if c else 0.0, prob, round(prob, 4) if prob is not None else 0.0, reason))
        rejected = []
        for c in candidates[:8]:
            if c.tag in tags:
                continue
            h = head.get(c.tag)
            if h is None:
                why = "not on the shortlist the head chooses from"
            elif len(tags) >= max_tags:
                why = f"head probability {h['prob']:.2f} ({_parts(h)}), but the answer already has the maximum of {max_tags} tags"
            else:
                why = f"head probability {h['prob']:.2f} is under the count threshold {threshold:.2f} ({_parts(h)})"
            rejected.append({"tag": c.tag, "why_not": why})
        return cls(id=id, mode=mode, model=model, pack=pack, taxonomy=taxonomy, max_tags=max_tags, chosen=chosen,
                   candidates=[c.to_dict() for c in candidates[:12]], decision=decision, rejected=rejected, notes=list(notes or []))


def _evidence_words(c: Candidate | None) -> str:
    """A candidate's three strongest hits, as a reason quotes them."""
    top = sorted(c.evidence, key=lambda e: -e.weight)[:3] if c else []
    return ", ".join(f"'{e.text}' ({e.section})" for e in top)


def _neighbour_reason(nb: dict[str, Any] | None, tag: str) -> str:
    """What the labelled READMEs most like this one said of ``tag``, as a reason quotes it."""
    vote = (nb or {}).get("votes", {}).get(tag)
    if not vote:
        return ""
    ids = [n["id"] for n in nb.get("nearest", []) if tag in n.get("tags", [])][:3]
    added = " (added to the shortlist by them)" if tag in nb.get("added", []) else ""
    return f"; similar labelled READMEs vote {vote:.2f}{added}" + (f", e.g. {', '.join(ids)}" if ids else "")


def _parts(h: dict[str, Any]) -> str:
    return f"evidence {h['evidence']:+.2f}, model {h['model']:+.2f}, tag prior {h['prior']:+.2f}"


def model_scores(decision: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """What the model side said of each candidate, and what that number is: the decision
    head's probability when a head chose, else the model's mass at its first choice."""
    head = decision.get("head")
    if head:
        return "head probability", {h["tag"]: float(h["prob"]) for h in head}
    steps = decision.get("steps") or []
    return "model mass", dict(steps[0]["tag_mass"]) if steps else {}


def first_mass(steps: list[dict[str, Any]], tag: str) -> float | None:
    """The probability mass the model gave ``tag`` at its first recorded choice."""
    for step in steps:
        mass = step.get("tag_mass", {}).get(tag)
        if mass is not None:
            return float(mass)
    return None
