"""Torch on one thread, for fits that must be a function of their data alone.

A multi-threaded float sum adds in an order that varies from run to run, and L-BFGS
magnifies the last bits: the same data would give weights that differ in the 5th
digit. The decision head's fit and the rule miner's logistic regression run inside
``one_thread()``, so retraining from a clean checkout gives the same bytes; several
such fits may still run side by side, one per core (``usable_cores``).
"""
from __future__ import annotations

import os
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


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS says it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
