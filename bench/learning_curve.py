"""Learning curve of the decision adapter: would more labels pay?

    .venv/bin/python bench/learning_curve.py [--fractions 0.25,0.5] [--adapter adapters/smollm2-135m]

Trains the default adapter's recipe on seeded shares of ``train.jsonl`` (no
cross-validation: each uses the shipped adapter's policy, itself chosen by
cross-validation on train) and scores the default hybrid on dev with each; the 100%
row is the shipped adapter. Dev is only scored, never trained or tuned on.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def score_dev(adapter: Path, tax: object) -> tuple[object, float]:
    from engine import Tagger
    from engine.decision.model import load_model
    from engine.io.records import load_jsonl
    from engine.report.metrics import score

    rows = load_jsonl(DATA / "dev.jsonl")
    lm = load_model(None, "cpu", adapter=str(adapter))
    t0 = time.perf_counter()
    res = Tagger(mode="hybrid", lm=lm).tag_many([{"id": str(r["id"]), "text": r["text"]} for r in rows], taxonomy=tax)
    secs = (time.perf_counter() - t0) / len(rows)
    return score([[tax.canonical(t) for t in r["tags"]] for r in rows], [r.tags for r in res]), secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fractions", default="0.25,0.5")
    ap.add_argument("--adapter", default=str(ROOT / "adapters" / "smollm2-135m"), help="the 100%% adapter (its card gives the recipe)")
    args = ap.parse_args()
    from engine.taxonomy import Taxonomy
    from engine.training.job import train
    from engine.training.lora import LoraSettings

    tax = Taxonomy.load(DATA / "taxonomy.json")
    card = json.loads((Path(args.adapter) / "card.json").read_text())
    lora = {k: card["lora"][k] for k in ("layers", "rank", "alpha", "dropout", "lr", "epochs", "accumulate", "warmup", "seed")}
    rows = []
    for f in [float(x) for x in args.fractions.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"adapter-{int(f * 100)}"
            t0 = time.perf_counter()
            c = train(DATA / "train.jsonl", tax, out, settings=LoraSettings(**lora), folds=0, shortlist=card["policy"]["shortlist"],
                      fraction=f, log=lambda m: None)
            # The shipped adapter's policy (cross-validated on train) for every share.
            c["policy"] = card["policy"]
            (out / "card.json").write_text(json.dumps(c))
            secs = time.perf_counter() - t0
            m, s_item = score_dev(out, tax)
        rows.append((f, c["data"]["items"], secs, m, s_item))
        print(f"{f:.0%}: {c['data']['items']} items, trained in {secs:.0f} s: dev micro-F1 {m.micro_f1:.3f} top-1 {m.top1:.3f}", file=sys.stderr)
    m, s_item = score_dev(Path(args.adapter), tax)
    rows.append((1.0, card["data"]["items"], card["training"]["seconds"], m, s_item))
    print("| share of train | items | training s | micro-P | micro-R | micro-F1 | macro-F1 | top-1 | exact |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f, n, secs, m, _ in rows:
        print(f"| {f:.0%} | {n} | {secs:.0f} | {m.micro_p:.3f} | {m.micro_r:.3f} | {m.micro_f1:.3f} | {m.macro_f1:.3f} | {m.top1:.3f} | {m.exact:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
