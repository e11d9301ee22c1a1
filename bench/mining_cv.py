"""Cross-validate the rule miner's settings (``engine/mining/learn.py``), rules only.

Per setting, 5 folds of a labelled file (the folds ``tagsmith train`` uses): a pack is
learned on four, and the fifth is tagged in rules mode with that pack and the list's
own names and descriptions (no bridge: labels alone). It prints the share of gold tags
among the top 8 and top 12 candidates (what a decision head can choose from; 12 is a
learned pack's shortlist), and the rules' own micro-F1 and top-1. One setting takes
~1 min on 2 cores.

    .venv/bin/python bench/catalogues.py --kinds synonyms --skip-zero --skip-home --skip-new-tags --fractions 1.0   # writes the list
    .venv/bin/python bench/mining_cv.py /tmp/tagsmith-catalogues/synonyms L2=1 L2=10 "L2=10;SCALE=2"

A setting is ``NAME=VALUE[;NAME=VALUE...]`` over the module's constants (``L2``,
``SCALE``, ``LIFT``, ``MAX_TERMS``, ``WEIGHT``, ``MIN_SUPPORT``, ``M``); the empty
setting ``""`` is the defaults.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TUNABLE = ("L2", "SCALE", "LIFT", "MAX_TERMS", "WEIGHT", "MIN_SUPPORT", "M", "ITERATIONS", "MIN_PRECISION")


def apply(module, spec: str, defaults: dict) -> None:
    """The defaults, then ``spec``'s values."""
    for k, v in defaults.items():
        setattr(module, k, v)
    for kv in filter(None, spec.split(";")):
        k, v = kv.split("=", 1)
        if k not in defaults:
            raise SystemExit(f"mining_cv: {k} is not one of {', '.join(TUNABLE)}")
        setattr(module, k, type(defaults[k])(float(v)))


def cross_validate(rows: list[dict], taxonomy, docs, folds: int = 5, seed: int = 0) -> dict[str, float]:
    from engine import Tagger
    from engine.mining import write
    from engine.training.packs import fold_of, learn_side_by_side

    golds = [r["tags"] for r in rows]
    fold = fold_of(len(rows), folds, seed)
    # The fold packs as ``tagsmith train`` learns them: side by side, one per core.
    fold_packs = learn_side_by_side(rows, golds, taxonomy, docs,
                                    [[j for j in range(len(rows)) if fold[j] != f] for f in range(folds)])
    top8 = top12 = tp = predicted = gold_n = top1 = 0
    for f, pack in enumerate(fold_packs):
        test = [j for j in range(len(rows)) if fold[j] == f]
        with tempfile.TemporaryDirectory() as d:
            write(pack, Path(d), f"fold {f}", extends=None)
            tagger = Tagger(d, mode="rules", adapter=None, bridge=False)
            proposals = tagger.propose([{"id": rows[j]["id"], "text": rows[j]["text"]} for j in test], taxonomy)
            answers = tagger.decide(proposals, taxonomy)
        for j, p, a in zip(test, proposals, answers):
            g = set(golds[j])
            ranked = [c.tag for c in p.candidates]
            top8 += len(g & set(ranked[:8]))
            top12 += len(g & set(ranked[:12]))
            tp += len(g & set(a.tags))
            predicted += len(a.tags)
            gold_n += len(g)
            top1 += bool(a.tags and a.tags[0] in g)
    return {"top8": top8 / gold_n, "top12": top12 / gold_n, "micro_f1": 2 * tp / (predicted + gold_n), "top1": top1 / len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("list_dir", help="a folder with train.jsonl and described.json (bench/catalogues.py --work KIND)")
    ap.add_argument("settings", nargs="*", default=[""])
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    from engine.api import as_taxonomy
    from engine.io.records import load_jsonl
    from engine.mining import terms_of

    learn = importlib.import_module("engine.mining.learn")  # the package re-exports a function of that name
    defaults = {k: getattr(learn, k) for k in TUNABLE}
    d = Path(args.list_dir)
    rows = load_jsonl(d / "train.jsonl")
    taxonomy = as_taxonomy(str(d / "described.json"))
    docs = terms_of(rows, progress=True)
    print(f"{len(rows)} READMEs ({d.name}), {args.folds}-fold, rules only, no bridge; defaults: "
          + ", ".join(f"{k}={v}" for k, v in defaults.items()))
    print("| setting | gold in top 8 | gold in top 12 | micro-F1 | top-1 | seconds |")
    print("|---|---|---|---|---|---|")
    for spec in args.settings:
        apply(learn, spec, defaults)
        t0 = time.perf_counter()
        m = cross_validate(rows, taxonomy, docs, args.folds)
        print(f"| {spec or 'defaults'} | {m['top8']:.3f} | {m['top12']:.3f} | {m['micro_f1']:.3f} | {m['top1']:.3f} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)
    apply(learn, "", defaults)


if __name__ == "__main__":
    main()
