"""Neighbours: the tags a catalogue's labels gave to the READMEs most like a new one.
The index votes, keeps no words, reads back the same; the vote adds tags to a head's
shortlist and is one of its evidence features; a trained adapter keeps its index.
Every README here is written for the test (third-party text stays in ../shared)."""
from __future__ import annotations

import json
import pickle

import pytest

from engine import Tagger, TagsmithError
from engine.decision.head import FEATURES, DecisionHead, HeadInput, ItemStates
from engine.decision.policy import DecisionPolicy
from engine.lexicon.types import Candidate
from engine.lexicon.terms import doc_terms
from engine.neighbours import NeighbourIndex, fold_indexes, index_rows, term_key, vote_text
from engine.taxonomy import Taxonomy
from tests.test_catalogue import CODES, WORDS, synthetic

STARGAZER = ("# skywatch\n\nA small toolkit for amateur astronomy.\n\n"
             "It drives your telescope and draws a star chart.\nIt computes eyepiece magnification.\n")


def test_the_nearest_labelled_readmes_vote_for_their_tags():
    rows = synthetic(40)
    golds = [r["tags"] for r in rows]
    index = index_rows(rows, golds)
    assert len(index) == 40 and index.tag_names == sorted(WORDS)
    vote = vote_text(index, STARGAZER)
    ranked = vote.ranked()
    assert ranked[0][0] == "c-003" and ranked[0][1] > 0.5 and all(0 < v <= 1 for _, v in ranked)
    sims = [n.similarity for n in vote.neighbours]  # the k nearest that share a term, nearest first
    assert 0 < len(sims) <= index.k and sims == sorted(sims, reverse=True) and sims[-1] > 0
    assert "c-003" in vote.neighbours[0].tags
    # A README never votes for itself when asked not to; nothing in common: no vote.
    me = rows[0]
    alone = index.vote(doc_terms(me["text"]).terms, exclude=me["id"])
    assert me["id"] not in {n.id for n in alone.neighbours}
    assert index.vote(frozenset({"zzzz qqqq"})).scores == {} and index.vote(frozenset()).neighbours == ()


def test_an_index_keeps_no_words_and_reads_back_the_same(tmp_path):
    rows = synthetic(30)
    index = index_rows(rows, [r["tags"] for r in rows])
    entry = index.save(tmp_path)
    assert entry["items"] == 30 and entry["terms"] == len(index.keys) > 0
    stored = (tmp_path / "neighbours.json").read_text() + (tmp_path / "neighbours.safetensors").read_bytes().decode("latin-1")
    assert "telescope" not in stored and "spreadsheet" not in stored  # hashed terms, no words
    back = NeighbourIndex.load(tmp_path, entry)
    sent = pickle.loads(pickle.dumps(index))  # as batch workers receive it
    for text in ("Bookkeeping with a ledger.", "A chrono paradox engine for time travel.", "Nothing related at all."):
        assert vote_text(back, text) == vote_text(index, text) == vote_text(sent, text)
    assert term_key("time travel") == term_key("time travel") != term_key("time  travel")


def test_fold_indexes_leave_each_fold_out():
    rows = synthetic(20)
    golds = [r["tags"] for r in rows]
    fold = [j % 3 for j in range(20)]
    by_fold = fold_indexes(rows, golds, [doc_terms(r["text"]).terms for r in rows], fold)
    assert sorted(by_fold) == [0, 1, 2]
    for f, index in by_fold.items():
        assert set(index.ids) == {r["id"] for j, r in enumerate(rows) if fold[j] != f}


def _cand(tag, score):
    return Candidate(tag, score, score)


def test_the_vote_adds_its_best_tags_to_the_shortlist():
    names = ["a", "b", "c", "d", "e"]
    cands = [_cand("a", 0.9), _cand("b", 0.5), _cand("c", 0.2)]
    votes = [("b", 0.8), ("zz", 0.7), ("e", 0.5), ("d", 0.4), ("c", 0.1)]
    plain = DecisionPolicy(mode="hybrid", shortlist=2, count="model", decider="head")
    assert plain.plan(cands, names, 3, votes).allowed == {"a", "b"}  # neighbours 0: the rules' shortlist
    policy = DecisionPolicy(mode="hybrid", shortlist=2, count="model", decider="head", neighbours=2)
    plan = policy.plan(cands, names, 3, votes)
    # Not a tag already on it, not one off the list; the vote's order; at most 2.
    assert plan.added == ("e", "d") and plan.allowed == {"a", "b", "e", "d"}
    assert set(plan.log_prior) == plan.allowed
    # Nothing from the rules: the vote alone makes the shortlist.
    alone = policy.plan([], names, 3, votes)
    assert alone.added == ("b", "e") and alone.allowed == {"b", "e"} and alone.log_prior is not None
    assert policy.plan([], names, 3, []).log_prior is None
    assert policy.settings()["neighbours"] == 2 and "neighbours" not in plain.settings()


def test_the_vote_is_the_heads_last_feature_and_added_tags_are_shown(real_lm):
    from engine.decision.prepare import prepare

    rows = synthetic(40)
    index = index_rows(rows, [r["tags"] for r in rows])
    tax = Taxonomy.from_names([{"id": c["id"], "name": c["name"]} for c in CODES])
    (p,) = Tagger(mode="rules").propose([{"id": "x", "text": STARGAZER}], tax)
    assert p.candidates == [] or all(c.score == 0 for c in p.candidates)  # bare codes: no rule says anything
    vote = vote_text(index, p.doc.text)
    policy = DecisionPolicy(mode="hybrid", shortlist=4, prior_weight=0.0, count="model", decider="head", neighbours=2)
    ready = prepare(policy, real_lm.tokenizer, p.doc, p.candidates, tax.names, 3, 64, None, vote)
    shown = ready.head_input.tags
    assert shown[0] == "c-003" and shown == ready.plan.added and ready.vote is vote
    assert FEATURES[-1] == "neighbour_vote"
    assert [f[-1] for f in ready.head_input.features] == [vote.scores[t] for t in shown]
    assert "- c-003: no direct evidence" in ready.prompt.suffix


def test_a_head_trained_before_the_vote_reads_the_features_it_knows(tmp_path):
    import torch

    n = len(FEATURES) - 1
    head = DecisionHead(tags=["a", "b"], kind="rules", feature_mean=[0.0] * n, feature_std=[1.0] * n,
                        state_mean=torch.zeros(4), state_std=torch.ones(4), a=[0.5] * n, a0=0.0, b=torch.zeros(2),
                        W=torch.zeros(2, 4), threshold=0.5)
    item = HeadInput(("a", "b"), (tuple([1.0] * n + [0.9]), tuple([0.0] * n + [0.1])), 3)
    st = ItemStates(torch.zeros(4))
    assert [s.evidence for s in head.score(st, item)] == pytest.approx([0.5 * n, 0.0])
    entry = head.save(tmp_path)
    assert entry["features"] == list(FEATURES[:n])
    assert DecisionHead.load(tmp_path, entry).score(st, item) == head.score(st, item)
    with pytest.raises(ValueError, match="features"):
        DecisionHead.load(tmp_path, {**entry, "features": ["score", "other"]})


def test_a_trained_adapter_keeps_its_index_and_its_vote_explains(tiny_dir, tmp_path):
    from engine.training.job import train_head

    rows = synthetic(40)
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tax = [{"id": c["id"], "name": c["name"]} for c in CODES]
    out = tmp_path / "adapter"
    card = train_head(gold, tax, out, model=str(tiny_dir), device="cpu", folds=2, dtype="float32", log=lambda m: None, neighbours=2)
    assert card["neighbours"]["items"] == 40 and card["neighbours"]["cross_fitted_folds"] == 2
    assert card["policy"]["neighbours"] == 2 and card["head"]["features"][-1] == "neighbour_vote"
    assert {"neighbours.json", "neighbours.safetensors"} <= {p.name for p in out.iterdir()}
    tagger = Tagger(mode="hybrid", model=str(tiny_dir), adapter=str(out), device="cpu", dtype="float32")
    res = tagger.tag(STARGAZER, id="q", taxonomy=tax)
    nb = res.explanation.decision["neighbours"]
    assert nb["nearest"] and all(n["id"].startswith("s") for n in nb["nearest"])
    assert max(nb["votes"], key=nb["votes"].get) == "c-003"
    allowed = res.explanation.decision["allowed"]
    assert set(nb["votes"]) <= (set(allowed) if allowed != "all" else {c["name"] for c in CODES})
    assert "similar labelled READMEs vote" in " ".join(c.reason for c in res.explanation.chosen)
    # Retrained from the same labels (the default: the vote is evidence, adds no tags):
    # the same index, byte for byte.
    again = tmp_path / "again"
    card = train_head(gold, tax, again, model=str(tiny_dir), device="cpu", folds=2, dtype="float32", log=lambda m: None)
    assert "neighbours" not in card["policy"] and card["neighbours"]["items"] == 40
    for name in ("neighbours.json", "neighbours.safetensors"):
        assert (again / name).read_bytes() == (out / name).read_bytes()
    # A torn index is a clear E401 naming its file.
    (again / "neighbours.safetensors").write_bytes(b"torn")
    with pytest.raises(TagsmithError) as err:
        Tagger(mode="hybrid", model=str(tiny_dir), adapter=str(again), device="cpu", dtype="float32").tag(STARGAZER, taxonomy=tax)
    assert err.value.code == "E401" and "neighbours.safetensors" in str(err.value)
    # Without an index: no votes, no files.
    bare = tmp_path / "bare"
    card = train_head(gold, tax, bare, model=str(tiny_dir), device="cpu", folds=0, dtype="float32", log=lambda m: None,
                      neighbours=None)
    assert "neighbours" not in card and "neighbours" not in card["policy"] and not (bare / "neighbours.json").exists()
