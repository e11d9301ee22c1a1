"""Votes of the labelled READMEs most like a new one: the tags the catalogue's own
labels gave to its nearest neighbours.

Why: a learned rule pack knows a tag through the terms that say it, one by one; the
labels also know which READMEs *look alike as a whole*. A README's terms (the lemma
unigrams and bigrams a rule could match, ``engine/lexicon/terms.py``) weighted by idf,
cosine similarity, the ``K`` nearest labelled READMEs, each voting for its tags with
weight ``similarity ** POWER``; a tag's vote is the weighted share of neighbours that
carry it, in [0, 1].

Measured by 5-fold cross-validation on train.jsonl (the synonym list of
``bench/catalogues.py``, neighbours always from the other folds; micro-F1 / top-1):
alone the vote is a weak tagger (top-1 0.57; the learned pack's rules 0.70), but it
sees what single terms do not. As one more evidence feature of the decision head it
lifted the head 0.671 / 0.844 -> 0.685 / 0.856 (both dtypes; bfloat16 alone 0.670 /
0.842 -> 0.688 / 0.857). Not kept, each within 0.002 of that: the same vote over the
model's pooled states instead of terms (0.672: nothing the head's linear read-out of
the states lacks); the share of the 5 nearest with the tag, or the nearest
similarity with it, as further features; a tf-idf logistic regression's probability
as a feature. Letting the vote add its best 2 tags off the rules' 12-tag shortlist
raised the shortlist's share of gold tags 85.6% -> 90.2% but not the head (0.688 ->
0.688, bfloat16): like a head scoring all 90 tags, it rarely trusts a tag the rules
did not see, so ``ADDS`` is 0 (``tagsmith train --neighbours N`` sets it).
Chosen alone: K 20 (10: top-1 0.575, 40: 0.565), POWER 3 (1: 0.548), terms in at
least 2 READMEs (3: 0.554); lemma terms of the prose (plain regex words: 0.543).

What an index keeps: per labelled README, its id, its tags and the positions of its
terms in a table of hashed terms (no words: the READMEs stay where they came from),
and each hashed term's idf.
"""
from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

#: Neighbours that vote, the power their similarity is raised to, and the READMEs a
#: term must occur in (module docstring).
K = 20
POWER = 3.0
MIN_DF = 2
#: Tags the vote adds to a head's shortlist beyond the rules' (``tagsmith train --neighbours``).
ADDS = 0
#: Hashed term table: 2^20 buckets (collisions among ~20k terms: ~0.02%).
BITS = 20
FILE = "neighbours.safetensors"
META = "neighbours.json"


def term_key(term: str) -> int:
    """A term's bucket: the same on every machine and process (``hash()`` is salted)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=8).digest(), "little") & ((1 << BITS) - 1)


@dataclass(frozen=True)
class Neighbour:
    id: str
    similarity: float
    tags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "similarity": round(self.similarity, 4), "tags": list(self.tags)}


@dataclass(frozen=True)
class Vote:
    """The neighbours' verdict on one README: each tag's weighted share, and who voted."""

    scores: dict[str, float]  # tag -> vote in [0, 1]; tags no neighbour carries are absent
    neighbours: tuple[Neighbour, ...]

    def ranked(self) -> list[tuple[str, float]]:
        """Tags by vote, best first (ties: by name, for the same order everywhere)."""
        return sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))


class NeighbourIndex:
    """Labelled READMEs as idf-weighted term vectors, searchable by cosine similarity."""

    def __init__(self, ids: Sequence[str], tags: Sequence[Sequence[str]], keys: Sequence[int], idf: Sequence[float],
                 rows: Sequence[Sequence[int]], k: int = K, power: float = POWER) -> None:
        import torch

        if not (len(ids) == len(tags) == len(rows)):
            raise ValueError("ids, tags and rows must have one entry per README")
        self.ids, self.tags = [str(i) for i in ids], [tuple(t) for t in tags]
        self.keys = list(keys)
        self.idf = torch.tensor(list(idf), dtype=torch.float64)
        self.k, self.power = k, power
        self._col = {key: c for c, key in enumerate(self.keys)}
        self.rows = [list(r) for r in rows]
        crow, col, val = [0], [], []
        for r in self.rows:
            w = self.idf[r] if r else torch.zeros(0, dtype=torch.float64)
            norm = float(w.norm()) or 1.0
            col += r
            val += (w / norm).tolist()
            crow.append(len(col))
        with warnings.catch_warnings():  # "sparse CSR support is in beta": a product is all it does here
            warnings.simplefilter("ignore", UserWarning)
            self._X = torch.sparse_csr_tensor(torch.tensor(crow, dtype=torch.int64), torch.tensor(col, dtype=torch.int64),
                                              torch.tensor(val, dtype=torch.float64), size=(len(self.rows), len(self.keys)),
                                              check_invariants=False)

    @property
    def tag_names(self) -> list[str]:
        """The tags the labelled READMEs carry, sorted."""
        return sorted({t for ts in self.tags for t in ts})

    def __len__(self) -> int:
        return len(self.ids)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as what builds it (batch workers receive it; a sparse tensor does not pickle)."""
        return (NeighbourIndex, (self.ids, self.tags, self.keys, self.idf.tolist(), self.rows, self.k, self.power))

    @classmethod
    def build(cls, ids: Sequence[str], terms: Sequence[frozenset[str]], tags: Sequence[Sequence[str]],
              min_df: int = MIN_DF, k: int = K, power: float = POWER) -> "NeighbourIndex":
        """An index of labelled READMEs from their ``doc_terms`` terms and gold tags."""
        df: Counter[int] = Counter()
        keyed = [sorted({term_key(t) for t in ts}) for ts in terms]
        for ks in keyed:
            df.update(ks)
        keys = sorted(key for key, n in df.items() if n >= min_df)
        col = {key: c for c, key in enumerate(keys)}
        idf = [math.log(len(terms) / df[key]) for key in keys]
        rows = [[col[key] for key in ks if key in col] for ks in keyed]
        return cls(ids, tags, keys, idf, rows, k, power)

    def vote(self, terms: frozenset[str], exclude: str | None = None) -> Vote:
        """The ``k`` nearest labelled READMEs to one with ``terms``, and their tags' votes
        (``exclude``: an id that must not vote for itself)."""
        import torch

        cols = sorted({self._col[c] for c in (term_key(t) for t in terms) if c in self._col})
        if not cols:  # nothing in common with any labelled README (or none labelled)
            return Vote({}, ())
        q = torch.zeros(len(self.keys), dtype=torch.float64)
        q[cols] = self.idf[cols]
        sims = (self._X @ (q / q.norm()).unsqueeze(1)).squeeze(1)
        if exclude is not None:
            for j, i in enumerate(self.ids):
                if i == exclude:
                    sims[j] = -1.0
        k = min(self.k, len(self.ids))
        # Ties broken by index (stable sort): the same neighbours on every run.
        order = torch.sort(-sims, stable=True).indices[:k].tolist()
        total, scores = 0.0, Counter()
        near = []
        for j in order:
            s = float(sims[j])
            if s <= 0:
                break
            w = s ** self.power
            total += w
            for t in self.tags[j]:
                scores[t] += w
            near.append(Neighbour(self.ids[j], s, self.tags[j]))
        if total <= 0:
            return Vote({}, ())
        return Vote({t: round(v / total, 6) for t, v in scores.items()}, tuple(near))

    # -- files -------------------------------------------------------------------
    def save(self, folder: Path) -> dict[str, Any]:
        """Write ``neighbours.safetensors`` (term table, idf, rows) and ``neighbours.json``
        (ids, tags, settings); returns the card's ``neighbours`` entry."""
        import torch
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        lengths = [len(r) for r in self.rows]
        # int32: buckets < 2^BITS, positions < terms; half the bytes of int64.
        save_file({"keys": torch.tensor(self.keys, dtype=torch.int32), "idf": self.idf.contiguous(),
                   "lengths": torch.tensor(lengths, dtype=torch.int32),
                   "cols": torch.tensor([c for r in self.rows for c in r], dtype=torch.int32)}, str(folder / FILE))
        meta = {"ids": self.ids, "tags": [list(t) for t in self.tags], "k": self.k, "power": self.power, "bits": BITS}
        (folder / META).write_text(json.dumps(meta, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
        return {"file": FILE, "meta": META, "items": len(self.ids), "terms": len(self.keys), "k": self.k, "power": self.power}

    @classmethod
    def load(cls, folder: Path, entry: dict[str, Any] | None = None) -> "NeighbourIndex":
        from safetensors.torch import load_file

        entry = entry or {}
        t = load_file(str(folder / entry.get("file", FILE)))
        meta = json.loads((folder / entry.get("meta", META)).read_text(encoding="utf-8"))
        if int(meta.get("bits", BITS)) != BITS:
            raise ValueError(f"{folder / META}: terms hashed to {meta.get('bits')} bits, this version reads {BITS}")
        cols, rows, at = t["cols"].tolist(), [], 0
        for n in t["lengths"].tolist():
            rows.append(cols[at:at + n])
            at += n
        return cls(meta["ids"], meta["tags"], t["keys"].tolist(), t["idf"].tolist(), rows, int(meta["k"]), float(meta["power"]))
