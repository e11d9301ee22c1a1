"""An item made ready for the decoder: its plan, its prompt and the prompt's own token ids.

Why a step of its own: cutting the README excerpt to a token budget, filling the chat
template and tokenising the result cost about 2 ms per item, as much host time as the
decoder's own. Done where the lexicon ran (the batch job's worker processes), it
leaves the process that drives the model with nothing to do but decode.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.decision.head import HeadInput, shortlist_features
from engine.decision.policy import DecisionPolicy, Plan
from engine.decision.prompt import Prompt, build_prompt, candidate_names
from engine.lexicon.readme import Document
from engine.lexicon.types import Candidate


@dataclass(frozen=True)
class Prepared:
    plan: Plan
    prompt: Prompt
    suffix_ids: tuple[int, ...]  # token ids of ``prompt.suffix`` (the prefix is tokenised once per batch)
    max_tags: int
    head_input: HeadInput | None = None  # for a decision head: the shortlist's evidence features
    vote: Any = None  # the neighbours' ``Vote`` the plan used (``engine/neighbours``), for explanations


def prepare(policy: DecisionPolicy, tokenizer: Any, doc: Document, cands: list[Candidate], names: list[str],
            max_tags: int, budget: int, glosses: dict[str, str] | None = None, vote: Any = None) -> Prepared:
    """Plan the decision for one item and build and tokenise its prompt (and, for a
    decision head, its shortlist's evidence features); ``glosses``: ``prompt_glosses``
    of a described list; ``vote``: the neighbours' ``Vote`` on the README, when the
    adapter has labelled READMEs to ask."""
    plan = policy.plan(cands, names, max_tags, vote.ranked() if vote is not None else None)
    # With a prior (hybrid), the model sees the shortlist with its evidence (the rules'
    # candidates, then what the vote added); without one (llm), the whole tag list,
    # which then belongs to the shared prefix.
    shown = [c.tag for c in cands if c.tag in plan.allowed] + list(plan.added) if plan.log_prior else names
    prompt = build_prompt(tokenizer, doc, shown, max_tags, budget, cands if plan.log_prior else None, glosses)
    head_input = None
    if policy.decider == "head" and plan.log_prior:
        enc = tokenizer(prompt.suffix, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        feats = shortlist_features(cands, shown, plan.rules_pick, len(doc.text), vote.scores if vote is not None else None)
        head_input = HeadInput(tuple(shown), tuple(tuple(f) for f in feats), max_tags,
                               token_spans(candidate_names(prompt.suffix, shown, glosses), enc["offset_mapping"], len(ids)))
    else:
        ids = tokenizer(prompt.suffix, add_special_tokens=False)["input_ids"]
    return Prepared(plan, prompt, tuple(ids), max_tags, head_input, vote)


def token_spans(chars: list[tuple[int, int]] | None, offsets: list[tuple[int, int]], n: int) -> tuple[tuple[int, int], ...] | None:
    """Character spans as token index ranges [start, end) of the tokenised suffix."""
    if chars is None:
        return None
    out = []
    for a, b in chars:
        toks = [k for k, (s, e) in enumerate(offsets) if e > a and s < b]
        if not toks:
            return None
        out.append((toks[0], min(toks[-1] + 1, n)))
    return tuple(out)
