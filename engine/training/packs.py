"""A rule pack learned with the head (``tagsmith train``), cross-fitted.

The head weighs the rules' evidence; trained on evidence from a pack learned on the
same READMEs, it would learn to trust terms that only look good because they were
chosen on those READMEs, and its cross-validated score would be flattered (the issue
that asked for this measured 0.768 that way, against 0.635 on dev). So each README's
evidence comes from a pack learned without its fold (the folds the head's
cross-validation uses), and the adapter ships the pack learned on all of them.
"""
from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from engine.rules import RulePack, load_pack
from engine.rules.pack import extends_spec
from engine.taxonomy import Taxonomy

#: Folds of the cross-fitting when the head's cross-validation is off.
FOLDS = 5
#: ``auto`` learns a pack when the base pack has rules for fewer than this share of the list.
AUTO_SHARE = 0.5
PACK_DIR = "rules"
#: The rules a bridged base pack lends to the list, when a learned pack extends them.
LENT_DIR = "bridged"


def fold_of(n: int, folds: int, seed: int) -> list[int]:
    """Each item's fold: a seeded shuffle dealt round-robin (the head's cross-validation
    uses the same assignment)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    fold = [0] * n
    for k, j in enumerate(order):
        fold[j] = k % folds
    return fold


def wants_learning(mode: str, base: RulePack, taxonomy: Taxonomy) -> bool:
    """``yes``/``no``, or ``auto``: learn when the base pack knows under half of the list's tags."""
    if mode in ("yes", "no"):
        return mode == "yes"
    covered = sum(1 for t in taxonomy if base.get(t.name) is not None)
    return covered < AUTO_SHARE * len(taxonomy)


@dataclass
class LearnedPacks:
    """The pack of each fold (for that fold's READMEs) and the final one (in the adapter)."""

    by_fold: dict[int, RulePack]
    final: RulePack
    extends: str | None
    terms: int


def learn_packs(rows: Sequence[dict[str, Any]], golds: Sequence[Sequence[str]], taxonomy: Taxonomy, base: RulePack,
                base_spec: str | None, out: Path, fold: Sequence[int], folds: int, progress: bool = False,
                log: Callable[[str], None] | None = None, docs: Sequence[Any] | None = None, lent: Any = None) -> LearnedPacks:
    """Learn the fold packs (in a temporary folder) and the final pack (``out/rules``).
    The learned terms extend ``base`` when it has rules for some of the list's tags.
    ``docs``: the rows' ``doc_terms``, when already computed. ``lent``: ``base`` bridged
    to the list (``engine.bridge.Bridged``): with links, the learned terms extend the
    lent rules, which the adapter keeps as a pack of their own (``out/bridged``, on
    ``base``), so it tags with the rules it was trained on."""
    from engine.mining import terms_of, write

    docs = docs if docs is not None else terms_of(rows, progress)
    if lent is not None and lent.links:
        from engine.bridge.write import write as write_lent

        folder = out / LENT_DIR
        write_lent(lent, folder, extends_spec(base_spec, folder))
        base, base_spec = load_pack(folder), str(folder)
    covers = any(base.get(t.name) is not None for t in taxonomy)
    extends = extends_spec(base_spec, out / PACK_DIR) if covers else None
    # The final pack (all READMEs, the longest) first, then each fold's (the READMEs of
    # the other folds), learned side by side (``learn_side_by_side``).
    subsets = [list(range(len(rows)))] + [[j for j in range(len(rows)) if fold[j] != f] for f in range(folds)]
    learned, *fold_packs = learn_side_by_side(rows, golds, taxonomy, docs, subsets)
    by_fold = {}
    with tempfile.TemporaryDirectory(prefix="tagsmith-packs-") as tmp:  # each fold's pack is read into memory
        for f, fold_pack in enumerate(fold_packs):
            folder = Path(tmp) / f"fold-{f}"
            write(fold_pack, folder, f"fold {f}", extends=None)
            by_fold[f] = _on(base, load_pack(folder), covers)
    write(learned, out / PACK_DIR, "training file", extends=extends)
    final = load_pack(out / PACK_DIR)  # the pack the adapter loads (with its base, when it extends one)
    terms = sum(len(r.terms) for r in learned.rules)
    if log:
        log(f"train: learned {terms} terms for {sum(1 for r in learned.rules if r.terms)} tags"
            + (f" on top of the {'built-in' if extends == 'default' else 'given'} pack" if extends else ""))
    return LearnedPacks(by_fold, final, extends, terms)


def learn_side_by_side(rows: Sequence[dict[str, Any]], golds: Sequence[Sequence[str]], taxonomy: Taxonomy,
                        docs: Sequence[Any], subsets: Sequence[Sequence[int]]) -> list[Any]:
    """The pack learned on each subset of the rows, in the subsets' order, one per core
    (``engine.threads.side_by_side``): most of a learn is the logistic regression's
    L-BFGS in torch (~10 of ~13 s on 650 READMEs), which releases the GIL, and each fit
    keeps one torch thread, so the packs are the bytes one after another would give."""
    from engine.mining import learn_rows
    from engine.threads import side_by_side

    def learn(keep: Sequence[int]) -> Any:
        return learn_rows([rows[j] for j in keep], [golds[j] for j in keep], taxonomy, docs=[docs[j] for j in keep])

    with side_by_side(len(subsets)) as pool:
        return list(pool.map(learn, subsets))


def _on(base: RulePack, top: RulePack, covers: bool) -> RulePack:
    from engine.rules.pack import combine

    return combine(base, top) if covers else top
