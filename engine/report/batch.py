"""Assemble a batch report: answers + explanations (+ texts, + gold) -> one dict.

Renderers (``html.py``, ``markdown.py``) only format this structure, so the two
outputs always say the same thing.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from engine.io.records import load_jsonl
from engine.report.metrics import score

LOW_CONFIDENCE = 0.5


def _safe(rid: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in rid or "none")


def report_item(rid: str, tags: list[str], exp: dict[str, Any] | None, text: str | None = None, gold: list[str] | None = None) -> dict[str, Any]:
    """One item of a report: its answer, confidences, explanation, text and gold (the
    structure ``html.render_item`` draws; the service's page draws its answers with it)."""
    conf = {c["tag"]: c["confidence"] for c in (exp or {}).get("chosen", [])}
    return {
        "id": rid,
        "tags": list(tags),
        "confidence": conf,
        "explanation": exp,
        "text": text,
        "gold": gold,
        "low_confidence": not tags or any(v < LOW_CONFIDENCE for v in conf.values()),
        "wrong": gold is not None and set(gold) != set(tags),
    }


def build_report(answers_path: str, explain_dir: str, gold_path: str | None = None, input_path: str | None = None) -> dict[str, Any]:
    answers = load_jsonl(answers_path)
    texts: dict[str, str] = {}
    gold: dict[str, list[str]] = {}
    for path, is_gold in ((input_path, False), (gold_path, True)):
        if path:
            for r in load_jsonl(path):
                rid = str(r.get("id"))
                if isinstance(r.get("text"), str):
                    texts.setdefault(rid, r["text"])
                if is_gold:
                    gold[rid] = list(r.get("tags", []))
    items = []
    settings: dict[str, Any] = {}
    for a in answers:
        rid = str(a["id"])
        exp_file = Path(explain_dir) / f"{_safe(rid)}.json"
        exp = json.loads(exp_file.read_text(encoding="utf-8")) if exp_file.exists() else None
        if exp and not settings:
            settings = {k: exp.get(k) for k in ("mode", "model", "pack", "taxonomy", "max_tags")}
        items.append(report_item(rid, a.get("tags", []), exp, texts.get(rid), gold.get(rid) if gold else None))
    dist = Counter(t for it in items for t in it["tags"])
    report: dict[str, Any] = {
        "settings": settings,
        "n": len(items),
        "distribution": dist.most_common(),
        "no_tags": [it["id"] for it in items if not it["tags"]],
        "low_confidence": [it["id"] for it in items if it["low_confidence"] and it["tags"]],
        "items": items,
        "gold": None,
    }
    if gold:
        scored = [it for it in items if it["gold"] is not None]
        m = score([it["gold"] for it in scored], [it["tags"] for it in scored])
        confusions: Counter[tuple[str, str]] = Counter()
        for it in scored:
            missed = [t for t in it["gold"] if t not in it["tags"]]
            extra = [t for t in it["tags"] if t not in it["gold"]]
            for g in missed:
                for p in extra:
                    confusions[(g, p)] += 1
        report["gold"] = {
            "metrics": m.to_dict(),
            "confusions": [{"gold": g, "predicted": p, "count": c} for (g, p), c in confusions.most_common(15)],
            "wrong": [it["id"] for it in scored if it["wrong"]],
        }
    return report
