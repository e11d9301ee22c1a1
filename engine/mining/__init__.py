"""Rule packs learned from labelled READMEs (``tagsmith rules learn``): what a
catalogue owner's own labels say about each of their tags, written as a YAML pack a
person can read, edit and test."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from engine.mining.learn import LearnedPack, LearnedRule, LearnedTerm, learn
from engine.lexicon.terms import DocTerms, doc_terms
from engine.mining.write import FILE, render, write
from engine.taxonomy import Taxonomy

__all__ = ["DocTerms", "FILE", "LearnedPack", "LearnedRule", "LearnedTerm", "doc_terms", "learn", "learn_rows", "render", "write"]


def learn_rows(rows: Sequence[dict[str, Any]], golds: Sequence[Sequence[str]], taxonomy: Taxonomy,
               docs: Sequence[DocTerms] | None = None, progress: bool = False) -> LearnedPack:
    """Learn from records ``{"id", "text"}`` with gold tags ``golds`` (exact names);
    ``docs``: their ``doc_terms`` when already computed (cross-validation reuses them)."""
    from engine.io.records import data_hash

    if docs is None:
        docs = terms_of(rows, progress)
    pack = learn(docs, golds, [str(r.get("id")) for r in rows], taxonomy, data_hash(list(rows)))
    for rule in pack.rules:  # the example: the line of the first README of the tag holding its best term
        best = rule.terms[0] if rule.terms else None
        j = next((j for j, d in enumerate(docs) if best and rule.tag in golds[j] and best.text in d.terms), None)
        if j is not None:
            rule.match_example = doc_terms(rows[j]["text"], keep_lines=True).lines.get(best.text)
    return pack


def terms_of(rows: Sequence[dict[str, Any]], progress: bool = False) -> list[DocTerms]:
    """Each README's terms (the lines that hold them are found later, for the few examples)."""
    from tqdm import tqdm

    return [doc_terms(r["text"]) for r in tqdm(rows, desc="mining", unit="README", disable=not progress)]
