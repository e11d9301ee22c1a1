"""The any-list head: shared weights learned on one list's labels decide for lists the
adapter never learned (engine/training/any_list.py). Synthetic items and READMEs
written for the test."""
from __future__ import annotations

import json

import pytest

from engine import Tagger, TagsmithError
from engine.taxonomy import Taxonomy
from tests.test_catalogue import CODES, synthetic


def _line_items(n, tags, seed=0, d=8):
    """Items whose gold tags are written in each tag's *name state* (line state [0] > 0),
    whatever the tag is called; evidence features and item states carry nothing."""
    import torch

    from engine.decision.head import FEATURES, HeadInput, ItemStates
    from engine.training.head import HeadItem

    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        lines = torch.randn(len(tags), d, generator=g)
        gold = [t for k, t in enumerate(tags) if lines[k, 0] > 0.8] or [tags[int(lines[:, 0].argmax())]]
        feats = tuple(tuple(0.5 for _ in FEATURES) for _ in tags)
        items.append(HeadItem(f"{seed}-{i}", HeadInput(tuple(tags), feats, 3), ItemStates(torch.randn(d, generator=g), lines),
                              gold, [tags[0]]))
    return items


def test_shared_head_keeps_no_tag_and_decides_for_names_it_never_saw():
    from engine.report.metrics import score
    from engine.training import any_list
    from engine.training.head import answers, fit

    seen = ["cli", "lib", "database", "web-app", "ai"]
    new = ["c-101", "c-102", "c-103", "c-104"]
    head = any_list.fit(_line_items(200, seen), seen, line_l2=0.01, threshold=0.5, layer=1)
    assert head.tags == [] and head.b.numel() == 0 and head.W.shape[0] == 0 and head.settings["per_tag"] is False
    assert (head.line_layer, head.state_layer) == (1, 1)  # reads nothing above the name states' layer
    held = _line_items(80, new, seed=1)
    m = score([it.gold for it in held], answers(head, held, 3, [0.5])[0.5])
    assert m.micro_f1 > 0.8 and m.top1 > 0.9
    # The per-tag head on the same items learns the seen tags' own parameters.
    own = fit(_line_items(200, seen), seen, "all", state_l2=0.01)
    assert own.tags == seen and float(own.b.abs().sum()) > 0


def test_restrict_shows_an_item_as_a_list_of_some_of_its_tags():
    from engine.training.any_list import restrict

    (it,) = _line_items(1, ["cli", "lib", "database"])
    it.gold[:] = ["lib", "database"]
    part = restrict(it, frozenset({"database", "ai"}))
    assert part.input.tags == ("database",) and part.gold == ["database"] and part.rules_pick == []
    assert part.state.lines.shape[0] == 1 and part.state.lines[0].equal(it.state.lines[2])
    none = restrict(it, frozenset({"ai"}))
    assert none.input is None and none.state is None and none.gold == []


def test_cross_validation_scores_tags_the_head_never_saw():
    """Each tag group is scored by heads fitted without its tags' rows; the grid's fits
    run side by side and give what they give one after another."""
    import torch

    from engine.decision.head import ItemStates
    from engine.training import any_list
    from engine.training.head import HeadItem

    tags = ["cli", "lib", "database", "web-app", "ai", "chat"]
    groups = any_list.tag_groups(tags, 0)
    assert len(groups) == 2 and groups[0] | groups[1] == set(tags) and not groups[0] & groups[1]
    items = _line_items(60, tags)
    twins = [HeadItem(it.id, it.input, ItemStates(it.state.item, it.state.lines + 0.01), it.gold, it.rules_pick) for it in items]
    alone = any_list.cross_validate(items, tags, 3, 0, 3, layer=1, twins=twins, workers=1)
    pooled = any_list.cross_validate(items, tags, 3, 0, 3, layer=1, twins=twins, workers=2)
    assert pooled.rows == alone.rows and pooled.chosen == alone.chosen
    assert alone.rows[0]["kind"] == "rules only" and alone.chosen["line_l2"] in any_list.LINE_L2S
    best = max(r["micro_f1"] for r in alone.rows[1:])
    assert best > alone.rows[0]["micro_f1"] + 0.2 and all("agreement" in r for r in alone.rows[1:])
    assert torch.get_num_threads() >= 1


def test_train_any_list_then_an_uncovered_list_is_decided_by_it(tiny_dir, tmp_path):
    """tagsmith train --any-list: the adapter also holds the any-list head, learned on the
    labels seen as a described list with rules for half its tags; a described list the
    adapter does not cover is then decided by that head (explicit adapters too), with its
    own policy and prompt, however much of it the rule pack knows; a list of bare names
    is not."""
    from engine.decision.model import load_model
    from tests.test_constraint import check
    from engine.training.job import train_head

    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in synthetic(40)))
    out = tmp_path / "adapter"
    logs = []
    card = train_head(gold, [{"id": c["id"], "name": c["name"]} for c in CODES], out, model=str(tiny_dir), device="cpu", folds=2,
                      dtype="float32", log=logs.append, any_list=CODES)
    entry = card["any_list"]
    assert (out / entry["head"]["file"]).is_file() and entry["head"]["file"] == "head-any-list.safetensors"
    assert entry["head"]["tags"] == [] and entry["policy"]["decider"] == "head" and entry["policy"]["shortlist"] == 12
    assert entry["view"]["with_description"] == 3 and entry["cross_validation"]["chosen"]["per_tag"] is False
    assert entry["view"]["with_rules"] <= 2  # the built-in pack's rules for a seeded half of the list, at most
    assert any("any-list head" in m for m in logs)

    lm = load_model(str(tiny_dir), "cpu", adapter=str(out), dtype="float32")
    assert lm.adapter.any_head is not None and lm.adapter.any_head.tags == []
    other = Taxonomy.from_names([
        {"id": 1, "name": "timekeeping", "description": "time machines, flux capacitors, temporal paradox"},
        {"id": 2, "name": "accounting", "description": "spreadsheets, ledgers and bookkeeping"},
        {"id": 3, "name": "astronomy", "description": "telescopes, star catalogues"},
    ])
    tagger = Tagger(mode="hybrid", lm=lm)
    assert not tagger.adapter_applies(other) and tagger.any_list_head(other) is lm.adapter.any_head
    assert tagger.policy_for(other).shortlist == 12 and tagger.excerpt_for(other) == 128
    res = tagger.tag("# ledgerly\n\nKeep your ledger and invoices in one spreadsheet.", id="x", taxonomy=other)
    check(json.dumps(res.tags), other.names, 3)
    d = res.explanation.decision
    assert d["head"] and d["head_threshold"] == lm.adapter.any_head.threshold and "neighbours" not in d
    assert res.explanation.model.endswith("(any-list head)")
    # A described list the built-in rules mostly know: the head learned on rules and
    # descriptions side by side, and decides.
    known = Taxonomy.from_names([{"name": "cli", "description": "command-line programs"},
                                 {"name": "database", "description": "SQL and NoSQL stores"},
                                 {"name": "kubernetes-operator", "description": "operators for Kubernetes clusters"}])
    assert tagger.any_list_head(known) is lm.adapter.any_head
    assert tagger.tag("A command-line tool for your database.", id="y", taxonomy=known).explanation.model.endswith("(any-list head)")
    # A list of bare names is not what the head learned on (its view was described): an
    # explicit adapter refuses it, as without the head.
    with pytest.raises(TagsmithError) as err:
        tagger.tag("A command-line tool.", id="z", taxonomy=["cli", "lib", "database", "kubernetes-operator"])
    assert err.value.code == "E401" and "kubernetes-operator" in str(err.value)
    # The list it learned is still decided by its own head.
    assert tagger.any_list_head(Taxonomy.from_names([c["name"] for c in CODES])) is None
    # A view whose names are not the training list's is refused, naming the field.
    with pytest.raises(TagsmithError) as err:
        train_head(gold, [c["name"] for c in CODES], tmp_path / "bad", model=str(tiny_dir), device="cpu", folds=2,
                   dtype="float32", log=lambda m: None, any_list=[{"name": "c-001"}, {"name": "c-002"}])
    assert err.value.code == "E500" and err.value.field == "any_list" and "c-003" in str(err.value)
    # A torn any-list head is E401 naming its file.
    (out / "head-any-list.safetensors").write_bytes(b"torn")
    with pytest.raises(TagsmithError) as err:
        load_model(str(tiny_dir), "cpu", adapter=str(out))
    assert err.value.code == "E401" and "head-any-list.safetensors" in str(err.value)
    # A card naming an any-list head that is not there: E401 at reading the card.
    (out / "head-any-list.safetensors").unlink()
    from engine.decision.adapter import read_adapter

    with pytest.raises(TagsmithError) as err:
        read_adapter(out)
    assert err.value.code == "E401" and err.value.field == "any_list"


def test_view_pack_keeps_the_rules_of_a_seeded_half_of_the_list():
    """The any-list head's view: the pack's rules for half the list's tags, the same half
    for the same seed; the others are left to their names and descriptions."""
    from engine.rules import load_pack
    from engine.training.any_list import view_pack

    pack = load_pack()
    tax = Taxonomy.from_names(["cli", "lib", "database", "k8s", "ai", "game", "blog", "not-a-concept"])
    kept = view_pack(pack, tax, seed=0)
    ruled = [t.name for t in tax if kept.get(t.name) is not None]
    assert len(ruled) in (3, 4) and set(ruled) <= {"cli", "lib", "database", "k8s", "ai", "game", "blog"}
    assert ruled == [t.name for t in tax if view_pack(pack, tax, seed=0).get(t.name) is not None]
    assert any(view_pack(pack, tax, seed=s).get(t.name) is not None for s in range(1, 6) for t in tax if t.name not in ruled)
    assert all(kept.rules[k] is pack.rules[k] for k in kept.rules) and set(kept.sources) == set(kept.rules)
