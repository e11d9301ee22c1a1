"""Near-miss names with rapidfuzz: typos, spacing, and short forms.

``postgres`` ~ ``postgresql``, ``web assembly`` ~ ``webassembly``, ``kubernets`` ~
``kubernetes``. Exact hits are the phrase matcher's job; this adds only what it misses,
and only from the prose sections, where names are used rather than quoted in code.
"""
from __future__ import annotations

import re

from rapidfuzz import fuzz, process

from engine.lexicon.matchers import Hit, TermInfo

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]*[A-Za-z0-9+#]|[A-Za-z]{2,}")
MIN_LEN = 5
CUTOFF = 88.0
SHORT_CUTOFF = 94.0


def fuzzy_hits(text: str, spans: list[tuple[int, int]], vocab: list[tuple[str, TermInfo]], max_per_term: int = 3) -> list[Hit]:
    """Words and word pairs of ``text[spans]`` close to (but not equal to) a vocabulary name."""
    choices = [v for v, _ in vocab if len(v) >= MIN_LEN]
    infos = [i for v, i in vocab if len(v) >= MIN_LEN]
    if not choices:
        return []
    where: dict[str, list[tuple[int, int]]] = {}
    for s, e in spans:
        words = [(m.group().lower(), s + m.start(), s + m.end()) for m in _WORD.finditer(text[s:e])]
        for j, (w, a, b) in enumerate(words):
            grams = [(w, a, b)]
            if j + 1 < len(words):
                w2, _, b2 = words[j + 1]
                grams.append((w + " " + w2, a, b2))
            for g, ga, gb in grams:
                if len(g) >= MIN_LEN:
                    lst = where.setdefault(g, [])
                    if len(lst) < max_per_term:
                        lst.append((ga, gb))
    if not where:
        return []
    queries = list(where)
    matrix = process.cdist(queries, choices, scorer=fuzz.ratio, score_cutoff=CUTOFF, workers=1)
    hits: list[Hit] = []
    rows, cols = matrix.nonzero()
    for r, c in zip(rows.tolist(), cols.tolist()):
        q, name = queries[r], choices[c]
        if q == name:
            continue  # exact: the phrase matcher has it
        score = float(matrix[r, c]) / 100.0
        # Short words need a closer match ("openai" is not "openapi"), and a near
        # miss keeps its first letter ("the assistant" is not "home assistant").
        if (len(q) < 8 and score < SHORT_CUTOFF / 100.0) or q[0] != name[0]:
            continue
        info = infos[c]
        fuzzy_info = TermInfo(info.tag, "fuzzy", f"{q}~{name}", info.weight * score * 0.7, info.where)
        for a, b in where[q]:
            hits.append(Hit(fuzzy_info, a, b))
    return hits
