"""Choosing the decision policy for a trained adapter by k-fold cross-validation.

For each fold the adapter is trained from scratch on the other folds, then every
held-out item is decoded under every candidate policy. The policies share the prompt
(same shortlist), so the decoder prefills each prompt once for all of them; the
answers are scored against gold over all items (those whose gold is off the
shortlist too), and the best policy goes into the adapter's card.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any, Sequence

from engine.api import Proposal, Tagger
from engine.decision.policy import DecisionPolicy
from engine.decision.prepare import prepare
from engine.decision.prompt import prompt_glosses
from engine.report.metrics import Metrics, score
from engine.taxonomy import Taxonomy
from engine.training.examples import ExampleSet, gold_tags
from engine.training.lora import LoraTrainer

#: Candidate policies: how much the rule prior counts, and who decides the count.
PRIOR_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
COUNTS = ("model", "rules")


def policy_grid(base: DecisionPolicy) -> list[DecisionPolicy]:
    return [replace(base, prior_weight=w, count=c) for c in COUNTS for w in PRIOR_WEIGHTS]


@dataclass
class CVResult:
    folds: int
    rows: list[dict[str, Any]]  # per policy: settings and scores
    best: DecisionPolicy

    def to_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "policies": self.rows, "chosen": self.best.settings()}


def fold_of(ids: Sequence[str], folds: int, seed: int) -> dict[str, int]:
    order = list(range(len(ids)))
    random.Random(seed).shuffle(order)
    return {ids[j]: k % folds for k, j in enumerate(order)}


def decode_policies(tagger: Tagger, rows: list[dict[str, Any]], tax: Taxonomy, policies: list[DecisionPolicy],
                    max_tags: int) -> list[list[list[str]]]:
    """Answers for ``rows`` under each policy (one prefill per item for all of them)."""
    props = tagger.propose(rows, tax)
    tok = tagger.lm.tokenizer
    items = [Proposal(p.record, p.doc, p.candidates,
                      prepare(pol, tok, p.doc, p.candidates, tax.names, max_tags, tagger.excerpt_for(tax), prompt_glosses(tax)))
             for pol in policies for p in props]
    results = tagger.decide(items, tax, max_tags)
    n = len(rows)
    return [[r.tags for r in results[k * n:(k + 1) * n]] for k in range(len(policies))]


def cross_validate(trainer: LoraTrainer, tagger: Tagger, rows: list[dict[str, Any]], exset: ExampleSet, cached: list[Any],
                   tax: Taxonomy, base: DecisionPolicy, folds: int = 3, max_tags: int = 3, seed: int = 0,
                   progress: bool = False, log: Any = None) -> CVResult:
    policies = policy_grid(base)
    records = [{"id": str(r.get("id", i + 1)), "text": r.get("text")} for i, r in enumerate(rows)]
    gold = {rec["id"]: gold_tags(r, tax, "<train>") for rec, r in zip(records, rows)}
    where = fold_of([r["id"] for r in records], folds, seed)
    preds: list[dict[str, list[str]]] = [{} for _ in policies]
    for f in range(folds):
        idx = [i for i, e in enumerate(exset.examples) if where[e.id] != f]
        trainer.reset()
        trainer.fit([exset.examples[i] for i in idx], [cached[i] for i in idx], progress=progress)
        held = [r for r in records if where[r["id"]] == f]
        answers = decode_policies(tagger, held, tax, policies, max_tags)
        for k, tags in enumerate(answers):
            preds[k].update({r["id"]: t for r, t in zip(held, tags)})
        if log:
            part = [score([gold[r["id"]] for r in held], a) for a in answers]
            best = max(range(len(policies)), key=lambda k: (part[k].micro_f1, part[k].top1))
            log(f"fold {f + 1}/{folds}: trained on {len(idx)}, held out {len(held)}; best there {policies[best].settings()} "
                f"micro-F1 {part[best].micro_f1:.3f}")
    ids = [r["id"] for r in records]
    table = []
    metrics: list[Metrics] = []
    for pol, pr in zip(policies, preds):
        m = score([gold[i] for i in ids], [pr[i] for i in ids])
        metrics.append(m)
        table.append({**pol.settings(), "micro_p": round(m.micro_p, 4), "micro_r": round(m.micro_r, 4), "micro_f1": round(m.micro_f1, 4),
                      "macro_f1": round(m.macro_f1, 4), "top1": round(m.top1, 4), "exact": round(m.exact, 4)})
    best = max(range(len(policies)), key=lambda k: (metrics[k].micro_f1, metrics[k].top1, -k))
    return CVResult(folds, table, policies[best])
