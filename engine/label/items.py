"""What a labelling session walks: anything ``tagsmith batch`` reads (JSONL, CSV, a
folder of READMEs, ``-``), a batch run's answers joined to their input (review), or a
``--compare`` file of disagreements (adjudication).

A bad record is reported (file, line, why) and left out; the session goes on with the
rest, as the batch job does.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from engine.errors import E_INPUT, TagsmithError
from engine.io.records import load_jsonl, read_records
from engine.label.session import LabelItem
from engine.taxonomy import Taxonomy


def _side_fields(source: str) -> dict[str, dict]:
    """``annotators`` of each id of a JSONL input (a ``--compare`` file), read leniently:
    lines the record reader reports as bad are skipped here."""
    out: dict[str, dict] = {}
    if source == "-" or Path(source).is_dir() or source.lower().endswith(".csv"):
        return out
    with open(source, "rb") as fh:
        for raw in fh:
            try:
                row = json.loads(raw)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("annotators"), dict):
                out[str(row.get("id"))] = row["annotators"]
    return out


def read_items(source: str, taxonomy: Taxonomy, fmt: str = "auto", id_col: str = "id", text_col: str = "text",
               warn: Callable[[str], None] = print) -> list[LabelItem]:
    items: list[LabelItem] = []
    seen: set[str] = set()
    names = set(taxonomy.names)
    for rec in read_records(source, fmt, id_col, text_col):
        problem = rec.error or (f"duplicate id {rec.id!r}" if rec.id in seen else None)
        if problem:
            warn(f"tagsmith label: {source}:{rec.where}: {problem}; left out")
            continue
        seen.add(rec.id)
        items.append(LabelItem(rec.id, rec.text))
    side = _side_fields(source)
    for it in items:
        if it.id in side:
            it.annotators = {str(k): [t for t in v if t in names] for k, v in side[it.id].items() if isinstance(v, list)}
    return items


def review_items(answers: str, source: str, taxonomy: Taxonomy, warn: Callable[[str], None] = print, **read: str) -> list[LabelItem]:
    """The answers of ``tagsmith batch`` (``-o OUT.jsonl``) with their READMEs from its input."""
    if not Path(answers).is_file():
        raise TagsmithError(E_INPUT, "batch answers not found", file=answers)
    texts = {it.id: it.text for it in read_items(source, taxonomy, warn=warn, **read)}
    names = set(taxonomy.names)
    out = []
    for no, row in enumerate(load_jsonl(answers), 1):
        rid = str(row.get("id"))
        tags = row.get("tags")
        if not isinstance(tags, list) or any(t not in names for t in tags):
            warn(f"tagsmith label: {answers}:{no}: tags missing or not in the tag list; left out")
            continue
        if rid not in texts:
            warn(f"tagsmith label: {answers}:{no}: id {rid!r} is not in {source}; left out")
            continue
        out.append(LabelItem(rid, texts[rid], answer=list(tags)))
    return out
