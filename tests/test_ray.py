"""``tagsmith batch --engine ray`` on a local Ray cluster (2 CPUs): the local job's answers
and errors, nothing lost or twice when an actor is killed, finished shards kept on resume."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from engine.api import Tagger  # noqa: E402
from engine.distributed.ray_runner import RayBatchJob, RaySettings  # noqa: E402
from engine.io.batch import BatchJob  # noqa: E402
from engine.taxonomy import Taxonomy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TAX = Taxonomy.load(ROOT / "fixtures" / "taxonomy.json")
PARTS = ["A command-line tool that syncs folders over SSH.", "A tiny Python library for parsing dates.",
         "A distributed key-value database written in Go, with a Kubernetes operator.", "A 2D game engine in C++ with physics.",
         "A static site generator for blogs.", "Exercises and a course to learn Rust.", "A React component library for dashboards.",
         "A REST API server framework for Node.js.", "Machine learning models for image classification with PyTorch."]


def make_input(path: Path, n: int, seed: int = 0) -> None:
    """n lines of synthetic records with bad ones: broken JSON, empty text, duplicate ids
    (some in other shards), a text over --max-chars."""
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            if i % 97 == 5:
                f.write("{not json\n")
            elif i % 131 == 7:
                f.write(json.dumps({"id": f"r{i}", "text": ""}) + "\n")
            else:
                rid = f"r{i - 150}" if i % 173 == 11 and i > 150 else f"r{i}"
                text = " ".join(rnd.sample(PARTS, 3)) + f" Item {i}." + (" padding" * 400 if i % 211 == 13 else "")
                f.write(json.dumps({"id": rid, "text": text}) + "\n")


def local_job(src: Path, out: Path) -> tuple[list[str], list[str]]:
    BatchJob(Tagger(mode="rules"), TAX, max_chars=2000).run(str(src), str(out))
    return sorted(out.read_text().splitlines()), sorted(Path(str(out) + ".errors.jsonl").read_text().splitlines())


def shard_output(out: Path) -> tuple[list[str], list[str]]:
    answers = [line for f in sorted(out.glob("part-*.jsonl")) for line in f.read_text().splitlines()]
    errors = [line for f in sorted(out.glob("errors-*.jsonl")) for line in f.read_text().splitlines()]
    return sorted(answers), sorted(errors)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def test_same_answers_and_errors_as_the_local_job(cluster, tmp_path):
    src = tmp_path / "in.jsonl"
    make_input(src, 2000)
    want = local_job(src, tmp_path / "local.jsonl")
    stats = RayBatchJob({"mode": "rules"}, TAX, max_chars=2000, settings=RaySettings(workers=1, lines_per_shard=250)).run(str(src), str(tmp_path / "out"))
    got = shard_output(tmp_path / "out")
    assert got == want  # byte for byte, once sorted by id / by line
    assert stats.ok == len(want[0]) and stats.failed == len(want[1])
    assert any("duplicate id" in e for e in got[1]) and any("--max-chars" in e for e in got[1]) and any("invalid JSON" in e for e in got[1])
    ids = [json.loads(line)["id"] for line in got[0]]
    assert len(ids) == len(set(ids))


def test_a_killed_actor_loses_nothing(cluster, tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    from ray_local import killer  # SIGKILL to one decision actor once the first shard is written

    src = tmp_path / "in.jsonl"
    make_input(src, 900, seed=1)
    want = local_job(src, tmp_path / "local.jsonl")
    out = tmp_path / "out"
    killed: list[int] = []
    th = killer(out, killed)
    RayBatchJob({"mode": "rules"}, TAX, max_chars=2000, settings=RaySettings(workers=1, lines_per_shard=30)).run(str(src), str(out))
    th.join(5)
    assert killed, "no decision actor was found to kill"
    assert len(list(out.glob("done-*.json"))) == 30
    assert shard_output(out) == want  # every id exactly once, the same answers


def test_resume_skips_finished_shards(cluster, tmp_path):
    src = tmp_path / "in.jsonl"
    make_input(src, 400, seed=2)
    out = tmp_path / "out"
    job = RayBatchJob({"mode": "rules"}, TAX, max_chars=2000, settings=RaySettings(lines_per_shard=100))
    job.run(str(src), str(out))
    want = shard_output(out)
    # A run cut short: shard 2 never finished (no marker, a torn answers file).
    (out / "done-00002.json").unlink()
    (out / "part-00002.jsonl").write_text('{"id":"torn')
    before = {f.name: f.stat().st_mtime_ns for f in out.glob("part-*.jsonl") if f.name != "part-00002.jsonl"}
    stats = job.run(str(src), str(out), resume=True)
    assert shard_output(out) == want
    assert {f.name: f.stat().st_mtime_ns for f in out.glob("part-*.jsonl") if f.name != "part-00002.jsonl"} == before
    assert stats.skipped > 0 and 0 < stats.ok < 100
    other = RayBatchJob({"mode": "rules"}, TAX, max_tags=2, settings=RaySettings(lines_per_shard=100))
    with pytest.raises(Exception, match="E500"):
        other.run(str(src), str(out), resume=True)  # other settings cannot finish this folder


def test_folder_of_shards_and_parquet(cluster, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "data"
    src.mkdir()
    rows = [{"id": f"p{i}", "text": f"{PARTS[i % len(PARTS)]} Number {i}."} for i in range(120)]
    rows[7]["text"] = ""
    pq.write_table(pa.table({"id": [r["id"] for r in rows[:60]], "text": [r["text"] for r in rows[:60]]}), src / "a.parquet")
    (src / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[60:]) + "{broken\n")
    out = tmp_path / "out"
    stats = RayBatchJob({"mode": "rules"}, TAX, settings=RaySettings(lines_per_shard=25)).run(str(src), str(out))
    answers, errors = shard_output(out)
    assert stats.ok == 119 and len(answers) == 119
    assert sorted(json.loads(e)["file"] for e in errors) == ["a.parquet", "b.jsonl"]
    assert {json.loads(e)["line"] for e in errors} == {8, 61}
    ref = Tagger(mode="rules")
    by_id = {json.loads(a)["id"]: json.loads(a)["tags"] for a in answers}
    for r in rows[:3] + rows[60:63]:
        assert by_id[r["id"]] == ref.tag(r["text"], id=r["id"], taxonomy=TAX).tags


def test_cli_engine_ray(tmp_path):
    src = tmp_path / "in.jsonl"
    make_input(src, 120, seed=3)
    r = subprocess.run([sys.executable, "-m", "engine.cli", "batch", str(src), "-o", str(tmp_path / "out"), "--taxonomy",
                        str(ROOT / "fixtures" / "taxonomy.json"), "--no-llm", "--engine", "ray", "--shard-lines", "50", "--max-chars", "2000"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 1, r.stderr  # some records were bad: exit 1, as the local job
    assert "tagged" in r.stderr and len(list((tmp_path / "out").glob("part-*.jsonl"))) == 3
    assert shard_output(tmp_path / "out") == local_job(src, tmp_path / "local.jsonl")
