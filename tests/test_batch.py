"""The batch job under real conditions: several input formats, crashes, resumes."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TAX = '[{"id":1,"name":"cli"},{"id":2,"name":"lib"},{"id":3,"name":"database"},{"id":4,"name":"game-engine "}]'
TEXTS = ["A command-line tool to rename files.", "A tiny library for parsing dates.", "A distributed SQL database.",
         "A 2D and 3D game engine with an entity component system."]


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, cwd=ROOT, **kw)


def test_csv_and_folder_inputs(tmp_path):
    (tmp_path / "t.json").write_text(TAX)
    csv_file = tmp_path / "in.csv"
    csv_file.write_text('key,readme,other\nk1,"A command-line tool, with ""quotes""",x\nk2,,y\nk3,"A tiny library\nfor dates",z\n')
    out = tmp_path / "out.jsonl"
    r = cli("batch", str(csv_file), "-o", str(out), "--taxonomy", str(tmp_path / "t.json"), "--no-llm", "--id-col", "key", "--text-col", "readme")
    assert r.returncode == 1
    assert [json.loads(l) for l in out.read_text().splitlines()] == [{"id": "k1", "tags": ["cli"]}, {"id": "k3", "tags": ["lib"]}]
    err = json.loads((tmp_path / "out.jsonl.errors.jsonl").read_text())
    assert err["line"] == 3 and err["id"] == "k2"
    bad = cli("batch", str(csv_file), "-o", str(out), "--taxonomy", str(tmp_path / "t.json"), "--no-llm", "--id-col", "nope")
    assert bad.returncode == 2 and "no column 'nope'" in bad.stderr.decode()

    folder = tmp_path / "readmes"
    folder.mkdir()
    (folder / "alpha.md").write_text(TEXTS[2])
    (folder / "beta.md").write_bytes(b"\xff\xfe")
    exp = tmp_path / "exp"
    r = cli("batch", str(folder), "-o", str(out), "--taxonomy", str(tmp_path / "t.json"), "--no-llm", "--explain-dir", str(exp))
    assert r.returncode == 1
    assert json.loads(out.read_text()) == {"id": "alpha.md", "tags": ["database"]}
    assert json.loads((tmp_path / "out.jsonl.errors.jsonl").read_text())["file"] == "beta.md"
    assert json.loads((exp / "alpha.md.json").read_text())["chosen"][0]["tag"] == "database"


def test_workers_give_the_same_answers(tmp_path):
    (tmp_path / "t.json").write_text(TAX)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "text": TEXTS[i % 4]}) + "\n" for i in range(40)))
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert cli("batch", str(src), "-o", str(a), "--taxonomy", str(tmp_path / "t.json"), "--no-llm").returncode == 0
    assert cli("batch", str(src), "-o", str(b), "--taxonomy", str(tmp_path / "t.json"), "--no-llm", "--workers", "2").returncode == 0
    assert a.read_bytes() == b.read_bytes()


def test_sigkill_then_resume_loses_nothing(tmp_path):
    (tmp_path / "t.json").write_text(TAX)
    src = tmp_path / "in.jsonl"
    n = 1500
    filler = " More words about the project and its design." * 40
    src.write_text("".join(json.dumps({"id": f"id{i}", "text": TEXTS[i % 4] + filler}) + "\n" for i in range(n)))
    out = tmp_path / "out.jsonl"
    args = [sys.executable, "-m", "engine.cli", "batch", str(src), "-o", str(out), "--taxonomy", str(tmp_path / "t.json"),
            "--no-llm", "--batch-size", "3", "--quiet"]
    rng = random.Random(7)
    kills = 0
    for attempt in range(6):
        before = out.stat().st_size if out.exists() else 0
        p = subprocess.Popen(args + (["--resume"] if attempt else []), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Killed at a random moment once this attempt is writing answers (start-up
        # time varies with the machine; a kill before the first answer tests nothing).
        while p.poll() is None and (out.stat().st_size if out.exists() else 0) <= before:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.0))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            kills += 1
        else:
            break
    final = subprocess.run(args + ["--resume"], cwd=ROOT, capture_output=True)
    assert final.returncode == 0, final.stderr
    lines = out.read_text().splitlines()
    ids = [json.loads(l)["id"] for l in lines]  # every line is valid JSON
    assert kills >= 2, kills
    assert sorted(ids) == sorted(f"id{i}" for i in range(n)) and len(ids) == len(set(ids))


def _children(pid: int) -> list[int]:
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d))
    return kids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the workers through /proc")
def test_a_dead_worker_stops_the_run_loudly_and_resume_finishes(tmp_path):
    """A worker killed mid-run (as the OOM killer would) must not hang the job: it stops
    with E600 and exit 1, keeps what it wrote, and --resume answers the rest."""
    (tmp_path / "t.json").write_text(TAX)
    src = tmp_path / "in.jsonl"
    n = 3000
    src.write_text("".join(json.dumps({"id": f"id{i}", "text": TEXTS[i % 4] + " filler words." * 200}) + "\n" for i in range(n)))
    out = tmp_path / "out.jsonl"
    args = [sys.executable, "-m", "engine.cli", "batch", str(src), "-o", str(out), "--taxonomy", str(tmp_path / "t.json"),
            "--no-llm", "--workers", "2", "--quiet"]
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and out.stat().st_size > 0):
        time.sleep(0.2)
    workers = [k for k in _children(p.pid) if b"resource_tracker" not in Path(f"/proc/{k}/cmdline").read_bytes()]
    assert p.poll() is None and workers, "the run ended before a worker could be killed"
    os.kill(workers[-1], signal.SIGKILL)
    _, err = p.communicate(timeout=120)  # a hang fails here
    assert p.returncode == 1 and "[E600]" in err, err
    first = [json.loads(l)["id"] for l in out.read_text().splitlines()]
    assert 0 < len(first) < n
    final = subprocess.run(args + ["--resume"], cwd=ROOT, capture_output=True)
    assert final.returncode == 0, final.stderr
    ids = [json.loads(l)["id"] for l in out.read_text().splitlines()]
    assert sorted(ids) == sorted(f"id{i}" for i in range(n)) and len(ids) == len(set(ids))


def _square(x: int) -> int:
    return x * x


def _no_setup() -> None:
    pass


def _manager_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if type(t).__name__ == "_ExecutorManagerThread" and t.is_alive()]


@pytest.mark.parametrize("consumed", [None, 3])
def test_closing_the_pool_leaves_no_thread_behind(consumed):
    """A manager thread still running at exit makes Python 3.11 print "Exception ignored
    ... Bad file descriptor" after a finished batch: ``close`` must join it, whether
    the map was drained or cut short."""
    import multiprocessing as mp
    from itertools import islice

    from engine.io.workers import WorkerPool

    pool = WorkerPool(2, mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn"), _no_setup, (), chunksize=2)
    results = pool.map(_square, range(40))
    got = list(results if consumed is None else islice(results, consumed))
    pool.close()
    assert got == [x * x for x in range(40)][:consumed]
    assert _manager_threads() == []


@pytest.mark.parametrize("kind", ["jsonl", "csv", "folder"])
def test_progress_bar_gives_an_eta_without_reading_the_input_twice(tmp_path, capsys, kind):
    """On a terminal the bar shows items/s, errors and an ETA: the total is estimated
    from the share of the input read so far (bytes of a file, files of a folder)."""
    import csv
    import re

    from engine.api import Tagger
    from engine.io.batch import BatchJob
    from engine.taxonomy import Taxonomy

    n = 60
    rows = [{"id": f"r{i}", "text": TEXTS[i % 4]} for i in range(n)] + [{"id": "bad", "text": ""}]
    if kind == "jsonl":
        src = tmp_path / "in.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "csv":
        src = tmp_path / "in.csv"
        with open(src, "w", newline="") as fh:
            w = csv.DictWriter(fh, ["id", "text"])
            w.writeheader()
            w.writerows(rows)
    else:
        src = tmp_path / "docs"
        src.mkdir()
        for r in rows:
            (src / f"{r['id']}.md").write_text(r["text"])
    tagger = Tagger(mode="rules", batch_size=7)
    stats = BatchJob(tagger, Taxonomy.from_names(json.loads(TAX)), progress=True).run(str(src), str(tmp_path / "out.jsonl"))
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()
    assert stats.ok == n and stats.failed == 1
    assert re.search(rf"\b{n}/{n} \[\d\d:\d\d<\d\d:\d\d, .*item/s, errors=1\]", bar[-1]), bar[-3:]
    # Estimated while running, before the whole input was read.
    assert any(re.search(r"\b7/\d+ \[\d\d:\d\d<", line) for line in bar), bar[:5]
