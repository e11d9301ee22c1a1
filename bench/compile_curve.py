"""Constraint compile time against the size of the tag list: figures, not assertions.

For tag lists of 90 (the requester's), 300, 1,000 and 3,000 names (the 90 plus
GitHub-topic-like names), prints the time to compile the direct index
(``ConstraintCompiler.get``) and to compute the tokens of every state a decoder
reaches first (the array's start and each name's first characters), beside
Outlines' regex index on the same list (up to ``--outlines-max`` names: it grows
much faster). The tokenizer's own trie is built once per process and reported apart.

    python bench/compile_curve.py
    python bench/compile_curve.py --sizes 90,300,1000,3000 --outlines-max 1000
"""
from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ("api async auth aws azure bash blockchain browser cache chat cli cloud compiler config container crypto css data "
         "database debug deploy desktop docker docs editor email embedded engine etl events file finance firmware font "
         "frontend game gateway gis git go graph graphql gui hardware http image infra ios java javascript json k8s "
         "kotlin lambda language linter linux llm log machine-learning macos markdown math media mobile monitoring "
         "network nlp node notebook oauth orm os parser pdf php plugin postgres privacy proxy python queue react redis "
         "rest robot ruby rust scheduler search security server shell sql ssh storage stream svg swift terminal test "
         "text theme time torrent typescript ui unicode video vim vue wasm web webhook wiki windows workflow xml yaml").split()


def tag_list(base: list[str], size: int) -> list[str]:
    names = list(base[:size])
    seen = {n.strip().lower() for n in names}
    for a, b in itertools.product(WORDS, WORDS):
        if len(names) >= size:
            break
        name = f"{a}-{b}"
        if a != b and name not in seen:
            seen.add(name)
            names.append(name)
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="90,300,1000,3000")
    ap.add_argument("--outlines-max", type=int, default=1000, help="largest list also compiled with Outlines (0: none)")
    ap.add_argument("--max-tags", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5, help="direct compiles per size (the median is printed)")
    ap.add_argument("--taxonomy", default=str(ROOT / "fixtures" / "taxonomy.json"))
    args = ap.parse_args()

    from engine.decision.answer_index import DONE, NAME
    from engine.decision.compiler import ConstraintCompiler
    from engine.decision.model import load_model
    from engine.taxonomy import Taxonomy

    lm = load_model(None, "cpu", adapter=None)
    tok = lm.tokenizer
    base = [t["name"] if isinstance(t, dict) else t for t in json.loads(Path(args.taxonomy).read_text())]
    t0 = time.perf_counter()
    direct = ConstraintCompiler(lm.model, tok)
    strings_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _ = direct.tokens
    trie_s = time.perf_counter() - t0
    ref = ConstraintCompiler(lm.model, tok, engine="outlines") if args.outlines_max else None
    if ref is not None:
        t0 = time.perf_counter()
        _ = ref.vocabulary
        vocab_s = time.perf_counter() - t0
    print(f"per tokenizer, once: token strings {strings_s:.2f} s, sorted token table {trie_s:.2f} s"
          + (f"; Outlines vocabulary {vocab_s:.2f} s" if ref is not None else ""), flush=True)
    print("| tags | name chars | direct compile ms (median) | first states ms (states) | Outlines index s | × | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for size in [int(x) for x in args.sizes.split(",")]:
        tax = Taxonomy.from_names(tag_list(base, size))
        chars = sum(len(n) for n in tax.names)
        runs = []
        for _ in range(args.repeat):  # a fresh compile each time (the compiler's cache is emptied)
            direct.forget(tax.fingerprint())
            t0 = time.perf_counter()
            c = direct.get(tax, args.max_tags)
            runs.append(time.perf_counter() - t0)
        compile_s = sorted(runs)[len(runs) // 2]
        # What a decoder meets first: "[" then '"' then the first characters of names.
        t0 = time.perf_counter()
        idx = c.index
        states = [idx.initial, idx.step(idx.initial, "[")]
        states.append(idx.step(states[-1], '"'))
        for ch in list(idx.names.children[0])[:50]:
            states.append((NAME, idx.names.children[0][ch], 0))
        states.append((DONE, 0, 1))
        for s in states:
            idx.allowed(s)
        first_s = time.perf_counter() - t0
        outl = ""
        ratio = ""
        if ref is not None and size <= args.outlines_max:
            t0 = time.perf_counter()
            ref.get(tax, args.max_tags)
            o = time.perf_counter() - t0
            outl, ratio = f"{o:.2f}", f"{o / (compile_s + first_s):.0f}"
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"| {size} | {chars} | {compile_s * 1000:.1f} | {first_s * 1000:.0f} ({len(states)}) | {outl or '–'} | {ratio or '–'} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
