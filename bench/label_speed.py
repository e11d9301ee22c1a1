"""How fast ``tagsmith label`` goes for a person: a scripted session in headless Chromium.

Starts ``tagsmith label`` on real READMEs (dev.jsonl when ../shared is there, else the
test fixture) with the default engine (hybrid, embedded model, shipped adapter), opens
the page and labels by keyboard, then prints:

- first paint: ms from navigating to the page until the first item is drawn (the
  model is warm: ``tagsmith label`` loads it and tags the first item before it serves);
- keypresses per accepted suggestion (Enter alone), and keypresses per item when the
  script labels each README to its gold tags with the page's keys (digits for numbered
  tags, ``/`` + a prefix + Enter for the others, Enter to save);
- key to next item painted, ms (median, p95, max): with a reading pause between items
  (the next item's suggestion is fetched while the current one is read), and back to
  back (no pause: the worst case, where a key waits on the model).

    .venv/bin/python bench/label_speed.py [--items 20] [--pause 1.0] [--orders file,uncertain] [--out DIR]
        [--input LABELLED.jsonl --taxonomy TAX.json]

Screenshots of the page go to ``--out`` (default /tmp/tagsmith-label-speed).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def start(items: Path, tax: Path, out: Path, order: str) -> tuple[subprocess.Popen, str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "label", str(items), "-o", str(out), "--taxonomy", str(tax),
                             "--port", "0", "--order", order, "--annotator", "bench"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    if "http://" not in line:
        raise SystemExit(line + proc.stderr.read())
    return proc, line.split("tagsmith label: ")[1].split("/ ")[0], time.perf_counter() - t0


def attr(dt, name: str) -> str | None:
    return dt.js(f"document.documentElement.getAttribute('{name}')")


def keys_to_gold(dt, gold: list[str], names: list[str]) -> int:
    """Press the keys that turn the checked tags into ``gold`` (in order), then Enter."""
    presses = 0
    checked = json.loads(attr(dt, "data-checked"))
    numbered = dt.js("[...document.querySelectorAll('#num li')].map(l=>l.dataset.tag)")

    def toggle(tag: str) -> None:
        nonlocal presses
        if tag in numbered:
            dt.key(str(numbered.index(tag) + 1))
            presses += 1
            return
        low = tag.lower().strip()
        for n in range(1, len(low) + 1):  # the shortest prefix whose first match is this tag
            q = low[:n]
            ranked = [x for x in names if x.lower().startswith(q)] + [x for x in names if q in x.lower() and not x.lower().startswith(q)]
            if ranked and ranked[0] == tag:
                break
        dt.key("/")
        dt.type(q)
        dt.key("Enter")
        presses += 2 + len(q)

    if checked[:1] != gold[:1] or set(checked) != set(gold):
        for t in [t for t in checked if t not in gold]:
            toggle(t)
        kept = [t for t in checked if t in gold]
        if kept and kept[0] != gold[0]:  # the main tag must come first: re-add the others after it
            for t in kept:
                toggle(t)
            kept = []
        for t in gold:
            if t not in kept:
                toggle(t)
    dt.key("Enter")
    return presses + 1


def session(order: str, rows: list[dict], items: Path, tax: Path, names: list[str], n: int, pause: float, out_dir: Path) -> dict:
    from tests.browser import chromium

    work = Path(tempfile.mkdtemp(prefix="label-speed-"))
    proc, url, ready = start(items, tax, work / "labels.jsonl", order)
    gold = {str(r["id"]): r["tags"] for r in rows}
    res: dict = {"order": order, "server_ready_s": ready}
    try:
        with chromium(work / "profile", size="1280,1000") as dt:
            dt.open(url + "/")
            dt.wait("document.documentElement.getAttribute('data-painted')=='0'", 60)
            res["first_paint_ms"] = float(attr(dt, "data-first-paint"))
            dt.screenshot(out_dir / f"label-{order}-first.png")
            presses = []
            for k in range(n):  # to gold, with a reading pause
                time.sleep(pause)
                presses.append(keys_to_gold(dt, [t for t in gold[attr(dt, "data-id")]], names))
                dt.wait(f"document.documentElement.getAttribute('data-painted')=='{k + 1}'", 60)
            res["paints_read"] = dt.js("window.__paints.slice()")
            res["keys_per_item_to_gold"] = statistics.mean(presses)
            dt.screenshot(out_dir / f"label-{order}-later.png")
            dt.js("window.__paints.length=0")
            for k in range(n, 2 * n):  # accept as suggested, back to back
                dt.key("Enter")
                dt.wait(f"document.documentElement.getAttribute('data-painted')=='{k + 1}'", 120)
            res["paints_fast"] = dt.js("window.__paints.slice()")
            res["keys_per_accept"] = 1.0  # one Enter per accepted suggestion, as pressed above
            dt.wait("document.documentElement.getAttribute('data-pending')=='0'", 60)
            res["js_errors"] = len(dt.errors())
        lines = [json.loads(x) for x in (work / "labels.jsonl").read_text().splitlines()]
        res["lines"] = len(lines)
        res["accepted_as_suggested"] = sum(1 for l in lines[n:] if l["tags"] == l["suggestion"])
        res["to_gold_exact"] = sum(1 for l in lines[:n] if l["tags"] == gold[str(l["id"])])
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return res


def figures(ms: list[float]) -> str:
    if not ms:
        return "–"
    q = sorted(ms)
    return f"{statistics.median(q):.0f} / {q[min(len(q) - 1, int(0.95 * len(q)))]:.0f} / {q[-1]:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20, help="items labelled to gold, then as many accepted back to back")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds 'reading' each item before the keys")
    ap.add_argument("--orders", default="file,uncertain")
    ap.add_argument("--out", default="/tmp/tagsmith-label-speed")
    ap.add_argument("--input", default=None, help="labelled JSONL to label (default: dev.jsonl, else the test fixture)")
    ap.add_argument("--taxonomy", default=None, help="its tag list")
    args = ap.parse_args()
    from engine.io.records import load_jsonl
    from engine.taxonomy import Taxonomy

    if args.input:
        items, tax = Path(args.input), Path(args.taxonomy)
    elif (SHARED / "dev.jsonl").exists():
        items, tax = SHARED / "dev.jsonl", SHARED / "taxonomy.json"
    else:
        items, tax = ROOT / "fixtures" / "label-items.jsonl", ROOT / "fixtures" / "taxonomy-mini.json"
    taxonomy = Taxonomy.load(tax)
    rows = [{**r, "tags": [taxonomy.canonical(t) for t in r["tags"]]} for r in load_jsonl(items)]
    names = taxonomy.names
    n = min(args.items, len(rows) // 2)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"input: {items} ({len(rows)} READMEs), {n} labelled to gold with a {args.pause:g} s pause, then {n} accepted back to back")
    print("| order | server ready (s, model load) | first paint (ms) | keys / accepted suggestion | keys / item to gold | "
          "key → next painted, read pause (ms: median / p95 / max) | back to back (ms) | lines |")
    print("|---|---|---|---|---|---|---|---|")
    for order in [o for o in args.orders.split(",") if o]:
        r = session(order, rows, items, tax, names, n, args.pause, out_dir)
        print(f"| {order} | {r['server_ready_s']:.1f} | {r['first_paint_ms']:.0f} | {r['keys_per_accept']:.0f} "
              f"({r['accepted_as_suggested']}/{n} saved as suggested) | {r['keys_per_item_to_gold']:.2f} ({r['to_gold_exact']}/{n} exact) | "
              f"{figures(r['paints_read'])} | {figures(r['paints_fast'])} | {r['lines']} |", flush=True)
        if r["js_errors"]:
            print(f"  {r['js_errors']} script errors on the page")
    print(f"screenshots: {out_dir}")


if __name__ == "__main__":
    main()
