"""The decision head: a small trained scorer that reads the model's own reading of the
item and the rules' evidence, and decides which shortlisted tags to return.

Why a head and not only LoRA: on the training data (5-fold cross-validation, see
``engine/training/head.py``) a 135M model fine-tuned with LoRA to *write* the answer
chose worse than the rules (micro-F1 0.60 vs 0.63), while a linear read-out of the
same model's hidden states, trained on the same labels, lifted the decision to 0.69.
The states are free: the decoder's prefill computes them for every prompt anyway.

Score of tag ``t`` for an item with pooled state ``h`` (the output of a decoder layer
five sixths of the way up, averaged over the item's own prompt tokens), ``g(t)`` (the
output of a middle layer, two thirds of the way up, averaged over the tokens of t's
name in its shortlist line ``- name: evidence words``, where the model has read the
README and meets the tag) and evidence features ``f``::

    s(t) = a . f(t) + a0 + b[t] + W[t] . h + v . g(t)

``a`` and ``v`` are shared by all tags (how much each kind of rule evidence counts; what
in the model's state at a tag's line speaks for that tag, whichever it is), ``b`` and
``W`` are per tag (how common the tag is, and what in the model's reading of the
README speaks for it). The answer: the best-scoring tag, then the next ones while their
probability ``sigmoid(s)`` reaches ``threshold`` (the count is the head's call, 1..N).
The constrained decoder then writes that answer, in the head's order, through the
constraint (its allowed set narrowed to the chosen tags, their number fixed): every
token is one the constraint allows, so it still decides what can be said. Model
steps are skipped there, as they could only choose among spellings of that answer.

Why not the final state for ``h``: 5-fold cross-validation on train.jsonl scored the
item state from layer 25 of SmolLM2-135M's 30 above the final norm's on the home list
and on a renamed one (micro-F1 0.744 vs 0.738, 0.691 vs 0.687; layers 15 and 20 as the
final norm; ``engine/training/head.py``), and the head reads nothing above it, so the
prefill stops there (a sixth of the layers, the final norm and the logits skipped).
Heads trained before keep ``state_layer`` None and read the final norm.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from engine.lexicon.types import Candidate

FILE = "head.safetensors"
#: Sections of a README, in the order the evidence features count them.
SECTIONS = ("title", "tagline", "intro", "heading", "body", "list", "code")
#: Rank one-hot width: the shortlist the head was designed for (rules' top 8).
RANKS = 8
FEATURES = (
    "score", "log_raw", "share_of_best", "rules_pick", "admitted", "log_hits", "log_distinct_words", "max_weight",
    "log_vetoed", "first_position",
    *(f"log_{s}_hits" for s in SECTIONS),
    *(f"rank_{k}" for k in range(RANKS)),
    # The neighbours' vote (``engine/neighbours``): last, so a head trained before it
    # reads the features it knows (``DecisionHead.score`` reads ``len(a)`` of them).
    "neighbour_vote",
)
#: What each kind of feature set means: ``all`` (evidence and the model's states),
#: ``rules`` (evidence only: the ablation without the model), ``model`` (states only:
#: the model alone inside the shortlist).
KINDS = ("all", "rules", "model")


def candidate_features(cand: Candidate | None, rank: int, best: float, in_pick: bool, text_len: int, vote: float = 0.0) -> list[float]:
    """The evidence for one shortlisted tag, as numbers (names in ``FEATURES``): the
    rules', and the neighbours' ``vote`` (0 without labelled READMEs to ask)."""
    ev = list(cand.evidence) if cand else []  # read once: an EvidenceList makes its tuples per read
    first = min((e.start for e in ev), default=text_len) / max(text_len, 1)
    out = [
        cand.score if cand else 0.0,
        math.log1p(cand.raw) if cand else 0.0,
        (cand.score / best) if cand and best > 0 else 0.0,
        float(in_pick),
        float(cand is not None and cand.admit is not None and cand.score >= cand.admit),
        math.log1p(len(ev)),
        math.log1p(len({e.text.lower() for e in ev})),
        max((e.weight for e in ev), default=0.0),
        math.log1p(len(cand.vetoed)) if cand else 0.0,
        first,
    ]
    out += [math.log1p(sum(1 for e in ev if e.section == s)) for s in SECTIONS]
    out += [float(rank == k) for k in range(RANKS)]
    out.append(vote)
    return out


def shortlist_features(cands: list[Candidate], allowed: Sequence[str], rules_pick: Sequence[str], text_len: int,
                       votes: dict[str, float] | None = None) -> list[list[float]]:
    """Feature rows for ``allowed`` (in that order); ``votes``: the neighbours' (``Vote.scores``)."""
    live = [c for c in cands if c.score > 0]
    by_tag = {c.tag: (k, c) for k, c in enumerate(live)}
    best = live[0].score if live else 0.0
    pick = set(rules_pick)
    rows = []
    for t in allowed:
        k, c = by_tag.get(t, (RANKS, None))
        rows.append(candidate_features(c, k, best, t in pick, text_len, (votes or {}).get(t, 0.0)))
    return rows


@dataclass(frozen=True)
class HeadInput:
    """What the head needs of one item besides the model's states: the shortlisted tags
    (in the prompt's order) and their evidence features. Built where the prompt is built."""

    tags: tuple[str, ...]
    features: tuple[tuple[float, ...], ...]
    max_tags: int
    spans: tuple[tuple[int, int], ...] | None = None  # each tag's name in its prompt line, as token ranges of the suffix


@dataclass(frozen=True)
class ItemStates:
    """The model's reading of one prompt: a hidden state averaged over the item's own
    tokens (the head's ``state_layer``, or the final norm), and a middle layer's over
    each shortlisted tag's name (None without spans)."""

    item: Any  # torch [d]
    lines: Any = None  # torch [tags, d]


@dataclass(frozen=True)
class TagScore:
    """The head's verdict on one shortlisted tag, split into its parts for explanations."""

    tag: str
    prob: float
    evidence: float  # a . f + a0: what the rules' evidence contributed (log-odds)
    prior: float  # b[t]: how common the tag is in the training data
    model: float  # W[t] . h: what the model's reading contributed

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "prob": round(self.prob, 4), "evidence": round(self.evidence, 3),
                "prior": round(self.prior, 3), "model": round(self.model, 3)}


@dataclass
class DecisionHead:
    """Trained weights and the settings chosen for them (see module docstring)."""

    tags: list[str]  # exact taxonomy names, index of ``b`` and ``W``
    kind: str  # one of KINDS
    feature_mean: list[float]
    feature_std: list[float]
    state_mean: Any  # torch tensor [d] (float32)
    state_std: Any
    a: list[float]
    a0: float
    b: Any  # torch tensor [tags]
    W: Any  # torch tensor [tags, d] (zeros for kind "rules")
    threshold: float
    settings: dict[str, Any] = field(default_factory=dict)
    v: Any = None  # torch [d]: shared weights on a tag's name state (None: not used)
    line_mean: Any = None
    line_std: Any = None
    line_layer: int | None = None  # decoder layer whose output gives the name states (None: the final norm)
    state_layer: int | None = None  # decoder layer whose output gives ``h`` (None: the final norm, as heads before)

    def __post_init__(self) -> None:
        self._index = {t: i for i, t in enumerate(self.tags)}

    @property
    def state_dim(self) -> int:
        return int(self.W.shape[1])

    def unlearned(self, tags: Sequence[str]) -> list[str]:
        """Those of ``tags`` this head has no per-tag parameters for (scored by its shared
        weights alone), in order; [] for a head with none at all (an any-list head)."""
        return [t for t in tags if t not in self._index] if self._index else []

    def score(self, states: ItemStates, item: HeadInput) -> list[TagScore]:
        """Scores of the item's shortlisted tags, best first (ties: shortlist order)."""
        # A kind's unused parts are zero weights (``a`` for "model", ``W`` for "rules") or
        # absent (``v``), so one formula serves every kind.
        h = (states.item.float().cpu() - self.state_mean) / self.state_std
        model_part = (self.W @ h).tolist()
        line_part = [0.0] * len(item.tags)
        if self.v is not None:
            lines = states.lines if states.lines is not None else states.item[None, :].expand(len(item.tags), -1)
            line_part = (((lines.float().cpu() - self.line_mean) / self.line_std) @ self.v).tolist()
        out = []
        for k, (t, f) in enumerate(zip(item.tags, item.features)):
            i = self._index.get(t)
            # zip stops at len(a): a head trained before a feature was added reads the ones it knows.
            ev = self.a0 + sum(w * (x - m) / s for w, x, m, s in zip(self.a, f, self.feature_mean, self.feature_std))
            prior = float(self.b[i]) if i is not None else 0.0
            model = (model_part[i] if i is not None else 0.0) + line_part[k]
            z = ev + prior + model
            out.append(TagScore(t, 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0, ev, prior, model))
        return sorted(out, key=lambda s: -s.prob)  # stable: ties keep the shortlist's order

    def choose(self, scores: list[TagScore], max_tags: int, threshold: float | None = None) -> list[str]:
        """The best tag, then the next while they reach the threshold, at most ``max_tags``."""
        th = self.threshold if threshold is None else threshold
        out = [s.tag for s in scores[:1]]
        for s in scores[1:max_tags]:
            if s.prob < th:
                break
            out.append(s.tag)
        return out

    # -- files -------------------------------------------------------------------
    def save(self, folder: Path, file: str = FILE) -> dict[str, Any]:
        """Write the tensors to ``folder/file``; returns the card's entry for the head."""
        import torch
        from safetensors.torch import save_file

        lines = {} if self.v is None else {"v": self.v.contiguous(), "line_mean": self.line_mean.contiguous(),
                                           "line_std": self.line_std.contiguous()}
        save_file({**lines, "b": self.b.contiguous(), "W": self.W.contiguous(), "state_mean": self.state_mean.contiguous(),
                   "state_std": self.state_std.contiguous(),
                   "a": torch.tensor(self.a, dtype=torch.float32), "feature_mean": torch.tensor(self.feature_mean, dtype=torch.float32),
                   "feature_std": torch.tensor(self.feature_std, dtype=torch.float32)}, str(folder / file))
        return {"file": file, "kind": self.kind, "a0": self.a0, "threshold": self.threshold, "tags": self.tags,
                "features": list(FEATURES[:len(self.a)]),
                "state": (f"layer {self.state_layer} output" if self.state_layer else "final hidden state")
                + ", mean over the item's prompt tokens"
                + (f"; layer {self.line_layer} output, mean over each tag's name in its shortlist line" if self.v is not None else ""),
                "state_dim": self.state_dim, "line_layer": self.line_layer, "state_layer": self.state_layer, "settings": self.settings}

    @classmethod
    def load(cls, folder: Path, entry: dict[str, Any]) -> "DecisionHead":
        from safetensors.torch import load_file

        t = load_file(str(folder / entry.get("file", FILE)))
        names = list(entry.get("features") or FEATURES[:len(t["a"])])
        if names != list(FEATURES[:len(names)]) or len(names) != len(t["a"]):
            raise ValueError(f"{folder / entry.get('file', FILE)}: the head reads features {names}, "
                             f"not the first {len(names)} of this version's {list(FEATURES)}")
        return cls(tags=list(entry["tags"]), kind=entry["kind"], feature_mean=t["feature_mean"].tolist(),
                   feature_std=t["feature_std"].tolist(), state_mean=t["state_mean"], state_std=t["state_std"],
                   a=t["a"].tolist(), a0=float(entry["a0"]), b=t["b"], W=t["W"], threshold=float(entry["threshold"]),
                   settings=dict(entry.get("settings") or {}), v=t.get("v"), line_mean=t.get("line_mean"), line_std=t.get("line_std"),
                   line_layer=entry.get("line_layer"), state_layer=entry.get("state_layer"))
