"""Torch on one thread, for fits that must be a function of their data alone.

A multi-threaded float sum adds in an order that varies from run to run, and L-BFGS
magnifies the last bits: the same data would give weights that differ in the 5th
digit. The decision head's fit and the rule miner's logistic regression run inside
``one_thread()``, so retraining from a clean checkout gives the same bytes; several
such fits may still run side by side, one per core (``side_by_side``).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch's operations on one thread inside the block (threads started in it too);
    the caller's setting comes back after it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def side_by_side(jobs: int, workers: int | None = None) -> Iterator[ThreadPoolExecutor]:
    """A thread pool for ``jobs`` single-thread fits, one per core (or ``workers``).
    Torch's heavy operations release the GIL, so the fits overlap, and each still runs
    on one torch thread: the same bytes as one after another. The pool starts inside
    ``one_thread`` too, so a fit leaving its own ``one_thread`` restores one thread,
    never the caller's count under a fit still running."""
    with one_thread(), ThreadPoolExecutor(max_workers=max(1, min(workers or usable_cores(), jobs))) as pool:
        yield pool


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS says it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
