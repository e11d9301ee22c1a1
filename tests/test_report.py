"""Reports: rendered in a real headless Chromium, checked against the explanations."""
import json
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

from engine.report.calibration import confidence, reliability

ROOT = Path(__file__).resolve().parents[1]
TAX = '[{"id":1,"name":"cli"},{"id":2,"name":"lib"},{"id":3,"name":"database"},{"id":4,"name":"game-engine "},{"id":5,"name":"k8s"}]'
DOCS = {
    "a1": "# Rowdy\n\nRowdy is a command-line tool to rename files.\n\n```\n$ rowdy --dry-run *.txt\n```\n",
    "b2": "# Tally\n\nTally is a tiny library for parsing dates.\n\n```\npip install tally\n```\n",
    "c3": "# Kubic\n\nA distributed SQL database that runs on Kubernetes with a Helm chart.\n",
}
CHROME = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, cwd=ROOT)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    (d / "t.json").write_text(TAX)
    (d / "in.jsonl").write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in DOCS.items()))
    (d / "gold.jsonl").write_text("".join(json.dumps({"id": k, "tags": t}) + "\n" for k, t in (("a1", ["cli"]), ("b2", ["lib"]), ("c3", ["database", "k8s"]))))
    r = cli("batch", str(d / "in.jsonl"), "-o", str(d / "out.jsonl"), "--taxonomy", str(d / "t.json"), "--no-llm", "--explain-dir", str(d / "exp"))
    assert r.returncode == 0, r.stderr
    r = cli("report", str(d / "out.jsonl"), "--explain-dir", str(d / "exp"), "--gold", str(d / "gold.jsonl"), "--input", str(d / "in.jsonl"), "-o", str(d / "report.html"))
    assert r.returncode == 0, r.stderr
    return d


def test_report_in_headless_chromium(run):
    assert CHROME, "chromium is missing: run scripts/setup.sh --with-browser"
    url = (run / "report.html").as_uri()
    dom = subprocess.run([CHROME, *FLAGS, f"--user-data-dir={run / 'ud1'}", "--virtual-time-budget=3000", "--dump-dom", url],
                         capture_output=True, timeout=120).stdout.decode()
    assert 'data-ready="1"' in dom and 'data-js-errors="0"' in dom  # scripts ran, no errors
    for rid in DOCS:
        assert f'data-id="{rid}"' in dom
    marks = re.findall(r'<mark data-start="(\d+)" data-end="(\d+)" data-tag="([^"]*)"[^>]*>(.*?)</mark>', dom, re.S)
    assert marks
    exps = {rid: json.loads((run / "exp" / f"{rid}.json").read_text()) for rid in DOCS}
    offsets = {(c["tag"], e["start"], e["end"]) for x in exps.values() for c in x["candidates"] for e in c["evidence"]}
    texts = list(DOCS.values())
    for s, e, tag, inner in marks:
        s, e = int(s), int(e)
        assert (unescape(tag), s, e) in offsets
        assert any(t[s:e] == unescape(inner) for t in texts)
    shot = run / "shot.png"
    subprocess.run([CHROME, *FLAGS, f"--user-data-dir={run / 'ud2'}", "--window-size=1000,900", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    colors = img.getcolors(maxcolors=1 << 20)
    assert img.size == (1000, 900) and colors is not None and len(colors) > 20  # not a blank page


def test_markdown_report_and_gold_sections(run):
    md = cli("report", str(run / "out.jsonl"), "--explain-dir", str(run / "exp"), "--gold", str(run / "gold.jsonl"), "--format", "md", "-o", "-")
    text = md.stdout.decode()
    assert md.returncode == 0 and "## Against gold" in text and "`c3`" in text


def test_confidence_and_calibration():
    assert confidence(0.9, None) == 0.9 and 0 <= confidence(0.2, 0.99) <= 1 and confidence(1.0, 1.0) == 1.0
    pairs = [(0.9, True)] * 9 + [(0.9, False)] + [(0.3, True)] * 3 + [(0.3, False)] * 7
    buckets, ece = reliability(pairs, bins=5)
    assert [b.count for b in buckets] == [0, 10, 0, 0, 10]
    assert buckets[4].precision == 0.9 and buckets[1].precision == 0.3
    assert ece == pytest.approx(0.0)
    _, bad = reliability([(0.9, False)] * 10)
    assert bad == pytest.approx(0.9)
