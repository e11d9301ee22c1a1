"""Readable Markdown for an explanation (``tagsmith explain``)."""
from __future__ import annotations

from typing import Any

from engine.report.explanation import model_scores


def _cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def render_markdown(exp: dict[str, Any]) -> str:
    out = [f"# Tags for `{exp.get('id')}`", ""]
    out.append(f"Mode **{exp['mode']}**, model `{exp.get('model') or '-'}`, rule pack `{exp['pack']}`, taxonomy `{exp['taxonomy']}`, at most {exp['max_tags']} tags.")
    out += ["", "## Chosen", ""]
    if not exp["chosen"]:
        out.append("No tag fits.")
    for c in exp["chosen"]:
        out.append(f"{c['rank']}. **{c['tag']}** (confidence {c['confidence']:.2f}) — {c['reason']}")
    label, first = model_scores(exp.get("decision", {}))
    steps = exp.get("decision", {}).get("steps", [])
    out += ["", "## Candidates", "", f"| tag | rule score | {label} | evidence |", "|---|---|---|---|"]
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


def render_batch_markdown(report: dict[str, Any]) -> str:
    """The batch report (see ``engine.report.batch``) as Markdown."""
    out = [f"# tagsmith report — {report['n']} items", ""]
    out.append(", ".join(f"{k}: `{v}`" for k, v in report["settings"].items()))
    out += ["", f"No tags: {len(report['no_tags'])}; low confidence: {len(report['low_confidence'])}", "", "## Tag distribution", ""]
    out += [f"- {t}: {c}" for t, c in report["distribution"][:30]]
    g = report.get("gold")
    if g:
        m = g["metrics"]
        out += ["", "## Against gold", "", f"micro-F1 {m['micro_f1']:.3f}, macro-F1 {m['macro_f1']:.3f}, top-1 {m['top1']:.3f}, exact {m['exact']:.3f}", ""]
        out += ["| gold | predicted instead | count |", "|---|---|---|"] + [f"| {c['gold']} | {c['predicted']} | {c['count']} |" for c in g["confusions"]]
    out += ["", "## Items", ""]
    for it in report["items"]:
        mark = " **(wrong)**" if it["wrong"] else ""
        tags = ", ".join(f"{t} ({it['confidence'].get(t, 0):.2f})" for t in it["tags"]) or "no tags"
        gold = f"; gold: {', '.join(it['gold'])}" if it["gold"] is not None else ""
        out.append(f"- `{it['id']}`{mark}: {tags}{gold}")
    return "\n".join(out) + "\n"
