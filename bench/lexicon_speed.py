"""The lexicon stage's speed with a learned rule pack, beside the hand-written one.

Rules mode on one core (one process, one torch/spaCy thread): READMEs per second over
the same READMEs (dev.jsonl), for the hand pack on the home list and for each adapter
given (its learned pack, on the tag list it was trained for). Each figure is the median
of ``--repeats`` passes, each by a fresh tagger warmed up on ``--warm`` other READMEs
(train's; 10 by default), so nothing is cached for the READMEs timed, as for a
catalogue's new ones; the ratio is against the hand pack, measured in the same run.
What a tagger learns across READMEs (compiled regex variants per set of words present,
fuzzy scores per word, spaCy's vocabulary) grows with ``--warm``: 10 is a catalogue's
start, a few hundred its steady state.

    W=/tmp/tagsmith-catalogues
    .venv/bin/python bench/lexicon_speed.py --adapter synonyms=$W/synonyms/adapter-1,$W/synonyms/described.json \\
        [--adapter NAME=DIR,TAX.json ...] [--repeats 3] [--warm 10]

The adapters and tag lists come from ``bench/catalogues.py`` (its ``--work`` folder) or
``tagsmith train``; the tag list is the one the adapter was trained with.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def rate(make_tagger, rows: list[dict], warm: list[dict], tax, repeats: int) -> float:
    """READMEs per second over ``rows``, each pass by a fresh tagger that has seen only
    ``warm`` (other READMEs): its lexicon compiled and spaCy loaded, but nothing cached
    for these READMEs. A pack's ``{name}`` regexes are kept per project name, so a
    second pass over the same READMEs would be faster than a catalogue of new ones
    ever is."""
    import re

    import regex

    runs = []
    for _ in range(repeats):
        tagger = make_tagger()
        tagger.tag_many(warm, tax)
        re.purge()
        regex.purge()
        t0 = time.perf_counter()
        tagger.tag_many(rows, tax)
        runs.append(len(rows) / (time.perf_counter() - t0))
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR,TAX.json")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warm", type=int, default=10, metavar="N",
                    help="train READMEs each fresh tagger sees first (10: a catalogue's first READMEs; "
                         "more: its steady state, where regex variants and fuzzy queries are shared)")
    args = ap.parse_args()
    from engine import Tagger
    from engine.api import as_taxonomy
    from engine.io.records import load_jsonl

    rows = [{"id": r["id"], "text": r["text"]} for r in load_jsonl(SHARED / "dev.jsonl")]
    warm = [{"id": r["id"], "text": r["text"]} for r in load_jsonl(SHARED / "train.jsonl")[:args.warm]]
    home = rate(lambda: Tagger(None, mode="rules", adapter=None), rows, warm, as_taxonomy(SHARED / "taxonomy.json"), args.repeats)
    print(f"{len(rows)} READMEs (dev), rules mode, one core, each tagger warmed on {len(warm)} train READMEs")
    print("| pack | tag list | rule tags | READMEs/s | ratio to hand |")
    print("|---|---|---|---|---|")
    print(f"| hand-written (built-in) | home (90) | 90 | {home:.1f} | 1.00 |", flush=True)
    for spec in args.adapter:
        name, _, rest = spec.partition("=")
        folder, _, tax_path = rest.partition(",")
        card = json.loads((Path(folder) / "card.json").read_text())
        tax = as_taxonomy(tax_path)
        tagger = Tagger(None, mode="rules", adapter=folder)
        pack = tagger.pack_for(tax)
        if pack is tagger.pack:
            raise SystemExit(f"{folder} has no learned pack for {tax_path}")
        r = rate(lambda: Tagger(None, mode="rules", adapter=folder), rows, warm, tax, args.repeats)
        print(f"| learned ({name}, {card.get('rules', {}).get('terms', '?')} terms) | {name} ({len(tax)}) | {len(pack)} | {r:.1f} | {r / home:.2f} |", flush=True)


if __name__ == "__main__":
    main()
