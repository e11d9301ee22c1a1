"""Parse a raw request: description, then the instruction, skeleton and tag list.

The requester's format (see ``fixtures/request-example.txt``)::

    <description>", Assign "at most 3 tags" to the expected json: {"id":"4436","tags":[]}
    "only from the tags list I provide: [{"id":77,"name":"3d"}, ...]" returns me the "expected json"

The parser anchors on the *last* instruction in the text (a README may itself
mention "at most"), reads JSON values with a real JSON decoder (so quoting and line
breaks inside them are fine) and keeps the skeleton's keys in their order.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from engine.errors import E_EMPTY_TEXT, E_MAX_TAGS, E_REQUEST, E_TAXONOMY, TagsmithError
from engine.taxonomy import Taxonomy

_ASSIGN = re.compile(r"assign\s*[\"'“”]?\s*at\s+most\s+(\S+)\s+tags?", re.IGNORECASE)
_SKELETON = re.compile(r"expected\s+json\s*:?\s*", re.IGNORECASE)
_TAGLIST = re.compile(r"tags?\s+list[^:\[]*:?\s*", re.IGNORECASE)
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Request:
    """A parsed request. ``skeleton`` keeps the requester's keys and order."""

    text: str
    id: str | None
    max_tags: int
    taxonomy: Taxonomy
    skeleton: dict[str, Any]

    def answer(self, tags: list[str]) -> dict[str, Any]:
        """The skeleton with ``tags`` filled, other keys untouched and in order."""
        out = dict(self.skeleton)
        out["tags"] = list(tags)
        return out


def parse_max_tags(raw: Any, source: str = "<request>") -> int:
    """N must be a positive integer; anything else is a clear error."""
    try:
        n = int(str(raw).strip(), 10)
    except ValueError:
        raise TagsmithError(E_MAX_TAGS, f"'at most N tags': N must be a positive integer, got {str(raw)!r}", file=source) from None
    if n < 1:
        raise TagsmithError(E_MAX_TAGS, f"'at most N tags': N must be a positive integer, got {n}", file=source)
    return n


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _decode_at(text: str, start: int, opener: str, what: str, source: str, code: str) -> tuple[Any, int]:
    pos = start
    while pos < len(text) and text[pos] in " \t\r\n\"'“”":
        pos += 1
    if pos >= len(text) or text[pos] != opener:
        raise TagsmithError(code, f"expected {what} (starting with {opener!r}) here", file=source, line=_line_of(text, start))
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise TagsmithError(code, f"{what} is not valid JSON: {exc.msg}", file=source, line=_line_of(text, exc.pos)) from None
    return value, end


def parse_request(raw: str, source: str = "<request>") -> Request:
    """Split a raw request into description, N, id/skeleton and taxonomy."""
    matches = list(_ASSIGN.finditer(raw))
    if not matches:
        raise TagsmithError(E_REQUEST, "no 'Assign \"at most N tags\"' instruction found", file=source)
    m = matches[-1]
    n = parse_max_tags(m.group(1).strip("\"'“”,."), source)

    sk = _SKELETON.search(raw, m.end())
    if not sk:
        raise TagsmithError(E_REQUEST, "no 'expected json: {...}' skeleton after the instruction", file=source, line=_line_of(raw, m.end()))
    skeleton, sk_end = _decode_at(raw, sk.end(), "{", "the expected-json skeleton", source, E_REQUEST)
    if not isinstance(skeleton, dict):
        raise TagsmithError(E_REQUEST, "the expected-json skeleton must be a JSON object", file=source)

    tl = _TAGLIST.search(raw, sk_end)
    if not tl:
        raise TagsmithError(E_TAXONOMY, "no 'tags list I provide: [...]' after the skeleton", file=source, line=_line_of(raw, sk_end))
    items, _ = _decode_at(raw, tl.end(), "[", "the tag list", source, E_TAXONOMY)
    taxonomy = Taxonomy.from_names(items, source=source)

    text = raw[: m.start()].rstrip()
    # The description is closed by a quote and a comma before "Assign".
    text = re.sub(r"[\s\"'“”,]+$", "", text).strip()
    if not text.strip():
        raise TagsmithError(E_EMPTY_TEXT, "the project description is empty", file=source)
    rid = skeleton.get("id")
    return Request(text=text, id=None if rid is None else str(rid), max_tags=n, taxonomy=taxonomy, skeleton=skeleton)
