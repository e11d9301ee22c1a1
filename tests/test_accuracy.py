"""Accuracy ratchet: dev-set scores may not fall below the recorded floors."""
import json

import pytest

from engine import Tagger
from engine.report.metrics import score
from tests.conftest import FIXTURES, read_jsonl

FLOORS = json.loads((FIXTURES / "accuracy-floors.json").read_text())


@pytest.mark.parametrize("mode", ["rules", "hybrid"])
def test_dev_floor(mode, shared, taxonomy, request):
    rows = read_jsonl(shared / "dev.jsonl")
    lm = request.getfixturevalue("real_lm") if mode != "rules" else None
    results = Tagger(mode=mode, lm=lm).tag_many(rows, taxonomy=taxonomy, max_tags=3)
    m = score([r["tags"] for r in rows], [r.tags for r in results])
    floor = FLOORS[mode]
    print(f"{mode}: micro-F1 {m.micro_f1:.3f} top-1 {m.top1:.3f}")
    assert m.micro_f1 >= floor["micro_f1"] and m.top1 >= floor["top1"]
