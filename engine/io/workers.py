"""An ordered map over a stream in worker processes that bounds memory and fails loudly.

Why not ``multiprocessing.Pool.imap``: when a worker dies (the OOM killer, a crash in
a native library) ``imap`` waits forever for the task it held, and the batch job
hangs with its answers half written. ``concurrent.futures`` notices the death and
raises ``BrokenProcessPool``. Its ``Executor.map`` would submit the whole input at
once, so items are submitted in chunks with a bounded window of chunks in flight:
memory stays flat whatever the input size.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from typing import Any, Callable, Iterable, Iterator

from engine.errors import E_WORKER, TagsmithError


def _apply(fn: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    return [fn(x) for x in chunk]


class WorkerPool:
    """``workers`` processes started with ``context`` and ``initializer(*initargs)``."""

    def __init__(self, workers: int, context: Any, initializer: Callable[..., None], initargs: tuple,
                 chunksize: int = 8, window: int | None = None) -> None:
        self.chunksize = chunksize
        self.window = window or 4 * workers  # chunks in flight: workers stay busy, memory stays bounded
        self._ex = ProcessPoolExecutor(workers, mp_context=context, initializer=initializer, initargs=initargs)
        self._drained = False

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """``fn(item)`` for each item, in input order; raises E600 if a worker dies."""
        source = iter(items)
        pending: deque = deque()

        def submit() -> bool:
            chunk = list(islice(source, self.chunksize))
            if chunk:
                pending.append(self._ex.submit(_apply, fn, chunk))
            return bool(chunk)

        try:
            while len(pending) < self.window and submit():
                pass
            while pending:
                done = pending.popleft().result()
                submit()
                yield from done
            self._drained = True
        except BrokenProcessPool:
            raise TagsmithError(E_WORKER, "a worker process died (killed or crashed); the answers written so far are kept: "
                                "run again with --resume to finish") from None

    def close(self) -> None:
        """Stop the workers: at once when the run was cut short (queued chunks are
        dropped, busy workers are terminated), else once they are idle.

        Either way the executor's thread is joined here: one left running until
        interpreter exit races Python 3.11's exit hook, which then writes to a closed
        pipe and prints "Exception ignored ... Bad file descriptor".
        """
        if not self._drained:
            for p in list((getattr(self._ex, "_processes", None) or {}).values()):
                p.terminate()
        self._ex.shutdown(wait=True, cancel_futures=True)
