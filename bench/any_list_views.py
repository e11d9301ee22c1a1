"""Which view should the any-list head learn on? Heads scored on tags they never saw.

    .venv/bin/python bench/any_list_views.py [--cache DIR] [--train none,half] \
        [--test home,synonyms,codes,home-none,synonyms-names] [--limit N]

The shipped adapter's any-list head (``engine/training/any_list.py``) decides for tag
lists it never learned. It is learned on the home list's labelled READMEs read as a
*view*: the home list's names and descriptions with the rules of only a seeded half of
its tags (``half``, shipped), or, as before, with no rules at all (``none``). Which is
better depends on the lists it will meet, so each head is scored on several:

- ``home``: the home list described, every hand rule;
- ``synonyms`` / ``codes``: the renamed lists of ``bench/renamed_lists.py``, described,
  with the rules the bridge lends them (``engine/bridge``);
- ``home-none``: the home list described, no rule at all (a list of other concepts);
- ``synonyms-names``: the synonym list with names only, bridged (a raw request's).

Scored on tags it never saw: the home tags are dealt into two halves
(``any_list.tag_groups``); per half, a head is fitted on the training view's READMEs of
four of five folds, using only the other half's shortlist rows, and scores the held-out
fold as a list of this half's tags (renamed to the test list's names), counted on the
READMEs with a gold tag there. Each head's settings (name-state L2, count threshold)
are the ones ``any_list.cross_validate`` chooses on its own training view, as
``tagsmith train --any-list`` does: nothing is chosen on a test view. Rules only: the
lexicon's pick on the same half lists.

Every view is read once (bfloat16 states up to the tag-name layer, train.jsonl's 817
READMEs, ~3 min each on 2 cores) and kept in ``--cache`` (pickles; delete to re-read).
Dev is not used.
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATA = ROOT.parent / "shared" / "data"

#: Test lists: (catalogue of ``renamed_lists``, names only?, rules).
TESTS = {
    "home": ("home-described", False, "every"),
    "synonyms": ("synonyms", False, "bridged"),
    "codes": ("codes", False, "bridged"),
    "home-none": ("home-described", False, "none"),
    "synonyms-names": ("synonyms", True, "bridged"),
}
TRAINS = ("none", "half")


def view_spec(name: str, shared: Path) -> tuple[list[dict[str, Any]], dict[str, str], bool, str]:
    """(tag list, home name -> its name, names only, rules) of a view."""
    import renamed_lists as rl

    if name in TRAINS:
        tags = rl.home(shared)
        return tags, {t["name"]: t["name"] for t in tags}, False, name
    kind, names_only, rules = TESTS[name]
    if kind == "home-described":
        tags = rl.home(shared)
        mapping = {t["name"]: t["name"] for t in tags}
    else:
        tags, mapping = rl.catalogue(kind, shared)
    return (rl.drop_names(tags) if names_only else tags), mapping, names_only, rules


def read_view(name: str, rows: list[dict[str, Any]], shared: Path, cache: Path, seed: int) -> dict[str, Any]:
    """The view's head items (bfloat16), read once and cached."""
    path = cache / f"{name}-{len(rows)}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    import renamed_lists as rl
    from engine.bridge import bridge
    from engine.rules import RulePack, load_pack
    from engine.taxonomy import Taxonomy
    from engine.training import any_list
    from engine.training import head as heads

    tags, mapping, _, rules = view_spec(name, shared)
    tax = Taxonomy.from_names(tags)
    golds = [r["tags"] for r in rl.relabel(rows, mapping)]
    default = load_pack()
    if rules == "none":
        pack = RulePack({})
    elif rules == "half":  # as train_any_list: the home list's pack, bridged (a no-op there), half its tags
        pack = any_list.view_pack(bridge(default, tax).pack, tax, seed)
    else:  # "every" / "bridged": what tagging brings
        pack = bridge(default, tax).pack
    t0 = time.perf_counter()
    ruled = sum(1 for t in tax if pack.get(t.name) is not None)
    # Read as train_any_list reads its view (no bridging on top of ``pack``, its shortlist).
    items, _, layer = any_list.view_items(rows, golds, tax, pack, model=None, device=None, dtypes=("bfloat16",), max_tags=3,
                                          excerpt_tokens=heads.EXCERPT_TOKENS, progress=True)
    out = {"items": items, "tags": tax.names, "mapping": mapping, "layer": layer, "ruled": ruled}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    print(f"read {name}: {len(rows)} READMEs, {ruled} of {len(tax)} tags with rules, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default="/tmp/tagsmith-any-list-views", help="folder of the read views")
    ap.add_argument("--train", default=",".join(TRAINS), help=f"training views, of {', '.join(TRAINS)}")
    ap.add_argument("--test", default=",".join(TESTS), help=f"test lists, of {', '.join(TESTS)}")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="the tag halves, the folds and the ruled half")
    ap.add_argument("--limit", type=int, default=0, help="first N READMEs of train.jsonl only (a quick look)")
    args = ap.parse_args()
    from engine.report.metrics import score
    from engine.training import any_list
    from engine.training import head as heads
    from engine.training.packs import fold_of

    shared = DATA
    rows = [json.loads(line) for line in (DATA / "train.jsonl").open()]
    rows = rows[: args.limit] if args.limit else rows
    trains, tests = args.train.split(","), args.test.split(",")
    for name in trains + tests:
        if name not in TRAINS and name not in TESTS:
            ap.error(f"unknown view {name!r}")
    views = {name: read_view(name, rows, shared, Path(args.cache), args.seed) for name in dict.fromkeys(trains + tests)}
    n = len(rows)
    fold = fold_of(n, args.folds, args.seed)
    home = views[trains[0]]["tags"]
    groups = any_list.tag_groups(home, args.seed)
    layer = views[trains[0]]["layer"]
    heads_of, chosen = {}, {}
    for tr in trains:
        items = views[tr]["items"]
        cv = any_list.cross_validate(items, home, args.folds, args.seed, 3, layer)
        chosen[tr] = cv.chosen
        for g, grp in enumerate(groups):
            seen = frozenset(home) - grp
            for f in range(args.folds):
                keep = [any_list.restrict(items[j], seen) for j in range(n) if fold[j] != f]
                heads_of[tr, g, f] = any_list.fit(keep, home, cv.chosen["line_l2"], cv.chosen["threshold"], layer)
        print(f"{tr}: chose name-state L2 {cv.chosen['line_l2']}, threshold {cv.chosen['threshold']}", file=sys.stderr)
    print(f"\nmicro-F1 / top-1 on tags never seen ({n} READMEs of train.jsonl, {args.folds} folds, bfloat16)\n")
    print("| scored on | tags with rules | rules only | " + " | ".join(f"{tr!r} head" for tr in trains) + " |")
    print("|---|---|---|" + "---|" * len(trains))
    for te in tests:
        d = views[te]
        halves = [frozenset(d["mapping"][h] for h in grp) for grp in groups]
        cut = [(g, j, any_list.restrict(d["items"][j], grp)) for g, grp in enumerate(halves) for j in range(n)]
        cut = [c for c in cut if c[2].gold]
        gold = [c[2].gold for c in cut]
        rules = score(gold, [c[2].rules_pick for c in cut])
        cells = []
        for tr in trains:
            th, picks = chosen[tr]["threshold"], [None] * len(cut)
            for key in {(g, fold[j]) for g, j, _ in cut}:  # each head answers its held-out fold's half list
                at = [k for k, (g, j, _) in enumerate(cut) if (g, fold[j]) == key]
                for k, a in zip(at, heads.answers(heads_of[(tr, *key)], [cut[k][2] for k in at], 3, (th,))[th]):
                    picks[k] = a
            m = score(gold, picks)
            cells.append(f"{m.micro_f1:.3f} / {m.top1:.3f}")
        print(f"| {te} | {d['ruled']} of {len(d['tags'])} | {rules.micro_f1:.3f} / {rules.top1:.3f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
