"""The Ray runner on a local cluster against the local batch job: figures, not assertions.

Builds N records from the dev READMEs (distinct ids), tags them with the local job
(``BatchJob``, one process) and with ``RayBatchJob`` on ``ray.init(num_cpus=C)``, then
again with one decision actor killed mid-run (``--kill``), and prints wall times,
items/s and whether the outputs are the same bytes once sorted by id.

    python bench/ray_local.py --records 2000 --kill
    python bench/ray_local.py --records 91 --mode hybrid --shard-lines 16
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def sorted_lines(files: list[Path]) -> list[str]:
    return sorted(line for f in files for line in f.read_text(encoding="utf-8").splitlines())


def killer(out: Path, done: list[int]) -> threading.Thread:
    """Kill one decision actor (SIGKILL) once the first shard is written."""
    import psutil

    def run() -> None:
        end = time.time() + 600
        while time.time() < end and not done:
            if any(out.glob("done-*.json")):
                for p in psutil.process_iter(["pid", "cmdline"]):
                    if "DecideShard" in " ".join(p.info["cmdline"] or []):
                        os.kill(p.info["pid"], signal.SIGKILL)
                        done.append(p.info["pid"])
                        return
            time.sleep(0.02)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--mode", default="rules", choices=["rules", "llm", "hybrid"])
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--workers", type=int, default=1, help="decision actors")
    ap.add_argument("--shard-lines", type=int, default=250)
    ap.add_argument("--kill", action="store_true", help="also a run with one actor killed mid-run")
    ap.add_argument("--gold", default=str(DATA / "dev.jsonl"))
    ap.add_argument("--taxonomy", default=str(DATA / "taxonomy.json"))
    args = ap.parse_args()

    import ray

    from engine.api import Tagger
    from engine.distributed.ray_runner import RayBatchJob, RaySettings
    from engine.io.batch import BatchJob
    from engine.taxonomy import Taxonomy

    tax = Taxonomy.load(args.taxonomy)
    base = [json.loads(line) for line in open(args.gold, encoding="utf-8")]
    tmp = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    src = tmp / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"{i}", "text": base[i % len(base)]["text"]}) + "\n" for i in range(args.records)))
    print(f"{args.records} records ({len(base)} distinct READMEs), mode {args.mode}, {args.cpus} CPUs, {args.workers} decision actor(s), "
          f"{args.shard_lines} lines per shard", flush=True)

    t0 = time.perf_counter()
    BatchJob(Tagger(mode=args.mode), tax).run(str(src), str(tmp / "local.jsonl"))
    local_s = time.perf_counter() - t0
    want = sorted_lines([tmp / "local.jsonl"])

    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    init_s = time.perf_counter() - t0
    settings = RaySettings(workers=args.workers, lines_per_shard=args.shard_lines)
    rows = [("local job (1 process)", local_s, True, "")]
    runs = [("ray", False)] + ([("ray, one actor killed mid-run", True)] if args.kill else [])
    for label, kill in runs:
        out = tmp / label.replace(" ", "_").replace(",", "")
        dead: list[int] = []
        th = killer(out, dead) if kill else None
        t0 = time.perf_counter()
        RayBatchJob({"mode": args.mode}, tax, settings=settings).run(str(src), str(out))
        secs = time.perf_counter() - t0
        if th is not None:
            th.join(1)
        got = sorted_lines(sorted(out.glob("part-*.jsonl")))
        ids = [json.loads(line)["id"] for line in got]
        note = f"killed pid {dead[0]}" if dead else ("no actor found to kill" if kill else "")
        rows.append((label, secs, got == want and len(ids) == len(set(ids)) == len(want), note))
    print(f"ray.init: {init_s:.1f} s (not in the rows)")
    print("| run | wall s | items/s | × local job | same answers, each id once | note |")
    print("|---|---|---|---|---|---|")
    for label, secs, same, note in rows:
        print(f"| {label} | {secs:.1f} | {args.records / secs:.1f} | {local_s / secs:.2f} | {'yes' if same else 'NO'} | {note} |")
    ray.shutdown()


if __name__ == "__main__":
    main()
