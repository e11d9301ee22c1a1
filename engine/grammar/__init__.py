"""The answer language, written out for other runtimes.

tagsmith's own decoder enforces the language with an index plus a no-repeat mask
(``engine/decision/constraint.py``). A user who constrains another runtime (Outlines'
own ``Generator``, vLLM or TGI structured outputs, llama.cpp grammars via a regex) can
take the same language from here: as the regular expression Outlines compiles, or as a
JSON Schema. Both are built from the exact names, so a name with a trailing space, a
quote or a regex metacharacter stays literal.
"""
from __future__ import annotations

import json
from typing import Any

from engine.decision.constraint import build_regex
from engine.taxonomy import Taxonomy

FORMATS = ("regex", "json-schema")
#: What no constraint engine enforces, said inside the schema itself.
UNIQUE_NOTE = ("uniqueItems is part of the answer's contract, but no structured-generation engine "
               "(Outlines, vLLM, XGrammar) enforces it while decoding: check for repeats after "
               "decoding, or use tagsmith, whose decoder masks them")


def answer_regex(taxonomy: Taxonomy, max_tags: int) -> str:
    """The compact JSON array of at most ``max_tags`` listed names, as a regex (repeats
    are not excluded: a regular language cannot say so compactly)."""
    return build_regex(taxonomy.names, max_tags)


def answer_schema(taxonomy: Taxonomy, max_tags: int) -> dict[str, Any]:
    """The answer's ``tags`` array as a JSON Schema (draft 2020-12)."""
    if max_tags < 1:
        raise ValueError("max_tags must be >= 1")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "array",
        "items": {"enum": list(taxonomy.names)},
        "maxItems": max_tags,
        "uniqueItems": True,
        "$comment": UNIQUE_NOTE,
    }


def render(taxonomy: Taxonomy, max_tags: int, fmt: str) -> str:
    """The language in ``fmt`` (one of ``FORMATS``), as printed by ``tagsmith grammar``."""
    if fmt == "regex":
        return answer_regex(taxonomy, max_tags)
    if fmt == "json-schema":
        return json.dumps(answer_schema(taxonomy, max_tags), ensure_ascii=False, indent=2)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
