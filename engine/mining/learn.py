"""Mine a rule pack from labelled READMEs: per tag, the terms whose presence says the
tag, weighted, each with the evidence for it (support, precision), as a person would
write them.

Terms are the lemma unigrams and bigrams of the READMEs' prose (``terms.py``) found in
at least ``MIN_DF`` of them. Per tag ``t`` (``n_t`` of ``n`` READMEs), with a term in
``df`` READMEs, ``pos`` of them labelled ``t``:

- **precision** ``p = (pos + M x base) / (df + M)``, smoothed toward the tag's base
  rate ``base = n_t / n`` (a term seen twice in two positives is not certain);
- a term is a candidate when ``pos >= MIN_SUPPORT`` and ``p >= LIFT x base``;
- ``METHOD = "logistic"`` (default): one L2-regularised logistic regression per tag on
  term presence, all terms at once, chooses and weighs them: the ``MAX_TERMS``
  candidates with the largest positive coefficients, weight = coefficient (at most
  ``WEIGHT``). Weighing terms together discounts a word that only co-occurs with a
  better one. ``"precision"``: each term alone, the largest ``pos x log(p / base)``,
  weight ``WEIGHT x p``;
- a **negative** is a bigram around a kept word whose READMEs are rarely the tag's
  ("standard library" for "library"): at most ``MAX_NEGATIVES`` per tag, each vetoing
  enough of the word's false hits to pay.

Chosen by 5-fold cross-validation on train.jsonl, the synonym catalogue of
``bench/catalogues.py``, rules only, the share of gold tags among the top 8 candidates
(what the decision head can choose from) and micro-F1: precision method 0.693 / 0.462;
logistic 0.752 / 0.476 (coefficients x 0.5), 0.763 / 0.464 (x 1); with the lift
filter at 3 x base and precision >= 0.15, 0.659 / 0.431; at 1.5 x base, 0.776 / 0.482.
The L2 strength came later (``bench/mining_cv.py``, the same folds with the list's
descriptions; gold in the top 8 and top 12 / micro-F1 / top-1): 0.3: 0.784, 0.843 /
0.491 / 0.625; 1 (the default until then): 0.800, 0.856 / 0.516 / 0.665; 3: 0.819,
0.864 / 0.541 / 0.700; 5: 0.824, 0.871 / 0.550 / 0.706; **10: 0.832, 0.881 / 0.553 /
0.709**; 15: 0.830, 0.886 / 0.558 / 0.704; 20: 0.833, 0.884 / 0.545 / 0.692; 30:
0.830, 0.871 / 0.521 / 0.656. At 1 a tag with a dozen READMEs weighted words that
merely happened to be in them above its own ("arm" 0.40, "fork" 0.34 against "scene"
0.28, "mesh" 0.22 for 3D graphics), and outweighed the list's description; at 10 the
few READMEs buy smaller weights ("scene" 0.14, "arm" and "mesh" 0.10), while a tag
with many keeps larger ones ("kubernetes" 0.41). 1 -> 10 on the other lists: codes
0.806 -> 0.832 (top 8) / 0.524 -> 0.564 / 0.673 -> 0.721; coarse 0.883 -> 0.900 /
0.579 -> 0.598 / 0.718 -> 0.754. With 10 the weights need no other scale (x 0.7:
0.540, x 1.5: 0.546, x 2: 0.532 micro-F1).
``MIN_SUPPORT`` 2 instead of 3 (at L2 10): 0.841, 0.888 / 0.563 / 0.715 (codes 0.838
/ 0.571, coarse 0.901 / 0.600, top 8 / micro-F1), but the decision head on it gains
little and not everywhere (its CV, synonyms: labels alone 0.695 -> 0.699 micro-F1,
0.854 -> 0.849 top-1; in bfloat16 alone 0.694 -> 0.703, 0.867 -> 0.864; bridged 0.735
-> 0.734, 0.881 -> 0.876), and a term from two READMEs is thin for a reviewer: 3
stays. Lift 1.2 or 2, 30 or 50 terms, smoothing 5 moved none of these by more than
0.005, or lost.

Every number is counted on the labels given, so a pack learned on part of the data
and used on the rest is an honest estimate (``tagsmith train`` cross-fits it).
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

from engine.lexicon.terms import DocTerms
from engine.taxonomy import Taxonomy
from engine.threads import one_thread

MIN_SUPPORT = 3
#: How weights are set: ``logistic`` (a per-tag logistic regression on term presence
#: picks and weighs the terms together) or ``precision`` (each term alone).
METHOD = "logistic"
L2 = 10.0
SCALE = 1.0
ITERATIONS = 150
M = 2.0
LIFT = 1.5
MIN_PRECISION = 0.0
MAX_TERMS = 40
WEIGHT = 1.6
MIN_DF = 3
MAX_NEGATIVES = 6
NEG_MAX_PRECISION = 0.5  # a negative's READMEs carry the tag at most this share of the word's precision


@dataclass(frozen=True)
class LearnedTerm:
    text: str
    weight: float
    support: int  # labelled READMEs of the tag that contain it
    df: int  # labelled READMEs that contain it
    precision: float  # smoothed share of ``df`` that carry the tag
    examples: tuple[str, ...] = ()  # ids of READMEs of the tag that contain it


@dataclass(frozen=True)
class LearnedNegative:
    text: str
    df: int
    precision: float
    vetoes: int  # false hits of the word it removes on the training labels


@dataclass
class LearnedRule:
    tag: str  # exact taxonomy name
    positives: int
    terms: list[LearnedTerm] = field(default_factory=list)
    negatives: list[LearnedNegative] = field(default_factory=list)
    match_example: str | None = None  # a line of one of the tag's READMEs holding its best term (``learn_rows``)


@dataclass
class LearnedPack:
    rules: list[LearnedRule]
    items: int
    data_sha256: str = ""
    settings: dict[str, Any] = field(default_factory=dict)


def settings() -> dict[str, Any]:
    return {"method": METHOD, "l2": L2, "scale": SCALE, "min_support": MIN_SUPPORT, "smoothing": M, "lift": LIFT, "min_precision": MIN_PRECISION,
            "max_terms": MAX_TERMS, "weight": WEIGHT, "max_negatives": MAX_NEGATIVES}


def learn(docs: Sequence[DocTerms], golds: Sequence[Sequence[str]], ids: Sequence[str], taxonomy: Taxonomy,
          data_sha256: str = "") -> LearnedPack:
    """The learned pack for ``taxonomy`` from ``docs`` (``doc_terms`` of each README)
    labelled ``golds`` (exact names)."""
    n = len(docs)
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.terms)
    by_tag: dict[str, list[int]] = defaultdict(list)
    for j, g in enumerate(golds):
        for t in set(g):
            by_tag[t].append(j)
    coefs = _logistic(docs, golds, taxonomy, df) if METHOD == "logistic" else {}
    pairs = [bigrams_by_word(d) for d in docs]
    rules = []
    for tag in taxonomy:
        pos_docs = by_tag.get(tag.name, [])
        if not pos_docs:
            continue
        rules.append(_learn_tag(tag.name, pos_docs, docs, df, n, ids, coefs.get(tag.name), pairs))
    return LearnedPack(rules, n, data_sha256, settings())


def _logistic(docs: Sequence[DocTerms], golds: Sequence[Sequence[str]], taxonomy: Taxonomy, df: Counter[str]) -> dict[str, dict[str, float]]:
    """Per tag, the L2-regularised logistic regression of "has the tag" on term presence
    (terms in at least ``MIN_DF`` READMEs): positive coefficients, by term. Full-batch
    L-BFGS from zeros on one thread: a function of the data."""
    import torch

    vocab = sorted(w for w, k in df.items() if k >= MIN_DF)
    col = {w: i for i, w in enumerate(vocab)}
    tags = [t.name for t in taxonomy if any(t.name in g for g in golds)]
    if not vocab or not tags:
        return {}
    with one_thread():
        X = torch.zeros(len(docs), len(vocab))
        for j, d in enumerate(docs):
            idx = [col[w] for w in d.terms if w in col]
            X[j, idx] = 1.0
        Y = torch.tensor([[float(t in set(g)) for t in tags] for g in golds])
        W = torch.zeros(len(vocab), len(tags), requires_grad=True)
        c = torch.zeros(len(tags), requires_grad=True)
        # A short history: each pair holds two vectors of terms x tags floats (100 pairs, the
        # default, held 4 GB at peak on 817 READMEs).
        opt = torch.optim.LBFGS([W, c], lr=1, max_iter=ITERATIONS, history_size=10, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(X @ W + c, Y, reduction="sum") / len(docs) \
                + L2 * (W ** 2).sum() / len(docs)
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        Wd = W.detach()
    out: dict[str, dict[str, float]] = {}
    for k, t in enumerate(tags):
        col_k = Wd[:, k]
        out[t] = {vocab[i]: float(col_k[i]) for i in torch.nonzero(col_k > 0).flatten().tolist()}
    return out


def _precision(pos: int, dfw: int, base: float) -> float:
    return (pos + M * base) / (dfw + M)


def _candidate(k: int, dfw: int, base: float) -> bool:
    """Whether a term in ``dfw`` READMEs, ``k`` of them the tag's, may be learned: enough
    support, and it says the tag more often than chance."""
    p = _precision(k, dfw, base)
    return k >= MIN_SUPPORT and dfw >= MIN_DF and p >= LIFT * base and p >= MIN_PRECISION


def _examples(w: str, pos_docs: list[int], docs: Sequence[DocTerms], ids: Sequence[str]) -> tuple[str, ...]:
    """Ids of the first three of the tag's READMEs that contain ``w``."""
    return tuple(ids[j] for j in pos_docs if w in docs[j].terms)[:3]


def _learn_tag(tag: str, pos_docs: list[int], docs: Sequence[DocTerms], df: Counter[str], n: int,
               ids: Sequence[str], coef: dict[str, float] | None,
               pairs: Sequence[dict[str, tuple[str, ...]]]) -> LearnedRule:
    n_t = len(pos_docs)
    base = n_t / n
    pos: Counter[str] = Counter()
    for j in pos_docs:
        pos.update(docs[j].terms)
    if coef is not None:
        return _logistic_rule(tag, pos_docs, docs, df, n, ids, coef, pos, pairs)
    cands = []
    for w, k in pos.items():
        if _candidate(k, df[w], base):
            p = _precision(k, df[w], base)
            cands.append((k * math.log(p / base), w, k, p))
    prec = {w: p for _, w, _, p in cands}
    kept = []
    for score, w, k, p in sorted(cands, key=lambda c: (-c[0], c[1])):
        if " " in w:
            a, b = w.split(" ", 1)
            # A bigram must say more than each of its words (which may not be kept themselves).
            if p <= max(prec.get(a, _precision(pos[a], df[a], base) if df[a] else 0.0),
                        prec.get(b, _precision(pos[b], df[b], base) if df[b] else 0.0)):
                continue
        kept.append((w, k, p))
        if len(kept) >= MAX_TERMS:
            break
    terms = [LearnedTerm(w, round(min(WEIGHT, WEIGHT * p), 2), k, df[w], round(p, 3), _examples(w, pos_docs, docs, ids))
             for w, k, p in kept]
    return LearnedRule(tag, n_t, terms, _negatives(terms, pairs, set(pos_docs), df, base))


def _logistic_rule(tag: str, pos_docs: list[int], docs: Sequence[DocTerms], df: Counter[str], n: int,
                   ids: Sequence[str], coef: dict[str, float], pos: Counter[str],
                   pairs: Sequence[dict[str, tuple[str, ...]]]) -> LearnedRule:
    """The tag's terms with the largest positive coefficients (and support), weighted by them."""
    base = len(pos_docs) / n
    ranked = sorted(((c, w) for w, c in coef.items() if _candidate(pos[w], df[w], base)), key=lambda x: (-x[0], x[1]))[:MAX_TERMS]
    terms = []
    for c, w in ranked:
        weight = round(min(WEIGHT, SCALE * c), 2)
        if weight >= 0.05:
            terms.append(LearnedTerm(w, weight, pos[w], df[w], round(_precision(pos[w], df[w], base), 3),
                                     _examples(w, pos_docs, docs, ids)))
    return LearnedRule(tag, len(pos_docs), terms, _negatives(terms, pairs, set(pos_docs), df, base))


def _negatives(terms: list[LearnedTerm], pairs: Sequence[dict[str, tuple[str, ...]]], pos_set: set[int], df: Counter[str],
               base: float) -> list[LearnedNegative]:
    """Bigrams around kept single words whose READMEs are rarely the tag's. ``pairs``:
    ``bigrams_by_word`` of each README (computed once for all tags)."""
    words = {t.text: t for t in terms if " " not in t.text}
    if not words:
        return []
    false_hits: dict[str, Counter[str]] = defaultdict(Counter)  # word -> bigram -> negative READMEs holding both
    bigram_pos: Counter[str] = Counter()
    for j, near in enumerate(pairs):
        for w in words:
            for term in near.get(w, ()):
                if j in pos_set:
                    bigram_pos[term] += 1
                else:
                    false_hits[w][term] += 1
    out = []
    for w, counts in false_hits.items():
        t = words[w]
        wrong = t.df - t.support
        # The 20 most frequent, ties by text: the same choice in every process (a
        # README's terms are a set, whose order changes with the hash seed).
        for bg, k in sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:20]:
            if df[bg] < MIN_DF or k < max(MIN_SUPPORT, 0.1 * wrong):
                continue
            p = _precision(bigram_pos[bg], df[bg], base)
            if p <= NEG_MAX_PRECISION * t.precision:
                out.append(LearnedNegative(bg, df[bg], round(p, 3), k))
    out.sort(key=lambda x: (-x.vetoes, x.text))
    return out[:MAX_NEGATIVES]


def bigrams_by_word(d: DocTerms) -> dict[str, tuple[str, ...]]:
    """A README's bigrams under each of their words (once under a doubled word)."""
    out: dict[str, list[str]] = defaultdict(list)
    for term in d.terms:
        if " " in term:
            a, b = term.split(" ", 1)
            out[a].append(term)
            if b != a:
                out[b].append(term)
    return {w: tuple(v) for w, v in out.items()}
