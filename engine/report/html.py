"""One self-contained HTML file for a batch report: no network assets, no build step.

Evidence spans are highlighted in each README with ``<mark data-start data-end>``
so a reader (or a test) can check them against the explanation's offsets. A tiny
script filters items by tag and records any script error on the page itself.
"""
from __future__ import annotations

import html
import json
from typing import Any

from engine.report.explanation import model_scores

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#1d2433;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
main{padding:16px 24px;max-width:1200px}section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px 16px;margin:12px 0}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eceff3;padding:4px 6px;text-align:left;vertical-align:top}
.tag{display:inline-block;background:#e4ecff;border-radius:10px;padding:1px 8px;margin:1px}
.wrong{border-left:4px solid #d9534f}.lowconf{border-left:4px solid #f0ad4e}
mark{background:#ffe58a;padding:0 1px}pre.readme{white-space:pre-wrap;max-height:420px;overflow:auto;background:#fafbfc;padding:8px;font-size:12px}
.chosen{font-weight:600}.muted{color:#6b7385}.bar{fill:#4a6fe3}.badge{color:#fff;background:#d9534f;border-radius:3px;padding:0 5px;font-size:12px}
"""

_JS = """
window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message));
document.documentElement.setAttribute('data-js-errors',String(window.__errors.length));});
document.addEventListener('DOMContentLoaded',function(){
 var box=document.getElementById('filter');
 box.addEventListener('input',function(){var q=box.value.trim().toLowerCase();
  document.querySelectorAll('section.item').forEach(function(s){
   s.style.display=(!q||s.getAttribute('data-tags').toLowerCase().split(' ').indexOf(q)>=0)?'':'none';});});
 document.documentElement.setAttribute('data-ready','1');
 if(!document.documentElement.hasAttribute('data-js-errors'))document.documentElement.setAttribute('data-js-errors','0');
});
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _chart(dist: list[tuple[str, int]], top: int = 30) -> str:
    rows = dist[:top]
    if not rows:
        return "<p class=muted>No tags.</p>"
    peak = max(c for _, c in rows)
    h = 18 * len(rows) + 4
    bars = []
    for i, (tag, c) in enumerate(rows):
        w = 500 * c / peak
        y = 18 * i + 2
        bars.append(f'<text x="0" y="{y + 12}" font-size="12">{_e(tag)}</text>'
                    f'<rect class="bar" x="150" y="{y}" width="{w:.1f}" height="14"></rect>'
                    f'<text x="{155 + w:.1f}" y="{y + 12}" font-size="12">{c}</text>')
    return f'<svg role="img" aria-label="tag distribution" width="720" height="{h}">{"".join(bars)}</svg>'


def _highlight(text: str, exp: dict | None) -> str:
    spans = []
    for c in (exp or {}).get("candidates", []):
        for ev in c.get("evidence", []):
            s, e = ev["start"], ev["end"]
            if 0 <= s < e <= len(text) and text[s:e] == ev["text"]:
                spans.append((s, e, c["tag"], ev["rule"]))
    spans.sort()
    out, pos = [], 0
    for s, e, tag, rule in spans:
        if s < pos:
            continue  # overlapping evidence: the first span keeps the highlight
        out.append(_e(text[pos:s]))
        out.append(f'<mark data-start="{s}" data-end="{e}" data-tag="{_e(tag)}" title="{_e(tag)}: {_e(rule)}">{_e(text[s:e])}</mark>')
        pos = e
    out.append(_e(text[pos:]))
    return "".join(out)


def render_item(it: dict[str, Any]) -> str:
    """One item's section: tags with confidence, candidate table, why-not list, README with evidence."""
    exp = it["explanation"] or {}
    cls = "item" + (" wrong" if it["wrong"] else "") + (" lowconf" if it["low_confidence"] else "")
    tags = " ".join(it["tags"])
    head = " ".join(f'<span class="tag">{_e(t)} {it["confidence"].get(t, 0):.2f}</span>' for t in it["tags"]) or '<span class=muted>no tags</span>'
    badge = ' <span class="badge">wrong</span>' if it["wrong"] else ""
    gold = f'<p>gold: {" ".join(f"<span class=tag>{_e(t)}</span>" for t in it["gold"])}</p>' if it["gold"] is not None else ""
    label, first = model_scores(exp.get("decision", {}))
    rows = []
    for c in exp.get("candidates", [])[:10]:
        ev = "; ".join(f'{_e(e["text"])} <span class=muted>({_e(e["section"])})</span>' for e in c["evidence"][:3])
        decision = "chosen" if c["tag"] in it["tags"] else "rejected"
        mass = first.get(c["tag"])
        rows.append(f'<tr class="{"chosen" if decision == "chosen" else ""}"><td>{_e(c["tag"])}</td><td>{c["score"]:.2f}</td>'
                    f'<td>{"" if mass is None else f"{mass:.3f}"}</td><td>{decision}</td><td>{ev}</td></tr>')
    why = "".join(f'<li><b>{_e(r["tag"])}</b>: {_e(r["why_not"])}</li>' for r in exp.get("rejected", [])[:4])
    text = f'<details><summary>README with evidence highlighted</summary><pre class="readme">{_highlight(it["text"], exp)}</pre></details>' if it["text"] else ""
    return (f'<section class="{cls}" id="item-{_e(it["id"])}" data-id="{_e(it["id"])}" data-tags="{_e(tags)}">'
            f'<h3>{_e(it["id"])}{badge}</h3><p>{head}</p>{gold}'
            f'<table><tr><th>candidate</th><th>rule score</th><th>{label}</th><th>decision</th><th>evidence</th></tr>{"".join(rows)}</table>'
            f'{"<ul>" + why + "</ul>" if why else ""}{text}</section>')


def render_html(report: dict[str, Any]) -> str:
    st = report["settings"]
    settings = ", ".join(f"{k}: <code>{_e('-' if v is None else v)}</code>" for k, v in st.items()) or "<span class=muted>no explanations found</span>"
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>tagsmith report</title>",
        f"<style>{CSS}</style><script>{_JS}</script></head><body>",
        f'<header><h1>tagsmith report — {report["n"]} items</h1></header><main>',
        f"<section><h2>Run</h2><p>{settings}</p>",
        f'<p>No tags: {len(report["no_tags"])} · low confidence: {len(report["low_confidence"])}</p>',
        '<label>Filter by tag <input id="filter" placeholder="e.g. cli"></label></section>',
        f'<section><h2>Tag distribution</h2>{_chart(report["distribution"])}</section>',
    ]
    if report["low_confidence"] or report["no_tags"]:
        links = " ".join(f'<a href="#item-{_e(i)}">{_e(i)}</a>' for i in report["no_tags"] + report["low_confidence"])
        parts.append(f"<section><h2>Check these</h2><p>{links}</p></section>")
    g = report.get("gold")
    if g:
        m = g["metrics"]
        rows = "".join(f'<tr><td>{_e(t)}</td><td>{d["precision"]:.2f}</td><td>{d["recall"]:.2f}</td><td>{d["f1"]:.2f}</td><td>{d["support"]}</td></tr>'
                       for t, d in sorted(m["per_tag"].items(), key=lambda kv: kv[1]["f1"]))
        conf = "".join(f'<tr><td>{_e(c["gold"])}</td><td>{_e(c["predicted"])}</td><td>{c["count"]}</td></tr>' for c in g["confusions"])
        parts.append(f'<section><h2>Against gold</h2><p>micro-F1 {m["micro_f1"]:.3f} · macro-F1 {m["macro_f1"]:.3f} · top-1 {m["top1"]:.3f} · exact {m["exact"]:.3f} · wrong items {len(g["wrong"])}</p>'
                     f'<h3>Most frequent confusions</h3><table><tr><th>gold</th><th>predicted instead</th><th>count</th></tr>{conf}</table>'
                     f'<h3>Per tag</h3><table><tr><th>tag</th><th>P</th><th>R</th><th>F1</th><th>gold</th></tr>{rows}</table></section>')
    parts.append("<h2>Items</h2>")
    parts.extend(render_item(it) for it in report["items"])
    parts.append(f'<script type="application/json" id="report-data">{_e(json.dumps({"n": report["n"]}))}</script></main></body></html>')
    return "".join(parts)
