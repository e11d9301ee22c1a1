"""The lexicon stage's speed with a learned rule pack, beside the hand-written one.

Rules mode on one core (one process, one torch/spaCy thread): READMEs per second over
the same READMEs (dev.jsonl), for the hand pack on the home list and for each adapter
given (its learned pack, on the tag list it was trained for). Each figure is the median
of ``--repeats`` passes, each by fresh taggers warmed up on ``--warm`` other READMEs
(train's; 10 by default), so nothing is cached for the READMEs timed, as for a
catalogue's new ones. The packs take turns README by README (``interleaved``), so
the ratio against the hand pack holds while this VM's speed drifts.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


@dataclass
class Entry:
    """One pack timed: how to make a fresh tagger for it, and the tag list it tags for."""

    label: str
    make: Callable[[], Any]
    taxonomy: Any
    seconds: list[float] = field(default_factory=list)  # per pass


def interleaved(entries: list[Entry], rows: list[dict], warm: list[dict], repeats: int) -> None:
    """Per pass, a fresh tagger per entry, each warmed on ``warm`` (other READMEs), then
    the READMEs in turn, each tagged by every entry's tagger (their order rotating by
    README) and timed on its own. Each entry's pass time goes to ``seconds``.

    Why interleaved: this VM's speed drifts by up to ~1.5x within minutes, so packs
    timed one pass after another were compared at different speeds (the same hand pack
    ran 37-60 READMEs/s within an hour). A README takes ~25 ms: whatever the drift, the
    packs meet it alike, and their ratio holds. The ``regex`` module's compile cache is
    emptied before each README and tagger, so no tagger is served a regex another one
    compiled for the same README (a catalogue's process has one tagger; each pack then
    compiles ~0.4 a README again that one tagger alone would find cached). A pack's
    ``{name}`` regexes are kept per project name, so a second pass over the same
    READMEs by one tagger would be faster than a catalogue of new ones ever is: each
    pass makes fresh taggers."""
    import regex

    for _ in range(repeats):
        taggers = []
        for e in entries:
            tagger = e.make()
            tagger.tag_many(warm, e.taxonomy)
            taggers.append(tagger)
        spent = [0.0] * len(entries)
        for i, row in enumerate(rows):
            for k in range(len(entries)):
                j = (i + k) % len(entries)
                regex.purge()
                t0 = time.perf_counter()
                taggers[j].tag_many([row], entries[j].taxonomy)
                spent[j] += time.perf_counter() - t0
        for e, s in zip(entries, spent):
            e.seconds.append(s)


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
    entries = [Entry("| hand-written (built-in) | home (90) | 90", lambda: Tagger(None, mode="rules", adapter=None),
                     as_taxonomy(SHARED / "taxonomy.json"))]
    for spec in args.adapter:
        name, _, rest = spec.partition("=")
        folder, _, tax_path = rest.partition(",")
        card = json.loads((Path(folder) / "card.json").read_text())
        if card.get("rules") is None:
            raise SystemExit(f"{folder} has no learned pack")
        tax = as_taxonomy(tax_path)
        pack = Tagger(None, mode="rules", adapter=folder).pack_for(tax)
        entries.append(Entry(f"| learned ({name}, {card['rules'].get('terms', '?')} terms) | {name} ({len(tax)}) | {len(pack)}",
                             lambda folder=folder: Tagger(None, mode="rules", adapter=folder), tax))
    interleaved(entries, rows, warm, args.repeats)
    print(f"{len(rows)} READMEs (dev), rules mode, one core, each tagger warmed on {len(warm)} train READMEs; "
          f"median of {args.repeats} passes, the packs interleaved README by README")
    print("| pack | tag list | rule tags | READMEs/s | ratio to hand |")
    print("|---|---|---|---|---|")
    hand = entries[0].seconds
    for e in entries:
        r = statistics.median(len(rows) / s for s in e.seconds)
        ratio = statistics.median(h / s for h, s in zip(hand, e.seconds))
        print(f"{e.label} | {r:.1f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
