"""``tagsmith batch --engine ray``: the batch job on a Ray cluster, with Ray Data.

The pattern Ray and vLLM document for batch inference: the lexicon runs as CPU tasks
(one shard of records each), the decision stage in an actor pool (``map_batches`` with
``ActorPoolStrategy``; one ``Tagger`` per actor, its model and compiled constraint
loaded once, on the GPU Ray assigns it), and the driver writes each finished shard.

Nothing lost, nothing twice: a shard is one Ray Data row from start to end, so a task
or actor that dies is retried by Ray (actors restart, their tasks are re-run) and the
shard still yields exactly one result; the driver writes ``part-NNNNN.jsonl`` and
``errors-NNNNN.jsonl`` to temporary names, renames them, then writes ``done-NNNNN.json``.
``--resume`` skips shards that have their marker. Answers are the local job's bytes:
the same ``Tagger`` code with the same settings decides every record.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.distributed.shards import Shard, plan_shards, read_shard
from engine.errors import E_OPTION, E_OUTPUT, TagsmithError
from engine.io.batch import BatchStats, answer_line, error_line, record_problem
from engine.io.records import Record
from engine.taxonomy import Taxonomy

JOB_FILE = "_job.json"


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None  # None: a local cluster; "auto": the running one
    workers: int = 1  # decision actors
    gpus_per_worker: float = 0.0
    cpus_per_task: float = 1.0  # per lexicon task
    lines_per_shard: int = 1000


_TAGGERS: dict[str, Any] = {}  # per worker process: one Tagger per settings, reused by later tasks


def _tagger(kwargs: dict[str, Any], mode: str) -> Any:
    from engine.api import Tagger

    key = json.dumps([kwargs, mode], sort_keys=True, default=str)
    if key not in _TAGGERS:
        _TAGGERS[key] = Tagger(**{**kwargs, "mode": mode})
    return _TAGGERS[key]


def propose_shard(batch: dict[str, Any], tagger_kwargs: dict[str, Any], taxonomy: Taxonomy, max_chars: int) -> dict[str, Any]:
    """A lexicon task: read one shard, check its records as the local job does, run the
    lexicon; the proposals travel on pickled, the errors as lines of the errors file."""
    out: dict[str, list] = {"shard": [], "proposals": [], "errors": [], "ids": []}
    tagger = _tagger(tagger_kwargs, "rules")  # the lexicon needs no model
    for spec in batch["shard"]:
        shard = Shard(**json.loads(spec))
        seen: set[str] = set()
        records, errors, ids = [], [], []
        for rec in read_shard(shard):
            problem = record_problem(rec, seen, max_chars)
            if problem is None:
                records.append({"id": rec.id, "text": rec.text})
                ids.append([rec.id, rec.where])
            else:
                errors.append(error_line(rec, problem, shard.file))
        proposals = tagger.propose(records, taxonomy)
        out["shard"].append(spec)
        out["proposals"].append(pickle.dumps(proposals, protocol=pickle.HIGHEST_PROTOCOL))
        out["errors"].append("".join(errors))
        out["ids"].append(json.dumps(ids, ensure_ascii=False))
    return out


class DecideShard:
    """A decision actor: one Tagger (model and constraint loaded once) for every shard
    it is given."""

    def __init__(self, tagger_kwargs: dict[str, Any], mode: str, taxonomy: Taxonomy, max_tags: int) -> None:
        kwargs = dict(tagger_kwargs)
        if mode != "rules" and kwargs.get("device") is None:
            import ray

            kwargs["device"] = "cuda" if ray.get_gpu_ids() else "cpu"
        self.tagger = _tagger(kwargs, mode)
        self.tax = taxonomy
        self.max_tags = max_tags
        if mode != "rules":
            _ = self.tagger.compiler.get(self.tax, max_tags)  # compile once, before the first shard

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        answers = []
        for blob in batch["proposals"]:
            results = self.tagger.decide(pickle.loads(blob), self.tax, self.max_tags)
            answers.append("".join(answer_line(r.id, r.tags) for r in results))
        return {"shard": batch["shard"], "answers": answers, "errors": batch["errors"], "ids": batch["ids"]}


def _part(out: Path, kind: str, index: int) -> Path:
    """A shard's files: answers ``part-NNNNN.jsonl`` (so ``cat OUT/part-*.jsonl`` is every
    answer), ``errors-NNNNN.jsonl`` and the ``done-NNNNN.json`` marker."""
    return out / f"{kind}-{index:05d}.{'json' if kind == 'done' else 'jsonl'}"


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a temporary file renamed into place."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RayBatchJob:
    """Tag a JSONL file, a folder of JSONL/Parquet shards or a Parquet file into a folder
    of answer shards, on a Ray cluster."""

    def __init__(self, tagger_kwargs: dict[str, Any], taxonomy: Taxonomy, max_tags: int = 3, max_chars: int = 0,
                 settings: RaySettings | None = None, progress: bool = False) -> None:
        self.tagger_kwargs = {k: v for k, v in tagger_kwargs.items() if k != "mode"}
        self.mode = tagger_kwargs.get("mode", "hybrid")
        self.taxonomy = taxonomy
        self.max_tags = max_tags
        self.max_chars = max_chars
        self.settings = settings or RaySettings()
        self.progress = progress

    def _job_card(self, source: str) -> dict[str, Any]:
        return {"input": str(Path(source).resolve()), "taxonomy": self.taxonomy.fingerprint(), "mode": self.mode,
                "max_tags": self.max_tags, "max_chars": self.max_chars, "lines_per_shard": self.settings.lines_per_shard,
                "tagger": json.loads(json.dumps(self.tagger_kwargs, sort_keys=True, default=str))}

    def _prepare_output(self, source: str, out: Path, resume: bool) -> None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            card = self._job_card(source)
            card_file = out / JOB_FILE
            if resume and card_file.exists():
                old = json.loads(card_file.read_text(encoding="utf-8"))
                if old != card:
                    changed = sorted(k for k in card if old.get(k) != card[k])
                    raise TagsmithError(E_OPTION, f"--resume with other settings than the run that wrote this folder ({', '.join(changed)})",
                                        file=str(card_file))
            elif not resume:
                for kind in ("part", "errors", "done"):
                    for f in out.glob(f"{kind}-*"):
                        f.unlink()
            _write(card_file, json.dumps(card, ensure_ascii=False, indent=1) + "\n")
        except OSError as exc:
            raise TagsmithError(E_OUTPUT, f"cannot write: {exc.strerror or exc}", file=str(out)) from None

    def run(self, source: str, out_dir: str, resume: bool = False) -> BatchStats:
        import ray
        import ray.data

        out = Path(out_dir)
        self._prepare_output(source, out, resume)
        shards = plan_shards(source, self.settings.lines_per_shard)
        todo = [s for s in shards if not (resume and _part(out, "done", s.index).exists())]
        stats = BatchStats(skipped=sum(json.loads(_part(out, "done", s.index).read_text())["ok"] for s in shards if s not in todo))
        if todo:
            if not ray.is_initialized():
                ray.init(address=self.settings.address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
            self._run(ray, todo, out, stats)
        self._cross_shard_duplicates(shards, out, stats)
        return stats

    def _run(self, ray: Any, todo: list[Shard], out: Path, stats: BatchStats) -> None:
        st = self.settings
        ds = ray.data.from_items([{"shard": json.dumps(s.to_dict())} for s in todo], override_num_blocks=len(todo))
        # Ray Data's defaults are what "nothing lost" needs: tasks are retried without
        # bound, and pool actors restart without bound with their tasks re-run.
        ds = ds.map_batches(propose_shard, batch_size=1, num_cpus=st.cpus_per_task,
                            fn_kwargs={"tagger_kwargs": self.tagger_kwargs, "taxonomy": self.taxonomy, "max_chars": self.max_chars})
        ds = ds.map_batches(DecideShard, batch_size=1, compute=ray.data.ActorPoolStrategy(size=st.workers),
                            num_gpus=st.gpus_per_worker or None, num_cpus=0 if st.gpus_per_worker else (0.25 if self.mode == "rules" else 1),
                            fn_constructor_kwargs={"tagger_kwargs": self.tagger_kwargs, "mode": self.mode, "taxonomy": self.taxonomy,
                                                   "max_tags": self.max_tags})
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="shard", file=sys.stderr, dynamic_ncols=True)
        try:
            for row in ds.iter_rows():
                shard = Shard(**json.loads(row["shard"]))
                ok = row["answers"].count("\n")
                failed = row["errors"].count("\n")
                _write(_part(out, "part", shard.index), row["answers"])
                _write(_part(out, "errors", shard.index), row["errors"])
                _write(_part(out, "done", shard.index), json.dumps({"ok": ok, "failed": failed, "ids": json.loads(row["ids"])}, ensure_ascii=False))
                stats.ok += ok
                stats.failed += failed
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

    def _cross_shard_duplicates(self, shards: list[Shard], out: Path, stats: BatchStats) -> None:
        """An id already answered in an earlier shard is an error in the later one, as in
        the local job (first occurrence wins); shards are checked in input order."""
        seen: set[str] = set()
        for s in shards:
            answers, errors_file, done_file = (_part(out, kind, s.index) for kind in ("part", "errors", "done"))
            done = json.loads(done_file.read_text(encoding="utf-8"))
            dup = {rid for rid, _ in done["ids"] if rid in seen}
            seen.update(rid for rid, _ in done["ids"])
            if not dup:
                continue
            keep = [line for line in answers.read_text(encoding="utf-8").splitlines(keepends=True)
                    if json.loads(line)["id"] not in dup]
            extra = "".join(error_line(Record(where, rid, None), f"duplicate id {rid!r}", s.file) for rid, where in done["ids"] if rid in dup)
            _write(answers, "".join(keep))
            _write(errors_file, errors_file.read_text(encoding="utf-8") + extra)
            done["ids"] = [x for x in done["ids"] if x[0] not in dup]
            done["ok"], done["failed"] = len(keep), done["failed"] + len(dup)
            _write(done_file, json.dumps(done, ensure_ascii=False))
            stats.ok -= len(dup)
            stats.failed += len(dup)
