"""Necessary literals of a regex: cheap tests that let a scan be skipped or shortened.

Python's ``re`` tries a pattern at every position of an 11k-character README, even
when the words it needs never occur. ``required_literals`` reads the pattern's parse
tree and returns sets of strings such that every match contains at least one string
of each set (``cargo\\s+add\\s+\\w`` -> [{"cargo"}, {"add"}]; a branch unites its
branches' best set). When substring search finds no string of some set, the regex
cannot match, so skipping the scan changes no result.

``Prefiltered`` applies the same test to each alternative of each alternation
(``<dependency>|\\bimplementation...|^\\s*use\\s+...``): an alternative whose words are
absent from the text cannot take part in any match, so the regex compiled without it
finds exactly the same matches, and a scan that tries 7 alternatives at every
position tries 1 or 2. Compiled variants are remembered per set of kept alternatives.

``NameTemplate`` does the same for a ``{name}`` regex, whose pattern differs per
project: parsed once with a marker for the name, it gives each project its regex
without parsing again, and a wider regex (any word for the name, compiled once) tells
when the project's own need not be compiled at all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import regex as _regex

try:  # Python >= 3.11
    from re import _constants as _C
    from re import _parser as _P
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _C  # type: ignore[no-redef]
    import sre_parse as _P  # type: ignore[no-redef]

Literals = tuple[frozenset[str], ...]


def required_literals(pattern: str, flags: int = 0) -> Literals:
    """Sets of strings, one of each set in every match (empty: nothing is known)."""
    try:
        parsed = _P.parse(pattern, flags)
    except Exception:  # an exotic construct: no prefilter rather than a wrong one
        return ()
    if parsed.state.flags & _C.SRE_FLAG_IGNORECASE:
        return ()  # literals would match other cases: substring search cannot tell
    return tuple(_sequence(parsed))


def _sequence(items) -> list[frozenset[str]]:
    out: list[frozenset[str]] = []
    run = ""
    for op, av in items:
        if op is _C.LITERAL:
            run += chr(av)
            continue
        if run:
            out.append(frozenset([run]))
            run = ""
        if op is _C.SUBPATTERN:
            if not av[1] & _C.SRE_FLAG_IGNORECASE:  # (?i:...) is case-blind: nothing to require
                out.extend(_sequence(av[-1]))
        elif op is _C.BRANCH:
            best = [_best(_sequence(b)) for b in av[1]]
            if all(b is not None for b in best):
                out.append(frozenset().union(*best))
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT) and av[0] >= 1:
            out.extend(_sequence(av[2]))
    if run:
        out.append(frozenset([run]))
    return out


def _best(groups: list[frozenset[str]]) -> frozenset[str] | None:
    """The most selective set of a branch: its shortest string is the longest."""
    return max(groups, key=lambda g: (min(map(len, g)), -len(g)), default=None)


# --- alternatives -----------------------------------------------------------------

class Occurrences(dict):
    """Which strings occur in one text: each looked up on first use and remembered, so
    regexes that need the same word ("install") search for it once."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def __missing__(self, s: str) -> bool:
        found = self[s] = s in self.text
        return found


def _holds(literals: Literals, found: Occurrences) -> bool:
    return all(any(found[s] for s in group) for group in literals)


@dataclass
class _Group:
    opener: str  # "(", "(?:", "(?P<name>", "(?=", "(?<!", "(?s:", ...
    alts: "_Alternation"


@dataclass
class _Alternation:
    """``a|b|c`` at one level: each alternative's pieces and its necessary literals."""
    options: list[list[str | _Group]]
    literals: list[Literals]
    first: int = -1  # index of its first option among the regex's prunable options; -1: not prunable


_OPENER = re.compile(r"\((?:\?(?:P<\w+>|<[=!]|[=!:>]|[aLmsux]*(?:-[msx]+)?:))?")
_CASE_BLIND = re.compile(r"\(\?[aLmsux]*i")


class _Unsupported(ValueError):
    pass


def _parse(p: str) -> _Alternation:
    """The pattern's alternations as a tree; every piece of text is kept verbatim.

    Raises ``_Unsupported`` for what cannot be cut safely: backreferences (group
    numbers would move), conditionals, comments, inline flags, case-blind scopes
    (a substring test cannot tell whether ``(?i:Foo)`` is present).
    """
    pos = 0

    def alternation() -> _Alternation:
        nonlocal pos
        options: list[list[str | _Group]] = [[]]
        buf: list[str] = []

        def flush() -> None:
            if buf:
                options[-1].append("".join(buf))
                buf.clear()

        while pos < len(p) and p[pos] != ")":
            c = p[pos]
            if c == "\\":
                if p[pos + 1] in "123456789":
                    raise _Unsupported("backreference")
                end = p.index("}", pos) + 1 if p.startswith("N{", pos + 1) else pos + 2
                buf.append(p[pos:end])
                pos = end
            elif c == "[":
                end = _class_end(p, pos)
                buf.append(p[pos:end + 1])
                pos = end + 1
            elif c == "(":
                m = _OPENER.match(p, pos)
                if (p.startswith("(?", pos) and m.end() == pos + 1) or _CASE_BLIND.match(p, pos):
                    raise _Unsupported("inline flags, comment, conditional, named backreference or case-blind scope")
                flush()
                pos = m.end()
                options[-1].append(_Group(m.group(), alternation()))
                buf.append(")")
                pos += 1
            elif c == "|":
                flush()
                options.append([])
                pos += 1
            else:
                buf.append(c)
                pos += 1
        flush()
        return _Alternation(options, [])

    tree = alternation()
    if pos != len(p):
        raise _Unsupported("unbalanced parenthesis")
    return tree


def _class_end(p: str, pos: int) -> int:
    """The index of the "]" closing the character class that opens at ``p[pos]``
    (IndexError when it is unclosed)."""
    end = pos + 1 + (p[pos + 1] == "^")
    end += p[end] == "]"  # a leading "]" is a member
    while p[end] != "]":
        end += 2 if p[end] == "\\" else 1
    return end


def _render_seq(seq: list[str | _Group], kept: tuple[bool, ...] | None) -> str:
    parts = []
    for x in seq:
        if isinstance(x, str):
            parts.append(x)
        else:
            inner = _render(x.alts, kept)  # "" is an empty option that is kept: it matches
            parts.append(x.opener + ("(?!)" if inner is None else inner))
    return "".join(parts)


def _render(alt: _Alternation, kept: tuple[bool, ...] | None = None) -> str | None:
    """The alternation as a pattern; with ``kept``, only the options it keeps (``None``
    when it keeps none). A group left with no option becomes ``(?!)``, which never
    matches, as the group could not."""
    if kept is None or alt.first < 0:
        return "|".join(_render_seq(o, kept) for o in alt.options)
    out = [_render_seq(o, kept) for i, o in enumerate(alt.options) if kept[alt.first + i]]
    return "|".join(out) if out else None


class Prefiltered:
    """A regex that, per text, is compiled without the alternatives that cannot match it.

    ``for_text(text)`` gives the pattern to scan ``text`` with, or ``None`` when the
    regex cannot match it at all. Matches are those of the whole pattern, but only
    ``start()``/``end()`` are meaningful: leaving a capturing group out renumbers the
    rest. Patterns that cannot be cut safely (backreferences, conditionals, case-blind
    parts, verbose mode) are prefiltered as a whole only.
    """

    MAX_VARIANTS = 256  # compiled variants kept per regex; cleared when full

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._regex: "_regex.Pattern[str] | None" = scanner(pattern, flags)
        self.literals = required_literals(pattern, flags)
        self._tree: _Alternation | None = None
        self._checks: list[Literals] = []  # necessary literals of each prunable option
        self._fill: str | None = None  # what stands for PLACEHOLDER (see NameTemplate)
        self._gate: Prefiltered | None = None  # a wider regex that must match first (ditto)
        if not self._regex.flags & (re.IGNORECASE | re.VERBOSE):
            try:
                tree = _parse(pattern)
            except (_Unsupported, IndexError):
                tree = None
            if tree is not None and _render(tree) == pattern:
                self._tree = tree
                self._number(tree)
        self._variants: dict[tuple[bool, ...], "_regex.Pattern[str] | None"] = {}

    @classmethod
    def _filled(cls, shape: "Prefiltered", names: tuple[str, ...], fill: str) -> "Prefiltered":
        """``shape`` (a pattern with PLACEHOLDER) with ``fill`` in its place: the
        literals and alternation tree are ``shape``'s with each name put in, nothing
        parsed again; the pattern is compiled only if a text needs it whole."""
        self = cls.__new__(cls)
        self.pattern = shape.pattern.replace(PLACEHOLDER, fill)
        self.flags = shape.flags
        self._regex = None
        self.literals = _with_names(shape.literals, names)
        self._tree = shape._tree
        self._checks = [_with_names(c, names) for c in shape._checks]
        self._fill = fill
        self._gate = None
        self._variants = {}
        return self

    @property
    def regex(self) -> "_regex.Pattern[str]":
        """The whole pattern, compiled (on first use for one made by ``NameTemplate``)."""
        if self._regex is None:
            self._regex = scanner(self.pattern, self.flags)
        return self._regex

    def _gated(self, text: str, found: Occurrences) -> bool:
        """True when the gate (a wider regex, see ``NameTemplate``) says this one
        cannot match ``text``: then it is neither compiled nor scanned."""
        if self._gate is None or (self._regex is not None and not self._checks):
            return False
        rx = self._gate.for_text(text, found)
        if rx is None:
            return True
        try:
            return rx.search(text, timeout=GATE_TIMEOUT_S) is None
        except TimeoutError:
            return False

    def _number(self, alt: _Alternation) -> None:
        if len(alt.options) > 1:
            alt.literals = [required_literals(_render_seq(o, None), self.flags) for o in alt.options]
            alt.first = len(self._checks)
            self._checks.extend(alt.literals)
        for option in alt.options:
            for x in option:
                if isinstance(x, _Group):
                    self._number(x.alts)

    def for_text(self, text: str, found: Occurrences | None = None) -> "_regex.Pattern[str] | None":
        """``found``: the text's ``Occurrences``, when several regexes share them."""
        if found is None:
            found = Occurrences(text)
        if not _holds(self.literals, found):
            return None
        if not self._checks:
            return None if self._gated(text, found) else self.regex
        kept = tuple(_holds(lits, found) for lits in self._checks)
        if kept in self._variants:
            return self._variants[kept]
        if self._gated(text, found):
            return None
        if len(self._variants) >= self.MAX_VARIANTS:
            self._variants.clear()
        pattern = _render(self._tree, kept)  # type: ignore[arg-type]
        if pattern is not None and self._fill is not None:
            pattern = pattern.replace(PLACEHOLDER, self._fill)
        rx = self._variants[kept] = None if pattern is None else scanner(pattern, self.flags)
        return rx


# --- {name} templates ---------------------------------------------------------------

PLACEHOLDER = "\ue000"  # a private-use character: a plain literal to the parser, absent from READMEs
_QUANTIFIED = re.compile(re.escape(PLACEHOLDER) + r"[?*+{]")
_MAX_EXPANSION = 64  # strings one necessary literal may grow into with the names put in


class NameTemplate:
    """A rule regex with ``{name}`` (the project's own name), prepared once for all
    projects.

    Each README brings its own names, so its ``{name}`` regexes were compiled for it:
    the required literals, the alternation tree and a ``regex`` compile of each, ~2 ms
    a regex, a third of the lexicon's time on new READMEs. Here the template is parsed
    once with ``PLACEHOLDER`` (one literal character) where the name goes; per project
    the names go into its literals (``pip install {name}`` needs "install" and, of the
    names, one), and only the variant a text needs is compiled, when it needs one.
    The matches are those of ``Prefiltered(template with the names)``: a literal that
    every match of the marked pattern contains holds, with a name in place of the
    marker, in every match of the real one (the tests compare both on every README).
    """

    def __init__(self, template: str, flags: int = 0) -> None:
        self.template = template
        self.flags = flags
        marked = template.replace("{name}", PLACEHOLDER)
        # "{name}?" would make only the marker optional, not the whole name, and in
        # "[{name}]" the marker is one member of a class (``_odd_site``): such a
        # template is prepared per project, as before.
        self._shape = None if _QUANTIFIED.search(marked) or _odd_site(template) else Prefiltered(marked, flags)
        # The template with any name-like word for the name: compiled once, it scans a
        # README before the project's own regex is compiled for it, which it can then
        # skip when no match is possible (6 in 10 tries on dev: "pip install <any>" is
        # rarer than a README holding its own name).
        self._any_name = (Prefiltered(template.replace("{name}", ANY_NAME), flags)
                          if self._shape is not None and _widens(marked, flags) else None)

    def for_names(self, names: tuple[str, ...]) -> Prefiltered:
        """The regex for a project called any of ``names`` (lower-cased)."""
        fill = "(?:" + "|".join(re.escape(n) for n in names) + ")"
        if self._shape is None:
            return Prefiltered(self.template.replace("{name}", fill), self.flags)
        out = Prefiltered._filled(self._shape, names, fill)
        if self._any_name is not None and names and all(_NAME_WORD.fullmatch(n) for n in names):
            out._gate = self._any_name
        return out


ANY_NAME = r"[\w.+\-]+"  # stands for any of the names a gate may stand for
_NAME_WORD = re.compile(ANY_NAME)
GATE_TIMEOUT_S = 0.05  # a gate that takes longer lets its regex be compiled and scan


def _widens(marked: str, flags: int) -> bool:
    """Whether ``{name}`` -> ``ANY_NAME`` can only add matches: a backtracking search
    finds a match whenever one exists, and one with the name finds one with any word,
    unless the name is inside a negative lookaround (a wider test refuses more) or the
    pattern cuts backtracking (atomic groups, possessive repeats) or refers back."""
    try:
        parsed = _P.parse(marked, flags)
    except Exception:
        return False
    cutting = {getattr(_C, n, None) for n in ("ATOMIC_GROUP", "POSSESSIVE_REPEAT", "GROUPREF", "GROUPREF_EXISTS")} - {None}

    def ok(items, negated: bool) -> bool:
        for op, av in items:
            if op in cutting or (negated and op is _C.LITERAL and av == ord(PLACEHOLDER)):
                return False
            inner = negated or op is _C.ASSERT_NOT
            if not all(ok(sub, inner) for sub in _subpatterns(av)):
                return False
        return True

    return ok(parsed, False)


def _odd_site(template: str) -> bool:
    """Whether some ``{name}`` is not a plain part of the pattern: inside a character
    class (``[{name}]``, where the names are characters of the class) or escaped."""
    i, plain = 0, 0
    try:
        while i < len(template):
            if template[i] == "\\":
                i += 2
            elif template[i] == "[":
                i = _class_end(template, i) + 1
            else:
                plain += template.startswith("{name}", i)
                i += 1
    except IndexError:  # an unclosed class: no regex to prepare
        return True
    return plain != template.count("{name}")


def _subpatterns(av) -> list:
    """The parse tree's nested sequences inside one item's argument."""
    if isinstance(av, _P.SubPattern):
        return [av]
    if isinstance(av, (tuple, list)):
        return [sub for x in av for sub in _subpatterns(x)]
    return []


def _with_names(literals: Literals, names: tuple[str, ...]) -> Literals:
    """``literals`` of a marked pattern, each marker replaced by each of ``names``."""
    if not any(PLACEHOLDER in s for group in literals for s in group):
        return literals
    out = []
    for group in literals:
        strings: set[str] = set()
        for s in group:
            parts = s.split(PLACEHOLDER)
            grown = [parts[0]]
            for part in parts[1:]:
                grown = [g + n + part for g in grown for n in names]
                if len(grown) > _MAX_EXPANSION:
                    break
            else:
                strings.update(grown)
                continue
            longest = max(parts, key=len)  # every match still holds each part
            if not longest:
                strings = set()
                break
            strings.add(longest)
        if strings:
            out.append(frozenset(strings))
    return tuple(out)


def scanner(pattern: str, flags: int = 0) -> "_regex.Pattern[str]":
    """Compile with the ``regex`` engine: same syntax and matches as ``re`` for rule
    patterns, and its scans take a ``timeout``, so a pattern that the load-time check
    let through cannot stall a document (see ``CompiledRules.run``)."""
    out = 0
    for name in ("MULTILINE", "IGNORECASE", "DOTALL", "VERBOSE", "ASCII"):
        if flags & getattr(re, name):
            out |= getattr(_regex, name)
    return _regex.compile(pattern, out)
