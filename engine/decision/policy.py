"""How the rules and the model share the decision.

Measured on dev (see README), the embedded 135M model alone is a poor tagger, while
the lexicon's ranking is strong. So in ``hybrid`` mode the rules bound the decision
(a shortlist of their best candidates, and the number of tags from calibrated rule
scores) and the model chooses and orders within that shortlist, its logits shifted
by the rule prior. ``llm`` mode lets the model choose freely among all tags (only
the constraint binds it); ``rules`` mode needs no model.

A trained adapter (``tagsmith train``) changes the balance. One with a decision head
(the default) lets the head choose within an 8-tag shortlist, reading the model's
hidden states and the rules' evidence (``decider="head"``; see ``head.py``); a LoRA
adapter's policy (read from its card, chosen by cross-validation on the training data)
sets the shortlist, the prior's weight and who decides the count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from engine.lexicon.types import Candidate

MODES = ("rules", "llm", "hybrid")
COUNTS = ("rules", "model")
DECIDERS = ("prior", "head")


@dataclass(frozen=True)
class Plan:
    """What the decoder may do for one item."""

    allowed: frozenset[str]
    target: int | None
    log_prior: dict[str, float] | None
    prior_weight: float
    rules_pick: list[str]
    min_tags: int = 0
    added: tuple[str, ...] = ()  # shortlisted by the neighbours' vote, not the rules (after the rules' own, in this order)


@dataclass(frozen=True)
class DecisionPolicy:
    mode: str = "hybrid"
    min_score: float = 0.3  # absolute floor for a tag (score in [0, 1))
    relative: float = 0.8  # a tag needs this share of the best candidate's score
    shortlist: int = 5  # hybrid: how many rule candidates the model may choose from
    prior_weight: float = 2.0  # hybrid: strength of the rule prior on the model's logits
    prior_temperature: float = 0.15  # softmax temperature over scores for the prior
    count: str = "rules"  # hybrid: "rules" fixes the number of tags; "model" lets the model close the list (1..N)
    # hybrid: "prior" = the model writes the answer with the rule prior on its logits;
    # "head" = the adapter's decision head chooses from the model's states and the evidence
    decider: str = "prior"
    # hybrid: tags the neighbours' vote (labelled READMEs most like this one, a trained
    # adapter's; ``engine/neighbours``) adds to the rules' shortlist
    neighbours: int = 0

    def __post_init__(self) -> None:
        if self.count not in COUNTS:
            raise ValueError(f"count must be one of {', '.join(COUNTS)}, got {self.count!r}")
        if self.decider not in DECIDERS:
            raise ValueError(f"decider must be one of {', '.join(DECIDERS)}, got {self.decider!r}")

    def settings(self) -> dict[str, float | int | str]:
        """The tunable settings, as an adapter card stores them."""
        out: dict[str, float | int | str] = {"shortlist": self.shortlist, "prior_weight": self.prior_weight, "count": self.count}
        if self.decider != "prior":
            out["decider"] = self.decider
        if self.neighbours:
            out["neighbours"] = self.neighbours
        return out

    def rules_pick(self, cands: list[Candidate], max_tags: int) -> list[str]:
        """Calibrated rules-only answer: strong, close-to-the-best candidates, at most N;
        then, while there is room, tags whose rule admits them at their score."""
        live = [c for c in cands if c.score > 0]
        if not live:
            return []
        top = live[0].score
        out = [c.tag for c in live[:max_tags] if c.score >= self.min_score and c.score >= self.relative * top]
        out = out or [live[0].tag]
        for c in live:
            if len(out) >= max_tags:
                break
            if c.admit is not None and c.score >= c.admit and c.tag not in out:
                out.append(c.tag)
        return out

    def plan(self, cands: list[Candidate], all_tags: list[str], max_tags: int,
             votes: Sequence[tuple[str, float]] | None = None) -> Plan:
        """``votes``: the neighbours' tags, best first (``Vote.ranked``); the best
        ``neighbours`` of them not on the rules' shortlist join it."""
        pick = self.rules_pick(cands, max_tags)
        if self.mode == "llm":
            return Plan(frozenset(all_tags), None, None, 0.0, pick, min_tags=1)
        live = [c for c in cands if c.score > 0]
        live = [c for i, c in enumerate(live) if i < self.shortlist or c.tag in pick]  # the pick is always on it
        added: tuple[str, ...] = ()
        if self.neighbours and votes:
            have, known = {c.tag for c in live}, set(all_tags)
            added = tuple([t for t, v in votes if v > 0 and t not in have and t in known][:self.neighbours])
        if not live and not added:
            return Plan(frozenset(all_tags), None, None, 0.0, pick)
        # A tag the vote added has no rule score: the prior treats it as score 0.
        log_prior = {**{c.tag: c.score / self.prior_temperature for c in live}, **{t: 0.0 for t in added}}
        lse = math.log(sum(math.exp(v - max(log_prior.values())) for v in log_prior.values())) + max(log_prior.values())
        log_prior = {k: v - lse for k, v in log_prior.items()}
        allowed = frozenset(c.tag for c in live) | frozenset(added)
        if self.count == "model":
            return Plan(allowed, None, log_prior, self.prior_weight, pick, min_tags=1, added=added)
        return Plan(allowed, len(pick) or 1, log_prior, self.prior_weight, pick, added=added)
