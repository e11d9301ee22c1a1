"""README segmentation: what a project says about itself vs. noise.

Catalogue answers depend on the project's *own* description. The title, the
tagline ("X is a Y for Z") and the first paragraphs say it; headings outline it;
badges, link lists, licence/contributor/sponsor blocks, changelogs and code blocks
mostly do not. Each character range gets a section kind, and hits are weighted by it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_H = re.compile(r"<h([1-6])[^>]*>(.*?)</h\1>", re.IGNORECASE | re.DOTALL)
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE = re.compile(r"^\s*\|")
_BADGE = re.compile(r"\[!\[|shields\.io|badge|<img\s|!\[[^\]]*\]\(|<a\s+href|<picture|<source|^\s*<p\s+align|^\s*</?(p|div|a|br|picture|details|summary)\b", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
_LINKS = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_BOILER_HEAD = re.compile(
    r"licen[cs]e|contribut|sponsor|backer|donat|support(ers)?\b|changelog|change log|release notes|"
    r"acknowledg|credit|citation|cite|star history|stargazer|authors?\b|maintainers?|thanks|"
    r"install|getting started|requirements|prerequisites|build(ing)? from source|development|"
    r"community|code of conduct|security policy|table of contents|contents|toc\b|faq|roadmap|news|"
    r"translations?|disclaimer|team|contact",
    re.IGNORECASE,
)

WEIGHTS = {
    "title": 3.0,
    "tagline": 2.5,
    "intro": 1.6,
    "heading": 1.3,
    "body": 1.0,
    "list": 0.6,
    "code": 0.25,
    "boilerplate": 0.2,
}


@dataclass(frozen=True)
class Segment:
    start: int
    end: int
    kind: str
    heading: str = ""  # the heading this segment sits under


@dataclass(frozen=True)
class Document:
    text: str
    segments: tuple[Segment, ...]
    title: str

    def section_at(self, pos: int) -> Segment:
        """The segment containing character ``pos`` (binary search)."""
        lo, hi = 0, len(self.segments) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            s = self.segments[mid]
            if pos < s.start:
                hi = mid - 1
            elif pos >= s.end:
                lo = mid + 1
            else:
                return s
        return Segment(pos, pos + 1, "body")

    def text_of(self, kinds: set[str]) -> str:
        return "\n".join(self.text[s.start:s.end] for s in self.segments if s.kind in kinds)


def _plain(line: str) -> str:
    return _TAGS.sub(" ", _LINKS.sub(r"\1", line)).strip()


def _is_prose(line: str) -> bool:
    p = _plain(line)
    letters = sum(c.isalpha() for c in p)
    return letters >= 12 and not _BADGE.search(line.strip()[:12] + " ") or (letters >= 40)


def segment_readme(text: str) -> Document:
    """Assign every line of ``text`` a section kind; offsets index into ``text``."""
    segments: list[Segment] = []
    lines = text.splitlines(keepends=True)
    pos = 0
    in_fence = False
    title = ""
    heading = ""
    boiler = False
    prose_paragraphs = 0  # prose paragraphs seen before the first real section
    prev_blank = True
    in_para = False
    first_heading_seen = False
    for i, line in enumerate(lines):
        start, end = pos, pos + len(line)
        pos = end
        stripped = line.strip()
        if _FENCE.match(line):
            in_fence = not in_fence
            segments.append(Segment(start, end, "code", heading))
            continue
        if in_fence:
            segments.append(Segment(start, end, "code", heading))
            continue
        if not stripped:
            segments.append(Segment(start, end, "body", heading))
            prev_blank = True
            in_para = False
            continue
        head_text = None
        m = _ATX.match(line)
        if m:
            head_text = _plain(m.group(2))
        else:
            hm = _HTML_H.search(line)
            if hm and len(_plain(line)) <= len(_plain(hm.group(2))) + 5:
                head_text = _plain(hm.group(2))
            elif i + 1 < len(lines) and _SETEXT.match(lines[i + 1]) and not _LIST.match(line) and len(stripped) < 80 and prev_blank:
                head_text = _plain(stripped)
        if head_text is not None:
            if not title and head_text and not first_heading_seen:
                title = head_text
                kind = "title"
            else:
                kind = "heading"
                boiler = bool(_BOILER_HEAD.search(head_text))
                heading = head_text
            first_heading_seen = True
            segments.append(Segment(start, end, "boilerplate" if boiler and kind == "heading" else kind, heading))
            prev_blank = False
            continue
        if _SETEXT.match(line) and segments and segments[-1].kind in ("title", "heading"):
            segments.append(Segment(start, end, "boilerplate", heading))
            continue
        if line.startswith(("    ", "\t")) and prev_blank and not in_para and not _LIST.match(line):
            segments.append(Segment(start, end, "code", heading))
            continue
        if boiler:
            kind = "boilerplate"
        elif _BADGE.search(line) and not _is_prose(line):
            kind = "boilerplate"
        elif _LIST.match(line) or _TABLE.match(line):
            kind = "list"
        elif _is_prose(line):
            if not in_para:
                prose_paragraphs += 1
            if not title and prose_paragraphs == 1 and len(_plain(line)) < 80 and i + 1 < len(lines) and not lines[i + 1].strip():
                title = _plain(line)
                kind = "title"
                prose_paragraphs = 0
            elif prose_paragraphs == 1 and start < 4000:
                kind = "tagline"
            elif prose_paragraphs <= 3 and start < 6000:
                kind = "intro"
            else:
                kind = "body"
            in_para = True
        else:
            kind = "body"
        segments.append(Segment(start, end, kind, heading))
        prev_blank = False
    return Document(text=text, segments=tuple(segments), title=title)
