"""The model card written beside a trained adapter: what made it, and how good it is.

``card.json`` is read by ``engine.decision.adapter`` (base model, taxonomy, policy);
``README.md`` says the same for people.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_card(out: Path, card: dict[str, Any]) -> None:
    (out / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    (out / "README.md").write_text(render_card(card), encoding="utf-8")


def is_chosen(row: dict[str, Any], cv: dict[str, Any]) -> bool:
    """Whether a cross-validation row holds the settings that were chosen."""
    return all(row.get(k) == v for k, v in cv["chosen"].items())


def chosen_row(card: dict[str, Any]) -> dict[str, Any] | None:
    """The cross-validated scores of the chosen settings (None without cross-validation)."""
    cv = card.get("cross_validation")
    return next((r for r in cv["policies"] if is_chosen(r, cv)), None) if cv else None


def _scores(r: dict[str, Any]) -> str:
    """A cross-validation row's scores as the last cells of a Markdown table row."""
    return " | ".join(f"{r[k]:.3f}" for k in ("micro_p", "micro_r", "micro_f1", "macro_f1", "top1", "exact")) + " |"


def render_card(card: dict[str, Any]) -> str:
    if card.get("head") is not None and not card.get("lora"):
        return render_head_card(card)
    tax, data, lora, pol = card["taxonomy"], card["data"], card["lora"], card["policy"]
    lines = [
        f"# {card['name']}: a tagsmith decision adapter",
        "",
        f"LoRA adapter for **{card['base_model']}**, trained by `tagsmith train` to choose tags from the rules' shortlist "
        "in exactly the prompt and answer format of the constrained decoder. It changes what the model prefers, never "
        "what it can say: the Outlines constraint still decides which answers exist.",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{card['base_model']}` |",
        f"| taxonomy | {len(tax['names'])} tags, fingerprint `{tax['fingerprint']}` |",
        f"| data | `{data['file']}`: {data['items']} items ({data['examples']} with a gold tag on the shortlist), sha256 `{data['sha256']}`"
        + (f", {data['fraction']:.0%} of the file" if data.get("fraction", 1) < 1 else "") + " |",
        f"| LoRA | rank {lora['rank']}, alpha {lora['alpha']}, layers {lora['adapted_layers'][0]}-{lora['adapted_layers'][-1]}, "
        f"{lora['trainable_params']:,} parameters |" if lora.get("adapted_layers") else f"| LoRA | rank {lora['rank']}, all layers |",
        f"| training | {lora['epochs']} epochs, lr {lora['lr']}, seed {lora['seed']}, {card['training']['seconds']:.0f} s on "
        f"{card['training']['device']}, peak RSS {card['training']['peak_rss_mb']:.0f} MiB |",
        f"| policy | shortlist {pol['shortlist']}, prior weight {pol['prior_weight']}, count by {pol['count']} |",
        "",
    ]
    cv = card.get("cross_validation")
    if cv:
        lines += [f"## Cross-validation on the training data ({cv['folds']} folds, adapter retrained per fold)", "",
                  "| prior weight | count | micro-P | micro-R | micro-F1 | macro-F1 | top-1 | exact |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in cv["policies"]:
            mark = " **(chosen)**" if is_chosen(r, cv) else ""
            lines.append(f"| {r['prior_weight']} | {r['count']}{mark} | {_scores(r)}")
        lines.append("")
    lines += ["Reproduce: `" + card["command"] + "`", ""]
    return "\n".join(lines)


def _dtypes(tr: dict[str, Any]) -> str:
    dts = tr.get("dtypes") or ([tr["dtype"]] if tr.get("dtype") else [])
    return f" in {' and '.join(dts)}" if dts else ""


_KIND_LABEL = {"rules only": "rules only (no training)", "rules": "head on evidence only (no model states)",
               "model": "head on model states only (the model alone in the shortlist)", "all": "head on evidence + model states"}


def render_head_card(card: dict[str, Any]) -> str:
    tax, data, head, tr = card["taxonomy"], card["data"], card["head"], card["training"]
    st = head.get("settings", {})
    lines = [
        f"# {card['name']}: a tagsmith decision adapter (decision head)",
        "",
        f"A decision head for **{card['base_model']}**, trained by `tagsmith train`: a regularised logistic read-out, over the "
        "rules' shortlist, of the rules' evidence and the model's hidden states from the decoder's own prefill ("
        + (f"layer {head['state_layer']}'s output" if head.get("state_layer") else "the final state")
        + " averaged over the item's prompt tokens"
        + (f"; layer {head['line_layer']}'s averaged over each tag's name in its shortlist line" if head.get("line_layer") else "")
        + "). It chooses the tags and how many; the constrained decoder writes that answer, so the Outlines constraint "
        "still decides which answers exist.",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{card['base_model']}` (weights unchanged) |",
        f"| taxonomy | {len(tax['names'])} tags, fingerprint `{tax['fingerprint']}` |",
        f"| data | `{data['file']}`: {data['items']} items, sha256 `{data['sha256']}`"
        + (f", {data['fraction']:.0%} of the file" if data.get("fraction", 1) < 1 else "") + " |",
        f"| head | {head['kind']}: {len(head['features'])} evidence features, state width {head['state_dim']}, "
        f"state L2 {st.get('state_l2')}, name-state L2 {st.get('line_l2')}, bias L2 {st.get('bias_l2')}, count threshold {head['threshold']}"
        + (f", dtype consistency {st['consistency']}" if st.get("consistency") else "") + " |",
        f"| prompt | {card['prompt']['excerpt_tokens']}-token README excerpt, the rules' top-{card['policy']['shortlist']} shortlist"
        + (f" and the neighbours' best {card['policy']['neighbours']} beyond it" if card["policy"].get("neighbours") else "") + " |",
        *([f"| neighbours | the {card['neighbours']['items']} labelled READMEs as hashed term vectors (`{card['neighbours']['file']}`); "
           f"the {card['neighbours']['k']} most like an item vote for their tags, an evidence feature of the head; cross-fitted "
           f"in {card['neighbours']['cross_fitted_folds']} folds for training |"] if card.get("neighbours") else []),
        f"| training | {tr['seconds']:.0f} s on {tr['device']}" + _dtypes(tr)
        + f" ({tr['states_seconds']:.0f} s of model states), peak RSS {tr['peak_rss_mb']:.0f} MiB |",
        "",
    ]
    cv = card.get("cross_validation")
    if cv:
        best: dict[str, dict[str, Any]] = {}
        for r in cv["policies"]:
            k = r["kind"]
            if k not in best or (r["micro_f1"], r["top1"]) > (best[k]["micro_f1"], best[k]["top1"]):
                best[k] = r
        lines += [f"## Cross-validation on the training data ({cv['folds']} folds, head refitted per fold)", "",
                  "Best setting of each kind (every grid point is in `card.json`):", "",
                  "| decider | state L2 | name-state L2 | threshold | micro-P | micro-R | micro-F1 | macro-F1 | top-1 | exact |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for k, r in best.items():
            mark = " **(chosen)**" if is_chosen(r, cv) else ""
            lines.append(f"| {_KIND_LABEL.get(k, k)}{mark} | {r.get('state_l2', '–')} | {r.get('line_l2') or '–'} | {r.get('threshold', '–')} | {_scores(r)}")
        lines.append("")
        chosen = chosen_row(card)
        if chosen and "agreement" in chosen:
            dts = " / ".join(tr.get("dtypes") or [])
            f1s = " / ".join(f"{x:.3f}" for x in chosen["micro_f1_by_dtype"])
            lines += [f"Scores are the mean over the states read in {dts} (micro-F1 {f1s}); out-of-fold answers are "
                      f"identical between them for {chosen['agreement']:.1%} of items.", ""]
    lines += _any_list_lines(card.get("any_list"))
    lines += ["Reproduce: `" + card["command"] + "`", ""]
    return "\n".join(lines)


def _any_list_lines(entry: dict[str, Any] | None) -> list[str]:
    """The card's section on the any-list head (``engine/training/any_list.py``)."""
    if not entry:
        return []
    view, st = entry["view"], entry["head"].get("settings", {})
    lines = ["## The any-list head: for tag lists this adapter did not learn", "",
             f"Shared weights only (no tag of its own): {len(entry['head']['features'])} evidence weights and layer "
             f"{entry['head']['line_layer']}'s state of each tag's name in its shortlist line (name-state L2 {st.get('line_l2')}, "
             f"count threshold {entry['head']['threshold']}), learned on the labels seen as a list of {view['tags']} tags "
             f"({view['with_description']} with a description, {view['with_aliases']} with aliases, "
             f"{view.get('with_rules', 0)} with the rule pack's rules): it decides for a list the adapter does not cover that is "
             f"described as that one (most tags with a description or aliases, or most without), over the rules' "
             f"top-{entry['policy']['shortlist']} shortlist (`{entry['head']['file']}`, {entry['seconds']:.0f} s of training).", ""]
    cv = entry.get("cross_validation")
    if cv:
        rules = cv["policies"][0]
        chosen = next((r for r in cv["policies"][1:] if is_chosen(r, cv)), None)
        if chosen:
            lines += [f"Cross-validation over items ({cv['folds']} folds) and tags (two halves; each half scored by heads fitted "
                      f"without its tags; READMEs with a gold tag among them): micro-F1 {chosen['micro_f1']:.3f}, top-1 {chosen['top1']:.3f} on tags it never saw "
                      f"(rules alone {rules['micro_f1']:.3f} / {rules['top1']:.3f}).", ""]
    return lines
