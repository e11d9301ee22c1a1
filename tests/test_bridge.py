"""The bridge: a rule pack's concepts serve another list's names for them (engine/bridge)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine import Tagger
from engine.bridge import bridge, link_tags
from engine.rules import load_pack
from engine.taxonomy import Taxonomy

ROOT = Path(__file__).parents[1]
PACK = """\
version: 1
rules:
  - tag: k8s
    aliases: [kubernetes, helm chart]
    phrases:
      - {text: pods, weight: 0.8}
    implies: {cloud-native: 0.5}
  - tag: cloud-native
    aliases: [cncf]
  - tag: database
    aliases: [sql database]
    phrases:
      - {text: query planner, weight: 1.5}
  - tag: video
    aliases: [video player]
  - tag: game
    aliases: [video game]
  - tag: mobile-app
    aliases: [mobile app, android, ios]
"""
README = "# podctl\n\nA small tool that lists the pods of a Kubernetes cluster and installs a Helm chart.\n"


def _pack(tmp_path: Path):
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "p.yaml").write_text(PACK)
    return load_pack(tmp_path / "pack")


def _links(pack, tags):
    return {(lk.tag, lk.concept) for lk in link_tags(Taxonomy.from_names(tags), pack)}


def test_names_link_by_lemma_alias_and_near_spelling(tmp_path):
    pack = _pack(tmp_path)
    assert _links(pack, ["kubernetes", "databases", "video-games"]) == {("kubernetes", "k8s"), ("databases", "database"),
                                                                         ("video-games", "game")}
    assert _links(pack, ["kubernets"]) == {("kubernets", "k8s")}  # a typo of an alias
    # A name that merely contains a concept's name says nothing of it ("video-games" is no video).
    assert ("video-games", "video") not in _links(pack, ["video-games"])
    assert _links(pack, ["c-001", "cooking"]) == set()


def test_descriptions_link_codes_and_merged_tags(tmp_path):
    pack = _pack(tmp_path)
    tags = [{"name": "c-001", "description": "Kubernetes, Helm charts"},
            {"name": "cloud", "description": "Kubernetes, CNCF, video players"}]
    got = _links(pack, tags)
    # c-001 names k8s twice (two alias pieces); cloud once: the concept goes to c-001.
    assert ("c-001", "k8s") in got and ("cloud", "k8s") not in got
    assert {("cloud", "cloud-native"), ("cloud", "video")} <= got  # a broader tag takes every concept it lists
    # One alias in a description counts half a name: MIN_SCORE, enough to link.
    assert _links(pack, [{"name": "x-1", "description": "CNCF"}]) == {("x-1", "cloud-native")}


def test_a_concept_the_list_names_itself_is_not_lent(tmp_path):
    pack = _pack(tmp_path)
    # The list has k8s under its own name: "kubernetes" cannot borrow its rule.
    assert _links(pack, ["k8s", "kubernetes"]) == set()
    b = bridge(pack, Taxonomy.from_names(["k8s", "cloud-native"]))
    assert b.links == () and b.pack is pack


def test_tags_that_split_a_concept_get_none_of_it(tmp_path):
    pack = _pack(tmp_path)
    assert _links(pack, ["android"]) == {("android", "mobile-app")}
    # Two tags naming it alike are kinds of it, not it: neither takes its rules.
    assert _links(pack, ["android", "ios"]) == set()


def test_bridged_pack_renames_rules_and_relations(tmp_path):
    pack = _pack(tmp_path)
    tax = Taxonomy.from_names(["kubernetes", "cncf-ecosystem", "sql"])
    b = bridge(pack, tax)
    rule = b.pack.get("kubernetes")
    assert rule is not None and rule.tag == "kubernetes" and [a.text for a in rule.aliases] == ["kubernetes", "helm chart"]
    # "cncf-ecosystem" names nothing of the pack (not the cncf alias, not the tag): unlinked.
    assert b.pack.get("cncf-ecosystem") is None and rule.implies == {}
    tax = Taxonomy.from_names(["kubernetes", {"name": "cncf-ecosystem", "aliases": ["cncf"]}])
    b = bridge(pack, tax)
    assert b.pack.get("kubernetes").implies == {"cncf-ecosystem": 0.5}  # the relation follows its target's new name
    assert b.pack.digest != pack.digest and "kubernetes" in {t for t in (lk.tag for lk in b.links)}
    assert b.for_tag("kubernetes")[0].reason().startswith("rules of 'k8s' (p.yaml:")


def test_tagger_uses_the_bridge_and_says_so(tmp_path):
    pack = _pack(tmp_path)
    tax = ["kubernetes", "databases"]
    res = Tagger(pack, mode="rules").tag(README, id="1", taxonomy=tax)
    assert res.tags == ["kubernetes"]
    assert any("'kubernetes' known by the rules of 'k8s'" in n for n in res.explanation.notes)
    ev = {e["rule"] for e in res.explanation.candidates[0]["evidence"]}
    assert any(r.startswith("alias:") for r in ev) and any("pods" in r for r in ev)  # the concept's phrases count too
    # Without the bridge only the name itself counts: fewer hits, no note.
    off = Tagger(pack, mode="rules", bridge=False).tag(README, id="1", taxonomy=tax)
    assert not any("known by" in n for n in off.explanation.notes)
    assert off.explanation.candidates[0]["raw"] < res.explanation.candidates[0]["raw"]


def test_the_built_in_pack_serves_a_renamed_list():
    """The home list's concepts under another catalogue's names, names only (a raw request)."""
    tax = ["kubernetes", "machine-learning", "library", "databases", "command-line-tool"]
    text = ("# mlkit\n\nA Python library for training deep learning models with PyTorch.\n\n"
            "## Install\n\n```\npip install mlkit\n```\n\n```python\nimport mlkit\nmodel = mlkit.train(data)\n```\n")
    assert Tagger(mode="rules").tag(text, taxonomy=tax).tags == ["library", "machine-learning"]
    assert Tagger(mode="rules", bridge=False).tag(text, taxonomy=tax).tags == ["library"]  # "library" is said; ML is not


def test_cli_no_bridge(tmp_path):
    tax = tmp_path / "tax.json"
    tax.write_text(json.dumps(["kubernetes", "machine-learning"]))
    readme = tmp_path / "README.md"
    readme.write_text(README.replace("Kubernetes", "K8S"))  # only the concept's other names say it
    base = [sys.executable, "-m", "engine.cli", "tag", "--mode", "rules", "--taxonomy", str(tax), "--text", str(readme), "--id", "7"]
    on = subprocess.run(base, capture_output=True, text=True, cwd=ROOT, check=True)
    off = subprocess.run([*base, "--no-bridge"], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(on.stdout) == {"id": "7", "tags": ["kubernetes"]}
    assert json.loads(off.stdout) == {"id": "7", "tags": []}


def test_rules_bridge_prints_the_links_and_writes_an_editable_pack(tmp_path):
    tax = tmp_path / "tax.json"
    tax.write_text(json.dumps(["kubernetes", "money", "android", "ios", "cooking"]))
    out = subprocess.run([sys.executable, "-m", "engine.cli", "rules", "bridge", "--taxonomy", str(tax), "-o", str(tmp_path / "pack")],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("'kubernetes' <- 'k8s' (score 1): rules of 'k8s' (infra.yaml:")
    assert lines[-1] == "2 tags take rules of the pack's concepts, 0 have their own, 3 neither: 'android', 'ios', 'cooking'"
    written = load_pack(tmp_path / "pack")  # extends the built-in pack
    assert written.get("kubernetes").aliases == load_pack().get("k8s").aliases and written.get("k8s") is not None
    # The written pack tags as the lending did: its rules are the lent ones.
    text = "# podctl\n\nList the pods of your cluster with kubectl, budget your cloud money.\n"
    names = json.loads(tax.read_text())
    lent = Tagger(mode="rules").tag(text, taxonomy=names)
    edited = Tagger(written, mode="rules").tag(text, taxonomy=names)
    assert edited.tags == lent.tags == ["kubernetes", "money"] and not any("known by" in n for n in edited.explanation.notes)


def test_train_learns_on_top_of_the_lent_rules_and_the_adapter_keeps_them(tiny_dir, tmp_path):
    """tagsmith train on a list the pack knows only through the bridge: rules are learned
    (auto: the pack names under half of the list), and the learned terms extend the lent
    rules, which the adapter keeps (bridged/), so it tags with the rules it trained on."""
    from engine.training.job import train_head

    rows = []
    for i in range(24):
        k8s = i % 2 == 0
        text = (f"# tool-{i}\n\nManage the pods of a cluster with kubectl and podsmith.\n" if k8s else
                f"# tool-{i}\n\nTrack your budget and spending, ledgermint inside.\n")
        rows.append({"id": f"b{i}", "text": text, "tags": ["kubernetes" if k8s else "money"]})
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "adapter"
    card = train_head(gold, ["kubernetes", "money"], out, model=str(tiny_dir), device="cpu", folds=2, dtype="float32",
                      neighbours=None)
    assert [(b["tag"], b["concept"]) for b in card["bridge"]] == [("kubernetes", "k8s"), ("money", "finance")]
    assert (out / "bridged" / "bridged.yaml").is_file() and card["rules"]["extends"] == "../bridged"
    pack = load_pack(out / "rules")
    kube = pack.get("kubernetes")
    texts = {t.text for t in [*kube.aliases, *kube.phrases]}
    assert "kubectl" in texts and "podsmith" in texts  # lent (k8s's alias) and learned (only the labels say it)
    res = Tagger(mode="rules", adapter=str(out), model=str(tiny_dir)).tag("A helm chart for podsmith.", taxonomy=["kubernetes", "money"])
    assert res.tags == ["kubernetes"] and res.explanation.pack == card["rules"]["digest"]
