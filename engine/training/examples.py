"""Training examples in exactly the decoder's format.

Each labelled README goes through the same path as at tagging time (lexicon ->
policy plan -> prompt with the shortlist and its evidence), and its target is the
answer the constrained decoder would have to write: the gold tags that are on the
shortlist, in gold order, as a compact JSON array. Training on any other format would
teach the model a task it is never asked.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from engine.api import Tagger, as_taxonomy
from engine.decision.constraint import json_escaped
from engine.errors import E_TRAIN, TagsmithError
from engine.io.records import data_hash
from engine.taxonomy import Taxonomy


@dataclass(frozen=True)
class Example:
    id: str
    prompt_ids: tuple[int, ...]  # prefix + suffix, as the decoder feeds them
    answer_ids: tuple[int, ...]  # the JSON array the decoder must write
    target: tuple[str, ...]
    gold: tuple[str, ...]
    allowed: tuple[str, ...] = ()  # the shortlist the decoder may choose from
    # Where the decoder really chooses: (answer position, tokens the constraint allows
    # there). Training normalises over these alone, as greedy constrained decoding does.
    choices: tuple[tuple[int, tuple[int, ...]], ...] = ()


@dataclass
class ExampleSet:
    examples: list[Example]
    skipped: list[str]  # ids whose gold tags are all off the shortlist (nothing to learn)
    data_hash: str


def answer_text(tags: Iterable[str]) -> str:
    """The answer as the constraint's language writes it: ``["a","b"]``."""
    return "[" + ",".join(f'"{json_escaped(t)}"' for t in tags) + "]"


def gold_tags(row: dict[str, Any], tax: Taxonomy, where: str) -> list[str]:
    tags = row.get("tags")
    if not isinstance(tags, list):
        raise TagsmithError(E_TRAIN, "must be a list of tag names", file=where, field="tags")
    out = []
    for t in tags:
        found = tax.get(t) if isinstance(t, str) else None
        name = found.name if found is not None else None
        if name is None:
            raise TagsmithError(E_TRAIN, f"{t!r} is not in the taxonomy", file=where, field="tags")
        if name not in out:
            out.append(name)
    return out


def choice_points(constraint: Any, answer_ids: tuple[int, ...], allowed: frozenset[str]) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """The answer's steps where the constraint leaves more than one token (the model
    closes the list itself: no fixed count, at least one tag), with those tokens."""
    guide = constraint.new_guide()
    text = ""
    out = []
    for j, tok in enumerate(answer_ids):
        kept = tuple(k for k in constraint.kept_tokens(text, guide.get_tokens(), allowed, None, 1) if k != constraint.eos_id)
        if tok not in kept:
            raise TagsmithError(E_TRAIN, f"answer token {j} ({constraint.token_strings[tok]!r}) is outside the constraint: "
                                "the tokenizer and the constraint disagree")
        if len(kept) > 1:
            out.append((j, kept))
        guide.advance(token_id=tok, return_tokens=False)
        text += constraint.token_strings[tok]
    return tuple(out)


def build_examples(tagger: Tagger, rows: list[dict[str, Any]], taxonomy: Any, max_tags: int = 3, source: str = "<rows>",
                   constraint: Any = None) -> ExampleSet:
    """Prompts and targets for ``rows`` (``{"id","text","tags"}``) under ``tagger``'s policy;
    with ``constraint`` (the compiled ``TagConstraint``) also each answer's choice points."""
    tax = as_taxonomy(taxonomy)
    if not rows:
        raise TagsmithError(E_TRAIN, "no labelled items", file=source)
    golds = [gold_tags(r, tax, f"{source}:{i + 1}") for i, r in enumerate(rows)]
    records = [{"id": str(r.get("id", i + 1)), "text": r.get("text")} for i, r in enumerate(rows)]
    ready = tagger.prepare(tagger.propose(records, tax), tax, max_tags)
    tok = tagger.lm.tokenizer
    prefixes: dict[str, list[int]] = {}
    out, skipped = [], []
    for rec, gold, p in zip(records, golds, ready):
        plan = p.prepared.plan
        target = [t for t in gold if t in plan.allowed][:max_tags]
        if not target:
            skipped.append(rec["id"])
            continue
        prefix = p.prepared.prompt.prefix
        if prefix not in prefixes:
            prefixes[prefix] = tok(prefix, add_special_tokens=False)["input_ids"]
        answer = tuple(tok(answer_text(target), add_special_tokens=False)["input_ids"])
        choices = choice_points(constraint, answer, plan.allowed) if constraint is not None else ()
        out.append(Example(rec["id"], tuple(prefixes[prefix]) + tuple(p.prepared.suffix_ids), answer, tuple(target), tuple(gold),
                           tuple(sorted(plan.allowed)), choices))
    if not out:
        raise TagsmithError(E_TRAIN, "no item has a gold tag on its shortlist: nothing to learn", file=source)
    return ExampleSet(out, skipped, data_hash(rows))
