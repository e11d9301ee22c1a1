"""The batch job: stream records, tag them, write answers that survive a crash.

Guarantees: answers are appended and flushed as each batch is ready; a run killed
at any moment and restarted with ``resume=True`` answers every input id exactly
once (a torn last line is cut off first, ids already answered are skipped); bad
records go to ``OUT.errors.jsonl`` with their line or file and the run goes on.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator

from engine.errors import E_LOCKED, E_OUTPUT, E_WRITE_STOPPED, TagsmithError
from engine.io.records import Position, Record, read_records
from engine.io.workers import WorkerPool


@dataclass
class BatchStats:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[dict] = field(default_factory=list)


def open_locked(path: str, holder: str = "tagsmith batch", hint: str = "wait for it or choose another -o") -> IO[str]:
    """Open ``path`` for appending under an exclusive lock: a second process writing
    the same output is refused (E106) instead of interleaving lines with the first."""
    import fcntl

    try:
        fh = open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise TagsmithError(E_OUTPUT, f"cannot write: {exc.strerror or exc}", file=path) from None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise TagsmithError(E_LOCKED, f"another {holder} is writing this output; {hint}", file=path) from None
    return fh


def _close(fh: IO[str] | None) -> None:
    """Close an output; a buffer that cannot be flushed (disk full) is dropped, not raised:
    the error that stopped the run has been reported already."""
    if fh is None or fh in (sys.stdout, sys.stderr):
        return
    try:
        fh.close()  # closed even when the final flush fails
    except OSError:
        pass


def whole_lines(path: str) -> list[bytes]:
    """The complete lines of an output file; a torn last line (killed mid-write) is cut
    off the file first, so that appending goes on from a line boundary."""
    if not os.path.exists(path):
        return []
    with open(path, "rb+") as fh:
        data = fh.read()
        good = data.rfind(b"\n") + 1
        if good < len(data):
            fh.truncate(good)
    return data[:good].splitlines()


def answered_ids(path: str) -> set[str]:
    """Ids already in an output file (see ``whole_lines``)."""
    ids: set[str] = set()
    for line in whole_lines(path):
        try:
            ids.add(str(json.loads(line)["id"]))
        except (ValueError, KeyError, TypeError):
            continue
    return ids


_WORKER: dict[str, Any] = {}


def _worker_init(pack_root: str | None, names: list[Any], policy: Any, max_tags: int,
                 tokenizer: Any = None, excerpt_tokens: int = 0, analyze_chars: int = 0, neighbours: Any = None,
                 bridge: bool = True) -> None:
    from engine.api import Tagger
    from engine.taxonomy import Taxonomy

    _worker_adopt(Tagger(pack_root, mode="rules", policy=policy, analyze_chars=analyze_chars, bridge=bridge), Taxonomy.from_names(names), max_tags)
    _WORKER.update(tokenizer=tokenizer, excerpt_tokens=excerpt_tokens, neighbours=neighbours)


def _worker_adopt(tagger: Any, taxonomy: Any, max_tags: int, explain: bool = True) -> None:
    _WORKER.update(tagger=tagger, tax=taxonomy, max_tags=max_tags, explain=explain)


def _worker_propose(rec: dict) -> Any:
    """Lexicon stage in a worker, and the prompt built and tokenised here too: only the
    candidates and the prompt travel back (the README does not)."""
    from engine.api import Proposal
    from engine.decision.prepare import prepare
    from engine.decision.prompt import prompt_glosses
    from engine.neighbours import vote_text

    (p,) = _WORKER["tagger"].propose([rec], _WORKER["tax"])
    tax, n = _WORKER["tax"], _WORKER["max_tags"]
    vote = vote_text(_WORKER.get("neighbours"), p.doc.text)
    ready = prepare(_WORKER["tagger"].policy, _WORKER["tokenizer"], p.doc, p.candidates, tax.names, n, _WORKER["excerpt_tokens"],
                    prompt_glosses(tax), vote)
    return Proposal({k: v for k, v in rec.items() if k != "text"}, None, p.candidates, ready, p.notes)


def _worker_tag(rec: dict) -> Any:
    """Rules mode needs no model: the worker answers outright and only the answer travels
    (with its explanation only when the job writes explanations)."""
    res = _WORKER["tagger"].tag_many([rec], _WORKER["tax"], _WORKER["max_tags"])[0]
    return res if _WORKER["explain"] else (res.id, res.tags)


def record_problem(rec: Record, seen: set[str], max_chars: int = 0) -> str | None:
    """Why a record cannot be tagged, or None (then its id counts as seen): the same
    checks for the local job and for each shard of a distributed one."""
    problem = rec.error
    if problem is None:
        if rec.id in seen:
            problem = f"duplicate id {rec.id!r}"
        elif max_chars and len(rec.text or "") > max_chars:
            problem = f"text longer than --max-chars {max_chars} ({len(rec.text or '')})"
    if problem is None:
        seen.add(rec.id)
    return problem


def answer_line(rid: str | None, tags: list[str]) -> str:
    """One line of the answers file, as ``tagsmith tag`` prints an answer."""
    return json.dumps({"id": rid, "tags": tags}, ensure_ascii=False, separators=(",", ":")) + "\n"


def error_line(rec: Record, problem: str, file: str | None = None) -> str:
    """One line of the errors file: where (line or file), id, what."""
    where = {"file": file, "line": rec.where} if file is not None else {"line" if isinstance(rec.where, int) else "file": rec.where}
    return json.dumps({**where, "id": rec.id, "error": problem}, ensure_ascii=False) + "\n"


class BatchJob:
    def __init__(self, tagger: Any, taxonomy: Any, max_tags: int = 3, max_chars: int = 0, workers: int = 1,
                 explain_dir: str | None = None, progress: bool = False) -> None:
        self.tagger = tagger
        self.taxonomy = taxonomy
        self.max_tags = max_tags
        self.max_chars = max_chars
        self.workers = workers
        self.explain_dir = Path(explain_dir) if explain_dir else None
        self.progress = progress

    def _valid(self, records: Iterator[Record], done: set[str], stats: BatchStats, errors: IO[str]) -> Iterator[dict]:
        seen: set[str] = set()
        for rec in records:
            problem = record_problem(rec, seen, self.max_chars)
            if problem is None:
                if rec.id in done:
                    stats.skipped += 1
                    continue
                yield {"id": rec.id, "text": rec.text}
                continue
            stats.failed += 1
            errors.write(error_line(rec, problem))
            errors.flush()

    def run(self, source: str, out_path: str, resume: bool = False, fmt: str = "auto", id_col: str = "id", text_col: str = "text") -> BatchStats:
        stats = BatchStats()
        out = sys.stdout if out_path == "-" else open_locked(out_path)
        try:
            done = answered_ids(out_path) if resume and out_path != "-" else set()
            if out is not sys.stdout and not resume:
                out.truncate(0)
            # Errors are recomputed from the input on every run, so the file is rewritten.
            errors = open(out_path + ".errors.jsonl", "w", encoding="utf-8") if out_path != "-" else sys.stderr
        except OSError as exc:
            _close(out)
            raise TagsmithError(E_OUTPUT, f"cannot write: {exc.strerror or exc}", file=out_path) from None
        try:
            return self._run(source, out, errors, out_path, done, stats, fmt, id_col, text_col)
        except OSError as exc:
            # A full disk or a file-size limit mid-run: answers written so far are whole
            # lines or one torn line, which --resume cuts off; nothing is answered twice.
            raise TagsmithError(E_WRITE_STOPPED, f"stopped: {exc.strerror or exc}; answers so far are kept: fix the cause, then "
                                "run again with --resume", file=getattr(exc, "filename", None) or out_path) from None
        finally:
            _close(out)
            _close(errors)

    def _run(self, source: str, out: IO[str], errors: IO[str], out_path: str, done: set[str], stats: BatchStats,
             fmt: str, id_col: str, text_col: str) -> BatchStats:
        if self.explain_dir:
            self.explain_dir.mkdir(parents=True, exist_ok=True)
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(unit="item", file=sys.stderr, dynamic_ncols=True)
        pool = None
        try:
            position = Position()
            records = self._valid(read_records(source, fmt, id_col, text_col, position), done, stats, errors)
            rules_only = self.tagger.mode == "rules"
            if self.workers > 1:
                import multiprocessing as mp

                pool = self._pool(mp, rules_only)
                items = pool.map(_worker_tag if rules_only else _worker_propose, records)
            elif rules_only:
                items = (res for r in records for res in self.tagger.tag_many([r], self.taxonomy, self.max_tags))
            else:
                items = (p for r in records for p in self.tagger.propose([r], self.taxonomy))
            chunk: list = []
            # Enough proposals for every overlapped batch of the decoder at once.
            per_emit = self.tagger.batch_size * (1 if rules_only else self.tagger.overlap)
            for item in items:
                chunk.append(item)
                if len(chunk) >= per_emit:
                    self._emit(chunk, out, stats, bar, decided=rules_only, position=position)
            self._emit(chunk, out, stats, bar, decided=rules_only, position=position)
        finally:
            if pool is not None:
                pool.close()
            if bar is not None:
                bar.close()
        return stats

    def _pool(self, mp: Any, rules_only: bool) -> WorkerPool:
        """Worker processes for the lexicon stage.

        Rules mode forks: workers inherit the compiled lexicon and start at once
        (a spawned worker pays ~4 s to import spaCy and compile the pack). With a
        model in play, workers are spawned: forking a process that may hold CUDA or
        thread pools is unsafe.
        """
        if rules_only and "fork" in mp.get_all_start_methods():
            self.tagger.lexicon(self.taxonomy)  # compile before forking, once for all workers
            return WorkerPool(self.workers, mp.get_context("fork"), _worker_adopt,
                              (self.tagger, self.taxonomy, self.max_tags, self.explain_dir is not None))
        policy = self.tagger.policy_for(self.taxonomy)
        init = (self.tagger.base_pack_for(self.taxonomy).root, self.taxonomy.to_list(), policy, self.max_tags,
                None if rules_only else self.tagger.lm.tokenizer, self.tagger.excerpt_for(self.taxonomy), self.tagger.analyze_chars,
                None if rules_only else self.tagger.head_neighbours(self.taxonomy, policy), self.tagger.bridge)
        return WorkerPool(self.workers, mp.get_context("spawn"), _worker_init, init)

    def _emit(self, chunk: list, out: IO[str], stats: BatchStats, bar: Any, decided: bool, position: Position) -> None:
        """Write a chunk of answers (``decided``) or of proposals still to decide."""
        if not chunk:
            return
        results = list(chunk) if decided else self.tagger.decide(chunk, self.taxonomy, self.max_tags)
        # Workers answer with bare (id, tags) pairs when no explanation is written.
        answers = [r if isinstance(r, tuple) else (r.id, r.tags) for r in results]
        lines = "".join(answer_line(i, t) for i, t in answers)
        out.write(lines)
        out.flush()
        if self.explain_dir:
            for r in results:
                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in r.id or "none")
                (self.explain_dir / f"{safe}.json").write_text(json.dumps(r.explanation.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        stats.ok += len(results)
        if bar is not None:
            expected = position.expected_records()
            if expected is not None:  # answers to come: records expected, less failed and skipped ones
                bar.total = max(bar.n + len(results), expected - stats.failed - stats.skipped)
            bar.update(len(results))
            bar.set_postfix(errors=stats.failed)
        chunk.clear()
