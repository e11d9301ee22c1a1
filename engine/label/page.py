"""The labelling page: one README at a time, the engine's suggestion pre-checked, keyboard
first. No network assets; the item itself is drawn by the report's renderer.

Keys: Enter accepts the checked tags; 1-9 toggle the numbered tags; ``/`` searches the
whole list (typing filters, Enter toggles the first match, Esc leaves); ``s`` skips;
``u`` goes back to the previous decision to change it; the left and right arrows move
through the items. The next item is fetched while the annotator reads this one, so a
decision paints the next item without waiting on the server; decisions are posted in
order behind it. The page records each key-to-paint time in ``window.__paints`` (ms)
and the time from navigation to its first item in ``data-first-paint`` (the bench reads both).
"""
from __future__ import annotations

import html
import json

from engine.report.html import CSS

_CSS = """
main{display:grid;grid-template-columns:minmax(0,1fr) 330px;gap:16px;max-width:1400px}
#side{position:sticky;top:8px;align-self:start}#side section{margin:0 0 10px}
#num li{list-style:none;margin:2px 0;cursor:pointer;padding:2px 4px;border-radius:4px}#num{padding:0;margin:4px 0}
#num li.on,#hits li.on{background:#dfe9ff;font-weight:600}#num kbd{display:inline-block;width:1.3em;text-align:center}
kbd{font:12px ui-monospace,monospace;background:#eef0f4;border:1px solid #ccd;border-radius:3px;padding:0 3px}
#search{width:100%;box-sizing:border-box;font:inherit;padding:4px}#hits{padding:0;margin:4px 0;max-height:180px;overflow:auto}
#hits li{list-style:none;cursor:pointer;padding:1px 4px}#hits li:first-child{outline:1px dashed #99a}
#chosen .tag{cursor:pointer}#msg{color:#b52a25;min-height:1.2em}.flag{background:#f0ad4e;color:#fff;border-radius:3px;padding:0 5px}
.keys{font-size:12px;color:#6b7385}#done{font-size:16px}
"""

_JS = r"""
window.__errors=[];window.__paints=[];
function jsError(m){window.__errors.push(String(m));document.documentElement.setAttribute('data-js-errors',String(window.__errors.length));}
window.addEventListener('error',function(e){jsError(e.message);});
window.addEventListener('unhandledrejection',function(e){jsError(e.reason);});
document.addEventListener('DOMContentLoaded',function(){
 var cfg=JSON.parse(document.getElementById('cfg').textContent),root=document.documentElement;
 var $=function(id){return document.getElementById(id);};
 var cache={},k=cfg.start,cur=null,checked=[],shownAt=0,posting=Promise.resolve(),first=true;
 function get(i){if(!cache[i])cache[i]=fetch('/api/item/'+i).then(function(r){return r.json().then(function(j){if(!r.ok){delete cache[i];throw new Error('['+j.code+'] '+j.message);}return j;});});return cache[i];}
 function msg(t){$('msg').textContent=t||'';}
 function stats(p){
  var a=p.agreement,r=p.agreement_random,pct=function(x){return x==null?'–':Math.round(100*x)+'%';};
  $('progress').textContent=p.decided+' of '+p.total+' decided'+(p.kind=='uncertain'||p.kind=='review'?' · scored '+p.scored:'');
  $('agree').textContent='agreement with suggestions: exact '+pct(a.exact)+', micro-F1 '+pct(a.micro_f1)+' (n='+a.n+')'+
   (p.kind=='uncertain'?' · random picks only: exact '+pct(r.exact)+', micro-F1 '+pct(r.micro_f1)+' (n='+r.n+')':'');}
 function drawTags(){
  var lis=$('num').children;for(var i=0;i<lis.length;i++)lis[i].className=checked.indexOf(lis[i].dataset.tag)>=0?'on':'';
  $('chosen').innerHTML='';
  checked.forEach(function(t){var s=document.createElement('span');s.className='tag';s.textContent=t;s.title='click to remove';
   s.onclick=function(){toggle(t);};$('chosen').appendChild(s);$('chosen').appendChild(document.createTextNode(' '));});
  if(!checked.length)$('chosen').innerHTML='<span class=muted>none (Enter saves "no tags")</span>';
  root.setAttribute('data-checked',JSON.stringify(checked));}
 function toggle(t){
  var i=checked.indexOf(t);
  if(i>=0){checked.splice(i,1);msg('');}
  else if(checked.length>=cfg.max_tags){msg('at most '+cfg.max_tags+' tags: remove one first');return;}
  else{checked.push(t);msg('');}
  drawTags();}
 function paint(j,tk){
  cur=j;k=j.k;root.setAttribute('data-k',String(k));
  if(j.end){$('item').innerHTML='<section id=done><p>All '+j.total+' items are decided. Next: <code>tagsmith train '+cfg.output_q+' --taxonomy TAX -o ADAPTER</code></p></section>';
   $('flag').textContent='';$('num').innerHTML='';checked=[];drawTags();stats(j);root.setAttribute('data-id','');root.setAttribute('data-end','1');return;}
  root.removeAttribute('data-end');root.setAttribute('data-id',j.id);
  $('item').innerHTML=j.html;var d=$('item').querySelector('details');if(d)d.open=true;
  $('pos').textContent='item '+(k+1)+' · '+j.id;
  $('flag').innerHTML=(j.pick=='random'?'<span class=flag>random pick</span> ':'')+(j.margin!=null?'margin '+j.margin.toFixed(3):'')+
   (j.decision?' · decided: '+(j.decision.skipped?'skipped':(j.decision.tags.join(', ')||'no tags')):'');
  $('ann').innerHTML='';
  if(j.annotators){Object.keys(j.annotators).forEach(function(n){var p=document.createElement('p');p.textContent=n+': '+(j.annotators[n].join(', ')||'no tags');$('ann').appendChild(p);});}
  var pre=j.decision&&!j.decision.skipped?j.decision.tags:j.suggestion;
  if(j.annotators&&!j.decision){var names=Object.keys(j.annotators);pre=j.annotators[names[0]].filter(function(t){return names.every(function(n){return j.annotators[n].indexOf(t)>=0;});});}
  checked=pre.slice(0,cfg.max_tags);
  $('num').innerHTML='';
  j.numbered.forEach(function(t,i){var li=document.createElement('li');li.dataset.tag=t;
   var c=j.confidence[t];li.innerHTML='<kbd>'+(i+1)+'</kbd> ';li.appendChild(document.createTextNode(t+(c!=null?' '+c.toFixed(2):'')));
   li.onclick=function(){toggle(t);};$('num').appendChild(li);});
  drawTags();stats(j);msg('');
  shownAt=performance.now();
  requestAnimationFrame(function(){requestAnimationFrame(function(){
   var now=performance.now();
   if(tk!=null)window.__paints.push(now-tk);
   if(first){first=false;root.setAttribute('data-first-paint',String(Math.round(now)));}
   root.setAttribute('data-painted',String(k));});});
  get(k+1).catch(function(){});}
 function go(i,tk){
  if(i<0)return;
  get(i).then(function(j){paint(j,tk);}).catch(function(e){msg(String(e.message||e));});}
 function decide(skip){
  if(!cur||cur.end)return;
  var tk=performance.now(),body={k:cur.k,tags:skip?[]:checked.slice(),seconds:(tk-shownAt)/1000,skipped:!!skip},at=cur.k;
  cache[at]=Promise.resolve(Object.assign({},cur,{decision:{tags:body.tags,skipped:body.skipped}}));
  root.setAttribute('data-pending',String(+(root.getAttribute('data-pending')||0)+1));
  posting=posting.then(function(){return fetch('/api/decide',{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(body)});})
   .then(function(r){return r.json().then(function(j){if(!r.ok)throw new Error('['+j.code+'] '+j.message);stats(j);});})
   .catch(function(e){msg('not saved: '+(e.message||e));delete cache[at];})
   .then(function(){root.setAttribute('data-pending',String(+root.getAttribute('data-pending')-1));root.setAttribute('data-saved',String(at));});
  go(at+1,tk);}
 function search(){
  var q=$('search').value.trim().toLowerCase(),hits=$('hits');hits.innerHTML='';if(!q)return;
  var starts=[],has=[];
  cfg.names.forEach(function(n){var l=n.toLowerCase();if(l.indexOf(q)==0)starts.push(n);else if(l.indexOf(q)>0)has.push(n);});
  starts.concat(has).slice(0,12).forEach(function(n){var li=document.createElement('li');li.textContent=n;li.dataset.tag=n;
   if(checked.indexOf(n)>=0)li.className='on';li.onclick=function(){toggle(n);search();};hits.appendChild(li);});}
 $('search').addEventListener('input',search);
 $('search').addEventListener('keydown',function(e){
  if(e.key=='Enter'){e.preventDefault();e.stopPropagation();var h=$('hits').firstChild;if(h)toggle(h.dataset.tag);$('search').value='';search();$('search').blur();}
  else if(e.key=='Escape'){e.preventDefault();e.stopPropagation();$('search').value='';search();$('search').blur();}});
 document.addEventListener('keydown',function(e){
  if(e.target==$('search')||e.ctrlKey||e.metaKey||e.altKey)return;
  if(e.key=='Enter'){e.preventDefault();decide(false);}
  else if(e.key>='1'&&e.key<='9'){var li=$('num').children[+e.key-1];if(li){e.preventDefault();toggle(li.dataset.tag);}}
  else if(e.key=='/'){e.preventDefault();$('search').focus();}
  else if(e.key=='s'){e.preventDefault();decide(true);}
  else if(e.key=='u'){e.preventDefault();go(k-1,performance.now());}
  else if(e.key=='ArrowLeft'){e.preventDefault();go(k-1,performance.now());}
  else if(e.key=='ArrowRight'){e.preventDefault();if(cur&&!cur.end)go(k+1,performance.now());}});
 go(k,null);
 root.setAttribute('data-ready','1');
 if(!root.hasAttribute('data-js-errors'))root.setAttribute('data-js-errors','0');
});
"""


def render_label_page(names: list[str], max_tags: int, start: int, output: str, title: str) -> str:
    """The page; ``start``: the slot to open first (the first undecided one)."""
    cfg = {"names": names, "max_tags": max_tags, "start": start, "output_q": html.escape(output)}
    cfg_json = json.dumps(cfg, ensure_ascii=False).replace("</", "<\\/")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>tagsmith label</title><link rel=icon href=\"data:,\">"
        f"<style>{CSS}{_CSS}</style><script type=application/json id=cfg>{cfg_json}</script><script>{_JS}</script></head><body>"
        f"<header><h1>tagsmith label — {html.escape(title)}</h1></header><main>"
        '<div id="item"><section class=muted>loading…</section></div>'
        '<div id="side"><section><b id="pos"></b><p id="flag" class="muted"></p><div id="ann"></div>'
        f'<p>chosen (at most {max_tags}): <span id="chosen"></span></p><p id="msg" role="alert"></p>'
        '<ol id="num"></ol><input id="search" placeholder="/ search all tags" autocomplete="off"><ol id="hits"></ol></section>'
        '<section><p id="progress"></p><p id="agree" class="muted"></p></section>'
        '<section class="keys"><kbd>Enter</kbd> accept · <kbd>1</kbd>–<kbd>9</kbd> toggle · <kbd>/</kbd> search · '
        '<kbd>s</kbd> skip · <kbd>u</kbd> undo · <kbd>←</kbd> <kbd>→</kbd> move</section></div>'
        "</main></body></html>"
    )
