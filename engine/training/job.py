"""``tagsmith train``: labelled READMEs in, an adapter folder with its card out.

Default (``train_head``): a decision head. Load the bare base model; run every item
through the tagging path and one prefill to get its shortlist, evidence and pooled
state; choose the head's settings by k-fold cross-validation; fit on everything; save
the head and its card. Minutes on a CPU, most of it the prefills.

``--lora`` (``train``): LoRA on the model's top layers. Build examples in the
decoder's format; cache the frozen layers' output once; choose the decision policy by
k-fold cross-validation (retraining per fold); train on everything; save the adapter
and its card. About 35 minutes on a 2-core CPU for 419 items.
"""
from __future__ import annotations

import gc
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

from engine.api import EXCERPT_TOKENS, Tagger, as_taxonomy
from engine.decision.policy import DecisionPolicy
from engine.errors import E_OPTION, E_TRAIN, TagsmithError
from engine.io.labels import load_gold
from engine.neighbours import ADDS as NEIGHBOUR_TAGS
from engine.training.card import write_card
from engine.training.crossval import cross_validate, policy_grid
from engine.training.examples import build_examples
from engine.training.lora import LoraSettings, LoraTrainer

#: Shortlist the adapter reads: the rules' top 8 hold ~89% of gold tags on train.
SHORTLIST = 8
#: With a learned pack the top 8 hold only ~80% (12: ~86%): 5-fold CV on train with
#: the synonym list said micro-F1 0.654 / top-1 0.804 with 12, 0.641 / 0.801 with 8.
LEARNED_SHORTLIST = 12
#: Policy used when no cross-validation runs (folds < 2).
UNTUNED = {"prior_weight": 1.0, "count": "model"}


def subsample(rows: list[dict[str, Any]], fraction: float, seed: int) -> list[dict[str, Any]]:
    """A seeded share of the rows, in file order (for learning curves)."""
    if not 0 < fraction <= 1:
        raise TagsmithError(E_OPTION, f"--fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), max(1, round(len(rows) * fraction))))
    return [rows[i] for i in keep]


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train(gold: str | Path, taxonomy: Any, out: str | Path, *, model: str | None = None, device: str | None = None,
          rules: str | None = None, settings: LoraSettings = LoraSettings(), folds: int = 3, shortlist: int = SHORTLIST,
          max_tags: int = 3, excerpt_tokens: int | None = None, fraction: float = 1.0, progress: bool = False,
          log: Callable[[str], None] | None = None, command: str = "") -> dict[str, Any]:
    """Train an adapter on ``gold`` (JSONL with id, text, tags) and write it to ``out``."""
    import peft
    import torch
    import transformers

    from engine.decision.model import DEFAULT_MODEL, load_model

    log = log or (lambda m: print(m, file=sys.stderr))
    t_start = time.perf_counter()
    out, tax, rows = _open_job(gold, taxonomy, out, fraction, settings.seed, folds)
    torch.manual_seed(settings.seed)
    excerpt_tokens = excerpt_tokens or EXCERPT_TOKENS
    # LoRA trains in float32 on a CPU (bfloat16 there has no mixed precision to keep
    # the gradients' small steps); a GPU trains in bfloat16.
    on_gpu = device.startswith("cuda") if device else torch.cuda.is_available()
    lm = load_model(model, device, adapter=None, dtype=None if on_gpu else "float32")
    base = DecisionPolicy(mode="hybrid", shortlist=shortlist, **UNTUNED)
    # One tagger for examples and cross-validation (its lexicon and constraint compile
    # once). A batch holds two items under every candidate policy, which share a prefill.
    tagger = Tagger(rules, mode="hybrid", lm=lm, policy=base, excerpt_tokens=excerpt_tokens, batch_size=2 * len(policy_grid(base)))
    exset = build_examples(tagger, rows, tax, max_tags, source=str(gold), constraint=tagger.compiler.get(tax, max_tags))
    log(f"train: {len(rows)} items, {len(exset.examples)} with a gold tag on the top-{shortlist} shortlist")
    trainer = LoraTrainer(lm.model, settings, probe=exset.examples[0].prompt_ids[:64])
    log(f"train: LoRA r={settings.rank} on layers {trainer.adapted_layers or 'all'} "
        f"({trainer.trainable_params:,} parameters; frozen layers cached: {trainer.split.split})")
    cached = trainer.cache(exset.examples, progress=progress)
    cv = None
    policy = base
    if folds:
        cv = cross_validate(trainer, tagger, rows, exset, cached, tax, base, folds=folds, max_tags=max_tags, seed=settings.seed,
                            progress=progress, log=log)
        policy = cv.best
        log(f"train: cross-validation chose {policy.settings()}")
    trainer.reset()
    t0 = time.perf_counter()
    losses = trainer.fit(exset.examples, cached, progress=progress)
    fit_secs = time.perf_counter() - t0
    log(f"train: final fit {fit_secs:.0f} s, epoch losses {', '.join(f'{x:.3f}' for x in losses)}")
    base_name = model or DEFAULT_MODEL
    trainer.save(out, base_name)
    card = _card_common(out, base_name, tax, gold, rows, tagger.pack, excerpt_tokens, max_tags, fraction)
    card["data"].update(examples=len(exset.examples), off_shortlist=len(exset.skipped))
    card.update({
        "policy": policy.settings(),
        "lora": {**settings.to_dict(), "adapted_layers": trainer.adapted_layers,
                 "trainable_params": trainer.trainable_params},
        "training": {"epoch_losses": [round(x, 4) for x in losses], "seconds": round(time.perf_counter() - t_start, 1),
                     "final_fit_seconds": round(fit_secs, 1), "device": str(lm.device), "peak_rss_mb": round(peak_rss_mb(), 1),
                     "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}},
        "cross_validation": cv.to_dict() if cv else None,
        "command": command or f"tagsmith train {gold} -o {out}",
    })
    write_card(out, card)
    return card


def check_gold(path: str) -> None:
    if not Path(path).is_file():
        raise TagsmithError(E_TRAIN, "gold file not found", file=path)


def _open_job(gold: str | Path, taxonomy: Any, out: str | Path, fraction: float, seed: int, folds: int) -> tuple[Path, Any, list[dict[str, Any]]]:
    """The output folder (must be new or empty), the taxonomy and the (sub-sampled) rows."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise TagsmithError(E_OPTION, "output folder exists and is not empty", file=str(out))
    tax = as_taxonomy(taxonomy)
    rows = subsample(load_gold(gold), fraction, seed)
    if folds == 1 or folds < 0 or (folds and folds > len(rows)):
        raise TagsmithError(E_OPTION, f"--folds must be 0 (no cross-validation) or 2..{len(rows)}, got {folds}")
    return out, tax, rows


def _card_common(out: Path, base_name: str, tax: Any, gold: str | Path, rows: list[dict[str, Any]], pack: Any,
                 excerpt_tokens: int, max_tags: int, fraction: float) -> dict[str, Any]:
    from engine.io.records import data_hash

    return {
        "name": out.name,
        "base_model": base_name,
        "taxonomy": {"fingerprint": tax.fingerprint(), "names": tax.names},
        "prompt": {"excerpt_tokens": excerpt_tokens, "max_tags": max_tags, "rules_pack": pack.digest},
        "data": {"file": os.path.basename(str(gold)), "sha256": data_hash(rows), "items": len(rows), "fraction": fraction},
    }


def train_head(gold: str | Path, taxonomy: Any, out: str | Path, *, model: str | None = None, device: str | None = None,
               rules: str | None = None, folds: int = 5, seed: int = 0, shortlist: int | None = None, kind: str = "all",
               max_tags: int = 3, excerpt_tokens: int | None = None, fraction: float = 1.0, progress: bool = False,
               log: Callable[[str], None] | None = None, command: str = "", dtype: str | None = "both",
               ablations: bool = False, learn_rules: str = "auto", neighbours: int | None = NEIGHBOUR_TAGS,
               any_list: Any = None, bridge: bool = True, twin_share: float | None = None) -> dict[str, Any]:
    """Train a decision head on ``gold`` (JSONL with id, text, tags) and write it to ``out``
    (prompts with ``excerpt_tokens`` README tokens, default ``head.EXCERPT_TOKENS``).

    ``dtype="both"`` (default) reads every item's states in bfloat16, and a share of them
    (``twin_share``, default ``head.TWIN_SHARE``) in float32 too, and fits the head on
    both with a consistency term, so its answers agree across machines
    (``engine/training/head.py``); a single dtype reads and fits that one only.
    ``ablations`` also cross-validates the head on evidence only and on states only.
    ``learn_rules`` (``auto``, ``yes``, ``no``): learn a rule pack from the labels first,
    cross-fitted (``engine/training/packs.py``), and train the head on its evidence;
    ``auto`` does when the base pack has rules for under half of the list's tags.
    ``shortlist``: rule candidates the head chooses from (default ``SHORTLIST``, or
    ``LEARNED_SHORTLIST`` with a learned pack). ``neighbours``: the adapter keeps an
    index of the labelled READMEs (``engine/neighbours``, cross-fitted like the pack);
    their vote is an evidence feature of the head and adds its best ``neighbours`` tags
    to the shortlist (None: no index). ``any_list``: also train the head the adapter
    uses for lists it does not cover (``engine/training/any_list.py``) on this view of
    the labels: a tag list with the same names and, best, their descriptions and aliases
    (``""``: the training list as given), half of its tags with the base pack's rules
    (bridged; never the learned ones); None: none. ``bridge``: the list's tags the
    rule pack has no rule for get the pack's rules for the concepts they name
    (``engine/bridge``), as when tagging, and learned terms extend those lent rules."""
    import torch
    import transformers

    from engine.decision.model import DEFAULT_MODEL, load_model
    from engine.bridge import Bridged, bridge as bridge_pack
    from engine.rules import load_pack
    from engine.training import head as heads
    from engine.training import packs
    from engine.mining import terms_of
    from engine.neighbours import fold_indexes, index_rows
    from engine.training.examples import gold_tags

    log = log or (lambda m: print(m, file=sys.stderr))
    t_start = time.perf_counter()
    out, tax, rows = _open_job(gold, taxonomy, out, fraction, seed, folds)
    golds = [gold_tags(r, tax, f"{gold}: record {r.get('id')!r}") for r in rows]
    excerpt_tokens = excerpt_tokens or heads.EXCERPT_TOKENS
    dtypes = heads.TRAIN_DTYPES if dtype == "both" else (dtype,)
    twin_share = heads.TWIN_SHARE if twin_share is None else twin_share
    if not 0 < twin_share <= 1:
        raise TagsmithError(E_OPTION, f"--twin-share must be in (0, 1], got {twin_share}")
    if learn_rules not in ("auto", "yes", "no"):
        raise TagsmithError(E_OPTION, f"--learn-rules must be auto, yes or no, got {learn_rules!r}")
    if neighbours is not None and neighbours < 0:
        raise TagsmithError(E_OPTION, f"--neighbours must be >= 0, got {neighbours}")
    view = _any_list_view(any_list, tax)
    base = load_pack(rules)
    fold = packs.fold_of(len(rows), folds or packs.FOLDS, seed)
    learned = None
    bridged = bridge_pack(base, tax) if bridge else Bridged(base, ())
    # Learn when the pack knows under half of the list by its own names; the learned
    # terms then extend what the bridge lends (5-fold CV on train, 817 READMEs: synonym
    # list 0.720 lent rules alone -> 0.727 with learned terms on them; codes 0.677 -> 0.713).
    wants = packs.wants_learning(learn_rules, base, tax)
    docs = terms_of(rows, progress) if wants or neighbours is not None else None
    if wants:
        learned = packs.learn_packs(rows, golds, tax, base, rules, out, fold, folds or packs.FOLDS, progress, log, docs=docs,
                                    lent=bridged)
    shortlist = shortlist or (LEARNED_SHORTLIST if learned else SHORTLIST)
    near = fold_indexes(rows, golds, [d.terms for d in docs], fold) if neighbours is not None else None
    # Each README's evidence from the pack learned, and the neighbours indexed, without
    # its fold (or the base pack and no neighbours).
    per_fold = learned is not None or near is not None
    groups = {f: [j for j in range(len(rows)) if fold[j] == f] for f in sorted(set(fold))} if per_fold else {0: list(range(len(rows)))}
    # Each README is proposed, voted on and prompted once (with its fold's pack and index),
    # then read by the model in every dtype: the prompt depends on the tokenizer alone.
    lm = load_model(model, device, adapter=None, dtype=dtypes[0])
    layer, state_layer = heads.line_layer(lm.model), heads.state_layer(lm.model)
    props: list[Any] = [None] * len(rows)
    for f, idx in groups.items():
        tagger = Tagger(learned.by_fold[f] if learned else base, mode="hybrid", lm=lm,
                        policy=heads.head_policy(shortlist, neighbours or 0), excerpt_tokens=excerpt_tokens,
                        neighbours=near[f] if near is not None else None, bridge=bridge)
        for j, p in zip(idx, tagger.prepare(tagger.propose([rows[j] for j in idx], tax), tax, max_tags)):
            props[j] = p
    constraint = tagger.compiler.get(tax, max_tags)
    tagger = None
    log(f"train: {len(rows)} items proposed and prompted after {time.perf_counter() - t_start:.0f} s")
    readings: list[list[Any]] = []
    for dt in dtypes:
        lm = lm or load_model(model, device, adapter=None, dtype=dt)  # one model at a time
        # The first dtype reads every item; the second a seeded share of them (``twin_rows``).
        read = heads.twin_rows(len(props), twin_share, seed) if readings else None
        readings.append(heads.read_states(lm, constraint, props, golds, progress=progress, layer=layer, state_layer=state_layer,
                                          only=read))
        log(f"train: {len(props) if read is None else len(read)} items, model states in {lm.dtype} "
            f"after {time.perf_counter() - t_start:.0f} s")
        ran_on, lm = str(lm.device), None
        gc.collect()
    items, twins = readings[0], (readings[1] if len(readings) > 1 else None)
    states_secs = time.perf_counter() - t_start
    # The head is fitted from the states alone: the model left before the fits start.
    cv = None
    chosen = {"kind": kind, "state_l2": 0.3, "line_l2": heads.LINE_L2, "threshold": 0.4}
    if folds:
        cv = heads.cross_validate(items, tax.names, folds, seed, max_tags, kind=kind, log=log, twins=twins,
                                  grid_kinds=heads.KINDS if ablations else (kind,))
        chosen = cv.chosen
        log(f"train: cross-validation chose {chosen}")
    t0 = time.perf_counter()
    head = heads.fit(items, tax.names, chosen["kind"], chosen["state_l2"], chosen["threshold"], line_l2=chosen["line_l2"],
                     layer=layer, twins=twins, state_layer=state_layer)
    fit_secs = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    base_name = model or DEFAULT_MODEL
    card = _card_common(out, base_name, tax, gold, rows, learned.final if learned else bridged.pack, excerpt_tokens, max_tags, fraction)
    card.update({
        "policy": heads.head_policy(shortlist, neighbours or 0).settings(),
        "head": head.save(out),
        "training": {"seconds": round(time.perf_counter() - t_start, 1), "states_seconds": round(states_secs, 1),
                     "final_fit_seconds": round(fit_secs, 2), "device": ran_on,
                     "dtypes": list(dtypes), **({"twin_share": twin_share} if len(dtypes) > 1 else {}),
                     "peak_rss_mb": round(peak_rss_mb(), 1),
                     "seed": seed, "versions": {"torch": torch.__version__, "transformers": transformers.__version__}},
        "cross_validation": cv.to_dict() if cv else None,
        "command": command or f"tagsmith train {gold} -o {out}",
    })
    if near is not None:
        final = index_rows(rows, golds, [d.terms for d in docs])
        card["neighbours"] = {**final.save(out), "cross_fitted_folds": folds or packs.FOLDS}
    if bridged.links:  # the tags that took the base pack's rules for the concepts they name
        card["bridge"] = [{"tag": lk.tag, "concept": lk.concept, "score": lk.score} for lk in bridged.links]
    if learned:
        card["rules"] = {"pack": packs.PACK_DIR, "digest": learned.final.digest, "extends": learned.extends,
                         "terms": learned.terms, "cross_fitted_folds": folds or packs.FOLDS}
    if view is not None:
        from engine.training.any_list import train_any_list

        del items, twins, readings
        gc.collect()
        card["any_list"] = train_any_list(rows, golds, view, bridged.pack, out, model=model, device=device, dtypes=dtypes, folds=folds,
                                          seed=seed, max_tags=max_tags, excerpt_tokens=excerpt_tokens, progress=progress, log=log,
                                          twin_share=twin_share)
        card["training"].update(seconds=round(time.perf_counter() - t_start, 1), peak_rss_mb=round(peak_rss_mb(), 1))
    write_card(out, card)
    return card


def _any_list_view(spec: Any, tax: Any) -> Any:
    """The taxonomy an any-list head learns from (``train_head``'s ``any_list``): None,
    the training list itself (``""``), or a list with the same names."""
    if spec is None:
        return None
    if spec == "":
        return tax
    view = as_taxonomy(spec)
    if view.names != tax.names:
        differ = sorted(set(tax.names) ^ set(view.names))
        raise TagsmithError(E_OPTION, "the any-list view must list the training list's tag names, in its order"
                            + (f" (differs in {', '.join(repr(n) for n in differ[:5])})" if differ else " (order differs)"),
                            file=str(spec) if isinstance(spec, (str, Path)) else None, field="any_list")
    return view
