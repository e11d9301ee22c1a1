"""Same answers on any machine: the dev table per dtype (micro-F1, top-1) and the share
of answers identical between float32 and bfloat16, with the CPU path that computed them.

    .venv/bin/python bench/dtype_agreement.py [--adapter DIR] [--gold ../shared/data/dev.jsonl]

On a CPU without native bfloat16 the bfloat16 row is emulated (slower, same kind of
rounding); run it on machines of each kind (AVX-512 BF16, AMX, neither) and compare.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gold", default=str(ROOT.parent / "shared" / "data" / "dev.jsonl"))
    ap.add_argument("--taxonomy", default=str(ROOT.parent / "shared" / "data" / "taxonomy.json"))
    ap.add_argument("--adapter", default="default")
    args = ap.parse_args()

    from engine import Tagger
    from engine.decision.model import cpu_path, load_model
    from engine.io.records import load_jsonl
    from engine.report.metrics import score
    from engine.taxonomy import Taxonomy

    rows = load_jsonl(args.gold)
    tax = Taxonomy.load(args.taxonomy)
    gold = [[tax.canonical(t) for t in r.get("tags", [])] for r in rows]
    answers = {}
    print(f"CPU bfloat16 path: {cpu_path()}; {len(rows)} items of {args.gold}")
    print("| dtype | micro-F1 | top-1 | exact | s/item |")
    print("|---|---|---|---|---|")
    for dtype in ("bfloat16", "float32"):
        lm = load_model(None, "cpu", adapter=args.adapter, dtype=dtype)
        t0 = time.perf_counter()
        res = Tagger(mode="hybrid", lm=lm).tag_many(rows, taxonomy=tax)
        secs = (time.perf_counter() - t0) / len(rows)
        m = score(gold, [r.tags for r in res])
        answers[dtype] = [r.to_json() for r in res]
        print(f"| {dtype} | {m.micro_f1:.3f} | {m.top1:.3f} | {m.exact:.3f} | {secs:.2f} |", flush=True)
    same = sum(a == b for a, b in zip(answers["bfloat16"], answers["float32"]))
    print(f"\nidentical answers: {same}/{len(rows)} ({same / len(rows):.1%})")
    for r, a, b in zip(rows, answers["bfloat16"], answers["float32"]):
        if a != b:
            print(f"  {r['id']}: bfloat16 {a}  float32 {b}")


if __name__ == "__main__":
    main()
