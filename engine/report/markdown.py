"""Readable Markdown for an explanation (``tagsmith explain``)."""
from __future__ import annotations

from typing import Any


def _cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_markdown(exp: dict[str, Any]) -> str:
    out = [f"# Tags for `{exp.get('id')}`", ""]
    out.append(f"Mode **{exp['mode']}**, model `{exp.get('model') or '-'}`, rule pack `{exp['pack']}`, taxonomy `{exp['taxonomy']}`, at most {exp['max_tags']} tags.")
    out += ["", "## Chosen", ""]
    if not exp["chosen"]:
        out.append("No tag fits.")
    for c in exp["chosen"]:
        out.append(f"{c['rank']}. **{c['tag']}** — {c['reason']}")
    out += ["", "## Candidates", "", "| tag | rule score | model mass (1st step) | evidence |", "|---|---|---|---|"]
    steps = exp.get("decision", {}).get("steps", [])
    first = steps[0]["tag_mass"] if steps else {}
    for c in exp["candidates"]:
        ev = "; ".join(f"{e['text']!r} {e['section']} {e['rule']}" for e in c["evidence"][:3])
        if c.get("vetoed"):
            ev += f" (vetoed: {', '.join(repr(v['text']) + ' by ' + repr(v['vetoed_by']) for v in c['vetoed'][:2])})"
        m = first.get(c["tag"])
        out.append(f"| {_cell(c['tag'])} | {c['score']:.2f} | {'' if m is None else f'{m:.3f}'} | {_cell(ev)} |")
    if steps:
        out += ["", "## Model steps", ""]
        for s in steps:
            top = ", ".join(f"{k} {v:.3f}" for k, v in list(s["tag_mass"].items())[:5])
            out.append(f"- tag {s['position'] + 1}: {top}; stop {s['stop']:.3f}")
    if exp["rejected"]:
        out += ["", "## Why not", ""]
        for r in exp["rejected"]:
            out.append(f"- **{r['tag']}**: {r['why_not']}")
    return "\n".join(out) + "\n"
