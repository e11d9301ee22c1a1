"""YAML loading that remembers the line of every value.

pydantic reports a location like ``rules.3.regexes.0.pattern``; to name the line we
keep, for each such path, the line where its YAML node starts.
"""
from __future__ import annotations

from typing import Any

import yaml


#: libyaml's parser and composer where PyYAML was built with it (the nodes, tags and
#: line marks are the same; a learned pack of ~3,600 terms loads ~4x faster), else
#: PyYAML's own. Plain data either way: the safe resolver, nothing constructed here.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Values one file may expand to. Aliases let a few lines stand for billions of values
#: ("billion laughs"); building stops at this count instead of running for minutes.
MAX_NODES = 200_000


class TooLarge(ValueError):
    """The document expands to more than ``MAX_NODES`` values."""


def load_with_lines(text: str, max_nodes: int = MAX_NODES) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML safely and return (data, {path: 1-based line}).

    Only plain data is built (SafeLoader: no tags that construct objects or run code),
    and at most ``max_nodes`` values, counting every expansion of an alias.
    """
    node = yaml.compose(text, Loader=_LOADER)
    lines: dict[tuple, int] = {}
    if node is None:
        return None, lines
    # Aliases make the node graph a DAG whose expansion can be exponential: its size is
    # counted on the DAG (each node once) before anything is built.
    if _expanded_size(node, {}) > max_nodes:
        raise TooLarge(f"the document expands to more than {max_nodes:,} values (YAML aliases?)")
    return _build(node, (), lines, [max_nodes], yaml.constructor.SafeConstructor()), lines


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    hit = memo.get(id(node))
    if hit is not None:
        return hit
    memo[id(node)] = 1  # a cycle (a node aliasing its own ancestor) counts once, then fails to build
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo) for v in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


_CORE = "tag:yaml.org,2002:"
_PLAIN = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}


class ForbiddenTag(ValueError):
    """A YAML tag other than plain data (``!!python/object``, custom ``!tags``)."""

    def __init__(self, tag: str, line: int) -> None:
        super().__init__(f"YAML tag {tag.replace(_CORE, '!!')!r} is not allowed in a rule pack (plain data only)")
        self.line = line


def _build(node: yaml.Node, path: tuple, lines: dict[tuple, int], budget: list[int], con: Any) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise TooLarge(f"the document expands to more than {MAX_NODES:,} values (YAML aliases?)")
    if node.tag not in _PLAIN:
        raise ForbiddenTag(node.tag, node.start_mark.line + 1)
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = _scalar(knode, con)
            out[key] = _build(vnode, path + (key,), lines, budget, con)
            lines.setdefault(path + (key,), knode.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), lines, budget, con) for i, v in enumerate(node.value)]
    return _scalar(node, con)


def _scalar(node: yaml.Node, con: Any) -> Any:
    """A plain value (or a complex mapping key) by ``con``, one ``SafeConstructor`` per
    document (a loader per value was half of a large pack's load time)."""
    try:
        return con.construct_object(node, deep=True)
    finally:
        con.constructed_objects.clear()
        con.recursive_objects.clear()


def line_for(lines: dict[tuple, int], loc: tuple) -> int | None:
    """The line of the deepest known prefix of ``loc``."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())
