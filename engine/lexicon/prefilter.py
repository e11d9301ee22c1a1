"""Necessary literals of a regex: a cheap test that lets a scan be skipped.

Python's ``re`` tries a pattern at every position of an 11k-character README, even
when the words it needs never occur. ``required_literals`` reads the pattern's parse
tree and returns sets of strings such that every match contains at least one string
of each set (``cargo\\s+add\\s+\\w`` -> [{"cargo"}, {"add"}]; a branch unites its
branches' best set). ``may_match`` checks them with substring search; when it says
no, the regex cannot match, so skipping the scan changes no result.
"""
from __future__ import annotations

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


def may_match(literals: Literals, text: str) -> bool:
    return all(any(s in text for s in group) for group in literals)


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
