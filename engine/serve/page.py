"""The service's one page: paste a README (or a raw request), pick N, see the answer.

The result is drawn by the batch report's own item renderer (``report.html.render_item``:
tags with confidence, the candidate table, why-not, the README with evidence marked),
returned by ``POST /ui/tag``; the page only places it. No network assets.
"""
from __future__ import annotations

import html

from engine.report.html import CSS
from engine.taxonomy import Taxonomy

_PAGE_CSS = """
form textarea{width:100%;box-sizing:border-box;font:12px/1.4 ui-monospace,monospace}
form .row{display:flex;gap:16px;align-items:center;margin:8px 0;flex-wrap:wrap}
button{font:inherit;padding:6px 18px;background:#1d2433;color:#fff;border:0;border-radius:4px;cursor:pointer}
button[disabled]{opacity:.5}#answer{font:13px ui-monospace,monospace;background:#eef7ee;padding:6px 8px;border-radius:4px}
#error{color:#b52a25;font-weight:600}
"""

_PAGE_JS = """
window.__errors=[];
function jsError(m){window.__errors.push(String(m));document.documentElement.setAttribute('data-js-errors',String(window.__errors.length));}
window.addEventListener('error',function(e){jsError(e.message);});
window.addEventListener('unhandledrejection',function(e){jsError(e.reason);});
document.addEventListener('DOMContentLoaded',function(){
 var form=document.getElementById('form'),out=document.getElementById('result'),err=document.getElementById('error'),
     ans=document.getElementById('answer'),btn=document.getElementById('go'),root=document.documentElement;
 form.addEventListener('submit',function(ev){
  ev.preventDefault();
  var body={text:document.getElementById('text').value,raw_request:document.getElementById('raw').checked,
            max_tags:parseInt(document.getElementById('n').value,10)};
  var tax=document.getElementById('taxonomy').value.trim();
  if(tax&&!body.raw_request){try{body.taxonomy=JSON.parse(tax);}catch(e){err.textContent='tag list: not a JSON array: '+e.message;root.setAttribute('data-state','error');return;}}
  btn.disabled=true;err.textContent='';root.setAttribute('data-state','busy');
  fetch('/ui/tag',{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(body)})
   .then(function(r){return r.json().then(function(j){return {ok:r.ok,j:j};});})
   .then(function(x){
     btn.disabled=false;
     if(!x.ok){err.textContent='['+x.j.code+'] '+x.j.message;out.innerHTML='';ans.textContent='';root.setAttribute('data-state','error');return;}
     ans.textContent=x.j.answer;out.innerHTML=x.j.html;
     var d=out.querySelector('details');if(d)d.open=true;
     root.setAttribute('data-state','done');})
   .catch(function(e){btn.disabled=false;err.textContent=String(e);root.setAttribute('data-state','error');});
 });
 root.setAttribute('data-ready','1');
 if(!root.hasAttribute('data-js-errors'))root.setAttribute('data-js-errors','0');
});
"""


def render_page(taxonomy: Taxonomy | None, max_tags_limit: int) -> str:
    names = "" if taxonomy is None else html.escape(", ".join(taxonomy.names))
    options = "".join(f'<option value="{n}"{" selected" if n == 3 else ""}>{n}</option>' for n in range(1, max_tags_limit + 1))
    tax_hint = (f"default: the server's {len(taxonomy)} tags" if taxonomy is not None else "required: the server has no default list")
    return (
        "<!doctype html><html lang=en data-state=idle><head><meta charset=utf-8><title>tagsmith</title><link rel=icon href=\"data:,\">"
        f"<style>{CSS}{_PAGE_CSS}</style><script>{_PAGE_JS}</script></head><body>"
        "<header><h1>tagsmith — tag a project</h1></header><main><section>"
        '<form id="form"><label for="text">README, or a raw request</label>'
        '<textarea id="text" rows="14" required placeholder="Paste a project description here"></textarea>'
        '<div class="row"><label><input type="checkbox" id="raw"> raw request (its own N, id and tag list)</label>'
        f'<label>at most <select id="n">{options}</select> tags</label><button id="go" type="submit">Tag</button></div>'
        f'<label for="taxonomy">tag list (JSON array; {tax_hint})</label>'
        f'<textarea id="taxonomy" rows="2" placeholder="{html.escape(tax_hint)}"></textarea>'
        f'<p class="muted">server tags: {names or "none"}</p></form>'
        '<p id="error" role="alert"></p><p>answer: <code id="answer"></code></p></section>'
        '<div id="result"></div></main></body></html>'
    )
