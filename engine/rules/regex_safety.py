"""Refuse rule-pack regexes that can backtrack catastrophically, before they run.

A backtracking engine takes exponential time when a repeated part can match the same
text in more than one way: ``(a+)+$``, ``(\\w+\\s?)+``, ``(a|aa)*``, ``(x*)*``. This
module reads the pattern's parse tree (Python's own parser) and asks, for every
unbounded repeat, whether its body is *ambiguous*:

- the body can match the empty string (``(x*)*``);
- an unbounded repeat inside it can be followed by a character it could also eat
  (``(a+)+``: the inner ``a+`` may stop early and the next round of the outer loop
  take the rest; ``(\\w+\\s?)+``);
- two alternatives of a branch inside it can start with the same character
  (``(a|aa)+``, ``(\\w|\\d)*``).

Character sets are compared on a probe alphabet (ASCII and a few non-ASCII letters),
which over-approximates overlap: a refused pattern may be safe, never the reverse for
these shapes. Backreferences are refused too (matching with them is NP-hard).
Polynomial blow-ups (``\\s*\\s*\\s*$``) are not exponential and are bounded at run
time instead, by the lexicon's per-document regex budget.
"""
from __future__ import annotations

import unicodedata

try:  # Python >= 3.11
    from re import _constants as _C
    from re import _parser as _P
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _C  # type: ignore[no-redef]
    import sre_parse as _P  # type: ignore[no-redef]

PROBE = frozenset(chr(c) for c in range(0, 128)) | frozenset("éß中→\u00a0\u2003")
ALL = PROBE
_NONE: frozenset[str] = frozenset()

_CATEGORY = {
    _C.CATEGORY_DIGIT: lambda ch: ch.isdigit(),
    _C.CATEGORY_NOT_DIGIT: lambda ch: not ch.isdigit(),
    _C.CATEGORY_SPACE: lambda ch: ch.isspace(),
    _C.CATEGORY_NOT_SPACE: lambda ch: not ch.isspace(),
    _C.CATEGORY_WORD: lambda ch: ch.isalnum() or ch == "_",
    _C.CATEGORY_NOT_WORD: lambda ch: not (ch.isalnum() or ch == "_"),
}
for _name in ("LINEBREAK", "NOT_LINEBREAK"):
    _cat = getattr(_C, "CATEGORY_" + _name, None)
    if _cat is not None:
        _CATEGORY[_cat] = (lambda ch: ch == "\n") if _name == "LINEBREAK" else (lambda ch: ch != "\n")

REPEATS = (_C.MAX_REPEAT, _C.MIN_REPEAT) + ((getattr(_C, "POSSESSIVE_REPEAT"),) if hasattr(_C, "POSSESSIVE_REPEAT") else ())


def unsafe_reason(pattern: str, flags: int = 0) -> str | None:
    """Why ``pattern`` may take exponential time, or None when it is safe to run."""
    try:
        parsed = _P.parse(pattern, flags)
    except Exception:
        return None  # the schema reports syntax errors itself
    try:
        return _walk(list(parsed), bool(parsed.state.flags & _C.SRE_FLAG_DOTALL))
    except RecursionError:
        return "the pattern nests too deeply to check"


def _walk(seq: list, dotall: bool) -> str | None:
    for op, av in seq:
        if op is _C.GROUPREF or op is getattr(_C, "GROUPREF_EXISTS", None):
            return "backreferences can take exponential time; match the text literally instead"
        if op in REPEATS:
            lo, hi, body = av
            # Unbounded, or bounded but repeated often enough that an ambiguous body costs
            # a high-degree polynomial ((.*a){12}).
            if (hi == _C.MAXREPEAT or hi >= 2) and op is not getattr(_C, "POSSESSIVE_REPEAT", None):
                why = _ambiguous(list(body), _first(list(body), dotall), dotall, top=hi == _C.MAXREPEAT)
                if why:
                    return why
            why = _walk(list(body), dotall)
            if why:
                return why
        for sub in _children(op, av):
            why = _walk(sub, dotall)
            if why:
                return why
    return None


def _children(op, av) -> list[list]:
    if op is _C.SUBPATTERN:
        return [list(av[-1])]
    if op is _C.BRANCH:
        return [list(b) for b in av[1]]
    if op in (_C.ASSERT, _C.ASSERT_NOT):
        return [list(av[1])]
    if op is getattr(_C, "ATOMIC_GROUP", None):
        return [list(av)]
    return []


def _ambiguous(body: list, follow: frozenset[str], dotall: bool, top: bool = False) -> str | None:
    """Whether ``body``, repeated without bound and followed by ``follow``, can match one
    text in more than one way (see the module docstring)."""
    if top and _nullable(body):
        return "a repeated part can match the empty string, e.g. (x*)*; make the inner part match at least one character"
    for i, (op, av) in enumerate(body):
        rest = body[i + 1:]
        after = _first(rest, dotall) | (follow if _nullable(rest) else _NONE)
        if op is getattr(_C, "ATOMIC_GROUP", None) or op is getattr(_C, "POSSESSIVE_REPEAT", None):
            continue  # no backtracking into it
        if op in REPEATS:
            lo, hi, inner = av
            inner = list(inner)
            mine = _first(inner, dotall)
            if hi == _C.MAXREPEAT or hi > 1:
                if hi == _C.MAXREPEAT and mine & after:
                    return ("nested repetition: an inner repeat can hand the same characters to the outer one, e.g. (a+)+; "
                            "make the parts exclusive, or use an atomic group (?>...) or a possessive quantifier (a++)")
                why = _ambiguous(inner, mine | after, dotall)
                if why:
                    return why
            else:  # x? or x{0,1}: as the body itself
                why = _ambiguous(inner, after, dotall)
                if why:
                    return why
        elif op is _C.BRANCH:
            firsts = [_first(list(b), dotall) | (after if _nullable(list(b)) else _NONE) for b in av[1]]
            for a in range(len(firsts)):
                for b in range(a + 1, len(firsts)):
                    if firsts[a] & firsts[b]:
                        return ("alternatives inside a repeat can start with the same character, e.g. (a|aa)+; "
                                "make them exclusive, or use an atomic group (?>...)")
            for b in av[1]:
                why = _ambiguous(list(b), after, dotall)
                if why:
                    return why
        elif op is _C.SUBPATTERN:
            why = _ambiguous(list(av[-1]), after, dotall)
            if why:
                return why
    return None


def _nullable(seq: list) -> bool:
    for op, av in seq:
        if op in (_C.AT, _C.ASSERT, _C.ASSERT_NOT):
            continue
        if op is _C.SUBPATTERN and _nullable(list(av[-1])):
            continue
        if op is getattr(_C, "ATOMIC_GROUP", None) and _nullable(list(av)):
            continue
        if op is _C.BRANCH and any(_nullable(list(b)) for b in av[1]):
            continue
        if op in REPEATS and (av[0] == 0 or _nullable(list(av[2]))):
            continue
        if op is _C.GROUPREF:
            continue
        return False
    return True


def _first(seq: list, dotall: bool) -> frozenset[str]:
    """Characters (of the probe alphabet) that a match of ``seq`` can start with."""
    out: set[str] = set()
    for op, av in seq:
        if op is _C.LITERAL:
            out.add(chr(av)) if chr(av) in PROBE else out.update(_fold(chr(av)))
            return frozenset(out)
        if op is _C.NOT_LITERAL:
            return frozenset(out | (ALL - {chr(av)}))
        if op is _C.ANY:
            return frozenset(out | (ALL if dotall else ALL - {"\n"}))
        if op is _C.IN:
            return frozenset(out | _in_set(av))
        if op is _C.SUBPATTERN:
            out |= _first(list(av[-1]), dotall)
            if not _nullable(list(av[-1])):
                return frozenset(out)
            continue
        if op is getattr(_C, "ATOMIC_GROUP", None):
            out |= _first(list(av), dotall)
            if not _nullable(list(av)):
                return frozenset(out)
            continue
        if op is _C.BRANCH:
            for b in av[1]:
                out |= _first(list(b), dotall)
            if not any(_nullable(list(b)) for b in av[1]):
                return frozenset(out)
            continue
        if op in REPEATS:
            out |= _first(list(av[2]), dotall)
            if av[0] > 0 and not _nullable(list(av[2])):
                return frozenset(out)
            continue
        if op is _C.GROUPREF:
            return ALL
        # anchors and lookarounds consume nothing
    return frozenset(out)


def _fold(ch: str) -> set[str]:
    """A non-probe literal: stands for itself by its category (letter, digit, space)."""
    cat = unicodedata.category(ch)
    return {"é"} if cat.startswith("L") else {"\u2003"} if ch.isspace() else {"→"}


def _in_set(items) -> frozenset[str]:
    negate = False
    tests = []
    for op, av in items:
        if op is _C.NEGATE:
            negate = True
        elif op is _C.LITERAL:
            tests.append(lambda ch, c=chr(av): ch == c)
        elif op is _C.RANGE:
            tests.append(lambda ch, lo=av[0], hi=av[1]: lo <= ord(ch) <= hi or (hi > 127 and ord(ch) > 127))
        elif op is _C.CATEGORY:
            fn = _CATEGORY.get(av)
            tests.append(fn if fn is not None else (lambda ch: True))
        else:
            tests.append(lambda ch: True)
    hit = frozenset(ch for ch in PROBE if any(t(ch) for t in tests))
    return (ALL - hit) if negate else hit
