"""Two annotators' label files side by side: how far they agree, and the items to
adjudicate (a file ``tagsmith label`` opens, showing both answers).

Measured over the ids both labelled (skips are no label): micro-F1 (symmetric: twice
the shared tags over all tags given), exact set, and same first tag (the main tag).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.io.labels import load_gold


@dataclass
class Comparison:
    names: tuple[str, str]  # the annotators (their ``annotator`` field, else the file's name)
    both: int  # ids both labelled
    only: tuple[int, int]  # ids only one of them labelled
    micro_f1: float
    exact: float
    same_first: float
    disagreements: list[dict[str, Any]] = field(default_factory=list)  # {id, text, annotators}

    def format(self) -> str:
        a, b = self.names
        return (f"{a} vs {b}: {self.both} items labelled by both ({self.only[0]} only by {a}, {self.only[1]} only by {b})\n"
                f"micro-F1 {self.micro_f1:.3f}  exact set {self.exact:.3f}  same first tag {self.same_first:.3f}  "
                f"to adjudicate {len(self.disagreements)}")


def _name(rows: list[dict[str, Any]], path: str | Path) -> str:
    names = {r.get("annotator") for r in rows if r.get("annotator")}
    return names.pop() if len(names) == 1 else Path(path).stem


def compare_labels(path_a: str | Path, path_b: str | Path) -> Comparison:
    rows_a, rows_b = load_gold(path_a), load_gold(path_b)
    na, nb = _name(rows_a, path_a), _name(rows_b, path_b)
    if na == nb:
        na, nb = f"{na} (1)", f"{nb} (2)"
    a = {str(r["id"]): r for r in rows_a}
    b = {str(r["id"]): r for r in rows_b}
    common = [rid for rid in a if rid in b]
    shared = given = exact = first = 0
    out = []
    for rid in common:
        ta, tb = list(a[rid].get("tags", [])), list(b[rid].get("tags", []))
        shared += len(set(ta) & set(tb))
        given += len(ta) + len(tb)
        same = set(ta) == set(tb)
        same_first = ta[:1] == tb[:1]
        exact += same
        first += same_first
        if not (same and same_first):
            out.append({"id": rid, "text": a[rid].get("text") or b[rid].get("text") or "", "annotators": {na: ta, nb: tb}})
    n = len(common)
    return Comparison((na, nb), n, (len(a) - n, len(b) - n), round(2 * shared / given, 4) if given else 1.0,
                      round(exact / n, 4) if n else 0.0, round(first / n, 4) if n else 0.0, out)


def write_disagreements(cmp: Comparison, path: str | Path) -> None:
    Path(path).write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in cmp.disagreements), encoding="utf-8")
