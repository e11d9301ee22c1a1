"""Neighbours: the tags a catalogue's own labels gave to the READMEs most like a new
one (``index.py``). A trained adapter keeps the index of its labelled READMEs; the
decision head reads each shortlisted tag's vote as evidence, and the vote may add its
best tags to the shortlist the rules made (``DecisionPolicy.neighbours``)."""
from __future__ import annotations

from typing import Any, Sequence

from engine.neighbours.index import ADDS, FILE, K, META, Neighbour, NeighbourIndex, Vote, term_key

__all__ = ["ADDS", "FILE", "K", "META", "Neighbour", "NeighbourIndex", "Vote", "fold_indexes", "index_rows", "term_key", "vote_text"]


def index_rows(rows: Sequence[dict[str, Any]], golds: Sequence[Sequence[str]], terms: Sequence[frozenset[str]] | None = None) -> NeighbourIndex:
    """The index of labelled records ``{"id", "text"}`` with gold tags ``golds``;
    ``terms``: their ``doc_terms`` terms when already computed."""
    from engine.lexicon.terms import doc_terms

    if terms is None:
        terms = [doc_terms(r["text"]).terms for r in rows]
    return NeighbourIndex.build([str(r.get("id")) for r in rows], terms, golds)


def fold_indexes(rows: Sequence[dict[str, Any]], golds: Sequence[Sequence[str]], terms: Sequence[frozenset[str]],
                 fold: Sequence[int]) -> dict[int, NeighbourIndex]:
    """Per fold, the index of the other folds' READMEs: training reads each README's vote
    as tagging will, from READMEs that are not itself nor chosen with it in view (as the
    cross-fitted rule pack, ``engine/training/packs.py``)."""
    out = {}
    for f in sorted(set(fold)):
        keep = [j for j in range(len(rows)) if fold[j] != f]
        out[f] = index_rows([rows[j] for j in keep], [golds[j] for j in keep], [terms[j] for j in keep])
    return out


def vote_text(index: NeighbourIndex | None, text: str) -> Vote | None:
    """The neighbours' vote on one README (None without an index to ask)."""
    if index is None:
        return None
    from engine.lexicon.terms import doc_terms

    return index.vote(doc_terms(text).terms)
