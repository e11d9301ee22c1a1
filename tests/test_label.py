"""``tagsmith label``: the label file (durable, locked, last line wins), the order
(uncertain with flagged random picks, review), comparing annotators, training on a
label file, and the page itself driven by keyboard in headless Chromium."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.api import Tagger
from engine.errors import TagsmithError
from engine.io.labels import load_gold
from engine.label import LabelSession, LabelStore, SessionSettings, compare_labels, read_items, review_items, write_disagreements
from engine.label.session import head_margin
from engine.taxonomy import Taxonomy
from tests.browser import chromium
from tests.conftest import FIXTURES, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
ITEMS = FIXTURES / "label-items.jsonl"  # 24 READMEs written for these tests, with the tags we mean
TAX = FIXTURES / "taxonomy-mini.json"
GOLD = {r["id"]: r["tags"] for r in read_jsonl(ITEMS)}


@pytest.fixture(scope="module")
def rules():
    return Tagger(mode="rules")


@pytest.fixture(scope="module")
def tax():
    return Taxonomy.load(TAX)


def session(tmp_path, rules, tax, name="labels.jsonl", **kw):
    store = LabelStore(str(tmp_path / name))
    items = read_items(str(ITEMS), tax, warn=lambda m: None)
    return LabelSession(items, rules, tax, store, SessionSettings(background=False, **kw)), store


# -- the label file ------------------------------------------------------------------------
def test_decisions_are_lines_the_last_wins_and_skips_are_no_labels(tmp_path, rules, tax):
    s, store = session(tmp_path, rules, tax, annotator="ann")
    first = s.item(0)
    assert first["id"] == "l01" and first["suggestion"] == ["cli"] and first["numbered"][0] == "cli"
    s.decide(0, ["lib"], 2.5)
    s.decide(0, ["cli", "dev-tool"], 1.0)  # changed: a new line
    s.item(1)
    s.decide(1, [], 0.4, skipped=True)
    s.item(2)
    s.decide(2, [], 3.0)  # "no tags" is a label
    store.close()
    lines = [json.loads(x) for x in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and lines[0]["tags"] == ["lib"] and lines[0]["annotator"] == "ann" and lines[0]["suggestion"] == ["cli"]
    assert lines[0]["text"] == read_jsonl(ITEMS)[0]["text"] and lines[0]["seconds"] == 2.5
    gold = load_gold(tmp_path / "labels.jsonl")
    assert [(r["id"], r["tags"]) for r in gold] == [("l01", ["cli", "dev-tool"]), ("l03", [])]


def test_bad_decisions_are_refused_and_write_nothing(tmp_path, rules, tax):
    s, store = session(tmp_path, rules, tax, max_tags=2)
    s.item(0)
    for tags, code in ((["nope"], "E104"), (["cli", "cli"], "E104"), (["cli", "lib", "ai"], "E101"), (["cli "], "E104")):
        with pytest.raises(TagsmithError) as e:
            s.decide(0, tags, 1.0)
        assert e.value.code == code
    with pytest.raises(TagsmithError):
        s.decide(5, ["cli"], 1.0)  # never shown
    with pytest.raises(TagsmithError):
        s.item(3)  # cannot jump ahead of the order
    store.close()
    assert (tmp_path / "labels.jsonl").read_text() == ""


def test_a_second_session_on_the_file_is_refused_and_reopening_resumes(tmp_path, rules, tax):
    s, store = session(tmp_path, rules, tax)
    for k in range(3):
        s.item(k)
        s.decide(k, GOLD[s.slots[k].id], 1.0)
    with pytest.raises(TagsmithError) as e:
        LabelStore(str(tmp_path / "labels.jsonl"))
    assert e.value.code == "E106" and "labels.jsonl" in str(e.value)
    store.close()
    with open(tmp_path / "labels.jsonl", "a") as fh:
        fh.write('{"id": "l04", "tags": ["a')  # killed mid-write: the torn line is cut on reopening
    s2, store2 = session(tmp_path, rules, tax)
    assert s2.start == 3 and s2.item(3)["id"] == "l04"
    assert s2.item(0)["decision"] == {"tags": GOLD["l01"], "skipped": False}  # going back shows the decision
    store2.close()
    assert len((tmp_path / "labels.jsonl").read_text().splitlines()) == 3


# -- order -----------------------------------------------------------------------------------
def test_uncertain_order_takes_the_smallest_margin_and_flags_random_picks(tmp_path, rules, tax):
    s, store = session(tmp_path, rules, tax, order="uncertain", random_share=0.25, seed=3)
    margins = {}
    picks = []
    for k in range(len(s.ids)):
        it = s.item(k)
        picks.append((it["id"], it["pick"], it["margin"]))
        margins[it["id"]] = s._sugg[it["id"]].margin
        s.decide(k, GOLD[it["id"]], 0.5)
    assert sorted(p[0] for p in picks) == sorted(s.ids)  # each once
    ranked = [m for _, pick, m in picks if pick == "uncertain"]
    assert ranked == sorted(ranked)  # the least sure first (scored up front here: background=False)
    rand = [p for p in picks if p[1] == "random"]
    assert 2 <= len(rand) <= 12  # a quarter of 24, give or take the seed's draws
    for rid, _, m in rand:  # a random pick also records the margin it had
        assert m == margins[rid]
    lines = [json.loads(x) for x in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert {l["pick"] for l in lines} == {"uncertain", "random"}
    p = s.progress()
    assert p["agreement"]["n"] == 24 and p["agreement_random"]["n"] == len(rand)
    exact = sum(set(GOLD[r]) == set(s._sugg[r].tags) for r in s.ids) / 24
    assert p["agreement"]["exact"] == round(exact, 4)
    store.close()


def test_the_same_seed_gives_the_same_order(tmp_path, rules, tax):
    orders = []
    for i in range(2):
        s, store = session(tmp_path, rules, tax, name=f"o{i}.jsonl", order="uncertain", seed=7)
        orders.append([s.item(k)["id"] for k in range(10)])
        store.close()
    assert orders[0] == orders[1]
    s, store = session(tmp_path, rules, tax, name="r.jsonl", order="random", seed=7)
    shuffled = [s.item(k)["id"] for k in range(24)]
    assert sorted(shuffled) == sorted(GOLD) and shuffled != list(GOLD)
    store.close()


def test_margin_reads_the_head_when_there_is_one():
    exp = {"decision": {"head": [{"tag": "a", "prob": 0.9}, {"tag": "b", "prob": 0.35}], "head_threshold": 0.3},
           "chosen": [{"tag": "a", "confidence": 0.9}]}
    assert head_margin(exp) == pytest.approx(0.05)
    assert head_margin({"decision": {}, "chosen": [{"tag": "a", "confidence": 0.7}]}) == pytest.approx(0.2)
    assert head_margin({"decision": {}, "chosen": []}) == 0.0


def test_review_walks_a_batch_run_least_confident_first(tmp_path, rules, tax):
    out = tmp_path / "out.jsonl"
    subprocess.run([sys.executable, "-m", "engine.cli", "batch", str(ITEMS), "--taxonomy", str(TAX), "--no-llm", "-o", str(out), "--quiet"],
                   check=True, cwd=ROOT)
    answers = {r["id"]: r["tags"] for r in read_jsonl(out)}
    items = review_items(str(out), str(ITEMS), tax, warn=lambda m: None)
    store = LabelStore(str(tmp_path / "fixed.jsonl"))
    s = LabelSession(items, rules, tax, store, SessionSettings(review=True, background=False))
    shown = [s.item(k) for k in range(len(items))]
    assert all(it["suggestion"] == answers[it["id"]] and it["pick"] == "review" for it in shown)
    certainty = [it["margin"] for it in shown]
    assert certainty == sorted(certainty) and certainty[0] < certainty[-1]
    store.close()


# -- two annotators --------------------------------------------------------------------------
def test_compare_two_annotators_and_adjudicate(tmp_path, rules, tax):
    def labels(name, tags_of):
        s, store = session(tmp_path, rules, tax, name=f"{name}.jsonl", annotator=name)
        for k in range(6):
            it = s.item(k)
            s.decide(k, tags_of(it["id"]), 1.0)
        store.close()
        return tmp_path / f"{name}.jsonl"

    a = labels("ann", lambda rid: GOLD[rid])
    b = labels("bob", lambda rid: GOLD[rid] if rid not in ("l02", "l04") else GOLD[rid][::-1] if rid == "l04" else ["lib"])
    cmp = compare_labels(a, b)
    assert cmp.names == ("ann", "bob") and cmp.both == 6
    # l02: lib+database vs lib (2 shared of 3+... ), l04: same set, other first tag
    given = sum(len(GOLD[r]) for r in list(GOLD)[:6]) * 2 - 1
    shared = sum(len(GOLD[r]) for r in list(GOLD)[:6]) - 1
    assert cmp.micro_f1 == round(2 * shared / given, 4)
    assert cmp.exact == round(5 / 6, 4) and cmp.same_first == round(5 / 6, 4)
    assert [d["id"] for d in cmp.disagreements] == ["l02", "l04"]
    out = tmp_path / "adjudicate.jsonl"
    write_disagreements(cmp, out)
    cli = subprocess.run([sys.executable, "-m", "engine.cli", "label", "--compare", str(a), str(b)], capture_output=True, text=True, cwd=ROOT)
    assert cli.returncode == 0 and "exact set 0.833" in cli.stdout and "same first tag 0.833" in cli.stdout
    items = read_items(str(out), tax, warn=lambda m: None)
    assert [it.annotators for it in items] == [{"ann": GOLD["l02"], "bob": ["lib"]}, {"ann": GOLD["l04"], "bob": GOLD["l04"][::-1]}]
    store = LabelStore(str(tmp_path / "final.jsonl"))
    s = LabelSession(items, rules, tax, store, SessionSettings(background=False))
    first = s.item(0)
    assert s.kind == "adjudicate" and first["annotators"] == {"ann": GOLD["l02"], "bob": ["lib"]}
    assert set(GOLD["l02"]) <= set(first["numbered"])  # both answers' tags are a digit away
    s.decide(0, GOLD["l02"], 2.0)
    store.close()
    line = json.loads((tmp_path / "final.jsonl").read_text())
    assert line["pick"] == "adjudicate" and line["annotators"]["bob"] == ["lib"]


# -- labels train ------------------------------------------------------------------------------
def test_a_label_file_trains(tmp_path, rules, tax, tiny_dir):
    s, store = session(tmp_path, rules, tax, annotator="ann")
    for k in range(22):
        it = s.item(k)
        s.decide(k, ["web-app"] if it["id"] == "l05" else GOLD[it["id"]], 1.0)
    s.decide(4, GOLD["l05"], 1.0)  # corrected: the last line wins
    s.item(22)
    s.decide(22, [], 0.2, skipped=True)
    store.close()
    rows = load_gold(tmp_path / "labels.jsonl")
    assert len(rows) == 22 and {r["id"]: r["tags"] for r in rows}["l05"] == GOLD["l05"]
    out = tmp_path / "adapter"
    tr = subprocess.run([sys.executable, "-m", "engine.cli", "train", str(tmp_path / "labels.jsonl"), "--taxonomy", str(TAX), "-o", str(out),
                         "--model", str(tiny_dir), "--device", "cpu", "--folds", "2", "--shortlist", "5", "--dtype", "float32", "--quiet"],
                        capture_output=True, text=True, cwd=ROOT)
    assert tr.returncode == 0, tr.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["data"]["items"] == 22 and (out / "head.safetensors").exists()
    ev = subprocess.run([sys.executable, "-m", "engine.cli", "eval", str(tmp_path / "labels.jsonl"), "--taxonomy", str(TAX), "--no-llm",
                         "--summary"], capture_output=True, text=True, cwd=ROOT)
    assert ev.returncode == 0 and "micro" in ev.stdout


# -- the page, by keyboard, in headless Chromium --------------------------------------------------
def start_label(out: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "label", str(ITEMS), "-o", str(out), "--taxonomy", str(TAX), "--no-llm",
                             "--port", "0", "--annotator", "ann", *extra], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert "http://" in line, line + proc.stderr.read()
    return proc, line.split("tagsmith label: ")[1].split("/ ")[0]


def test_label_five_items_by_keyboard_kill_and_resume(tmp_path):
    out = tmp_path / "labels.jsonl"
    proc, url = start_label(out)
    try:
        again = subprocess.run([sys.executable, "-m", "engine.cli", "label", str(ITEMS), "-o", str(out), "--taxonomy", str(TAX), "--no-llm",
                                "--port", "0"], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert again.returncode == 2 and "E106" in again.stderr  # one session per label file
        with chromium(tmp_path / "profile") as dt:
            dt.open(url + "/")
            painted = lambda k: dt.wait(f"document.documentElement.getAttribute('data-painted')=='{k}'")  # noqa: E731
            checked = lambda: json.loads(dt.js("document.documentElement.getAttribute('data-checked')"))  # noqa: E731
            painted(0)
            assert dt.js("document.documentElement.getAttribute('data-id')") == "l01" and checked() == ["cli"]
            for k in range(3):  # l01-l03: the suggestion is right, one key each
                dt.key("Enter")
                painted(k + 1)
            assert checked() == ["lib", "ai"]  # l04: right tags, but "ai" is the main one
            dt.key("1")
            dt.key("1")  # "lib" off and on again: it goes last
            assert checked() == ["ai", "lib"]
            dt.key("Enter")
            painted(4)
            assert checked() == ["chat"]  # l05: accepted as suggested (a mistake) ...
            dt.key("Enter")
            painted(5)
            dt.key("u")  # ... undone: back to l05 with its decision
            painted(4)
            assert checked() == ["chat"]
            dt.key("/")
            dt.type("web-a")
            dt.key("Enter")  # typeahead: the first match is toggled
            assert checked() == ["chat", "web-app"]
            dt.key("Enter")
            painted(5)
            dt.wait("document.documentElement.getAttribute('data-pending')=='0'")
            assert dt.js("document.documentElement.getAttribute('data-id')") == "l06"
            shot = dt.screenshot(tmp_path / "label-page.png")
            assert not dt.errors(), dt.errors()
        proc.send_signal(signal.SIGKILL)  # killed with l06 on screen
        proc.wait()
        rows = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(rows) == 6 and all(r["annotator"] == "ann" and r["seconds"] > 0 for r in rows)
        assert {r["id"]: r["tags"] for r in load_gold(out)} == {rid: GOLD[rid] for rid in ["l01", "l02", "l03", "l04", "l05"]}
        proc, url = start_label(out)
        with chromium(tmp_path / "profile2") as dt:
            dt.open(url + "/")
            dt.wait("document.documentElement.getAttribute('data-painted')=='5'")  # resumes at item 6
            assert dt.js("document.documentElement.getAttribute('data-id')") == "l06"
            assert "5 of 24 decided" in dt.js("document.getElementById('progress').textContent")
            dt.key("ArrowLeft")  # the decisions before the restart are reachable
            dt.wait("document.documentElement.getAttribute('data-painted')=='4'")
            assert json.loads(dt.js("document.documentElement.getAttribute('data-checked')")) == ["chat", "web-app"]
            assert dt.js("document.documentElement.getAttribute('data-js-errors')") == "0"
        from PIL import Image

        colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 20  # drawn, not blank
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0  # a clean stop: every decision was saved already
