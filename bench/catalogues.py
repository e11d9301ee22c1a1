"""Tag lists tagsmith has no rules for: how far descriptions and labels take it.

Builds catalogues from the home list (``bench/renamed_lists.py``: every tag renamed to a
synonym; to an opaque code; a coarser list of merged tags), relabels train and dev,
and scores on dev:

- zero labels: names only, then names + descriptions (rules mode; hybrid with the
  shipped adapter's any-list head, and with the bare model and the untrained policy);
- ``tagsmith train`` (a learned, cross-fitted pack and the decision head) on 25 / 50 /
  100% of train: micro-P/R/F1, top-1, training time and peak memory;
- the home list with the shipped adapter, for scale;
- "new tags": the hand rules of 10 tags dropped, then recovered from labels (the
  learned pack on top of the rest of the hand pack), scored on those 10 tags.

    .venv/bin/python bench/catalogues.py [--kinds synonyms,codes,coarse] [--fractions 1.0,0.5,0.25]
        [--dtype both] [--skip-zero] [--skip-home] [--skip-new-tags] [--no-bridge] [--work DIR]

Each training run takes minutes (most of it the model's states); the table is printed
as rows finish. Training runs in a child process, so its peak memory is its own.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def _lists():
    """bench/renamed_lists.py, loaded by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("renamed_lists", ROOT / "bench" / "renamed_lists.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

#: Tags whose hand rules the "new tags" row drops (frequent enough on dev to score).
NEW_TAGS = ["database", "testing", "security", "game", "chat", "video", "monitoring", "search", "compiler", "editor"]


def score_row(label: str, gold: list[list[str]], pred: list[list[str]], extra: str = "", only: set[str] | None = None) -> str:
    from engine.report.metrics import score

    if only is not None:
        gold = [[t for t in g if t in only] for g in gold]
        pred = [[t for t in p if t in only] for p in pred]
    m = score(gold, pred)
    top1 = "–" if only is not None else f"{m.top1:.3f}"  # the first tag of a subset is no answer's first tag
    return f"| {label} | {m.micro_p:.3f} | {m.micro_r:.3f} | {m.micro_f1:.3f} | {top1} | {extra} |"


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


#: ``--no-bridge``: list tags get no rules from the concepts they name (``engine/bridge``).
BRIDGE = True


def tag_dev(dev: list[dict], tax_path: Path, mode: str, adapter: str | None = "default", rules: str | None = None) -> list[list[str]]:
    from engine import Tagger

    tagger = Tagger(rules, mode=mode, adapter=adapter, bridge=BRIDGE)
    return [r.tags for r in tagger.tag_many(dev, taxonomy=str(tax_path))]


def train(gold: Path, tax: Path, out: Path, fraction: float, dtype: str, extra: list[str]) -> tuple[float, float]:
    """``tagsmith train`` in a child process: (seconds, its peak RSS in MiB). The peak is
    read by /usr/bin/time: a child forked from this process (which holds a model) would
    count this process's pages in its own maximum."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "engine.cli", "train", str(gold), "--taxonomy", str(tax), "-o", str(out),
           "--fraction", str(fraction), "--dtype", dtype, "--quiet", *extra, *([] if BRIDGE else ["--no-bridge"])]
    peak_file = out.with_suffix(".rss")
    t0 = time.perf_counter()
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(peak_file), *cmd], check=True, cwd=ROOT)
    secs = time.perf_counter() - t0
    return secs, int(peak_file.read_text().split()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="synonyms,codes,coarse")
    ap.add_argument("--fractions", default="1.0,0.5,0.25")
    ap.add_argument("--dtype", default="both", help="dtype(s) tagsmith train reads states in (default both, as shipped)")
    ap.add_argument("--work", default="/tmp/tagsmith-catalogues")
    ap.add_argument("--skip-zero", action="store_true")
    ap.add_argument("--skip-home", action="store_true")
    ap.add_argument("--skip-new-tags", action="store_true")
    ap.add_argument("--no-bridge", action="store_true",
                    help="no rules for a list's tags from the built-in concepts they name: names, descriptions and labels only")
    args = ap.parse_args()
    global BRIDGE
    BRIDGE = not args.no_bridge

    lists = _lists()
    catalogue, drop_names, relabel = lists.catalogue, lists.drop_names, lists.relabel
    from engine.io.records import load_jsonl

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train_rows = load_jsonl(SHARED / "train.jsonl")
    dev = load_jsonl(SHARED / "dev.jsonl")
    print("| catalogue, decider | micro-P | micro-R | micro-F1 | top-1 | notes |")
    print("|---|---|---|---|---|---|")
    if not args.skip_home:
        gold = [r["tags"] for r in dev]
        print(score_row("home list (90 tags), rules only", gold, tag_dev(dev, SHARED / "taxonomy.json", "rules")), flush=True)
        print(score_row("home list, hybrid with the shipped adapter", gold, tag_dev(dev, SHARED / "taxonomy.json", "hybrid")), flush=True)
    for kind in [k for k in args.kinds.split(",") if k]:
        tags, mapping = catalogue(kind, SHARED)
        d = work / kind
        d.mkdir(exist_ok=True)
        (d / "described.json").write_text(json.dumps(tags, ensure_ascii=False, indent=1))
        (d / "names.json").write_text(json.dumps(drop_names(tags), ensure_ascii=False, indent=1))
        write_jsonl(d / "train.jsonl", relabel(train_rows, mapping))
        gold = [r["tags"] for r in relabel(dev, mapping)]
        n = len(tags)
        if not args.skip_zero:
            for label, tax in (("names", d / "names.json"), ("names + descriptions", d / "described.json")):
                print(score_row(f"{kind} ({n} tags), zero labels, {label}, rules", gold, tag_dev(dev, tax, "rules")), flush=True)
                print(score_row(f"{kind} ({n} tags), zero labels, {label}, hybrid, the shipped adapter (its any-list head where it decides)", gold,
                                tag_dev(dev, tax, "hybrid")), flush=True)
                print(score_row(f"{kind} ({n} tags), zero labels, {label}, hybrid, bare model (no adapter)", gold,
                                tag_dev(dev, tax, "hybrid", adapter=None)), flush=True)
        for frac in [float(f) for f in args.fractions.split(",") if f]:
            out = d / f"adapter-{frac:g}"
            secs, peak = train(d / "train.jsonl", d / "described.json", out, frac, args.dtype, [])
            items = round(len(train_rows) * frac)
            note = f"train {secs / 60:.1f} min, peak {peak:,.0f} MiB"
            print(score_row(f"{kind}, `tagsmith train` on {frac:.0%} of train ({items}), rules", gold,
                            tag_dev(dev, d / "described.json", "rules", adapter=str(out)), note), flush=True)
            print(score_row(f"{kind}, `tagsmith train` on {frac:.0%} of train ({items}), hybrid", gold,
                            tag_dev(dev, d / "described.json", "hybrid", adapter=str(out)), note), flush=True)
    if not args.skip_new_tags:
        new_tags(work, train_rows, dev, args.dtype)


def new_tags(work: Path, train_rows: list[dict], dev: list[dict], dtype: str) -> None:
    """The hand pack without 10 tags' rules; then those recovered from labels."""
    import yaml

    from engine.rules.pack import default_pack_dir

    d = work / "new-tags"
    pack = d / "pack"
    if pack.exists():
        shutil.rmtree(pack)
    pack.mkdir(parents=True)
    for f in sorted(default_pack_dir().glob("*.yaml")):
        data = yaml.safe_load(f.read_text())
        data["rules"] = [r for r in data.get("rules") or [] if r["tag"] not in NEW_TAGS]
        (pack / f.name).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    write_jsonl(d / "train.jsonl", train_rows)
    tax = SHARED / "taxonomy.json"
    gold = [r["tags"] for r in dev]
    only = set(NEW_TAGS)
    print(score_row("new tags: the 10 with their hand rules (home list, rules)", gold, tag_dev(dev, tax, "rules"), "those 10 tags only", only))
    print(score_row("new tags: hand rules dropped, zero labels (rules)", gold, tag_dev(dev, tax, "rules", rules=str(pack)), "those 10 tags only", only))
    out = d / "adapter"
    secs, peak = train(d / "train.jsonl", tax, out, 1.0, dtype, ["--rules", str(pack), "--learn-rules", "yes"])
    note = f"those 10 tags only; train {secs / 60:.1f} min, peak {peak:,.0f} MiB"
    print(score_row("new tags: recovered from labels, `train --rules PACK --learn-rules yes` (rules)", gold,
                    tag_dev(dev, tax, "rules", adapter=str(out)), note, only))
    print(score_row("new tags: recovered from labels (hybrid)", gold, tag_dev(dev, tax, "hybrid", adapter=str(out)), note, only))
    pred = tag_dev(dev, tax, "hybrid", adapter=str(out))
    print(score_row("new tags: recovered from labels (hybrid), all 90 tags", gold, pred, f"train {secs / 60:.1f} min"), flush=True)


if __name__ == "__main__":
    main()
