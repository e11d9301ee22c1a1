"""Any catalogue: a tag list's own descriptions and aliases are evidence, a rule pack
is learned from labels (reviewable YAML with provenance), packs layer on each other,
and a trained adapter brings its learned pack. Every README here is written for the
test (third-party text stays in ../shared)."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from engine import Tagger, TagsmithError
from engine.rules import load_pack
from engine.taxonomy import Taxonomy

ROOT = Path(__file__).parents[1]
#: Three tags under opaque codes: nothing but descriptions and labels can tell them apart.
CODES = [
    {"id": 1, "name": "c-001", "description": "time machines, flux capacitors, temporal paradox simulation", "aliases": ["chrono kit"]},
    {"id": 2, "name": "c-002", "description": "spreadsheets, ledgers and bookkeeping"},
    {"id": 3, "name": "c-003", "description": "telescopes, astronomy, star catalogues"},
]
WORDS = {
    "c-001": ["flux capacitor", "time travel", "paradox", "temporal engine", "chrono"],
    "c-002": ["spreadsheet", "ledger", "bookkeeping", "invoice", "balance sheet"],
    "c-003": ["telescope", "astronomy", "star chart", "eyepiece", "observatory"],
}
FILLER = ["fast", "simple", "open source", "written in rust", "cross platform", "easy to extend", "well tested"]


def synthetic(n=60, seed=0):
    """Labelled READMEs: each about one or two tags, in its words, with filler."""
    rng = random.Random(seed)
    tags = list(WORDS)
    rows = []
    for i in range(n):
        gold = rng.sample(tags, 2 if i % 4 == 0 else 1)
        lines = [f"# project-{i}", "", f"A {rng.choice(FILLER)} tool for {rng.choice(WORDS[gold[0]])}.", ""]
        for t in gold:
            lines += [f"It supports {w} and more, {rng.choice(FILLER)}." for w in rng.sample(WORDS[t], 3)]
        rows.append({"id": f"s{i:03d}", "text": "\n".join(lines) + "\n", "tags": gold})
    return rows


def test_tag_list_descriptions_and_aliases_are_read_and_checked(tmp_path):
    tax = Taxonomy.from_names(CODES)
    assert tax.described and tax.tags[0].aliases == ("chrono kit",) and tax.tags[1].description.startswith("spreadsheets")
    assert Taxonomy.from_names(tax.to_list()).fingerprint() == tax.fingerprint()
    bare = Taxonomy.from_names(["c-001", "c-002"])
    assert not bare.described and bare.fingerprint() == Taxonomy.from_names([{"id": 1, "name": "c-001"}, {"id": 2, "name": "c-002"}]).fingerprint()
    assert Taxonomy.from_names([{**CODES[0], "description": "other words"}]).fingerprint() != Taxonomy.from_names([CODES[0]]).fingerprint()
    for bad, field in (({"name": "x", "description": 3}, "[0].description"), ({"name": "x", "aliases": "k8s"}, "[0].aliases"),
                       ({"name": "x", "aliases": [""]}, "[0].aliases")):
        with pytest.raises(TagsmithError) as err:
            Taxonomy.from_names([bad], source="t.json")
        assert err.value.code == "E200" and err.value.field == field


def test_zero_labels_descriptions_and_aliases_propose_the_tag():
    tagger = Tagger(mode="rules")
    tax = Taxonomy.from_names(CODES)
    assert tagger.tag("An observatory toolkit: point your telescope at a star catalogue.", taxonomy=tax).tags[0] == "c-003"
    assert tagger.tag("Double-entry bookkeeping in a spreadsheet.", taxonomy=tax).tags[0] == "c-002"
    got = tagger.tag("Install the chrono kitt and go.", taxonomy=tax)  # an alias, misspelt: a fuzzy match
    assert got.tags == ["c-001"] and got.explanation.candidates[0]["evidence"][0]["rule"] == "fuzzy:chrono kitt~chrono kit"
    # Names alone say nothing about opaque codes.
    assert Tagger(mode="rules").tag("Double-entry bookkeeping in a spreadsheet.", taxonomy=["c-001", "c-002", "c-003"]).tags == []


def test_rules_learn_writes_a_reviewable_pack_that_loads_and_tests(tmp_path):
    rows = synthetic()
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tax.json").write_text(json.dumps([{"id": c["id"], "name": c["name"]} for c in CODES]))

    def cli(*a):
        return subprocess.run([sys.executable, "-m", "engine.cli", *a], capture_output=True, text=True, cwd=ROOT)

    r = cli("rules", "learn", str(gold), "--taxonomy", str(tmp_path / "tax.json"), "-o", str(tmp_path / "pack"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "pack" / "learned.yaml").read_text()
    assert "# support" in text and "precision" in text and "e.g. s0" in text  # provenance of every term
    pack = load_pack(tmp_path / "pack")
    assert set(pack.rules) == {"c001", "c002", "c003"}
    learned = {p.text for p in pack.get("c-002").phrases}
    assert {"spreadsheet", "ledger"} <= learned and not learned & {"telescope", "flux capacitor"}
    assert cli("rules", "test", str(tmp_path / "pack")).returncode == 0
    # The learned pack tags new text, names alone in the list.
    tagger = Tagger(pack, mode="rules")
    assert tagger.tag("A ledger for your invoices.", taxonomy=["c-001", "c-002", "c-003"]).tags[0] == "c-002"
    assert cli("rules", "learn", str(gold), "--taxonomy", str(tmp_path / "tax.json"), "-o", str(tmp_path / "pack")).returncode == 2


def test_packs_layer_with_extends_or_a_list(tmp_path):
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / "x.yaml").write_text("version: 1\nextends: default\nrules:\n  - tag: cli\n    phrases: [frobnicate]\n"
                                            "  - tag: c-009\n    phrases: [quux]\n")
    layered = load_pack(tmp_path / "top")
    base = load_pack()
    cli = layered.get("cli")
    assert [a.text for a in cli.aliases] == [a.text for a in base.get("cli").aliases]  # hand terms kept
    assert cli.phrases[-1].text == "frobnicate" and cli.admit == base.get("cli").admit and layered.get("c-009") is not None
    assert len(layered) == len(base) + 1
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.yaml").write_text("version: 1\nrules:\n  - tag: cli\n    phrases: [frobnicate]\n")
    assert load_pack(f"default,{tmp_path / 'plain'}").get("cli").phrases[-1].text == "frobnicate"
    assert Tagger(layered, mode="rules").tag("frobnicate things", taxonomy=["cli", "lib"]).tags == ["cli"]
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / "x.yaml").write_text("version: 1\nextends: .\nrules: []\n")
    with pytest.raises(TagsmithError, match="cycle"):
        load_pack(tmp_path / "loop")
    (tmp_path / "lost").mkdir()
    (tmp_path / "lost" / "x.yaml").write_text("version: 1\nextends: ../nowhere\nrules: []\n")
    with pytest.raises(TagsmithError, match="no such pack") as err:
        load_pack(tmp_path / "lost")
    assert err.value.field == "extends" and err.value.line == 2


def test_train_learns_a_pack_cross_fitted_and_the_adapter_brings_it(tiny_dir, tmp_path):
    """tagsmith train on a list without rules: a pack learned per fold for the head's
    evidence, the final pack in the adapter; --adapter uses it, in rules mode too."""
    from engine.training.job import train_head

    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in synthetic(40)))
    tax = [{"id": c["id"], "name": c["name"]} for c in CODES]  # names only: the labels must carry it
    out = tmp_path / "adapter"
    logs = []
    card = train_head(gold, tax, out, model=str(tiny_dir), device="cpu", folds=2, dtype="float32", log=logs.append)
    assert card["policy"]["shortlist"] == 12  # a learned pack's default: its top 8 hold fewer gold tags
    assert card["rules"]["pack"] == "rules" and card["rules"]["extends"] is None and card["rules"]["terms"] > 0
    assert card["rules"]["cross_fitted_folds"] == 2 and any("learned" in m for m in logs)
    assert card["prompt"]["rules_pack"] == card["rules"]["digest"] == load_pack(out / "rules").digest
    for mode in ("rules", "hybrid"):
        t = Tagger(mode=mode, model=str(tiny_dir), adapter=str(out), device="cpu", dtype="float32")
        res = t.tag("Keep your ledger and invoices in one spreadsheet.", taxonomy=tax)
        assert res.tags and res.tags[0] == "c-002" and res.explanation.pack == card["rules"]["digest"]
    # Other lists keep the built-in pack; a caller's --rules wins.
    assert Tagger(mode="rules", adapter=str(out), model=str(tiny_dir)).pack_for(Taxonomy.from_names(["cli", "lib"])).digest == load_pack().digest
    assert Tagger(load_pack(), mode="rules", adapter=str(out), model=str(tiny_dir)).pack_for(Taxonomy.from_names(tax)).digest == load_pack().digest


def test_packs_learned_side_by_side_are_the_packs_learned_in_turn():
    """``tagsmith train`` learns its fold packs and the final one on threads
    (``packs.learn_side_by_side``): each is the YAML one learn after another gives, in
    the subsets' order, and torch's thread count comes back as it was."""
    import torch

    from engine.mining import learn_rows, render, terms_of
    from engine.training import packs

    rows = synthetic(60, seed=3)
    tax = Taxonomy.from_names([c["name"] for c in CODES])
    golds = [r["tags"] for r in rows]
    fold = packs.fold_of(len(rows), 3, 0)
    subsets = [list(range(len(rows)))] + [[j for j in range(len(rows)) if fold[j] != f] for f in range(3)]
    docs = terms_of(rows)
    threads = torch.get_num_threads()
    side = packs.learn_side_by_side(rows, golds, tax, docs, subsets)
    assert torch.get_num_threads() == threads
    turn = [learn_rows([rows[j] for j in k], [golds[j] for j in k], tax, docs=[docs[j] for j in k]) for k in subsets]
    texts = [render(p, "x") for p in side]
    assert texts == [render(p, "x") for p in turn]
    assert len(set(texts)) == len(subsets) and side[0].items == len(rows)  # four different packs, the whole set's first


def test_a_described_lists_shortlist_says_what_each_tag_means(real_lm):
    """The shortlist line of a described tag carries a gloss of its description, and the
    head's span covers name and gloss; a list of bare names gets the prompt it had."""
    from engine.decision.prompt import GLOSS_WORDS, candidate_names, prompt_glosses
    from engine.decision.prepare import prepare
    from engine.decision.policy import DecisionPolicy

    described = Taxonomy.from_names(CODES + [{"id": 99, "name": "c-099", "description": "a: long (very) long description of " + "word " * 20}])
    glosses = prompt_glosses(described)
    assert glosses["c-002"] == "spreadsheets, ledgers and bookkeeping"
    assert len(glosses["c-099"].split()) == GLOSS_WORDS and ":" not in glosses["c-099"] and "(" not in glosses["c-099"]
    assert prompt_glosses(Taxonomy.from_names([c["name"] for c in CODES])) is None
    assert prompt_glosses(Taxonomy.from_names([{"name": "a", "aliases": ["b"]}])) is None  # aliases only: nothing to gloss
    text = "# ledgerly\n\nKeep your ledger and invoices in one spreadsheet. Bookkeeping for small firms."
    policy = DecisionPolicy(mode="hybrid", shortlist=4, prior_weight=0.0, count="model", decider="head")
    for tax, g in ((described, glosses), (Taxonomy.from_names([c["name"] for c in CODES]), None)):
        (p,) = Tagger(mode="rules").propose([{"id": "x", "text": text}], described)
        ready = prepare(policy, real_lm.tokenizer, p.doc, p.candidates, tax.names, 3, 64, g)
        suffix = ready.prompt.suffix
        shown = list(ready.head_input.tags)
        spans = candidate_names(suffix, shown, g)
        assert spans is not None and shown[0] == "c-002"
        label = suffix[spans[0][0]:spans[0][1]]
        assert label == ("c-002 (spreadsheets, ledgers and bookkeeping)" if g else "c-002")
        assert ready.head_input.spans is not None and len(ready.head_input.spans) == len(shown)
