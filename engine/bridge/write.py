"""The bridge as a person reviews it: the links, and the lent rules as a YAML pack.

``tagsmith rules bridge --taxonomy T`` prints which of the list's tags take which of
the pack's concepts and why (and which take none); ``-o PACK/`` also writes the lent
rules, renamed, as a pack (``bridged.yaml``, ``extends`` the pack it lends from) that
loads with the ordinary loader: edit it, then tag with ``--rules PACK/``, and the
written rules replace the lending."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from engine.bridge.link import Bridged
from engine.taxonomy import Taxonomy

FILE = "bridged.yaml"


def format_links(bridged: Bridged, taxonomy: Taxonomy) -> str:
    """One line per linked tag (its concepts, score and evidence), then the list's tags
    that the pack neither names nor lends to."""
    lines = []
    for tag in taxonomy:
        for lk in bridged.for_tag(tag.name):
            lines.append(f"{tag.name!r} <- {lk.concept!r} (score {lk.score:g}): {lk.reason()}")
    own = [t.name for t in taxonomy if bridged.pack.get(t.name) is not None and not bridged.for_tag(t.name)]
    none = [t.name for t in taxonomy if bridged.pack.get(t.name) is None]
    lines.append(f"{len({lk.tag for lk in bridged.links})} tags take rules of the pack's concepts, {len(own)} have their own, "
                 f"{len(none)} neither" + (": " + ", ".join(repr(n) for n in none) if none else ""))
    return "\n".join(lines)


def _plain(rule: Any) -> dict[str, Any]:
    """The rule as a hand pack writes it: a term with only its text as a string."""
    data = rule.model_dump(exclude_defaults=True)
    data.pop("examples", None)
    for key in ("aliases", "phrases", "regexes"):
        if key in data:
            data[key] = [t["text"] if set(t) == {"text"} else t for t in data[key]]
    return data


def render(bridged: Bridged, extends: str = "default") -> str:
    """The lent rules as a pack file, each with its links in a comment."""
    out = ["# Written by `tagsmith rules bridge`: the rules the pack lends to tags of this list that name its concepts.",
           "# Edit freely: a rule here replaces the lending for its tag (`--rules` this folder).",
           "version: 1", f"extends: {extends}", "rules:"]
    for name in dict.fromkeys(lk.tag for lk in bridged.links):
        for lk in bridged.for_tag(name):
            out.append(f"  # {name!r} <- {lk.reason()}")
        body = yaml.safe_dump([_plain(bridged.pack.get(name))], allow_unicode=True, sort_keys=False, width=120, default_flow_style=None)
        out.extend("  " + line for line in body.rstrip("\n").split("\n"))
    return "\n".join(out) + "\n"


def write(bridged: Bridged, folder: str | Path, extends: str = "default") -> Path:
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    target = path / FILE
    target.write_text(render(bridged, extends), encoding="utf-8")
    return target


__all__ = ["format_links", "render", "write", "FILE"]
