"""README segmentation: what a project says about itself vs. noise.

Catalogue answers depend on the project's *own* description. The title, the
tagline ("X is a Y for Z") and the first paragraphs say it; headings outline it;
badges, link lists, licence/contributor/sponsor blocks, changelogs and code blocks
mostly do not. Each character range gets a section kind, and hits are weighted by it.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property

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
    "heading": 0.65,
    "body": 0.7,
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
        i = bisect_right(self._starts, pos) - 1
        if i >= 0 and pos < self.segments[i].end:
            return self.segments[i]
        return Segment(pos, pos + 1, "body")

    @cached_property
    def _starts(self) -> list[int]:
        return [s.start for s in self.segments]



_URL = re.compile(r"https?://[^\s)\]>\"']+|www\.[^\s)\]>\"']+")
#: Spans that are addresses, not words: bare URLs, Markdown link targets, HTML src/href.
#: For lower-cased text (3x faster than IGNORECASE; see ``lower_same_length``).
URL_SPANS = re.compile(r"https?://[^\s)\]>\"'<]+|\]\([^)\s]*\)|(?:src|href|srcset)\s*=\s*(?:\"[^\"]*\"|'[^']*')")


def _plain(line: str) -> str:
    """Visible words of a Markdown/HTML line: link texts kept, targets and tags dropped."""
    if "[" not in line and "<" not in line and "http" not in line and "www." not in line:
        return line.strip()  # nothing to drop (most lines): skip the substitutions
    for _ in range(2):  # badges nest an image inside a link
        line = _LINKS.sub(r"\1", line)
    return _URL.sub(" ", _TAGS.sub(" ", line)).strip()


def _is_prose(line: str) -> bool:
    """A line of sentences rather than badges, images or link lists."""
    p = _plain(line)
    letters = sum(map(str.isalpha, p))
    if letters < 12:
        return False
    # Mostly markup (badges, images): not prose even if the alt texts add up.
    return letters >= 60 or letters >= 0.35 * sum(map(str.isalpha, line))


_TAGLINE = re.compile(r"\b(?:is|are)\s+(?:an?|the|your)\b|\b(?:a|an)\s+\w+(?:[- ]\w+)?\s+(?:for|to|that|which|written|built|library|tool|framework)\b", re.IGNORECASE)
_ADMONITION = re.compile(r"^\s*>\s*(?:\[!|\*\*(?:note|warning|important)|note|warning|important)", re.IGNORECASE)
_RST_DIRECTIVE = re.compile(r"^\s*(?:\.\.\s|:\w+:|\[[^\]]+\]:\s*\S)")
#: Headings that name a section, not the project ("Features", "Why Slint?").
_SECTION_HEAD = re.compile(
    r"^(?:usage|features?|overview|why\b.*|quick\s*\w*|documentation|docs|examples?|demo|introduction|about\b.*|"
    r"how it works|basic\s*\w*|motivation|highlights|what is\b.*|getting\b.*|welcome\b.*|\d+\.\s.*|v?\d+(?:\.\d+)+.*)$",
    re.IGNORECASE,
)
TITLE_WINDOW = 6000  # characters from the top where a title or tagline may stand


@dataclass
class _Line:
    start: int
    end: int
    kind: str  # code | blank | heading | boilerplate | list | prose | body
    level: int = 0
    heading: str = ""  # text of a heading line
    section: str = ""  # the heading above this line
    boiler: bool = False  # inside a boilerplate section


def _classify(text: str) -> list[_Line]:
    """Pass 1: what each line is, independent of where it stands."""
    out: list[_Line] = []
    lines = text.splitlines(keepends=True)
    pos = 0
    in_fence = False
    section, boiler = "", False
    prev_blank = True
    for i, line in enumerate(lines):
        start, end = pos, pos + len(line)
        pos = end
        stripped = line.strip()
        if _FENCE.match(line):
            in_fence = not in_fence
            out.append(_Line(start, end, "code", section=section, boiler=boiler))
            continue
        if in_fence:
            out.append(_Line(start, end, "code", section=section, boiler=boiler))
            continue
        if not stripped:
            out.append(_Line(start, end, "blank", section=section, boiler=boiler))
            prev_blank = True
            continue
        head, level = None, 0
        m = _ATX.match(line)
        if m:
            head, level = _plain(m.group(2)), len(m.group(1))
        else:
            hm = _HTML_H.search(line) if "<" in line else None  # (most lines have no tag)
            if hm and len(_plain(line)) <= len(_plain(hm.group(2))) + 5:
                head, level = _plain(hm.group(2)), int(hm.group(1))
            elif (prev_blank and len(stripped) < 80 and i + 1 < len(lines) and _SETEXT.match(lines[i + 1])
                  and not _LIST.match(line) and not _RST_DIRECTIVE.match(line)):
                head, level = _plain(stripped), 1 if lines[i + 1].strip().startswith("=") else 2
        if head is not None and sum(c.isalpha() for c in head) >= 1:
            section, boiler = head, bool(_BOILER_HEAD.search(head))
            out.append(_Line(start, end, "heading", level=level, heading=head, section=section, boiler=boiler))
            prev_blank = False
            continue
        if out and out[-1].kind == "heading" and _SETEXT.match(line):
            out.append(_Line(start, end, "boilerplate", section=section, boiler=boiler))
            continue
        if line.startswith(("    ", "\t")) and prev_blank and not _LIST.match(line):
            kind = "code"
        elif _RST_DIRECTIVE.match(line) or (">" in line and _ADMONITION.match(line)):
            kind = "boilerplate"
        elif _LIST.match(line) or _TABLE.match(line):
            kind = "list"
        elif _is_prose(line):
            kind = "prose"
        elif _BADGE.search(line):
            kind = "boilerplate"
        else:
            kind = "body"
        out.append(_Line(start, end, kind, section=section, boiler=boiler))
        prev_blank = kind == "code" and prev_blank
    return out


def segment_readme(text: str) -> Document:
    """Assign every line of ``text`` a section kind; offsets index into ``text``.

    Pass 1 classifies lines; pass 2 picks the title (the first substantive heading
    near the top, else a short first line) and the tagline (the first prose
    paragraph near the top, preferring an "X is a Y" sentence), then the intro.
    """
    lines = _classify(text)
    title_i = next(
        (i for i, l in enumerate(lines)
         if l.kind == "heading" and l.level <= 2 and l.start < TITLE_WINDOW and not l.boiler
         and sum(c.isalpha() for c in l.heading) >= 2 and not _SECTION_HEAD.match(l.heading.strip(" *_`!?")) ),
        None,
    )
    if title_i is None:
        title_i = next((i for i, l in enumerate(lines) if l.kind == "prose" and l.start < 2000 and len(_plain(text[l.start:l.end])) < 60), None)
    # Paragraphs of prose near the top, outside boilerplate sections.
    paragraphs: list[list[int]] = []
    for i, l in enumerate(lines):
        if l.kind == "prose" and not l.boiler and l.start < TITLE_WINDOW and i != title_i:
            if paragraphs and paragraphs[-1][-1] == i - 1:
                paragraphs[-1].append(i)
            else:
                paragraphs.append([i])
    tagline: list[int] = []
    if paragraphs:
        pitched = [p for p in paragraphs[:4] if any(_TAGLINE.search(_plain(text[lines[j].start:lines[j].end])) for j in p)]
        tagline = (pitched or paragraphs)[0]
    intro = [j for p in paragraphs if p is not tagline for j in p][:6]
    kinds: dict[int, str] = {j: "tagline" for j in tagline}
    kinds.update({j: "intro" for j in intro if j not in kinds})
    if title_i is not None:
        kinds[title_i] = "title"
    segments = []
    for i, l in enumerate(lines):
        kind = kinds.get(i)
        if kind is None:
            if l.kind == "code":
                kind = "code"
            elif l.kind == "heading":
                kind = "boilerplate" if l.boiler else "heading"
            elif l.boiler or l.kind == "boilerplate":
                kind = "boilerplate"
            elif l.kind == "list":
                kind = "list"
            else:
                kind = "body"
        segments.append(Segment(l.start, l.end, kind, l.section))
    title = _plain(text[lines[title_i].start:lines[title_i].end]).lstrip("#").strip() if title_i is not None else ""
    if title_i is not None and lines[title_i].kind == "heading":
        title = lines[title_i].heading
    return Document(text=text, segments=tuple(segments), title=title)
