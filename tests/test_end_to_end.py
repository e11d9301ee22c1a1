"""The real embedded model, loaded once per session, on real requests."""
import json
import math

import pytest

from engine import Tagger, parse_request
from engine.decision.policy import DecisionPolicy
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def hybrid(real_lm):
    return Tagger(mode="hybrid", lm=real_lm)


def test_example_4436_includes_ai(hybrid, shared):
    req = parse_request((shared / "example-request-4436.txt").read_text())
    res = hybrid.tag_request(req)
    out = json.loads(res.to_json())
    assert list(out) == ["id", "tags"] and out["id"] == "4436"
    assert "ai" in out["tags"] and len(out["tags"]) <= 3 and set(out["tags"]) <= set(req.taxonomy.names)
    exp = res.explanation.to_dict()
    # The shipped head decided: a probability per shortlisted tag, best first, the
    # answer's tags on top, each chosen tag's confidence its head probability.
    head = exp["decision"]["head"]
    probs = {h["tag"]: h["prob"] for h in head}
    assert all(0 <= p <= 1 for p in probs.values()) and len(set(probs.values())) > 1
    assert [h["tag"] for h in head][:len(out["tags"])] == out["tags"]
    assert all(c["confidence"] == pytest.approx(probs[c["tag"]], abs=1e-4) for c in exp["chosen"])
    assert all(h["evidence"] + h["model"] + h["prior"] == pytest.approx(math.log(h["prob"] / (1 - h["prob"])), abs=0.01) for h in head)
    # The bare model with the rule prior records its own step masses.
    bare = Tagger(mode="hybrid", lm=hybrid.lm, adapter=None, policy=DecisionPolicy(mode="hybrid")).tag_request(req).explanation.to_dict()
    step0 = bare["decision"]["steps"][0]
    assert all(0 <= v <= 1 + 1e-6 for v in step0["tag_mass"].values()) and 0 <= step0["stop"] <= 1
    assert bare["chosen"][0]["tag"] in step0["tag_mass"] and len(set(step0["tag_mass"].values())) > 1
    from engine.report import render_markdown

    md = render_markdown(exp)
    assert "## Chosen" in md and "**ai**" in md and "## Why not" in md


def test_fixture_request(hybrid):
    req = parse_request((FIXTURES / "request-example.txt").read_text())
    res = hybrid.tag_request(req)
    assert set(res.tags) == {"cli", "blog"}


def test_llm_mode_is_valid_and_deterministic(real_lm):
    t = Tagger(mode="llm", lm=real_lm)
    req = parse_request((FIXTURES / "request-example.txt").read_text())
    a, b = t.tag_request(req).to_json(), t.tag_request(req).to_json()
    assert a == b
    tags = json.loads(a)["tags"]
    assert 1 <= len(tags) <= 3 and set(tags) <= set(req.taxonomy.names)


def test_markdown_explanation(hybrid):
    from engine.report import render_markdown

    req = parse_request((FIXTURES / "request-example.txt").read_text())
    res = hybrid.tag_request(req)
    md = render_markdown(res.explanation.to_dict())
    assert "## Chosen" in md and f"**{res.tags[0]}**" in md
    assert ("## Why not" in md) == bool(res.explanation.rejected)  # this 10-tag list may leave nothing out


def test_batch_and_single_answers_are_identical(real_lm, taxonomy):
    from tests.conftest import read_jsonl

    rows = [{"id": r["id"], "text": r["text"]} for r in read_jsonl(FIXTURES / "train-mini.jsonl")[:6]]
    batched = Tagger(mode="hybrid", lm=real_lm, batch_size=6).tag_many(rows, taxonomy=taxonomy)
    single = Tagger(mode="hybrid", lm=real_lm, batch_size=1).tag_many(rows, taxonomy=taxonomy)
    # Three batches decoded in overlapping threads (the GPU default is two).
    threaded = Tagger(mode="hybrid", lm=real_lm, batch_size=2, overlap=3).tag_many(rows, taxonomy=taxonomy)
    assert [r.to_json() for r in batched] == [r.to_json() for r in single] == [r.to_json() for r in threaded]
    assert [r.explanation.decision["raw"] for r in batched] == [r.explanation.decision["raw"] for r in single]
    assert [r.explanation.decision["raw"] for r in threaded] == [r.explanation.decision["raw"] for r in single]


def test_batch_job_with_lexicon_workers_matches_in_process(real_lm, taxonomy, tmp_path):
    """Hybrid batch with spawned lexicon workers (proposals travel between processes)
    writes the same bytes as the in-process job."""
    from engine.io.batch import BatchJob
    from tests.conftest import read_jsonl

    rows = read_jsonl(FIXTURES / "train-mini.jsonl")[:5]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows))
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}.jsonl"
        stats = BatchJob(Tagger(mode="hybrid", lm=real_lm, batch_size=4), taxonomy, workers=workers).run(str(src), str(out))
        assert stats.ok == len(rows) and stats.failed == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") == len(rows)


def test_shipped_adapter_decides_by_default(real_lm, taxonomy):
    """The embedded model comes with the trained adapter (a decision head), whose card
    sets the hybrid policy for the tag lists it learned; --no-adapter and other lists
    get the bare one."""
    import json as _json

    from engine import Taxonomy
    from engine.decision.adapter import DEFAULT_ADAPTER
    from engine.decision.policy import DecisionPolicy

    card = _json.loads((DEFAULT_ADAPTER / "card.json").read_text())
    assert real_lm.adapter is not None and real_lm.adapter.info.path == DEFAULT_ADAPTER
    assert card["taxonomy"]["fingerprint"] == taxonomy.fingerprint() and card["base_model"] == "smollm2-135m"
    assert (DEFAULT_ADAPTER / "head.safetensors").stat().st_size < 8 << 20  # small enough to ship
    assert real_lm.adapter.head is not None and card["policy"]["decider"] == "head"
    t = Tagger(mode="hybrid", lm=real_lm)
    assert t.policy_for(taxonomy) == DecisionPolicy(mode="hybrid", **card["policy"])
    req = parse_request((FIXTURES / "request-example.txt").read_text())
    assert t.policy_for(req.taxonomy) == DecisionPolicy(mode="hybrid", **card["policy"])  # a subset it knows
    assert t.policy_for(Taxonomy.from_names(["cli", "quantum-widgets"])) == DecisionPolicy(mode="hybrid")
    res = t.tag_request(req)
    # Answers are per (model, dtype): a CPU run in bfloat16 (the default where the CPU has it natively) says so.
    assert res.explanation.model == ("smollm2-135m@bfloat16" if real_lm.dtype == "bfloat16" else "smollm2-135m") + "+smollm2-135m"
    # The head decided: its verdicts are in the explanation and the answer is its choice.
    verdicts = res.explanation.decision["head"]
    assert res.tags[0] == verdicts[0]["tag"] and set(res.tags) <= {v["tag"] for v in verdicts}
    assert Tagger(mode="hybrid", lm=real_lm, policy_overrides={"prior_weight": 0.0}).policy_for(taxonomy).prior_weight == 0.0


def test_dtype_option(real_lm, lm_in):
    """--dtype: the model and its adapter in the other dtype than this machine's default
    (bfloat16 where the CPU has it natively, else float32), answers valid, deterministic
    and the same as the default's, and the explanation names a CPU bfloat16 run."""
    import torch

    from engine.decision.model import load_model
    from engine.errors import TagsmithError

    other = "float32" if real_lm.dtype == "bfloat16" else "bfloat16"
    lm = lm_in(other)
    assert {p.dtype for p in lm.model.parameters()} == {getattr(torch, other)} and lm.adapter is not None
    # bfloat16 weights are the float32 ones cast (a copy cached once), and the rotary
    # frequencies stay float32 in both: the states differ only by the weights' rounding.
    bf, f32 = (real_lm, lm) if other == "float32" else (lm, real_lm)
    for (name, a), (_, b) in zip(bf.model.named_parameters(), f32.model.named_parameters()):
        assert torch.equal(a, b.to(torch.bfloat16)), name
    assert {b.dtype for b in lm.model.buffers()} == {b.dtype for b in real_lm.model.buffers()} == {torch.float32}
    t = Tagger(mode="hybrid", lm=lm)
    req = parse_request((FIXTURES / "request-example.txt").read_text())
    a, b = t.tag_request(req), t.tag_request(req)
    assert a.to_json() == b.to_json() and set(a.tags) <= set(req.taxonomy.names) and a.tags
    assert a.tags == Tagger(mode="hybrid", lm=real_lm).tag_request(req).tags
    assert a.explanation.model.startswith("smollm2-135m@bfloat16+" if other == "bfloat16" else "smollm2-135m+")
    with pytest.raises(TagsmithError, match="E400"):
        load_model(None, "cpu", dtype="float8")
