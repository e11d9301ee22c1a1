"""Who decides, and would more labels pay? The decision table and learning curve on dev.

    .venv/bin/python bench/decision_eval.py [--adapter adapters/smollm2-135m] [--fractions 0.25,0.5] [--no-lora]

Rows, each scored on dev by the real tagging path (``Tagger.tag_many``):
- rules only; the bare model with the rule prior (``--no-adapter``); the LoRA adapter
  (``adapters/smollm2-135m-lora``) for contrast;
- decision heads fitted on train, one per kind, each with the setting that
  cross-validation on train chose for that kind (read from the shipped adapter's card):
  the model's states alone (the model alone inside the shortlist), the evidence alone
  (no model), both (the shipped default);
- the learning curve: the default head refitted on seeded shares of train.

The model states of train are computed once (one prefill per item) and shared by every
fit. Dev is only scored, never trained or tuned on.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def score_dev(tagger, tax) -> tuple[object, float]:
    from engine.io.records import load_jsonl
    from engine.report.metrics import score

    rows = load_jsonl(DATA / "dev.jsonl")
    t0 = time.perf_counter()
    res = tagger.tag_many([{"id": str(r["id"]), "text": r["text"]} for r in rows], taxonomy=tax)
    secs = (time.perf_counter() - t0) / len(rows)
    return score([[tax.canonical(t) for t in r["tags"]] for r in rows], [r.tags for r in res]), secs


def best_of_kind(card: dict, kind: str) -> dict:
    rows = [r for r in card["cross_validation"]["policies"] if r["kind"] == kind]
    return max(rows, key=lambda r: (r["micro_f1"], r["top1"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", default=str(ROOT / "adapters" / "smollm2-135m"), help="the shipped head adapter (its card gives the recipe)")
    ap.add_argument("--fractions", default="0.25,0.5")
    ap.add_argument("--no-lora", action="store_true", help="skip the LoRA contrast row")
    ap.add_argument("--excerpts", default="256", help="also the default head trained and used with these excerpt lengths (tokens)")
    args = ap.parse_args()
    from dataclasses import replace

    from engine import Tagger
    from engine.decision.adapter import attach, read_adapter
    from engine.decision.model import DEFAULT_MODEL, load_model
    from engine.io.records import load_jsonl
    from engine.taxonomy import Taxonomy
    from engine.training import head as heads
    from engine.training.card import write_card
    from engine.training.examples import gold_tags

    tax = Taxonomy.load(DATA / "taxonomy.json")
    shipped = Path(args.adapter)
    card = json.loads((shipped / "card.json").read_text())
    table: list[tuple[str, object, float]] = []

    def add(label: str, tagger) -> None:
        m, secs = score_dev(tagger, tax)
        table.append((label, m, secs))
        print(f"{label}: micro-F1 {m.micro_f1:.3f} top-1 {m.top1:.3f} ({secs:.3f} s/item)", file=sys.stderr, flush=True)

    add("rules only", Tagger(mode="rules"))
    bare = load_model(None, "cpu", adapter=None)
    add("hybrid, bare model + rule prior (`--no-adapter`)", Tagger(mode="hybrid", lm=bare))

    def with_head(folder: Path):
        """The bare model with a head adapter attached: a head leaves the weights as they
        are, so every head row shares the one loaded model."""
        return replace(bare, adapter=attach(bare.model, read_adapter(folder), DEFAULT_MODEL))

    lora = ROOT / "adapters" / "smollm2-135m-lora"
    if not args.no_lora and lora.is_dir():
        add("hybrid, LoRA adapter (`--adapter adapters/smollm2-135m-lora`)", Tagger(mode="hybrid", lm=load_model(None, "cpu", adapter=str(lora))))

    rows = load_jsonl(DATA / "train.jsonl")
    golds = [gold_tags(r, tax, "train.jsonl") for r in rows]
    shortlist = card["policy"]["shortlist"]
    collector = Tagger(mode="hybrid", lm=bare, policy=heads.head_policy(shortlist), excerpt_tokens=card["prompt"]["excerpt_tokens"])
    t0 = time.perf_counter()
    layer, state_layer = card["head"].get("line_layer"), card["head"].get("state_layer")
    items = heads.collect(collector, rows, tax, golds, card["prompt"]["max_tags"], layer=layer, state_layer=state_layer)
    print(f"train states: {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    def head_row(label: str, kind: str, subset: list, excerpt: int | None = None) -> None:
        best = best_of_kind(card, kind)
        head = heads.fit(subset, tax.names, kind, best["state_l2"], best["threshold"], line_l2=best.get("line_l2"), layer=layer,
                          state_layer=state_layer)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / f"head-{kind}"
            out.mkdir()
            c = dict(card, name=out.name, head=head.save(out))
            if excerpt:
                c["prompt"] = dict(card["prompt"], excerpt_tokens=excerpt)
            write_card(out, c)
            add(label, Tagger(mode="hybrid", lm=with_head(out)))

    head_row("head on model states only (the model alone in the shortlist)", "model", items)
    head_row("head on evidence only (no model)", "rules", items)
    for f in [float(x) for x in args.fractions.split(",")]:
        keep = sorted(random.Random(0).sample(range(len(items)), round(len(items) * f)))
        head_row(f"default head on {f:.0%} of train ({len(keep)} items)", "all", [items[i] for i in keep])
    for n in [int(x) for x in args.excerpts.split(",") if x]:
        # The same recipe on prompts with an n-token README excerpt (``tagsmith train --excerpt-tokens n``).
        longer = Tagger(mode="hybrid", lm=bare, policy=heads.head_policy(shortlist), excerpt_tokens=n)
        head_row(f"default head, {n}-token excerpt (`--excerpt-tokens {n}`)", "all",
                 heads.collect(longer, rows, tax, golds, card["prompt"]["max_tags"], layer=layer, state_layer=state_layer), excerpt=n)
    add(f"**default: head on evidence + model states** (`{shipped.name}`, {card['prompt']['excerpt_tokens']}-token excerpt)",
        Tagger(mode="hybrid", lm=with_head(shipped)))

    print("| decider | micro-P | micro-R | micro-F1 | macro-F1 | top-1 | exact | s/item |")
    print("|---|---|---|---|---|---|---|---|")
    for label, m, secs in table:
        print(f"| {label} | {m.micro_p:.3f} | {m.micro_r:.3f} | {m.micro_f1:.3f} | {m.macro_f1:.3f} | {m.top1:.3f} | {m.exact:.3f} | {secs:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
