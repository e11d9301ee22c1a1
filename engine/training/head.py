"""Training the decision head (``engine/decision/head.py``) and choosing its settings.

Steps: every labelled README goes through the tagging path (lexicon -> shortlist ->
prompt) and one prefill of the model gives its pooled state, exactly what the decoder
computes at tagging time; then a regularised logistic model is fitted on the
shortlisted (item, tag) pairs, label "tag is gold". Fitting takes seconds, so the
regularisation and the count threshold are chosen by k-fold cross-validation on the
training data over a grid, and the card records every grid point's scores, the rules
alone, the head without the model's states and the head on the states alone.

Full-batch L-BFGS from zeros: the fit is a deterministic function of the data (no
sampling, no seed needed), so retraining from a clean checkout gives the same head.

Same answers on any machine: the states a head reads carry the last bits of the
kernels that computed them (float32; bfloat16 on AVX-512 BF16 or on AMX). A head fitted
on one dtype's states gave another answer on 3% of items in the other dtype. So the
states are read in both dtypes, each item's pair (``twins``) enters the fit, and a
consistency term ``CONSISTENCY x mean((z_bfloat16 - z_float32)^2)`` asks the head to
score both readings alike: it learns to ignore the directions in which the kernels
differ. Chosen by 5-fold cross-validation on train.jsonl (817 items; out-of-fold
answers identical across dtypes, micro-F1 bfloat16 / float32): no term 97.1%, 0.723 /
0.723; 1: 97.9%; 3: 98.5%; **10: 98.9%, 0.729 / 0.729**; 30: 99.0%, 0.722; 100:
99.5%, 0.721 (top-1 falls to 0.865). The pairs need not be every item: a seeded
quarter read in float32 keeps the agreement (``TWIN_SHARE``, ``twin_rows``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from engine.api import Tagger
from engine.decision.head import KINDS, DecisionHead, HeadInput, ItemStates
from engine.decision.policy import DecisionPolicy
from engine.training.packs import fold_of
from engine.report.metrics import Metrics, score
from engine.taxonomy import Taxonomy
from engine.threads import one_thread, side_by_side

#: Grid chosen over by cross-validation: L2 strength on the per-tag state weights, and
#: the probability a 2nd/3rd tag needs.
STATE_L2 = (0.1, 0.3, 1.0)
THRESHOLDS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)
#: L2 strength on the per-tag biases (tags seen a handful of times must not memorise).
BIAS_L2 = 0.1
#: L2 strengths on the shared line-state weights. Without line states (None) every
#: setting scored ~0.04 lower in cross-validation on train (0.689-0.692 against
#: 0.717-0.731), so the grid no longer spends fits on it (``fit(line_l2=None)`` still can).
LINE_L2S = (0.1, 1.0)
LINE_L2 = 0.1
#: Weight of the consistency term between an item's two dtype readings (see above).
CONSISTENCY = 10.0
#: The dtypes whose states a head is trained on by default: what CPUs and GPUs run.
TRAIN_DTYPES = ("bfloat16", "float32")
#: Share of the items also read in the second dtype (float32) for the consistency term;
#: the rest are read in the first only. 5-fold CV on train.jsonl (817 items, the chosen
#: settings; micro-F1 / answers identical across dtypes) for shares 1, 0.5, 0.25 and
#: none: home list 0.744 / 98.4%, 0.740 / 98.3%, 0.741 / 98.7%, 0.742 / 96.8%; synonym
#: list (learned pack) 0.727 / 98.9%, 0.726 / 98.8%, 0.725 / 98.2%, 0.728 / 97.8%. A
#: quarter keeps the agreement and micro-F1 within noise, and the float32 reading,
#: 1.7x the bfloat16 one on a CPU with native bfloat16, shrinks by three quarters.
TWIN_SHARE = 0.25
#: README tokens in a head's prompts. 5-fold cross-validation on train.jsonl (bfloat16
#: states, 8-tag shortlist) scored 128, 192 and 256 tokens alike (micro-F1 0.731, 0.734,
#: 0.730; 512 earlier scored no better), so the head reads the cheapest: a 128-token
#: excerpt makes the prefill ~1.5x faster than 256.
EXCERPT_TOKENS = 128


@dataclass
class HeadItem:
    """One labelled README as the head sees it."""

    id: str
    input: HeadInput | None  # None when the rules found nothing (no shortlist)
    state: ItemStates | None  # the model's pooled states
    gold: list[str]
    rules_pick: list[str]


def line_layer(model: Any) -> int:
    """The decoder layer whose output gives the tag-name states: two thirds of the way up
    (layer 20 of SmolLM2-135M's 30). Chosen by 5-fold cross-validation on train.jsonl
    among layers 10, 15, 20 and the final norm (micro-F1 0.711, 0.718, 0.730, 0.701)."""
    return max(1, round(2 * int(getattr(model.config, "num_hidden_layers", 0) or 0) / 3))


def state_layer(model: Any) -> int:
    """The decoder layer whose output, averaged over the item's prompt tokens, gives the
    item's state: five sixths of the way up (layer 25 of SmolLM2-135M's 30), the deepest
    layer a head reads, so the prefill stops there. 5-fold cross-validation on train.jsonl
    (817 items, bfloat16), micro-F1 / top-1 with the item state from the final norm and
    from layers 15, 20, 25: home list 0.738 / 0.896, 0.737 / 0.894, 0.737 / 0.891,
    **0.744 / 0.903**; synonym list (learned pack) 0.687 / 0.845, 0.688 / 0.846,
    0.689 / 0.846, **0.691 / 0.852**."""
    return max(1, round(5 * int(getattr(model.config, "num_hidden_layers", 0) or 0) / 6))


def twin_rows(n: int, share: float, seed: int) -> list[int]:
    """The items (indices, in order) read in the second dtype too: a seeded ``share`` of
    ``n`` (all of them at 1). The second dtype is float32, 1.7-2.4x slower than bfloat16
    on a CPU with native bfloat16; the consistency term needs the pairs to learn the
    directions in which the kernels differ, not every item."""
    if not 0 < share <= 1:
        raise ValueError(f"the second dtype's share must be in (0, 1], got {share}")
    if share == 1:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), max(1, round(n * share))))


def collect(tagger: Tagger, rows: list[dict[str, Any]], tax: Taxonomy, golds: list[list[str]], max_tags: int,
            batch: int = 8, progress: bool = False, layer: int | None = None, state_layer: int | None = None) -> list[HeadItem]:
    """Shortlists, evidence features and the model's pooled states for ``rows`` (the
    tagger's policy must have ``decider="head"``; tag-name states from ``layer``, the
    item's from ``state_layer``, or the final norm when None)."""
    props = tagger.prepare(tagger.propose(rows, tax), tax, max_tags)
    return read_states(tagger.lm, tagger.compiler.get(tax, max_tags), props, golds, batch, progress, layer, state_layer)


def read_states(lm: Any, constraint: Any, props: Sequence[Any], golds: Sequence[list[str]], batch: int = 8,
                progress: bool = False, layer: int | None = None, state_layer: int | None = None,
                only: Sequence[int] | None = None) -> list[Any]:
    """The model's pooled states for prepared proposals (``Tagger.prepare``): the part of
    ``collect`` that depends on the model's weights, so that training prepares each
    README once and reads it in every dtype (the prompt is the tokenizer's, the same in all).
    ``only``: read these proposals (indices) and give None for the others (``twin_rows``)."""
    if only is not None:
        got = read_states(lm, constraint, [props[j] for j in only], [golds[j] for j in only], batch, progress, layer, state_layer)
        out_some: list[HeadItem | None] = [None] * len(props)
        for j, it in zip(only, got):
            out_some[j] = it
        return out_some
    from tqdm import tqdm

    from engine.decision.decoder import ConstrainedDecoder, DecodeRequest

    decoder = ConstrainedDecoder(lm, constraint)
    out: list[HeadItem] = []
    bar = tqdm(total=len(props), desc=f"model states ({lm.dtype})", disable=not progress, unit="item")
    for s in range(0, len(props), batch):
        chunk = props[s:s + batch]
        reqs = [DecodeRequest(p.prepared.prompt, p.prepared.plan.allowed, suffix_ids=p.prepared.suffix_ids,
                              head_input=p.prepared.head_input) for p in chunk]
        states = decoder.states(reqs, layer, state_layer)
        for p, st, g in zip(chunk, states, golds[s:s + batch]):
            out.append(HeadItem(str(p.record.get("id")), p.prepared.head_input, st, g, list(p.prepared.plan.rules_pick)))
        bar.update(len(chunk))
    bar.close()
    return out


def fit(items: Sequence[HeadItem], tags: list[str], kind: str = "all", state_l2: float = 0.3, threshold: float = 0.4,
        line_l2: float | None = LINE_L2, iterations: int = 300, layer: int | None = None,
        twins: Sequence[HeadItem | None] | None = None, consistency: float = CONSISTENCY, state_layer: int | None = None,
        per_tag: bool = True) -> DecisionHead:
    """Fit a head on ``items`` (those with a shortlist). ``twins``: the same items read
    in another dtype (same order, same shortlists; None for an item read in one dtype
    only, ``twin_rows``); both readings are fitted, with the consistency term between
    the pairs (module docstring). ``layer`` / ``state_layer``: the
    decoder layers the items' name states / item states were read from (``collect``),
    recorded in the head so that tagging reads the same. ``per_tag=False``: shared
    weights only (``a``, ``a0``, ``v``; no ``b``, ``W``), a head for tag lists it never
    saw (``engine/training/any_list.py``); it keeps no tag names.

    In float64 on one thread (``engine/threads.py``): the head is a function of the data.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    with one_thread():
        return _fit(items, tags, kind, state_l2, threshold, line_l2, iterations, layer, twins, consistency, state_layer, per_tag)


def _rows(items: Sequence[HeadItem], index: dict[str, int]) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Evidence, tag index, item index, tag-name state and label of every shortlisted
    (item, tag) pair, and the state of every item with a shortlist, in float64.

    An item's state is the same for all its shortlisted tags, so it is kept once per
    item: the fit scores all tags of an item with one product (``logits``) instead of
    copying the state into each of its ~12 rows.
    """
    import torch

    f64 = torch.float64
    F, T, I, H, L, Y = [], [], [], [], [], []
    for it in items:
        if it.input is None:
            continue
        gold = set(it.gold)
        H.append(it.state.item.to(f64))
        for k, (t, f) in enumerate(zip(it.input.tags, it.input.features)):
            F.append(list(f)); T.append(index[t]); I.append(len(H) - 1); Y.append(float(t in gold))
            L.append((it.state.lines[k] if it.state.lines is not None else it.state.item).to(f64))
    return (torch.tensor(F, dtype=f64), torch.tensor(T, dtype=torch.long), torch.tensor(I, dtype=torch.long),
            torch.stack(H), torch.stack(L), torch.tensor(Y, dtype=f64))


def _fit(items: Sequence[HeadItem], tags: list[str], kind: str, state_l2: float, threshold: float, line_l2: float | None,
         iterations: int, layer: int | None, twins: Sequence[HeadItem | None] | None, consistency: float,
         state_layer: int | None = None, per_tag: bool = True) -> DecisionHead:
    import torch

    f64 = torch.float64
    index = {t: i for i, t in enumerate(tags)}
    F_, T_, I_, H_, L_, Y_ = _rows(items, index)
    fm, fs = F_.mean(0), F_.std(0) + 1e-6
    paired: Any = slice(None)  # the item rows that have a second reading: all, or a mask
    if twins is not None and all(tw is None for tw in twins):
        twins = None
    if twins is not None:
        if len(twins) != len(items) or any(tw is not None and tw.id != it.id for tw, it in zip(twins, items)):
            raise ValueError("twins must be the same items, in the same order (None: an item read in one dtype)")
        if any(tw is None for tw in twins):
            read = torch.tensor([tw is not None for tw, it in zip(twins, items) if it.input is not None], dtype=torch.bool)
            paired = read[I_]
        F2, T2, I2, H2, L2, _ = _rows([tw for tw in twins if tw is not None], index)
        if not (torch.equal(T2, T_[paired]) and torch.equal(F2, F_[paired])):
            raise ValueError("twins must be the same items with the same shortlists and evidence")
        Hs, Ls = torch.cat([H_[I_], H2[I2]]), torch.cat([L_, L2])
    else:
        Hs, Ls = H_[I_], L_
    # Statistics over (item, tag) rows, as the head has always been standardised.
    hm, hs = Hs.mean(0), Hs.std(0) + 1e-6
    del Hs
    lm_, ls = Ls.mean(0), Ls.std(0) + 1e-6
    Fn, Hn, Ln = (F_ - fm) / fs, (H_ - hm) / hs, (L_ - lm_) / ls
    Hn2, Ln2 = ((H2 - hm) / hs, (L2 - lm_) / ls) if twins is not None else (None, None)
    lines = line_l2 is not None and kind != "rules"
    n = len(Y_)
    a = torch.zeros(F_.shape[1], dtype=f64, requires_grad=kind != "model")
    a0 = torch.zeros(1, dtype=f64, requires_grad=kind != "model")
    b = torch.zeros(len(tags), dtype=f64, requires_grad=per_tag)
    W = torch.zeros(len(tags), H_.shape[1], dtype=f64, requires_grad=per_tag and kind != "rules")
    v = torch.zeros(L_.shape[1], dtype=f64, requires_grad=lines)
    params = [p for p in (a, a0, b, W, v) if p.requires_grad]
    opt = torch.optim.LBFGS(params, lr=1, max_iter=iterations, line_search_fn="strong_wolfe")
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    # Per-tag parameters only for tags with a gold label here: a tag no README is labelled
    # with (one a catalogue just added, say) is scored by the shared weights alone,
    # instead of learning from its absence that it never applies.
    labelled = torch.zeros(len(tags), dtype=f64)
    labelled[T_[Y_ > 0]] = 1.0

    def closure() -> Any:
        opt.zero_grad()
        bm, Wm = b * labelled, W * labelled[:, None]
        z = logits(Fn, T_, I_, Hn, Ln, a, a0, bm, Wm, v)
        if Hn2 is None:
            loss = bce(z, Y_)
        else:
            z2 = logits(Fn[paired], T_[paired], I2, Hn2, Ln2, a, a0, bm, Wm, v)
            loss = 0.5 * (bce(z, Y_) + bce(z2, Y_[paired])) + consistency * ((z[paired] - z2) ** 2).mean()
        loss = loss + penalty(b, W, v, state_l2, line_l2, n)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    f32 = torch.float32
    settings = {"state_l2": state_l2, "line_l2": line_l2 if lines else None, "bias_l2": BIAS_L2, "iterations": iterations}
    if twins is not None:
        settings["consistency"] = consistency
        if not isinstance(paired, slice):
            settings["second_dtype_items"] = int(H2.shape[0])  # the paired items with a shortlist
    if not per_tag:  # nothing of the training list's tags is kept
        settings["per_tag"] = False
        tags, b, W, labelled = [], b[:0], W[:0], labelled[:0]
    return DecisionHead(tags=list(tags), kind=kind, feature_mean=fm.tolist(), feature_std=fs.tolist(),
                        state_mean=hm.to(f32), state_std=hs.to(f32), a=a.detach().tolist(), a0=float(a0.detach()),
                        b=(b * labelled).detach().to(f32), W=(W * labelled[:, None]).detach().to(f32), threshold=threshold, settings=settings,
                        v=v.detach().to(f32) if lines else None, line_mean=lm_.to(f32) if lines else None,
                        line_std=ls.to(f32) if lines else None, line_layer=layer if lines else None, state_layer=state_layer)


def logits(F: Any, T: Any, I: Any, H: Any, L: Any, a: Any, a0: Any, b: Any, W: Any, v: Any) -> Any:
    """The head's scores ``a.f + a0 + b[t] + W[t].h + v.g(t)`` for rows of standardised
    evidence ``F``, tag indices ``T``, item indices ``I`` into the items' states ``H``
    and tag-name states ``L``. ``W[t].h`` comes from one (items x tags) product, as the
    head computes it when tagging (``W @ h``)."""
    return F @ a + a0 + b[T] + (H @ W.T)[I, T] + L @ v


def penalty(b: Any, W: Any, v: Any, state_l2: float, line_l2: float | None, rows: int) -> Any:
    """The fit's L2 on the per-tag biases and weights and the name-state weights, scaled
    by 100 / rows: the strengths in the grid mean the same for any data size."""
    return (BIAS_L2 * (b ** 2).sum() + state_l2 * (W ** 2).sum() + (line_l2 or 0.0) * (v ** 2).sum()) * 100 / rows


def answers(head: DecisionHead, items: Sequence[HeadItem], max_tags: int, thresholds: Sequence[float]) -> dict[float, list[list[str]]]:
    """The head's answers under each count threshold (the scores are computed once)."""
    out: dict[float, list[list[str]]] = {th: [] for th in thresholds}
    for it in items:
        scored = head.score(it.state, it.input) if it.input is not None else None
        for th in thresholds:
            out[th].append(head.choose(scored, max_tags, th) if scored else list(it.rules_pick))
    return out


@dataclass
class HeadCV:
    folds: int
    rows: list[dict[str, Any]]  # per setting: kind, state_l2, threshold and scores
    chosen: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "policies": self.rows, "chosen": self.chosen}


def _row(setting: dict[str, Any], m: Metrics) -> dict[str, Any]:
    return {**setting, "micro_p": round(m.micro_p, 4), "micro_r": round(m.micro_r, 4), "micro_f1": round(m.micro_f1, 4),
            "macro_f1": round(m.macro_f1, 4), "top1": round(m.top1, 4), "exact": round(m.exact, 4)}


def cross_validate(items: list[HeadItem], tags: list[str], folds: int, seed: int, max_tags: int, kind: str = "all",
                   log: Callable[[str], None] | None = None, twins: list[HeadItem | None] | None = None,
                   grid_kinds: Sequence[str] = KINDS, workers: int | None = None) -> HeadCV:
    """Out-of-fold answers for every grid point (and for the ablations), scored over all
    items; the best micro-F1 (then top-1) of ``kind`` is chosen. With ``twins`` (the
    items read in a second dtype) both readings are fitted together, each reading's
    out-of-fold answers are scored, a setting's score is their mean, and each row also
    says the share of items whose answers agree between the readings. ``workers``: fits
    run at once (default: the cores this process may use)."""
    fold = fold_of(len(items), folds, seed)
    gold = [it.gold for it in items]
    views = [items] if twins is None else [items, twins]
    rows = [_row({"kind": "rules only"}, score(gold, [it.rules_pick for it in items]))]
    grid = [(k, l2, ll) for k in grid_kinds for l2 in (STATE_L2 if k != "rules" else (0.0,))
            for ll in (LINE_L2S if k != "rules" else (None,))]
    best: tuple[tuple[float, float], dict[str, Any]] | None = None
    parts = [([j for j in range(len(items)) if fold[j] != f], [j for j in range(len(items)) if fold[j] == f]) for f in range(folds)]

    def fit_fold(job: tuple[str, float, float | None, int]) -> DecisionHead:
        k, l2, ll, f = job
        train = parts[f][0]
        return fit([items[j] for j in train], tags, k, l2, line_l2=ll,
                   twins=[twins[j] for j in train] if twins is not None else None)

    # Each fit runs on one thread (a function of its data alone), so the grid's fits run
    # side by side and give the same heads as in turn (engine/threads.py).
    with side_by_side(len(grid) * folds, workers) as pool:
        heads = pool.map(fit_fold, [(k, l2, ll, f) for k, l2, ll in grid for f in range(folds)])
        for k, l2, ll in grid:
            oof = [{th: [None] * len(items) for th in THRESHOLDS} for _ in views]
            for f in range(folds):
                head = next(heads)
                held = parts[f][1]
                for v, view in enumerate(views):
                    read = [j for j in held if view[j] is not None]  # a second reading may cover some items only
                    for th, got in answers(head, [view[j] for j in read], max_tags, THRESHOLDS).items():
                        for j, a in zip(read, got):
                            oof[v][th][j] = a
            for th in THRESHOLDS:
                setting = {"kind": k, "state_l2": l2, "line_l2": ll, "threshold": th}
                row, m = score_setting(setting, gold, [o[th] for o in oof])
                rows.append(row)
                if k == kind and (best is None or (m.micro_f1, m.top1) > best[0]):
                    best = ((m.micro_f1, m.top1), setting)
            if log:
                top = max((r for r in rows if r.get("kind") == k and r.get("state_l2") == l2 and r.get("line_l2") == ll), key=lambda r: r["micro_f1"])
                agree = f", answers agree across dtypes {top['agreement']:.3f}" if "agreement" in top else ""
                log(f"train: head {k}, state L2 {l2}, line L2 {ll}: best micro-F1 {top['micro_f1']:.3f} at threshold {top['threshold']}{agree}")
    assert best is not None
    return HeadCV(folds, rows, best[1])


def score_setting(setting: dict[str, Any], gold: Sequence[list[str]], readings: Sequence[Sequence[list[str]]]) -> tuple[dict[str, Any], Metrics]:
    """A grid point's row and metrics from its out-of-fold answers, one list per reading
    of the items: with two readings (dtypes) the mean of their scores, each one's
    micro-F1, and the share of items whose answers agree between them. When the second
    reading covers some items only (None elsewhere: ``twin_rows``), the setting is
    scored by the first reading, which covers all, and the second reading's micro-F1 and
    the agreement are over the items it covers."""
    if len(readings) > 1 and any(a is None for a in readings[1]):
        both = [j for j, a in enumerate(readings[1]) if a is not None]
        m = score(gold, readings[0])
        twin = score([gold[j] for j in both], [readings[1][j] for j in both])
        row = _row(setting, m)
        row["micro_f1_by_dtype"] = [round(m.micro_f1, 4), round(twin.micro_f1, 4)]
        row["agreement"] = round(sum(readings[0][j] == readings[1][j] for j in both) / max(1, len(both)), 4)
        row["second_dtype_items"] = len(both)
        return row, m
    ms = [score(gold, got) for got in readings]
    m = ms[0] if len(ms) == 1 else _mean_metrics(ms)
    row = _row(setting, m)
    if len(ms) > 1:
        row["micro_f1_by_dtype"] = [round(x.micro_f1, 4) for x in ms]
        row["agreement"] = round(sum(a == b for a, b in zip(readings[0], readings[1])) / len(gold), 4)
    return row, m


def _mean_metrics(ms: list[Metrics]) -> Metrics:
    """The field-wise mean of several readings' metrics (per-tag tables left out)."""
    from dataclasses import fields, replace

    mean = {f.name: sum(getattr(m, f.name) for m in ms) / len(ms) for f in fields(ms[0])
            if isinstance(getattr(ms[0], f.name), float)}
    return replace(ms[0], **mean)


def head_policy(shortlist: int, neighbours: int = 0) -> DecisionPolicy:
    """The policy a head adapter is used with: the head decides within the shortlist (the
    rules' best ``shortlist``, and the neighbours' best ``neighbours`` beyond them)."""
    return DecisionPolicy(mode="hybrid", shortlist=shortlist, prior_weight=0.0, count="model", decider="head", neighbours=neighbours)
