"""The spaCy component: found through the entry point, answers equal ``Tagger.tag``,
batches go through ``tag_many``, and a saved pipeline answers the same after loading."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from engine.api import Tagger
from engine.taxonomy import Taxonomy

ROOT = Path(__file__).resolve().parents[1]
TAX = ROOT / "fixtures" / "taxonomy.json"
TEXTS = [
    "# fsync\n\nA command-line tool that syncs folders over SSH. Install with `cargo install fsync`, then run `fsync src dst`.",
    "# dateparse\n\nA tiny Python library for parsing dates. `pip install dateparse`, then `from dateparse import parse`.",
    "# kvstore\n\nA distributed key-value database written in Go, with a Kubernetes operator and a Helm chart.",
    "# pixel\n\nA 2D game engine in C++ with an entity component system, physics and a level editor.",
]


def expected(tagger: Tagger, max_tags: int = 3) -> list[list[str]]:
    tax = Taxonomy.load(TAX)
    return [tagger.tag(t, taxonomy=tax, max_tags=max_tags).tags for t in TEXTS]


def check_doc(doc, tags: list[str], names: list[str]) -> None:
    assert doc._.tags == tags
    assert set(doc.cats) == set(names)  # every tag of the list, exact names
    assert all(0.0 <= v <= 1.0 for v in doc.cats.values())
    ranked = sorted(doc.cats, key=lambda t: -doc.cats[t])
    assert ranked[: len(tags)] == tags or sorted(ranked[: len(tags)]) == sorted(tags)
    if tags:
        assert min(doc.cats[t] for t in tags) > max(v for t, v in doc.cats.items() if t not in tags)
    assert [c["tag"] for c in doc._.tag_explanation["chosen"]] == tags


def test_rules_component_round_trip(tmp_path):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("tagsmith", config={"taxonomy": str(TAX), "mode": "rules", "max_tags": 2})
    names = Taxonomy.load(TAX).names
    want = expected(Tagger(mode="rules"), 2)
    docs = list(nlp.pipe(TEXTS, batch_size=3))
    for doc, tags in zip(docs, want):
        check_doc(doc, tags, names)
    assert nlp(TEXTS[0])._.tags == want[0]
    assert "game-engine " in docs[3].cats  # names exactly as listed, trailing space kept

    nlp.to_disk(tmp_path / "pipeline")
    # Loaded elsewhere: the tag list and the pack travel with the pipeline, not as paths.
    assert any((tmp_path / "pipeline" / "tagsmith" / "rules").rglob("*.yaml"))
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == ["tagsmith"]
    assert loaded.get_pipe("tagsmith").cfg["taxonomy"][0]["name"] == names[0]
    for doc, tags in zip(loaded.pipe(TEXTS, batch_size=2), want):
        check_doc(doc, tags, names)
    assert pipe.tagger.pack.digest == loaded.get_pipe("tagsmith").tagger.pack.digest


def test_entry_point_needs_no_engine_import(tmp_path):
    code = ("import sys, spacy\nnlp = spacy.blank('en')\n"
            f"nlp.add_pipe('tagsmith', config={{'taxonomy': {str(TAX)!r}, 'mode': 'rules'}})\n"
            "print(nlp('A command-line tool to rename files.')._.tags)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("[") and "cli" in r.stdout


def test_pipe_batches_go_through_tag_many(monkeypatch):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("tagsmith", config={"taxonomy": str(TAX), "mode": "rules"})
    sizes = []
    real = Tagger.tag_many

    def counting(self, records, taxonomy, max_tags=3):
        records = list(records)
        sizes.append(len(records))
        return real(self, records, taxonomy, max_tags)

    monkeypatch.setattr(Tagger, "tag_many", counting)
    list(nlp.pipe(TEXTS * 2, batch_size=4))
    assert sizes == [4, 4] and pipe.tagger is not None


def test_missing_taxonomy_is_a_clear_error():
    from engine.errors import TagsmithError

    nlp = spacy.blank("en")
    nlp.add_pipe("tagsmith", config={"mode": "rules"})
    with pytest.raises(TagsmithError, match="E200"):
        nlp("A command-line tool.")


@pytest.mark.model
def test_hybrid_component_equals_tagger(real_lm, tmp_path):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("tagsmith", config={"taxonomy": str(TAX), "mode": "hybrid"})
    pipe.use_tagger(Tagger(mode="hybrid", lm=real_lm))
    want = expected(Tagger(mode="hybrid", lm=real_lm))
    names = Taxonomy.load(TAX).names
    for doc, tags in zip(nlp.pipe(TEXTS, batch_size=4), want):
        check_doc(doc, tags, names)
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    comp = loaded.get_pipe("tagsmith")  # the saved list and pack, the same weights without a second load
    comp.use_tagger(Tagger(comp.cfg["rules"], mode=comp.cfg["mode"], lm=real_lm))
    assert [d._.tags for d in loaded.pipe(TEXTS)] == want
