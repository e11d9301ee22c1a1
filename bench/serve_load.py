"""Load test of ``tagsmith serve``: figures, not assertions.

Starts ``tagsmith serve`` on loopback (its own process, as in production), then for each
concurrency C runs C clients that post dev READMEs to ``/v1/tag`` back to back for
``--seconds``; in-flight requests are then awaited (they count, and so does their
time). Prints items/s, p50/p95/p99 latency and errors per C, beside two baselines
measured in this run on the same items:

  one-at-a-time   ``Tagger.tag`` item after item, in this process (no HTTP);
  batch job       ``BatchJob`` (what ``tagsmith batch`` runs) over the same items, one process;
  naive loop      (with a model, ``--naive-items K``) one prompt at a time through Outlines,
                  as bench/throughput.py row (a): what a server without batching would run.

``--identity`` also checks that the service's answers equal ``tagsmith batch`` (and, on a
few items, ``tagsmith tag --text``) byte for byte on every item of the gold file.

    python bench/serve_load.py --mode rules --seconds 20
    python bench/serve_load.py --mode hybrid --seconds 60 --identity
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "engine.cli", "serve", "--port", str(port), "--taxonomy", args.taxonomy, "--mode", args.mode,
           "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms), "--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    end = time.time() + 600
    while time.time() < end:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server never became ready")


async def load(url: str, rows: list[dict], clients: int, seconds: float) -> dict:
    import httpx

    lat: list[float] = []
    errors = 0
    nxt = 0
    stop_at = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors, nxt
        while time.perf_counter() < stop_at:
            r = rows[nxt % len(rows)]
            nxt += 1
            t0 = time.perf_counter()
            try:
                resp = await http.post(url + "/v1/tag", json={"id": r["id"], "text": r["text"]})
                ok = resp.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                lat.append(time.perf_counter() - t0)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=3600, limits=limits) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0] if lat else float("nan")] * 99
    return {"clients": clients, "items": len(lat), "wall_s": wall, "items_s": len(lat) / wall, "p50": q[49], "p95": q[94], "p99": q[98],
            "errors": errors}


def baselines(args: argparse.Namespace, rows: list[dict]) -> dict:
    """Items/s of the same items one at a time in-process, and through the batch job."""
    from engine.api import Tagger
    from engine.io.batch import BatchJob
    from engine.taxonomy import Taxonomy

    tax = Taxonomy.load(args.taxonomy)
    tagger = Tagger(mode=args.mode)
    tagger.tag("warm-up", taxonomy=tax)  # model load and constraint compile are not the rate
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        r = rows[n % len(rows)]
        tagger.tag(r["text"], id=r["id"], taxonomy=tax)
        n += 1
    single = n / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "in.jsonl"
        take = rows[: max(8, min(len(rows), int(single * args.seconds * 1.5)))]
        src.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in take))
        t0 = time.perf_counter()
        BatchJob(tagger, tax).run(str(src), str(Path(d) / "out.jsonl"))
        batch = len(take) / (time.perf_counter() - t0)
    naive = None
    if args.mode != "rules" and args.naive_items:
        import outlines

        sys.path.insert(0, str(ROOT / "bench"))
        from throughput import naive_prompt

        from engine.decision.constraint import build_regex

        lm = tagger.lm
        gen = outlines.Generator(outlines.from_transformers(lm.model, lm.tokenizer), outlines.types.Regex(build_regex(tax.names, 3)))
        prompts = [naive_prompt(lm.tokenizer, r["text"], tax.names, 3) for r in rows[: args.naive_items]]
        t0 = time.perf_counter()
        for p in prompts:
            gen(p, max_new_tokens=24)
        naive = len(prompts) / (time.perf_counter() - t0)
    return {"single": single, "batch": batch, "naive": naive}


def identity(args: argparse.Namespace, url: str, rows: list[dict]) -> str:
    """Service answers vs ``tagsmith batch`` on every item, and vs ``tagsmith tag --text`` on a few."""
    import httpx

    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "in.jsonl", Path(d) / "out.jsonl"
        src.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows))
        run = subprocess.run([sys.executable, "-m", "engine.cli", "batch", str(src), "-o", str(out), "--taxonomy", args.taxonomy,
                              "--mode", args.mode, "--quiet"], cwd=ROOT, capture_output=True)
        assert run.returncode == 0, run.stderr.decode()
        cli = {json.loads(line)["id"]: line for line in out.read_text(encoding="utf-8").splitlines()}
        served = {r["id"]: httpx.post(url + "/v1/tag", json={"id": r["id"], "text": r["text"]}, timeout=600).text for r in rows}
        same = sum(cli[k] == v for k, v in served.items())
        tag_same = 0
        sample = rows[:: max(1, len(rows) // args.tag_samples)][: args.tag_samples]
        for r in sample:
            f = Path(d) / "readme.md"
            f.write_text(r["text"], encoding="utf-8")
            got = subprocess.run([sys.executable, "-m", "engine.cli", "tag", "--text", str(f), "--id", r["id"], "--taxonomy", args.taxonomy,
                                  "--mode", args.mode], cwd=ROOT, capture_output=True)
            tag_same += got.stdout.decode().rstrip("\n") == served[r["id"]]
    return (f"identity: service = tagsmith batch on {same}/{len(rows)} items (byte for byte); "
            f"service = tagsmith tag --text on {tag_same}/{len(sample)} sampled items")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", default="hybrid", choices=["rules", "llm", "hybrid"])
    ap.add_argument("--gold", default=str(DATA / "dev.jsonl"))
    ap.add_argument("--taxonomy", default=str(DATA / "taxonomy.json"))
    ap.add_argument("--clients", default="1,8,32,64", help="concurrency levels")
    ap.add_argument("--seconds", type=float, default=30, help="time each level (and each baseline) keeps sending")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=10)
    ap.add_argument("--workers", type=int, default=0, help="the server's lexicon worker processes")
    ap.add_argument("--identity", action="store_true", help="also check answers against tagsmith batch / tagsmith tag")
    ap.add_argument("--tag-samples", type=int, default=3)
    ap.add_argument("--naive-items", type=int, default=4, help="items for the naive Outlines loop baseline (model modes; 0: skip)")
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.gold, encoding="utf-8")]
    for r in rows:
        r["id"] = str(r["id"])
    print(f"serve load test: mode {args.mode}, {len(rows)} READMEs from {args.gold}, {os.cpu_count()} CPUs, "
          f"batches of <= {args.max_batch} / {args.max_wait_ms:g} ms, {args.workers} lexicon workers, {args.seconds:g} s per level", flush=True)
    base = baselines(args, rows)
    naive = f"; naive Outlines loop: {base['naive']:.3f} items/s" if base["naive"] else ""
    print(f"one at a time, in-process: {base['single']:.2f} items/s; batch job (1 process): {base['batch']:.2f} items/s{naive}", flush=True)
    proc, url = start_server(args)
    try:
        naive_col = " × naive loop |" if base["naive"] else ""
        print("| clients | items | items/s | × one-at-a-time | × batch job |" + naive_col + " p50 s | p95 s | p99 s | errors |")
        print("|---|---|---|---|---|" + ("---|" if base["naive"] else "") + "---|---|---|---|")
        for c in [int(x) for x in args.clients.split(",")]:
            r = asyncio.run(load(url, rows, c, args.seconds))
            vs_naive = f" {r['items_s'] / base['naive']:.1f} |" if base["naive"] else ""
            print(f"| {c} | {r['items']} | {r['items_s']:.2f} | {r['items_s'] / base['single']:.2f} | {r['items_s'] / base['batch']:.2f} |{vs_naive} "
                  f"{r['p50']:.3f} | {r['p95']:.3f} | {r['p99']:.3f} | {r['errors']} |", flush=True)
        if args.identity:
            print(identity(args, url, rows), flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
