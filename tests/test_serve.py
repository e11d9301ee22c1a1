"""``tagsmith serve``: answers equal the CLI's, bad input gets its code, the service stays up."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from engine.api import Tagger
from engine.serve import ServerThread
from engine.serve.app import Service, ServiceSettings, create_app
from engine.taxonomy import Taxonomy
from tests.browser import DevTools, chromium

ROOT = Path(__file__).resolve().parents[1]
TAX = ROOT / "fixtures" / "taxonomy.json"
TEXTS = {
    "a1": "# fsync\n\nA command-line tool that syncs folders over SSH. Install with `cargo install fsync`, then run `fsync src dst`.",
    "b2": "# dateparse\n\nA tiny Python library for parsing dates. `pip install dateparse`, then `from dateparse import parse`.",
    "c3": "# kvstore\n\nA distributed key-value database written in Go, with a Kubernetes operator and a Helm chart.",
    "d4": "# pixel\n\nA 2D game engine in C++ with an entity component system, physics and a level editor.",
    "e5": "# notes\n\nA static site generator for blogs: write Markdown, get HTML. Themes, RSS and a dev server.",
    "f6": "# learn-rust\n\nExercises and a course to learn Rust from scratch, with solutions and a book.",
}


def wait_ready(url: str, timeout: float = 120) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("the service never became ready")


@pytest.fixture(scope="module")
def rules():
    tagger = Tagger(mode="rules")
    svc = Service(tagger, Taxonomy.load(TAX), ServiceSettings(max_body_bytes=1 << 20, max_call_items=8, taxonomies_kept=2))
    with ServerThread(create_app(svc)) as url:
        wait_ready(url)
        yield url, svc


def post(url: str, path: str, **kw) -> httpx.Response:
    return httpx.post(url + path, timeout=120, **kw)


def test_answers_are_the_apis_bytes(rules):
    url, svc = rules
    tax = Taxonomy.load(TAX)
    ref = Tagger(mode="rules")
    for rid, text in TEXTS.items():
        r = post(url, "/v1/tag", json={"id": rid, "text": text})
        want = ref.tag(text, id=rid, taxonomy=tax, skeleton={"id": rid, "tags": []})
        assert r.status_code == 200 and r.content == want.to_json().encode()
    r = post(url, "/v1/tag", json={"id": 7, "text": TEXTS["c3"], "max_tags": 1, "explain": True, "taxonomy": ["database", "k8s", "cli"]})
    body = r.json()
    assert body["id"] == "7" and len(body["tags"]) == 1 and body["tags"][0] in ("database", "k8s")
    assert body["explanation"]["max_tags"] == 1 and body["explanation"]["candidates"]


def test_raw_request_is_what_tagsmith_tag_prints(rules):
    url, _ = rules
    raw = (ROOT / "fixtures" / "request-example.txt").read_bytes()
    cli = subprocess.run([sys.executable, "-m", "engine.cli", "tag", "--no-llm", str(ROOT / "fixtures" / "request-example.txt")],
                         capture_output=True, cwd=ROOT)
    assert cli.returncode == 0, cli.stderr
    r = post(url, "/v1/request", content=raw, headers={"content-type": "text/plain"})
    assert r.status_code == 200 and r.content + b"\n" == cli.stdout


@pytest.mark.parametrize("body,status,code", [
    (b"{not json", 400, "E104"),
    (b"[1, 2]", 400, "E104"),
    (json.dumps({"text": "x", "colour": "red"}).encode(), 400, "E104"),  # unknown field
    (json.dumps({"id": "1"}).encode(), 400, "E102"),  # no text
    (json.dumps({"text": " \n "}).encode(), 400, "E102"),
    (json.dumps({"text": "x", "max_tags": 0}).encode(), 400, "E101"),
    (json.dumps({"text": "x", "max_tags": 11}).encode(), 400, "E101"),
    (json.dumps({"text": "x", "max_tags": "three"}).encode(), 400, "E101"),
    (json.dumps({"text": "x", "taxonomy": []}).encode(), 400, "E200"),
    (json.dumps({"text": "x", "taxonomy": "cli"}).encode(), 400, "E200"),
    (json.dumps({"text": "x", "taxonomy": ["cli", "CLI"]}).encode(), 400, "E201"),
    (json.dumps({"text": "x" * (1 << 20)}).encode(), 413, "E108"),
])
def test_bad_input_gets_its_code(rules, body, status, code):
    url, _ = rules
    r = post(url, "/v1/tag", content=body, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["message"]


def test_bad_raw_requests(rules):
    url, _ = rules
    assert post(url, "/v1/request", content=b"no instruction here").json()["code"] == "E100"
    assert post(url, "/v1/request", content=b"\xff\xfe").json()["code"] == "E103"


def test_streamed_body_over_the_bound_is_refused(rules):
    url, _ = rules

    def chunks():  # no Content-Length: the bound is counted as the body arrives
        yield b'{"text": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    r = post(url, "/v1/tag", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "E108"


def test_batch_call_answers_each_item(rules):
    url, _ = rules
    items = [{"id": k, "text": v} for k, v in list(TEXTS.items())[:3]] + [{"id": "empty", "text": ""}]
    r = post(url, "/v1/tag/batch", json={"items": items, "max_tags": 2})
    res = r.json()["results"]
    assert r.status_code == 200 and [x["id"] for x in res] == ["a1", "b2", "c3", "empty"]
    assert res[3]["error"]["code"] == "E102" and all(len(x["tags"]) <= 2 for x in res[:3])
    single = [post(url, "/v1/tag", json={**it, "max_tags": 2}).json() for it in items[:3]]
    assert res[:3] == single
    r = post(url, "/v1/tag/batch", json={"items": [{"text": "x"}] * 9})
    assert r.status_code == 413 and r.json()["code"] == "E108"


def test_request_tag_lists_are_kept_bounded(rules):
    url, svc = rules
    for i in range(5):
        assert post(url, "/v1/tag", json={"text": TEXTS["a1"], "taxonomy": ["cli", "lib", f"extra-{i}"]}).status_code == 200
    post(url, "/v1/tag", json={"text": TEXTS["a1"]})  # a batch boundary: forgotten lists are dropped between batches
    kept = set(svc.tagger._lexicons)
    assert len(kept) <= 1 + 2 + 1  # the server's list, the 2 kept, at most one in use when it was evicted
    assert Taxonomy.load(TAX).fingerprint() in kept


def test_probes_docs_and_metrics(rules):
    url, _ = rules
    assert httpx.get(url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(url + "/readyz").json()["status"] == "ready"
    spec = httpx.get(url + "/openapi.json").json()
    assert {"/v1/tag", "/v1/request", "/v1/tag/batch", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    docs = httpx.get(url + "/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()  # no network assets: works offline
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs-assets/{asset}" in docs.text and httpx.get(url + f"/docs-assets/{asset}").status_code == 200

    def metrics() -> dict[str, float]:
        text = httpx.get(url + "/metrics").text
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and not line.startswith("#")}

    ok, e102, lat = 'tagsmith_requests_total{endpoint="/v1/tag",status="200"}', 'tagsmith_errors_total{code="E102"}', 'tagsmith_request_seconds_count{endpoint="/v1/tag"}'
    before = metrics()
    for _ in range(3):
        post(url, "/v1/tag", json={"text": TEXTS["a1"]})
    post(url, "/v1/tag", json={"text": ""})
    after = metrics()
    assert after[ok] - before.get(ok, 0) == 3 and after[e102] - before.get(e102, 0) == 1
    assert after[lat] - before.get(lat, 0) == 4 and after["tagsmith_batch_items_count"] >= 3


def test_a_client_that_leaves_does_not_stall_the_service(rules):
    url, _ = rules
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"id": "gone", "text": TEXTS["d4"] * 200}).encode()
    for _ in range(5):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"POST /v1/tag HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        s.close()  # gone before the answer
    s = socket.create_connection((host, int(port)))
    s.sendall(b"POST /v1/tag HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999\r\n\r\n{")
    s.close()  # gone mid-body
    t0 = time.perf_counter()
    r = post(url, "/v1/tag", json={"id": "next", "text": TEXTS["a1"]})
    assert r.status_code == 200 and time.perf_counter() - t0 < 30


def test_lexicon_workers_answer_the_same(rules):
    url, _ = rules
    svc = Service(Tagger(mode="rules"), Taxonomy.load(TAX), ServiceSettings(lexicon_workers=2, max_wait_ms=50))
    items = [{"id": k, "text": v} for k, v in TEXTS.items()]
    with ServerThread(create_app(svc)) as url2:
        wait_ready(url2)
        got = post(url2, "/v1/tag/batch", json={"items": items, "max_tags": 2}).json()
        explained = post(url2, "/v1/tag", json={**items[0], "explain": True, "taxonomy": ["cli", "lib", "blog"]}).json()
    assert got == post(url, "/v1/tag/batch", json={"items": items, "max_tags": 2}).json()
    assert explained == post(url, "/v1/tag", json={**items[0], "explain": True, "taxonomy": ["cli", "lib", "blog"]}).json()


def test_sigterm_drains_requests_in_flight(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", "--no-llm", "--port", str(port), "--taxonomy", str(TAX),
                             "--max-batch", "4"], cwd=ROOT, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, 60)
        items = [{"id": str(i), "text": TEXTS["c3"] * 60 + str(i)} for i in range(256)]
        got = {}

        def call():
            got["r"] = httpx.post(url + "/v1/tag/batch", json={"items": items}, timeout=120)

        th = threading.Thread(target=call)
        th.start()
        time.sleep(0.5)  # the call is queued and being tagged in batches of 4
        proc.send_signal(signal.SIGTERM)
        th.join(120)
        assert proc.wait(60) == 0
        r = got["r"]
        assert r.status_code == 200 and [x["id"] for x in r.json()["results"]] == [str(i) for i in range(256)]
        assert all("tags" in x for x in r.json()["results"])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


@pytest.mark.model
def test_concurrent_answers_equal_single_answers(real_lm, taxonomy):
    """Whatever else is in its batch (other lists, other N), an item's answer is the
    bytes a lone ``Tagger.tag`` gives."""
    mini = Taxonomy.from_names(["cli", "lib", "database", "game-engine ", "blog", "learning-resource", "k8s"])
    jobs = [(rid, text, tax, n) for (rid, text), (tax, n) in zip(list(TEXTS.items()) * 2, [(taxonomy, 3), (mini, 2), (taxonomy, 2)] * 4)]
    ref = Tagger(mode="hybrid", lm=real_lm)
    want = [ref.tag(text, id=rid, taxonomy=tax, max_tags=n, skeleton={"id": rid, "tags": []}).to_json() for rid, text, tax, n in jobs]
    svc = Service(Tagger(mode="hybrid", lm=real_lm), taxonomy, ServiceSettings(max_batch=8, max_wait_ms=50))
    with ServerThread(create_app(svc)) as url:
        wait_ready(url)
        got = [None] * len(jobs)

        def call(i):
            rid, text, tax, n = jobs[i]
            body = {"id": rid, "text": text, "max_tags": n}
            if tax is mini:
                body["taxonomy"] = mini.names
            got[i] = httpx.post(url + "/v1/tag", json=body, timeout=300).text

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        m = httpx.get(url + "/metrics").text
    assert got == want
    count = float(next(l.split()[1] for l in m.splitlines() if l.startswith("tagsmith_batch_items_count")))
    total = float(next(l.split()[1] for l in m.splitlines() if l.startswith("tagsmith_batch_items_sum")))
    assert total >= len(jobs) and count < total  # requests were decoded together, not one by one


# -- the page, in headless Chromium through the DevTools protocol -----------------------
def test_the_page_in_headless_chromium(rules, tmp_path):
    url, _ = rules
    with chromium(tmp_path / "profile") as dt:
        check_page(dt, url, tmp_path)


def check_page(dt: DevTools, url: str, tmp_path: Path) -> None:
    """Type a README, click Tag, and read the answer, the candidate table and the marks off the page."""
    dt.open(url + "/")
    dt.js("document.getElementById('text').focus()")
    dt.call("Input.insertText", text=TEXTS["a1"])  # typed, as a user pastes
    dt.js("document.getElementById('n').value='2'")
    box = dt.js("(()=>{const r=document.getElementById('go').getBoundingClientRect();return [r.x+r.width/2,r.y+r.height/2]})()")
    for kind in ("mousePressed", "mouseReleased"):
        dt.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)
    for _ in range(600):
        state = dt.js("document.documentElement.getAttribute('data-state')")
        if state in ("done", "error"):
            break
        time.sleep(0.05)
    assert state == "done", dt.js("document.getElementById('error').textContent")
    answer = json.loads(dt.js("document.getElementById('answer').textContent"))
    want = post(url, "/v1/tag", json={"id": "page", "text": TEXTS["a1"], "max_tags": 2}).json()
    assert answer == want and answer["tags"]
    shown = dt.js("[...document.querySelectorAll('#result section.item p .tag')].map(e=>e.textContent)")
    assert [s.split()[0] for s in shown] == answer["tags"]  # each tag with its confidence
    assert all(0 <= float(s.split()[1]) <= 1 for s in shown)
    assert dt.js("document.querySelectorAll('#result table tr').length") > 1  # the candidate table
    marks = dt.js("[...document.querySelectorAll('#result mark')].map(m=>[+m.dataset.start,+m.dataset.end,m.textContent])")
    assert marks and all(TEXTS["a1"][s:e] == t for s, e, t in marks)  # evidence marked where it is
    png = dt.screenshot(tmp_path / "serve-page.png")
    from PIL import Image

    img = Image.open(png).convert("RGB")
    assert img.getcolors(maxcolors=1 << 20) is not None and len(img.getcolors(maxcolors=1 << 20)) > 20  # not blank
    assert dt.js("document.documentElement.getAttribute('data-js-errors')") == "0"
    assert not dt.errors(), dt.errors()
