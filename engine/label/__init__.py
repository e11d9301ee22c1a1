"""``tagsmith label``: make the labels a catalogue needs, one README at a time.

A room beside ``serve/`` (its app pieces, the report's item renderer) and above the API:
the engine suggests, the annotator decides by keyboard, each decision is one durable
line of a label file that ``tagsmith train`` and ``eval`` read as gold.

- ``items``: what to label (any batch input; a batch run to review; a compare file);
- ``session``: the order (file, random, uncertain with flagged random picks, review),
  suggestions, decisions, running agreement;
- ``store``: the locked, append-only label file;
- ``compare``: agreement of two annotators and the items to adjudicate;
- ``page`` / ``app``: the page and its calls.
"""
from __future__ import annotations

from engine.label.compare import Comparison, compare_labels, write_disagreements
from engine.label.items import read_items, review_items
from engine.label.session import LabelItem, LabelSession, SessionSettings
from engine.label.store import Decision, LabelStore

__all__ = ["Comparison", "Decision", "LabelItem", "LabelSession", "LabelStore", "SessionSettings", "compare_labels",
           "read_items", "review_items", "write_disagreements"]
