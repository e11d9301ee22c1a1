"""Accuracy floors on dev: a change that falls below fails the suite.

Each floor is the lowest figure measured across the dtypes a CPU may run (float32;
bfloat16 on AVX-512 BF16 and on AMX) minus a margin of 0.01 (top-1: two items), so a floor trips on a
code change, not on another machine's kernels (fixtures/accuracy-floors.json says
what was measured where). The test prints figure, dtype and CPU path.

Both dtypes run for the home list; the renamed lists, decided by the any-list head
through the same code, run in the dtype this machine tags in (``None``: bfloat16 where
the CPU has it natively, else float32, as ``TAGSMITH_DTYPE=float32`` makes every test),
which keeps the suite within its ten minutes (a float32 pass over dev is 40-70 s on 2
cores). Their floors are the lower of both dtypes' figures all the same."""
import json

import pytest

from engine import Tagger
from engine.decision.model import cpu_path
from engine.report.metrics import score
from tests.conftest import FIXTURES, read_jsonl

FLOORS = json.loads((FIXTURES / "accuracy-floors.json").read_text())


@pytest.fixture(scope="module")
def dev(shared):
    return read_jsonl(shared / "dev.jsonl")


def _answers(tagger, rows, taxonomy):
    return tagger.tag_many(rows, taxonomy=taxonomy, max_tags=3)


@pytest.fixture(scope="module")
def hybrid_on_dev(dev, taxonomy):
    """The default hybrid tagger's answers on dev, per loaded model: the floor and the
    Outlines comparison read the same answers, computed once (a pass is ~25-40 s)."""
    done = {}

    def get(lm):
        if id(lm) not in done:
            done[id(lm)] = _answers(Tagger(mode="hybrid", lm=lm), dev, taxonomy)
        return done[id(lm)]

    return get


@pytest.mark.parametrize("mode, dtype", [("rules", None), ("hybrid", "bfloat16"), ("hybrid", "float32")])
def test_dev_floor(mode, dtype, dev, taxonomy, lm_in, hybrid_on_dev):
    lm = lm_in(dtype) if mode != "rules" else None
    results = hybrid_on_dev(lm) if lm else _answers(Tagger(mode=mode), dev, taxonomy)
    m = score([r["tags"] for r in dev], [r.tags for r in results])
    floor = FLOORS[mode]
    print(f"{mode}: micro-F1 {m.micro_f1:.3f} top-1 {m.top1:.3f} (dtype {lm.dtype if lm else '-'}, CPU bfloat16 path {cpu_path()}; "
          f"floors {floor['micro_f1']} / {floor['top1']})")
    assert m.micro_f1 >= floor["micro_f1"] and m.top1 >= floor["top1"]


def test_outlines_constraint_gives_the_same_bytes_on_dev(dev, taxonomy, real_lm, hybrid_on_dev):
    """--constraint outlines (Outlines' regex index) and the default direct index write
    the same answers, byte for byte, over all of dev."""
    direct = hybrid_on_dev(real_lm)
    outlines = _answers(Tagger(mode="hybrid", lm=real_lm, constraint="outlines"), dev, taxonomy)
    assert [r.to_json() for r in outlines] == [r.to_json() for r in direct]
    assert sum(bool(r.tags) for r in direct) == len(dev)


def _renamed_lists():
    """bench/renamed_lists.py (the bench's renamed catalogues), loaded by path."""
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("renamed_lists", ROOT / "bench" / "renamed_lists.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_zero_label_floor_on_a_list_the_adapter_never_learned(dev, shared, real_lm):
    """Dev relabelled to the synonym list (every tag renamed, with its description), the
    pack's rules kept from the concepts the new names name (``bridge=False``): no rule
    and no label knows it, so the shipped adapter's any-list head decides."""
    lists = _renamed_lists()
    tags, mapping = lists.catalogue("synonyms", shared)
    gold = [r["tags"] for r in lists.relabel(dev, mapping)]
    tagger = Tagger(mode="hybrid", lm=real_lm, bridge=False)
    results = _answers(tagger, dev, tags)
    m = score(gold, [r.tags for r in results])
    floor = FLOORS["zero_labels_synonyms"]
    print(f"zero labels, synonyms: micro-F1 {m.micro_f1:.3f} top-1 {m.top1:.3f} (dtype {real_lm.dtype}, CPU bfloat16 path {cpu_path()}; "
          f"floors {floor['micro_f1']} / {floor['top1']})")
    assert all(r.explanation.model.endswith("(any-list head)") for r in results[:1])
    assert m.micro_f1 >= floor["micro_f1"] and m.top1 >= floor["top1"]


@pytest.mark.parametrize("kind, named, mode", [
    ("synonyms", "names", "rules"), ("synonyms", "described", "rules"), ("synonyms", "described", "hybrid"),
    ("codes", "described", "hybrid")])
def test_bridged_floor_on_a_renamed_list(kind, named, mode, dev, shared, lm_in):
    """The synonym list again, and the opaque codes, their tags linked to the built-in
    pack's concepts they name (``engine/bridge``): names only (a raw request) and with
    descriptions; in hybrid mode a described list is decided by the shipped adapter's
    any-list head, a list of bare names by the bare model."""
    lists = _renamed_lists()
    tags, mapping = lists.catalogue(kind, shared)
    gold = [r["tags"] for r in lists.relabel(dev, mapping)]
    lm = lm_in(None) if mode != "rules" else None  # the machine's own dtype
    results = _answers(Tagger(mode=mode, lm=lm), dev, lists.drop_names(tags) if named == "names" else tags)
    m = score(gold, [r.tags for r in results])
    print(f"bridged {kind}, {named}, {mode}: micro-F1 {m.micro_f1:.3f} top-1 {m.top1:.3f} (dtype {lm.dtype if lm else '-'}, "
          f"CPU bfloat16 path {cpu_path()})")
    floor = FLOORS[f"bridged_{kind}_{named}_{mode}"]
    assert any("known by the rules of" in n for r in results for n in r.explanation.notes)
    assert all((r.explanation.model or "").endswith("(any-list head)") == (mode == "hybrid") for r in results[:1])
    assert m.micro_f1 >= floor["micro_f1"] and m.top1 >= floor["top1"]
