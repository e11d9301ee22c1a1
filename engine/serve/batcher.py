"""Dynamic batching: concurrent requests are gathered into one model batch.

Why a thread and not asyncio tasks: the lexicon and the decoder are CPU/GPU work that
holds the interpreter for long stretches, and a ``Tagger`` is not re-entrant. One
thread owns the ``Tagger``; the event loop only queues items and awaits futures, so
the HTTP side stays responsive while a batch decodes. The thread waits for the first
item, then up to ``max_wait_s`` for more (at most ``max_items``): a lone request pays
at most that wait, a busy service fills whole batches (the pattern of Triton's dynamic
batcher and Ray Serve's ``@serve.batch``).

Answers do not depend on what else is in a batch (the decoder's answers are the same
for a batch of one, see tests/test_batch.py), so a service answer is byte-identical to
``tagsmith tag`` on the same item and settings.
"""
from __future__ import annotations

import asyncio
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.api import Tagger, TagResult
from engine.errors import E_BUSY, TagsmithError
from engine.taxonomy import Taxonomy


_WORKER: dict[str, Any] = {}


def _worker_start(spec: dict[str, Any]) -> None:
    _WORKER["tagger"] = Tagger(**spec, mode="rules")


def _worker_run(records: list[dict[str, Any]], tax: Taxonomy, max_tags: int, decide: bool) -> list[Any]:
    """The lexicon (and in rules mode the answer) for each record, or its error."""
    tagger: Tagger = _WORKER["tagger"]
    out: list[Any] = []
    for r in records:
        try:
            props = tagger.propose([r], tax)
            out.append(tagger.decide(props, tax, max_tags)[0] if decide else props[0])
        except TagsmithError as exc:
            out.append(exc)
    return out


class LexiconPool:
    """Lexicon worker processes: their Python work no longer shares the service's GIL
    with the HTTP loop. Workers are spawned, not forked: the service has threads (and
    maybe torch's), which a fork would copy mid-flight. In rules mode they answer
    outright; with a model they only propose, and the model process decides."""

    def __init__(self, tagger: Tagger, workers: int, warm: Taxonomy | None = None) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self.decide = tagger.mode == "rules"
        self._ex = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_start,
                                       initargs=(tagger.lexicon_spec(),))
        if warm is not None:  # start every worker now and compile the default list in each
            futs = [self._ex.submit(_worker_run, [{"id": "warm-up", "text": "warm-up"}], warm, 3, self.decide) for _ in range(workers)]
            for f in futs:
                f.result()

    def run(self, records: list[dict[str, Any]], tax: Taxonomy, max_tags: int) -> list[Any]:
        size = -(-len(records) // self.workers)
        futs = [self._ex.submit(_worker_run, records[s:s + size], tax, max_tags, self.decide) for s in range(0, len(records), size)]
        return [x for f in futs for x in f.result()]

    def close(self) -> None:
        self._ex.shutdown(wait=True, cancel_futures=True)


@dataclass
class Job:
    """One item waiting for its answer: a record ``{"id", "text", "skeleton"}``."""

    record: dict[str, Any]
    taxonomy: Taxonomy
    max_tags: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    queued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchInfo:
    """What one gathered batch was, for metrics."""

    items: int  # items decoded (cancelled ones are not)
    groups: int  # (taxonomy, N) groups in it: each is decoded on its own
    seconds: float
    dropped: int  # items whose client left before the batch started


class DynamicBatcher:
    """Queue items from any thread or event loop; one worker thread tags them in batches."""

    def __init__(self, tagger: Tagger, max_items: int = 32, max_wait_s: float = 0.010, max_queue: int = 4096,
                 on_batch: Callable[[BatchInfo], None] | None = None, lexicon_workers: int = 0) -> None:
        if max_items < 1 or max_wait_s < 0 or max_queue < 1:
            raise ValueError("max_items and max_queue must be >= 1 and max_wait_s >= 0")
        self.tagger = tagger
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._q: queue.Queue[Job | None] = queue.Queue()
        self._pending = 0  # queued or being decoded
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._forget: list[Taxonomy] = []
        self.lexicon_workers = lexicon_workers
        self.warm_taxonomy: Taxonomy | None = None  # compiled in each lexicon worker at start
        self._pool: LexiconPool | None = None

    # -- lifecycle --------------------------------------------------------------
    def start(self, warmup: Callable[[], None] | None = None) -> None:
        """Start the worker thread; it runs ``warmup`` (load the model, compile the
        default list) before the first batch, so no other thread touches the tagger."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, args=(warmup,), name="tagsmith-batcher", daemon=True)
            self._thread.start()

    def forget(self, taxonomy: Taxonomy) -> None:
        """Drop a tag list's compiled state, between batches (in the worker thread)."""
        with self._lock:
            self._forget.append(taxonomy)

    def close(self, timeout: float | None = None) -> None:
        """Finish every queued item, then stop the worker thread."""
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout)
            self._thread = None

    @property
    def pending(self) -> int:
        return self._pending

    # -- submitting -------------------------------------------------------------
    async def submit(self, record: dict[str, Any], taxonomy: Taxonomy, max_tags: int) -> TagResult:
        """The answer for one record; raises the item's ``TagsmithError`` if it has one."""
        (fut,) = self.submit_many([record], taxonomy, max_tags)
        return await fut

    def submit_many(self, records: list[dict[str, Any]], taxonomy: Taxonomy, max_tags: int) -> list[asyncio.Future]:
        """Queue records together (all or none: E601 when the queue cannot take them)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._pending + len(records) > self.max_queue:
                raise TagsmithError(E_BUSY, f"the service is busy ({self._pending} items queued, at most {self.max_queue}); try again later")
            self._pending += len(records)
        jobs = [Job(r, taxonomy, max_tags, loop.create_future(), loop) for r in records]
        for j in jobs:
            self._q.put(j)
        return [j.future for j in jobs]

    # -- the worker thread ------------------------------------------------------
    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        """``first`` and whatever else arrives within the wait, up to ``max_items``;
        and whether the stop mark was seen."""
        jobs = [first]
        deadline = time.perf_counter() + self.max_wait_s
        while len(jobs) < self.max_items:
            left = deadline - time.perf_counter()
            try:
                job = self._q.get(timeout=left) if left > 0 else self._q.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _loop(self, warmup: Callable[[], None] | None) -> None:
        if self.lexicon_workers > 0:
            try:
                self._pool = LexiconPool(self.tagger, self.lexicon_workers, self.warm_taxonomy)
            except Exception as exc:  # noqa: BLE001  (the service still answers, lexicon in this thread)
                print(f"tagsmith: lexicon workers could not start ({exc}); the lexicon runs in the server process", file=sys.stderr)
        try:
            self._serve(warmup)
        finally:
            if self._pool is not None:
                self._pool.close()

    def _serve(self, warmup: Callable[[], None] | None) -> None:
        if warmup is not None:
            warmup()
        stop = False
        while not stop:
            first = self._q.get()
            if first is None:
                break
            jobs, stop = self._gather(first)
            try:
                self._run(jobs)
            finally:
                with self._lock:
                    self._pending -= len(jobs)
        # Stop was asked: whatever is still queued is answered before the thread ends.
        rest = []
        while True:
            try:
                job = self._q.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                rest.append(job)
        for s in range(0, len(rest), self.max_items):
            chunk = rest[s:s + self.max_items]
            try:
                self._run(chunk)
            finally:
                with self._lock:
                    self._pending -= len(chunk)

    def _run(self, jobs: list[Job]) -> None:
        try:
            self._run_jobs(jobs)
        except Exception as exc:  # noqa: BLE001  (a bug must fail these items, never stop the thread)
            for j in jobs:
                _settle(j, error=exc)

    def _run_jobs(self, jobs: list[Job]) -> None:
        t0 = time.perf_counter()
        with self._lock:
            forget, self._forget = self._forget, []
        in_use = {j.taxonomy.fingerprint() for j in jobs}
        for tax in forget:
            if tax.fingerprint() not in in_use:
                self.tagger.forget(tax)
        live = [j for j in jobs if not j.future.cancelled()]  # a client that left costs nothing
        groups: dict[tuple[str, int], list[Job]] = {}
        for j in live:
            groups.setdefault((j.taxonomy.fingerprint(), j.max_tags), []).append(j)
        for group in groups.values():
            self._run_group(group)
        if self.on_batch is not None:
            self.on_batch(BatchInfo(items=len(live), groups=len(groups), seconds=time.perf_counter() - t0, dropped=len(jobs) - len(live)))

    def _run_group(self, group: list[Job]) -> None:
        tagger, tax, n = self.tagger, group[0].taxonomy, group[0].max_tags
        if self._pool is not None:
            try:
                done = self._pool.run([j.record for j in group], tax, n)
            except Exception as exc:  # noqa: BLE001  (a worker died: these items fail, the service stays up)
                for j in group:
                    _settle(j, error=exc)
                return
        else:  # item by item, so one bad record fails alone
            done = []
            for j in group:
                try:
                    done.append(tagger.propose([j.record], tax)[0])
                except Exception as exc:  # noqa: BLE001  (the item's own error goes to its client)
                    done.append(exc)
        ready, props = [], []
        for j, x in zip(group, done):
            if isinstance(x, BaseException):
                _settle(j, error=x)
            elif isinstance(x, TagResult):
                _settle(j, result=x)
            else:
                ready.append(j)
                props.append(x)
        if not ready:
            return
        try:
            results = tagger.decide(props, tax, n)
        except Exception as exc:  # noqa: BLE001  (e.g. an adapter that refuses this tag list)
            for j in ready:
                _settle(j, error=exc)
            return
        for j, r in zip(ready, results):
            _settle(j, result=r)


def _settle(job: Job, result: TagResult | None = None, error: BaseException | None = None) -> None:
    """Hand an answer to the job's event loop (ignored when the client has left)."""

    def done() -> None:
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(done)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass
