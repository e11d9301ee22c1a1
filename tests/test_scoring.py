"""The lexicon's columnar scoring against the per-hit loop it replaced.

``engine/lexicon/scoring.py`` computes evidence and raw scores over numpy columns; the
reference below is the loop written plainly, one hit at a time, as the lexicon ran it
before (sort by start, longest first, kind, label; one span counts once per tag; section
and position weights; section-limited terms; negatives in a window; saturation of a
term's repeats). Random hit sets with every kind of tie must give the same raw scores
(same floats, same order of tags), the same evidence lists and the same vetoes.
"""
from __future__ import annotations

import bisect
import math
import random
from collections import defaultdict

import numpy as np
import pytest

from engine.lexicon import segment_readme
from engine.lexicon.hits import Hit, HitTable, TermInfo, TermTable
from engine.lexicon.readme import WEIGHTS
from engine.lexicon.scoring import NEGATIVE_WINDOW, REPEAT_SHARE, round_half, weigh
from engine.lexicon.types import Evidence

README = """# Grapevine

A tiny message broker for queues and streams, written in Rust.

## Install

```
cargo add grapevine
```

## Features

- persistent queues on disk
- streams with consumer groups
- a web dashboard

Grapevine is not a database; it keeps messages for a while.

## License

MIT
"""


def reference(hits: list[Hit], doc, negs: list[Hit]):
    """The per-hit loop: raw per tag, evidence per tag, vetoed per tag."""
    neg_by_tag = defaultdict(list)
    for n in negs:
        neg_by_tag[n.term.tag].append(n)
    per_term, vetoed, seen = defaultdict(list), defaultdict(list), set()
    text = doc.text
    starts = [s.start for s in doc.segments]
    ordered = sorted(hits, key=lambda h: (h.start, -h.end, h.term.kind, h.term.label))
    for h in ordered:
        info, start, end = h
        if (info.tag, start, end) in seen:
            continue
        seen.add((info.tag, start, end))
        i = bisect.bisect_right(starts, start) - 1
        if i >= 0 and start < doc.segments[i].end:
            kind, section_w = doc.segments[i].kind, WEIGHTS.get(doc.segments[i].kind, 1.0)
        else:
            kind, section_w = "body", WEIGHTS["body"]
        if info.where is not None:
            if kind not in info.where:
                continue
            section_w = 1.0
        position_w = 1.0 / (1.0 + 0.5 * start / max(len(text), 1))
        ev = Evidence(info.tag, info.rule, text[start:end], start, end, kind, round(info.weight * section_w * position_w, 4))
        veto = next((n for n in neg_by_tag.get(info.tag, []) if n.start - NEGATIVE_WINDOW <= start and end <= n.end + NEGATIVE_WINDOW), None)
        if veto:
            vetoed[info.tag].append(ev._replace(weight=0.0, vetoed_by=veto.term.label))
            continue
        per_term[(info.tag, info.rule)].append(ev)
    raw, evidence = {}, {}
    for (tag, _), evs in per_term.items():
        ws = sorted([e.weight for e in evs], reverse=True)
        value = ws[0] if len(ws) == 1 else ws[0] + REPEAT_SHARE * math.log1p(sum(ws[1:]))
        raw[tag] = raw.get(tag, 0.0) + value
        evidence.setdefault(tag, []).extend(evs)
    return raw, evidence, dict(vetoed)


def _random_case(rng: random.Random, doc):
    tags = ["queue", "rust", "database", "web", "cli"]
    kinds = ["alias", "phrase", "pattern", "description"]
    labels = ["queue", "queues", "broker", "rust", "stream", "web dashboard", "disk"]
    infos = []
    for _ in range(rng.randint(3, 14)):
        where = rng.choice([None, None, None, frozenset({"tagline"}), frozenset({"list", "body"})])
        infos.append(TermInfo(rng.choice(tags), rng.choice(kinds), rng.choice(labels), rng.choice([0.1, 0.25, 0.5, 1.0, 1.5, 0.3333]), where))
    n = len(doc.text)
    spans = [(s, s + rng.randint(1, 12)) for s in (rng.randrange(n - 12) for _ in range(rng.randint(1, 25)))]
    rows = [(rng.randrange(len(infos)), *rng.choice(spans)) for _ in range(rng.randint(1, 120))]
    table = HitTable(TermTable(infos, [rng.getrandbits(63) for _ in infos]), np.array([r[0] for r in rows], dtype=np.int64),
                     np.array([r[1] for r in rows], dtype=np.int64), np.array([r[2] for r in rows], dtype=np.int64))
    hits = [Hit(infos[t], s, e) for t, s, e in rows]
    # Terms made per README (a regex's, a near miss's), some sharing a pack term's (kind, label).
    extra = [TermInfo(rng.choice(tags), rng.choice(["fuzzy", "regex", "phrase"]), rng.choice(labels + ["quue~queue", "^cargo add"]),
                      rng.choice([0.35, 0.7]), None) for _ in range(rng.randint(0, 4))]
    more = [Hit(rng.choice(extra), *rng.choice(spans)) for _ in range(rng.randint(0, 10))] if extra else []
    table.add(more)
    negs = [Hit(TermInfo(rng.choice(tags), "negative", rng.choice(["not a", "no"]), 0.0, None), s, s + rng.randint(2, 30))
            for s in (rng.randrange(n - 5) for _ in range(rng.randint(0, 8)))]
    return table, hits + more, negs


@pytest.mark.parametrize("seed", range(300))
def test_columnar_scoring_gives_what_the_per_hit_loop_gives(seed):
    doc = segment_readme(README)
    table, hits, negs = _random_case(random.Random(seed), doc)
    out = weigh(table, doc, negs)
    raw, evidence, vetoed = reference(hits, doc, negs)
    assert list(out.raw.items()) == list(raw.items())  # same floats, tags in the same order
    assert out.evidence == evidence
    assert all(type(e) is Evidence for evs in out.evidence.values() for e in evs)
    assert out.vetoed == vetoed


def test_hits_inside_addresses_are_dropped_as_bisect_drops_them():
    rng = random.Random(7)
    for _ in range(200):
        spans, pos = [], 0
        for _ in range(rng.randint(0, 6)):
            s = pos + rng.randint(0, 30)
            pos = s + rng.randint(1, 30)
            spans.append((s, pos))
        rows = [(s, s + rng.randint(1, 20)) for s in (rng.randrange(200) for _ in range(50))]
        info = TermInfo("t", "phrase", "x", 1.0, None)
        table = HitTable(TermTable([info], [1]), np.zeros(len(rows), dtype=np.int64),
                         np.array([s for s, _ in rows], dtype=np.int64), np.array([e for _, e in rows], dtype=np.int64))
        table.outside(spans)
        starts = [s for s, _ in spans]
        kept = [(s, e) for s, e in rows
                if not ((i := bisect.bisect_right(starts, s) - 1) >= 0 and e <= spans[i][1])]
        assert [(h.start, h.end) for h in table.hits()] == kept


def test_round_half_rounds_as_python_does():
    rng = random.Random(3)
    values = [rng.uniform(0, 10) for _ in range(20000)]
    values += [rng.randint(0, 10**6) / 10**4 for _ in range(5000)]
    halves = [(k + 0.5) / 10**4 for k in range(0, 40000, 7)]  # decimal halves, not exact in binary
    values += halves + [math.nextafter(h, 0) for h in halves] + [math.nextafter(h, 1) for h in halves]
    values += [0.03125, 0.00005, 0.0, 2.0**60, 1e-300]  # an exact binary half; huge; tiny
    got = round_half(np.array(values)).tolist()
    assert got == [round(v, 4) for v in values]
    # Guard the guard: without the fallback, plain rint differs on some of these values.
    plain = (np.rint(np.array(values) * 1e4) / 1e4).tolist()
    assert plain != [round(v, 4) for v in values]


def test_evidence_lists_read_as_the_lists_they_stand_for():
    """A candidate's EvidenceList: its length without making tuples, items and slices
    as a list's, equal to the list, and a plain list when pickled."""
    import pickle

    doc = segment_readme(README)
    for seed in range(40):
        table, hits, negs = _random_case(random.Random(seed), doc)
        _, evidence, _ = reference(hits, doc, negs)
        for tag, evs in weigh(table, doc, negs).evidence.items():
            want = evidence[tag]
            assert len(evs) == len(want) and list(evs) == want and evs == want and want == evs
            assert evs[0] == want[0] and evs[-1] == want[-1] and evs[1:3] == want[1:3] and evs[::-2] == want[::-2]
            with pytest.raises(IndexError):
                evs[len(want)]
            assert sorted(evs, key=lambda e: -e.weight) == sorted(want, key=lambda e: -e.weight)
            back = pickle.loads(pickle.dumps(evs))
            assert type(back) is list and back == want
            assert evs != want[:-1] and evs != "not evidence"
