"""Training the decision adapter: a tiny random model learns, adapters round-trip, a
mismatched adapter is refused, and any adapter's answers stay valid by construction."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Tagger, TagsmithError
from engine.decision.decoder import ConstrainedDecoder, DecodeRequest
from engine.decision.policy import DecisionPolicy
from engine.taxonomy import Taxonomy
from engine.training.examples import answer_text, build_examples
from engine.training.lora import LoraSettings, LoraTrainer
from tests.conftest import FIXTURES, read_jsonl, tiny_model as _tiny
from tests.test_constraint import check, taxonomies

MINI = FIXTURES / "train-mini.jsonl"
MINI_TAX = FIXTURES / "taxonomy-mini.json"
POLICY = DecisionPolicy(mode="hybrid", shortlist=5, count="model", prior_weight=0.0)






def test_examples_use_the_decoders_format(real_lm, tiny_dir):
    from engine.decision.model import load_model

    lm = load_model(str(tiny_dir), "cpu", adapter=None)
    tagger = Tagger(mode="hybrid", lm=lm, policy=POLICY)
    rows = read_jsonl(MINI)
    ex = build_examples(tagger, rows, Taxonomy.load(MINI_TAX))
    assert len(ex.examples) + len(ex.skipped) == len(rows) and len(ex.examples) >= 6
    e = next(x for x in ex.examples if x.id == "t2")
    tok = lm.tokenizer
    # The prompt is exactly what the decoder feeds: the prepared prefix + suffix ids.
    (p,) = tagger.prepare(tagger.propose([{"id": "t2", "text": rows[1]["text"]}], Taxonomy.load(MINI_TAX)), Taxonomy.load(MINI_TAX))
    assert e.prompt_ids == tuple(tok(p.prepared.prompt.prefix, add_special_tokens=False)["input_ids"]) + p.prepared.suffix_ids
    assert tok.decode(list(e.answer_ids)) == answer_text(e.target) and e.target[0] in ("lib", "database")
    # Choice points: where the constraint leaves the decoder more than one token.
    tax = Taxonomy.load(MINI_TAX)
    c = tagger.compiler.get(tax, 3)
    e = next(x for x in build_examples(tagger, rows, tax, constraint=c).examples if x.id == "t2")
    firsts = {j: kept for j, kept in e.choices}
    assert 1 in firsts and e.answer_ids[1] in firsts[1]  # the first tag's first token is a choice...
    names = {n for n in e.allowed}
    assert {c.token_strings[t].strip() for t in firsts[1]} & names  # ...among the shortlist's names
    assert all(e.answer_ids[j] in kept and len(kept) > 1 for j, kept in e.choices)
    assert json.loads(answer_text(["game-engine ", 'q"x'])) == ["game-engine ", 'q"x']


@pytest.mark.parametrize("constrained", [False, True])
def test_tiny_model_learns_and_loss_falls(real_lm, constrained):
    lm_model = _tiny(real_lm.tokenizer, seed=1)
    from engine.decision.model import LoadedModel

    lm = LoadedModel(lm_model, real_lm.tokenizer, "tiny", "cpu", "float32")
    tagger = Tagger(mode="hybrid", lm=lm, policy=POLICY)
    tax = Taxonomy.load(MINI_TAX)
    ex = build_examples(tagger, read_jsonl(MINI), tax, constraint=tagger.compiler.get(tax, 3) if constrained else None)
    assert all(bool(e.choices) == constrained for e in ex.examples)
    tr = LoraTrainer(lm_model, LoraSettings(layers=1, rank=8, alpha=16, lr=1e-2, epochs=8, accumulate=2, dropout=0.0),
                     probe=ex.examples[0].prompt_ids[:40])
    assert tr.split.split and tr.adapted_layers == [1]  # the split reproduced the full model's logits
    cached = tr.cache(ex.examples)
    before = tr.mean_loss(ex.examples, cached)
    losses = tr.fit(ex.examples, cached)
    after = tr.mean_loss(ex.examples, cached)
    assert after < 0.8 * before and losses[-1] < losses[0]
    if constrained:  # the held-in choices are now mostly right
        assert tr.choice_accuracy(ex.examples, cached)["choice"] > 0.6
    # Only LoRA weights train; the base stays frozen.
    assert all("lora_" in n for n, p in tr.peft.named_parameters() if p.requires_grad)


def test_train_job_round_trip_and_refusals(tiny_dir, tmp_path):
    import torch

    from engine.decision.model import load_model
    from engine.training.job import train

    out = tmp_path / "adapter"
    card = train(MINI, MINI_TAX, out, model=str(tiny_dir), device="cpu", folds=2, shortlist=5,
                 settings=LoraSettings(layers=1, rank=4, alpha=8, epochs=1, accumulate=2), log=lambda m: None)
    assert {p.name for p in out.iterdir()} >= {"card.json", "README.md", "adapter_config.json", "adapter_model.safetensors"}
    saved = json.loads((out / "card.json").read_text())
    assert saved["base_model"] == str(tiny_dir) and saved["taxonomy"]["fingerprint"] == Taxonomy.load(MINI_TAX).fingerprint()
    assert len(saved["cross_validation"]["policies"]) == 8 and saved["policy"] == card["cross_validation"]["chosen"]
    assert saved["data"]["items"] == 8 and len(saved["data"]["sha256"]) == 16

    lm = load_model(str(tiny_dir), "cpu", adapter=str(out))
    bare = load_model(str(tiny_dir), "cpu", adapter=None)
    assert lm.adapter is not None and lm.label.endswith("+adapter")
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert not torch.equal(lm.model(ids).logits, bare.model(ids).logits)  # the adapter changes preferences
        with lm.adapter.disabled():
            assert torch.allclose(lm.model(ids).logits, bare.model(ids).logits)
    tagger = Tagger(mode="hybrid", lm=lm)
    assert tagger.policy_for(Taxonomy.load(MINI_TAX)) == DecisionPolicy(mode="hybrid", **saved["policy"])
    res = tagger.tag("A command-line tool for PostgreSQL databases, run in your terminal.", id="x", taxonomy=MINI_TAX)
    check(json.dumps(res.tags), Taxonomy.load(MINI_TAX).names, 3)
    assert res.explanation.to_dict()["model"].endswith("+adapter")
    # A subset of the adapter's tag list is one it knows.
    tagger.tag("A command-line tool.", id="y", taxonomy=["cli", "lib"])
    # A list it never learned: an explicit adapter is refused with a clear error.
    with pytest.raises(TagsmithError) as err:
        tagger.tag("A command-line tool.", id="z", taxonomy=["cli", "kubernetes-operator"])
    assert err.value.code == "E401" and "kubernetes-operator" in str(err.value) and "card.json" in str(err.value)
    # An adapter for another base model is refused before any weight is read.
    with pytest.raises(TagsmithError) as err:
        load_model(None, "cpu", adapter=str(out))
    assert err.value.code == "E401" and "base model" in str(err.value)
    # Not an adapter folder at all.
    with pytest.raises(TagsmithError) as err:
        load_model(str(tiny_dir), "cpu", adapter=str(tiny_dir))
    assert err.value.code == "E401"


def test_train_refuses_unknown_gold_tags(tiny_dir, tmp_path):
    from engine.training.job import train

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "1", "text": "A command-line tool.", "tags": ["cli", "no-such-tag"]}) + "\n")
    with pytest.raises(TagsmithError) as err:
        train(bad, MINI_TAX, tmp_path / "out", model=str(tiny_dir), folds=0, log=lambda m: None)
    assert err.value.code == "E402" and "bad.jsonl:1" in str(err.value) and "no-such-tag" in str(err.value)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tax=taxonomies(), n=st.integers(1, 4), seed=st.integers(0, 5))
def test_answers_stay_valid_with_any_adapter(real_lm, tiny_compiler, tax, n, seed):
    """Random LoRA weights of large norm: the adapter may prefer anything, and still
    only valid answers come out."""
    import torch

    from engine.decision.model import LoadedModel

    model = _tiny(real_lm.tokenizer, seed=seed)
    tr = LoraTrainer(model, LoraSettings(layers=2, rank=4, alpha=8))
    torch.manual_seed(seed)
    for name, p in tr.peft.named_parameters():
        if "lora_" in name:
            torch.nn.init.normal_(p, std=3.0)
    lm = LoadedModel(model, real_lm.tokenizer, "tiny", "cpu", "float32")
    dec = ConstrainedDecoder(lm, tiny_compiler.get(tax, n))
    names = tax.names
    outs = dec.decode([DecodeRequest(prompt="project", allowed=frozenset(names)),
                       DecodeRequest(prompt="project", allowed=frozenset(names[:2]), min_tags=1)])
    check(outs[0].text, names, n)
    assert 1 <= len(check(outs[1].text, names[:2], n))


def test_identical_prompts_share_a_prefill_and_answer_as_alone(real_lm, tiny_compiler):
    """Cross-validation decodes one prompt under several policies in one batch: each
    row must answer exactly as it would alone."""
    from engine.decision.model import LoadedModel

    # Its own model: the shared tiny one is re-randomised by the property tests.
    lm = LoadedModel(_tiny(real_lm.tokenizer, seed=3), real_lm.tokenizer, "tiny", "cpu", "float32")
    tax = Taxonomy.from_names(["cli", "lib", "database", "web-app"])
    dec = ConstrainedDecoder(lm, tiny_compiler.get(tax, 3))
    allowed = frozenset(tax.names)
    prior = {"cli": -0.1, "lib": -2.0, "database": -3.0, "web-app": -4.0}
    reqs = [DecodeRequest(prompt="a tool", allowed=allowed, min_tags=1),
            DecodeRequest(prompt="a tool", allowed=allowed, min_tags=1, log_prior=prior, prior_weight=50.0),
            DecodeRequest(prompt="another project", allowed=allowed, target=2),
            DecodeRequest(prompt="a tool", allowed=allowed, target=1, log_prior=prior, prior_weight=1.0)]
    together = dec.decode(reqs)
    alone = [dec.decode([r])[0] for r in reqs]
    assert [o.text for o in together] == [o.text for o in alone]
    assert together[1].tags[0] == "cli"  # the strong prior is felt in a shared-prefill row


def test_policy_count_model_lets_the_model_close_the_list():
    from engine.lexicon.types import Candidate

    cands = [Candidate("cli", 0.9, 2.0), Candidate("lib", 0.5, 1.0), Candidate("ai", 0.2, 0.4)]
    plan = DecisionPolicy(mode="hybrid", shortlist=3, count="model").plan(cands, ["cli", "lib", "ai"], 3)
    assert plan.target is None and plan.min_tags == 1 and plan.allowed == {"cli", "lib", "ai"}
    assert DecisionPolicy(mode="hybrid", shortlist=3).plan(cands, ["cli", "lib", "ai"], 3).target == 1
    with pytest.raises(ValueError):
        DecisionPolicy(count="sometimes")


# -- the decision head ---------------------------------------------------------------
def _synthetic_items(n=150, d=8, seed=0):
    """Items whose gold tag is written in the state: tag k is gold when state[k] > 0
    (evidence features carry nothing), so only a head that reads the state can learn it."""
    import torch

    from engine.decision.head import FEATURES, HeadInput, ItemStates
    from engine.training.head import HeadItem

    g = torch.Generator().manual_seed(seed)
    tags = ["cli", "lib", "database", "web-app"]
    items = []
    for i in range(n):
        h = torch.randn(d, generator=g)
        gold = [t for k, t in enumerate(tags) if h[k] > 0.3] or [tags[int(h[:4].argmax())]]
        feats = tuple(tuple(0.5 for _ in FEATURES) for _ in tags)
        items.append(HeadItem(str(i), HeadInput(tuple(tags), feats, 3), ItemStates(h), gold, [tags[0]]))
    return tags, items


def test_head_reads_the_state_and_its_fit_is_deterministic():
    from engine.report.metrics import score
    from engine.training.head import answers, fit

    tags, items = _synthetic_items()
    train, held = items[:100], items[100:]
    head = fit(train, tags, "all", state_l2=0.01, threshold=0.5)
    got = answers(head, held, 3, [0.5])[0.5]
    m = score([it.gold for it in held], got)
    assert m.micro_f1 > 0.8 and m.top1 >= 0.85  # learned from the state alone
    rules = fit(train, tags, "rules", threshold=0.5)  # the ablation cannot see the state
    assert score([it.gold for it in held], answers(rules, held, 3, [0.5])[0.5]).micro_f1 < m.micro_f1 - 0.2
    again = fit(train, tags, "all", state_l2=0.01, threshold=0.5)
    assert again.W.equal(head.W) and again.b.equal(head.b) and again.a == head.a  # no sampling: same data, same head


def test_consistency_term_makes_twin_readings_score_alike():
    """Twins: the same items read with kernel noise in some state directions. The
    consistency term teaches the head to ignore those directions: its scores of the two
    readings move closer than a head fitted on both without it."""
    import torch

    from engine.decision.head import ItemStates
    from engine.training.head import HeadItem, fit, twin_rows

    tags, items = _synthetic_items(d=16)
    g = torch.Generator().manual_seed(1)
    twins = []
    for it in items:
        noise = torch.zeros(16)
        noise[4:] = 0.5 * torch.randn(12, generator=g)
        twins.append(HeadItem(it.id, it.input, ItemStates(it.state.item + noise), it.gold, it.rules_pick))

    def gap(head):
        return sum(abs(a.prob - b.prob) for x, y in zip(items, twins)
                   for a, b in zip(sorted(head.score(x.state, x.input), key=lambda s: s.tag),
                                   sorted(head.score(y.state, y.input), key=lambda s: s.tag))) / len(items)

    loose = fit(items, tags, "all", state_l2=0.01, twins=twins, consistency=0.0)
    tight = fit(items, tags, "all", state_l2=0.01, twins=twins, consistency=10.0)
    assert gap(tight) < 0.5 * gap(loose)
    # A third of the items read twice teaches the same: the directions are the kernels',
    # not the items' (train reads a share in float32, head.twin_rows).
    third_rows = set(twin_rows(len(items), 1 / 3, 0))
    some = [tw if k in third_rows else None for k, tw in enumerate(twins)]
    third = fit(items, tags, "all", state_l2=0.01, twins=some, consistency=10.0)
    assert gap(third) < 0.5 * gap(loose) and third.settings["second_dtype_items"] == round(len(items) / 3)
    assert "second_dtype_items" not in tight.settings
    with pytest.raises(ValueError):
        fit(items, tags, twins=twins[::-1])  # twins must be the same items, in order
    with pytest.raises(ValueError):
        fit(items, tags, twins=some[1:])


def test_cross_validation_fits_side_by_side_as_in_turn():
    """The grid's fits run on a pool of threads, one core each: the rows and the chosen
    setting are the same, to the last digit, as with the fits one after another."""
    import torch

    from engine.decision.head import ItemStates
    from engine.training.head import HeadItem, cross_validate

    tags, items = _synthetic_items(n=60, d=16)
    twins = [HeadItem(it.id, it.input, ItemStates(it.state.item + 0.01), it.gold, it.rules_pick) for it in items]
    threads = torch.get_num_threads()
    alone = cross_validate(items, tags, 3, 0, 3, twins=twins, grid_kinds=("all", "rules"), workers=1)
    pooled = cross_validate(items, tags, 3, 0, 3, twins=twins, grid_kinds=("all", "rules"), workers=3)
    assert pooled.rows == alone.rows and pooled.chosen == alone.chosen
    assert len(alone.rows) > 1 and all("agreement" in r for r in alone.rows[1:])
    # A second reading of half the items: scored by the first reading, agreement over the pairs.
    half = [tw if k % 2 else None for k, tw in enumerate(twins)]
    part = cross_validate(items, tags, 3, 0, 3, twins=half, grid_kinds=("all",), workers=2)
    assert all(r["second_dtype_items"] == 30 and 0 < r["agreement"] <= 1 for r in part.rows[1:])
    assert torch.get_num_threads() == threads  # the caller's setting comes back


def test_train_reads_a_seeded_share_in_the_second_dtype(tiny_dir, tmp_path):
    """``twin_share``: every README in bfloat16, a seeded share in float32 too; the head
    learns the consistency from those pairs and the card says how many there were."""
    from engine.errors import TagsmithError
    from engine.training.head import twin_rows
    from engine.training.job import train_head

    card = train_head(MINI, MINI_TAX, tmp_path / "h", model=str(tiny_dir), device="cpu", folds=2, shortlist=5,
                      log=lambda m: None, twin_share=0.5)
    n = card["data"]["items"]
    assert card["training"]["twin_share"] == 0.5 and 0 < card["head"]["settings"]["second_dtype_items"] <= round(n / 2)
    assert all(r["second_dtype_items"] == round(n / 2) for r in card["cross_validation"]["policies"][1:])
    assert twin_rows(10, 0.5, 0) == twin_rows(10, 0.5, 0) != twin_rows(10, 0.5, 1) and twin_rows(4, 1.0, 0) == [0, 1, 2, 3]
    with pytest.raises(TagsmithError, match="twin-share"):
        train_head(MINI, MINI_TAX, tmp_path / "bad", model=str(tiny_dir), device="cpu", log=lambda m: None, twin_share=0)


def test_head_adapter_trains_decides_and_is_refused_elsewhere(tiny_dir, tmp_path):
    from engine.decision.adapter import read_adapter
    from engine.decision.head import TagScore
    from engine.decision.model import load_model
    from engine.training.job import train_head

    out = tmp_path / "head"
    card = train_head(MINI, MINI_TAX, out, model=str(tiny_dir), device="cpu", folds=2, shortlist=5, log=lambda m: None, ablations=True)
    assert {p.name for p in out.iterdir()} == {"card.json", "README.md", "head.safetensors", "neighbours.json", "neighbours.safetensors"}
    # States read in both dtypes, fitted together; each row says how often they agree.
    assert card["training"]["dtypes"] == ["bfloat16", "float32"] and card["head"]["settings"]["consistency"] > 0
    assert all(0 <= r["agreement"] <= 1 and len(r["micro_f1_by_dtype"]) == 2 for r in card["cross_validation"]["policies"][1:])
    assert card["policy"]["decider"] == "head" and card["head"]["state_dim"] == 32
    kinds = {r["kind"] for r in card["cross_validation"]["policies"]}
    assert kinds == {"rules only", "all", "rules", "model"} and card["cross_validation"]["chosen"]["kind"] == "all"
    assert "decision head" in (out / "README.md").read_text()
    assert read_adapter(out).has_lora is False

    lm = load_model(str(tiny_dir), "cpu", adapter=str(out))
    assert lm.adapter.head is not None and lm.adapter.peft_model is None
    # The layers it read its states from travel in the card: tagging reads the same.
    from engine.training.head import line_layer, state_layer

    assert (card["head"]["line_layer"], card["head"]["state_layer"]) == (line_layer(lm.model), state_layer(lm.model))
    assert (lm.adapter.head.line_layer, lm.adapter.head.state_layer) == (card["head"]["line_layer"], card["head"]["state_layer"])
    # A head leaves the model as loaded, buffers too (casting the rotary frequencies to
    # bfloat16 once moved every state the head reads): the same logits, bit for bit.
    import torch

    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.equal(lm.model(ids).logits, load_model(str(tiny_dir), "cpu", adapter=None).model(ids).logits)
    tax = Taxonomy.load(MINI_TAX)
    tagger = Tagger(mode="hybrid", lm=lm)
    assert tagger.policy_for(tax).decider == "head"
    res = tagger.tag("A command-line tool for PostgreSQL databases, run in your terminal.", id="x", taxonomy=MINI_TAX)
    check(json.dumps(res.tags), tax.names, 3)
    # The written answer is exactly the head's choice, in its order, with its probabilities.
    d = res.explanation.decision
    head = lm.adapter.head
    verdicts = d["head"]
    assert [v["prob"] for v in verdicts] == sorted((v["prob"] for v in verdicts), reverse=True)
    assert res.tags == head.choose([TagScore(v["tag"], v["prob"], 0.0, 0.0, 0.0) for v in verdicts], 3)
    assert res.explanation.chosen[0].confidence == pytest.approx(verdicts[0]["prob"], abs=1e-4)
    assert all("head probability" in r["why_not"] or "shortlist" in r["why_not"] for r in res.explanation.rejected)
    # The same prompt alone and in a batch: same answer (the states are pooled per row).
    many = tagger.tag_many([{"id": "x", "text": "A command-line tool for PostgreSQL databases, run in your terminal."},
                            {"id": "y", "text": "A tiny JSON library."}], MINI_TAX)
    assert many[0].to_json() == res.to_json()
    # A list the head learned most of (a catalogue that added a tag): the head decides,
    # scoring the new tag by its shared weights (no prior of its own), and says so.
    grown = Taxonomy.from_names(tax.names + ["kubernetes-operator"])
    assert tagger.adapter_applies(grown) and tagger.policy_for(grown).decider == "head"
    res = tagger.tag("# kubectl-pg\n\nA Kubernetes operator for PostgreSQL databases, with a command-line tool.", id="k", taxonomy=grown)
    check(json.dumps(res.tags), grown.names, 3)
    verdicts = {v["tag"]: v for v in res.explanation.decision["head"]}
    assert "kubernetes-operator" in verdicts and verdicts["kubernetes-operator"]["prior"] == 0.0
    assert res.explanation.decision["head_unlearned"] == ["kubernetes-operator"]
    assert res.explanation.model.endswith("+head")
    for c in res.explanation.chosen:
        assert ("no labels for" in c.reason) == (c.tag == "kubernetes-operator")
    # A list it learned half of or less: refused (explicit adapter), like a LoRA adapter.
    with pytest.raises(TagsmithError) as err:
        tagger.tag("A command-line tool.", id="z", taxonomy=["cli", "kubernetes-operator"])
    assert err.value.code == "E401" and "kubernetes-operator" in str(err.value) and "more than 50%" in str(err.value)
    # A torn head file is a clear E401 naming it.
    (out / "head.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(TagsmithError) as err:
        load_model(str(tiny_dir), "cpu", adapter=str(out))
    assert err.value.code == "E401" and "head.safetensors" in str(err.value)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tax=taxonomies(), n=st.integers(1, 4), seed=st.integers(0, 50))
def test_answers_stay_valid_with_any_head(real_lm, tiny_lm, tiny_compiler, tax, n, seed):
    """A head of random, large weights may prefer anything: the decoder still writes only
    valid answers, and exactly the head's choice."""
    import torch

    from engine.decision.head import FEATURES, DecisionHead, HeadInput

    g = torch.Generator().manual_seed(seed)
    names = tax.names
    d = tiny_lm.model.config.hidden_size
    head = DecisionHead(tags=names, kind="all", feature_mean=[0.0] * len(FEATURES), feature_std=[1.0] * len(FEATURES),
                        state_mean=torch.zeros(d), state_std=torch.ones(d), a=(torch.randn(len(FEATURES), generator=g) * 5).tolist(),
                        a0=0.0, b=torch.randn(len(names), generator=g) * 5, W=torch.randn(len(names), d, generator=g) * 5,
                        threshold=float(torch.rand(1, generator=g)))
    dec = ConstrainedDecoder(tiny_lm, tiny_compiler.get(tax, n), head=head)
    shown = tuple(names[: 1 + seed % len(names)])
    feats = tuple(tuple(float(torch.rand(1, generator=g)) for _ in FEATURES) for _ in shown)
    (out,) = dec.decode([DecodeRequest(prompt="project", allowed=frozenset(shown), head_input=HeadInput(shown, feats, n))])
    got = check(out.text, list(shown), n)
    assert got == head.choose(out.head, n) and 1 <= len(got) <= n
    # The answer is written token by token through the constraint, which vets each one:
    # a name outside the request's allowed set cannot be written.
    outside = [t for t in names if t not in got][:1]
    if outside:
        req = DecodeRequest(prompt="project", allowed=frozenset(got), target=len(got) + 1)
        with pytest.raises(TagsmithError) as err:
            dec._write(got + outside, dec.c.new_guide(), req)
        assert err.value.code == "E401" and "refuses" in str(err.value)


def test_head_spans_cover_each_tag_name_in_the_prompt(real_lm):
    """The head reads the model's states over each shortlisted tag's name: the spans
    must decode to exactly those names, in the shortlist's order."""
    from engine.training.head import head_policy

    tax = Taxonomy.load(MINI_TAX)
    tagger = Tagger(mode="hybrid", lm=real_lm, policy=head_policy(5))
    (p,) = tagger.prepare(tagger.propose([{"id": "s", "text": read_jsonl(MINI)[1]["text"]}], tax), tax)
    hi = p.prepared.head_input
    assert hi is not None and hi.spans is not None and len(hi.spans) == len(hi.tags) >= 2
    ids = p.prepared.suffix_ids
    assert [real_lm.tokenizer.decode(list(ids[a:b])).strip() for a, b in hi.spans] == [t.strip() for t in hi.tags]
    assert len(hi.features) == len(hi.tags) and all(len(f) == len(hi.features[0]) for f in hi.features)


@pytest.mark.parametrize("state_layer", [None, 1])
def test_batched_head_states_equal_each_prompt_alone(tiny_lm, tiny_compiler, state_layer):
    """On a GPU the head's prompts are prefilled together: left padding and pooling must
    give each row the states it has alone (float32 here, so equal to rounding), whether
    the item's state comes from the final norm or from a layer where the pass stops."""
    import torch

    from engine.decision.head import HeadInput
    from engine.decision.prompt import Prompt

    tax = Taxonomy.load(MINI_TAX)
    dec = ConstrainedDecoder(tiny_lm, tiny_compiler.get(tax, 3))
    suffixes = ["- cli: tool\n- lib: library", "a longer description of a project\n- cli: x\n- lib: y"]
    spans = [((2, 3), (6, 7)), ((8, 9), (12, 13))]
    reqs = [DecodeRequest(prompt=Prompt("shared prefix ", s), allowed=frozenset(tax.names),
                          head_input=HeadInput(("cli", "lib"), ((0.0,), (0.0,)), 3, sp)) for s, sp in zip(suffixes, spans)]
    together = dec._prefill("shared prefix ", suffixes, reqs, want_states=True, layer=1, state_layer=state_layer)[4]
    for st, s, r in zip(together, suffixes, reqs):
        alone = dec._head_states("shared prefix ", [s], [r], 1, state_layer)[0]
        assert torch.allclose(st.item, alone.item, atol=1e-5) and torch.allclose(st.lines, alone.lines, atol=1e-5)


def test_item_state_from_a_layer_stops_the_pass_there(tiny_lm, tiny_compiler):
    """A head reading layer k's output gets what a full forward pass gives at layer k
    (``output_hidden_states``), averaged over the item's tokens; the layers above never run."""
    import torch

    from engine.decision.head import HeadInput
    from engine.decision.prompt import Prompt

    tax = Taxonomy.load(MINI_TAX)
    dec = ConstrainedDecoder(tiny_lm, tiny_compiler.get(tax, 3))
    suffix = "a small library\n- cli: x\n- lib: y"
    req = DecodeRequest(prompt=Prompt("", suffix), allowed=frozenset(tax.names),
                        head_input=HeadInput(("cli", "lib"), ((0.0,), (0.0,)), 3, ((5, 6), (9, 10))))
    blocks = tiny_lm.model.get_decoder().layers
    ran = []
    hooks = [b.register_forward_hook(lambda _m, _a, _o, k=k: ran.append(k)) for k, b in enumerate(blocks)]
    try:
        (st,) = dec._head_states("", [suffix], [req], 1, 1)
    finally:
        for h in hooks:
            h.remove()
    assert ran == [0] and len(blocks) > 1
    ids = torch.tensor([tiny_lm.tokenizer(suffix, add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        full = tiny_lm.model(input_ids=ids, output_hidden_states=True).hidden_states[1][0]
    assert torch.allclose(st.item, full.float().mean(0), atol=1e-5)
    assert torch.allclose(st.lines[1], full[9:10].float().mean(0), atol=1e-5)


def test_a_tag_without_labels_gets_no_per_tag_parameters():
    """A tag that is shortlisted but never gold (a catalogue's new tag) keeps a zero bias
    and zero state weights: the shared weights alone score it."""
    from dataclasses import replace

    from engine.training.head import fit

    tags, items = _synthetic_items()
    items = [replace(it, input=replace(it.input, tags=(*it.input.tags, "brand-new"), features=(*it.input.features, it.input.features[0])))
             for it in items]
    head = fit(items, tags + ["brand-new"], "all", state_l2=0.01)
    assert float(head.b[-1]) == 0.0 and float(head.W[-1].abs().sum()) == 0.0
    assert float(head.b[:4].abs().sum()) > 0
