"""A decision head for the tag lists an adapter never learned: the any-list head.

Why: a requester's own list comes with names (and perhaps descriptions), no labels
and no rules. Until now the shipped adapter stepped aside for such a list and the bare
model chose among the rules' candidates: no better than the rules (zero labels, names
+ descriptions, dev: 0.444 micro-F1 against 0.450 rules only). Yet how to weigh a
description rule's evidence, and what the model's state at a tag's name in its
shortlist line says, do not depend on the list: a head with **shared weights only**
(``a``, ``a0`` on the evidence features, ``v`` on the tag-name state; no per-tag ``b``
or ``W``) learns them from any labelled list and applies to every other.

How it learns: the adapter's labelled READMEs are read as a list *without labels*
would be (the view): a seeded half of the list's tags keep the rules the engine brings
for them (the training pack, bridged: ``view_pack``), the other half have only their
names, descriptions and aliases (``engine/lexicon/described.py``), as a requester's list
the bridge knows in part; a 12-tag shortlist (``SHORTLIST``), no neighbours' vote, no
learned rules. The head is fitted on that evidence and on the tag-name states of the
prompts (decoder layer ``line_layer``; the pass stops there: the head reads nothing
above it). Seeing both kinds of evidence side by side, it learns how far each goes,
so one head serves lists the pack knows wholly, in part or not at all.

How it is chosen: cross-validation over items *and* tags. The tags are split into two
halves; a head is fitted on the READMEs of four item folds using only the shortlist
rows of one half's tags, and scored on the held-out fold as a list of the other
half's tags (the READMEs with a gold tag among them): every score is on tags the head
never saw, as for a requester's list.

Where it decides (``AttachedAdapter.any_list_head``): for a list the adapter does not
cover that is described as its view was (most tags with a description or aliases, or
most without). A head learned on descriptions misjudges a list of bare names, whose
tags have little evidence besides the pack's rules; such a list keeps the bare model.

Measured (``bench/any_list_views.py``: 5-fold CV on train.jsonl, 817 READMEs, bfloat16
states; heads fitted on one half of the home concepts, scored on held-out READMEs as
lists of the other half's tags, items with a gold tag there; each head's settings chosen
by ``cross_validate`` on its own view; micro-F1 / top-1): the view with the pack's rules
for half the tags ("half", shipped) against the earlier view without any rules ("none"):

| scored on | rules only | "none" head | "half" head |
|---|---|---|---|
| home list, described, every hand rule | 0.663 / 0.677 | 0.693 / 0.779 | **0.707 / 0.788** |
| synonym list, described, bridged (82 of 90 tags with lent rules) | 0.629 / 0.643 | 0.664 / 0.745 | **0.674 / 0.750** |
| opaque codes, described, bridged (75 of 90) | 0.575 / 0.591 | 0.615 / 0.714 | **0.631 / 0.720** |
| home list, described, no rules | 0.538 / 0.548 | **0.616** / 0.695 | 0.612 / **0.696** |
| synonym list, names only, bridged (62 of 90) | **0.535** / 0.525 | 0.486 / 0.531 | 0.502 / 0.545 |

So the gate that kept the earlier head to lists the pack hardly knew (a described list
with lent rules was decided by the bare model, about the rules' answer) now asks how the
list is described instead; a bare-names list is better served by the rules than by
either head (a head learned on a names-only view with half the rules: 0.527 / 0.576).

Earlier, without rules in the view: on dev, zero labels, names + descriptions, no
bridge, the any-list head against the bare model: synonyms 0.589 / 0.758 against
0.444 / 0.615, codes 0.519 / 0.725 against 0.423 / 0.549, the coarse list 0.500 /
0.626 against 0.407 / 0.484 (``bench/catalogues.py``).
"""
from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

from engine.api import Tagger
from engine.decision.head import DecisionHead, ItemStates
from engine.rules import RulePack
from engine.taxonomy import Taxonomy
from engine.threads import side_by_side
from engine.training import head as heads
from engine.training.head import HeadCV, HeadItem
from engine.training.packs import fold_of

#: Shortlist of the view (the rules' best 12, as for a learned pack: description rules
#: are as loose).
SHORTLIST = 12
#: The head's file in an adapter folder, beside ``head.safetensors``.
FILE = "head-any-list.safetensors"
#: Grid of the cross-validation: L2 on the tag-name state weights (1.0 scored best in
#: the measurements above; 0.3 and 3.0 within 0.01).
LINE_L2S = (0.3, 1.0, 3.0)
#: Tags split into this many groups; each group is scored by heads fitted on the others.
TAG_GROUPS = 2
#: Share of the view's tags that keep the pack's rules (the rest: names and descriptions).
RULED_SHARE = 0.5


def view_pack(pack: RulePack, view: Taxonomy, seed: int, share: float = RULED_SHARE) -> RulePack:
    """``pack`` with rules for a seeded ``share`` of the view's tags only: the others are
    known to the lexicon by their names, descriptions and aliases (module docstring)."""
    order = list(view)
    random.Random(seed).shuffle(order)
    keep = {t.key for t in order[:round(len(order) * share)]}
    rules = {k: r for k, r in pack.rules.items() if k in keep}
    return replace(pack, rules=rules, sources={k: v for k, v in pack.sources.items() if k in rules},
                   written=frozenset(k for k in pack.written if k in rules))


def view_items(rows: Sequence[dict[str, Any]], golds: Sequence[list[str]], view: Taxonomy, pack: RulePack, *,
               model: str | None, device: str | None, dtypes: Sequence[str], max_tags: int, excerpt_tokens: int, progress: bool = False,
               log: Callable[[str], None] | None = None, twin_share: float = heads.TWIN_SHARE,
               seed: int = 0) -> tuple[list[HeadItem], list[HeadItem | None] | None, int]:
    """The labelled READMEs as the view shows them (module docstring; ``pack``: its rules,
    ``view_pack``'s): head items read in the first dtype, a seeded ``twin_share`` of them
    in the second too (None for the others, ``head.twin_rows``), and the decoder layer of
    their tag-name states."""
    from engine.decision.model import load_model

    t0 = time.perf_counter()
    lm = load_model(model, device, adapter=None, dtype=dtypes[0])
    layer = heads.line_layer(lm.model)
    tagger = Tagger(pack, mode="hybrid", lm=lm, bridge=False, policy=heads.head_policy(SHORTLIST), excerpt_tokens=excerpt_tokens)
    props = tagger.prepare(tagger.propose(list(rows), view), view, max_tags)
    constraint = tagger.compiler.get(view, max_tags)
    tagger = None
    readings: list[list[Any]] = []
    for dt in dtypes:
        lm = lm or load_model(model, device, adapter=None, dtype=dt)
        read = heads.twin_rows(len(props), twin_share, seed) if readings else None
        readings.append(heads.read_states(lm, constraint, props, golds, progress=progress, layer=layer, state_layer=layer,
                                          only=read))
        if log:
            log(f"train: any-list view, model states in {lm.dtype} after {time.perf_counter() - t0:.0f} s")
        lm = None
    return readings[0], (readings[1] if len(readings) > 1 else None), layer


def restrict(item: HeadItem, keep: frozenset[str]) -> HeadItem:
    """The item as a list of only ``keep``'s tags would see it: its shortlist rows, gold
    tags and rules' pick among them (evidence features as computed on the whole list)."""
    gold = [t for t in item.gold if t in keep]
    pick = [t for t in item.rules_pick if t in keep]
    if item.input is None:
        return HeadItem(item.id, None, None, gold, pick)
    ks = [k for k, t in enumerate(item.input.tags) if t in keep]
    if not ks:
        return HeadItem(item.id, None, None, gold, pick)
    spans = item.input.spans
    inp = replace(item.input, tags=tuple(item.input.tags[k] for k in ks), features=tuple(item.input.features[k] for k in ks),
                  spans=tuple(spans[k] for k in ks) if spans is not None else None)
    lines = item.state.lines[ks] if item.state.lines is not None else None
    return HeadItem(item.id, inp, ItemStates(item.state.item, lines), gold, pick)


def tag_groups(tags: Sequence[str], seed: int, groups: int = TAG_GROUPS) -> list[frozenset[str]]:
    """The tags dealt into ``groups`` after a seeded shuffle."""
    order = list(tags)
    random.Random(seed).shuffle(order)
    return [frozenset(order[g::groups]) for g in range(groups)]


def fit(items: Sequence[HeadItem], tags: list[str], line_l2: float, threshold: float, layer: int,
        twins: Sequence[HeadItem | None] | None = None) -> DecisionHead:
    """An any-list head: shared weights only, reading the tag-name states of ``layer``
    (and nothing above it: its item state is that layer's too, and unused)."""
    return heads.fit(items, tags, "all", 0.0, threshold, line_l2=line_l2, layer=layer, twins=twins, state_layer=layer,
                     per_tag=False)


def cross_validate(items: list[HeadItem], tags: list[str], folds: int, seed: int, max_tags: int, layer: int,
                   twins: list[HeadItem | None] | None = None, log: Callable[[str], None] | None = None,
                   workers: int | None = None) -> HeadCV:
    """Scores of every grid point on tags the head never saw (module docstring): out-of-fold
    answers per tag group, pooled over the groups; with ``twins`` each reading is scored
    and a setting's score is their mean (and the share of answers that agree)."""
    fold = fold_of(len(items), folds, seed)
    groups = tag_groups(tags, seed)
    everything = frozenset(tags)
    views = [items] if twins is None else [items, twins]
    jobs = [(l2, g, f) for l2 in LINE_L2S for g in range(len(groups)) for f in range(folds)]

    def fit_job(job: tuple[float, int, int]) -> DecisionHead:
        l2, g, f = job
        seen = everything - groups[g]
        train = [j for j in range(len(items)) if fold[j] != f]
        return fit([restrict(items[j], seen) for j in train], tags, l2, 0.5, layer,
                   [restrict(twins[j], seen) if twins[j] is not None else None for j in train] if twins is not None else None)

    # Scored where the item has a gold tag among the group's: a labelled README of a
    # requester's list has one, and a half list leaves many without (an answer is never empty).
    halves = [restrict(it, grp) for grp in groups for it in items]
    scored = [k for k, h in enumerate(halves) if h.gold]
    gold = [halves[k].gold for k in scored]
    rows = [heads.score_setting({"kind": "rules only"}, gold, [[halves[k].rules_pick for k in scored]])[0]]
    best: tuple[tuple[float, float], dict[str, Any]] | None = None
    with side_by_side(len(jobs), workers) as pool:
        fitted = pool.map(fit_job, jobs)
        for l2 in LINE_L2S:
            oof = [{th: [None] * len(halves) for th in heads.THRESHOLDS} for _ in views]
            for g, grp in enumerate(groups):
                for f in range(folds):
                    head = next(fitted)
                    held = [j for j in range(len(items)) if fold[j] == f]
                    for v, view in enumerate(views):
                        read = [j for j in held if view[j] is not None]  # a second reading may cover some items only
                        for th, got in heads.answers(head, [restrict(view[j], grp) for j in read], max_tags, heads.THRESHOLDS).items():
                            for j, a in zip(read, got):
                                oof[v][th][g * len(items) + j] = a
            for th in heads.THRESHOLDS:
                setting = {"kind": "all", "per_tag": False, "line_l2": l2, "threshold": th}
                row, m = heads.score_setting(setting, gold, [[o[th][k] for k in scored] for o in oof])
                rows.append(row)
                if best is None or (m.micro_f1, m.top1) > best[0]:
                    best = ((m.micro_f1, m.top1), setting)
            if log:
                top = max((r for r in rows if r.get("line_l2") == l2), key=lambda r: r["micro_f1"])
                log(f"train: any-list head, line L2 {l2}: best micro-F1 {top['micro_f1']:.3f} (top-1 {top['top1']:.3f}) "
                    f"at threshold {top['threshold']} on tags it never saw; rules only {rows[0]['micro_f1']:.3f}")
    assert best is not None
    return HeadCV(folds, rows, best[1])


def train_any_list(rows: Sequence[dict[str, Any]], golds: Sequence[list[str]], view: Taxonomy, pack: RulePack, out: Any, *,
                   model: str | None,
                   device: str | None, dtypes: Sequence[str], folds: int, seed: int, max_tags: int, excerpt_tokens: int,
                   progress: bool = False, log: Callable[[str], None] | None = None,
                   twin_share: float = heads.TWIN_SHARE) -> dict[str, Any]:
    """Read the view (``pack``: the rules the engine brings for the training list, of
    which ``view_pack`` keeps half), choose the settings by cross-validation (``folds``
    >= 2), fit on everything and write the head to ``out``; returns the card's
    ``any_list`` entry."""
    t0 = time.perf_counter()
    kept = view_pack(pack, view, seed)
    items, twins, layer = view_items(rows, golds, view, kept, model=model, device=device, dtypes=dtypes, max_tags=max_tags,
                                     excerpt_tokens=excerpt_tokens, progress=progress, log=log, twin_share=twin_share, seed=seed)
    cv = None
    chosen: dict[str, Any] = {"line_l2": 1.0, "threshold": 0.45}
    if folds:
        cv = cross_validate(items, view.names, folds, seed, max_tags, layer, twins, log)
        chosen = cv.chosen
        if log:
            log(f"train: any-list head, cross-validation chose {chosen}")
    head = fit(items, view.names, chosen["line_l2"], chosen["threshold"], layer, twins)
    described = sum(1 for t in view if t.description)
    aliased = sum(1 for t in view if t.aliases)
    return {
        "head": head.save(out, FILE),
        "policy": heads.head_policy(SHORTLIST).settings(),
        "prompt": {"excerpt_tokens": excerpt_tokens},
        "view": {"taxonomy": view.fingerprint(), "tags": len(view), "with_description": described, "with_aliases": aliased,
                 "with_rules": sum(1 for t in view if kept.get(t.name) is not None),
                 "rules": f"the pack's rules for a seeded {RULED_SHARE:.0%} of the tags (pack {pack.digest or 'none'}); "
                          "names, descriptions and aliases for every tag"},
        "cross_validation": cv.to_dict() if cv else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }
