"""Gold files, including the label files ``tagsmith label`` writes: one reader for
``train``, ``eval`` and ``rules learn``.

A label file is a log: one line per decision, appended as the annotator works, so a
changed decision is a new line for the same id. Read as gold, the last line of an id
wins (at the place where the id first appeared), and a skipped item is no label. A
plain gold file (one line per id, no ``skipped``) reads as it is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.io.records import load_jsonl


def load_gold(path: str | Path) -> list[dict[str, Any]]:
    """Labelled rows ``{id, text, tags, ...}`` of a gold or label file: the last decision
    of each id, skipped items left out."""
    last: dict[str, dict[str, Any]] = {}
    for r in load_jsonl(path):
        last[str(r.get("id"))] = r  # a dict keeps the place of the first insertion
    return [r for r in last.values() if not r.get("skipped")]
