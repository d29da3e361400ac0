"""Work split over processes: tasks out in order, results back in the same order, few at a time.

`ordered_map(function, tasks, context, workers)` is `function(context, task)` for every task, in
order. With more than one worker the tasks go to a pool of forked processes, at most
`IN_FLIGHT` per worker submitted ahead of the result the caller waits for, so a stream of tasks
read from a file is never read whole: memory holds a few tasks and results per worker. `context`
(settings, an ontology, tables every task reads) reaches each worker once, when the pool starts
(inherited by fork where the platform forks, pickled once otherwise), never with every task.
With 0 or 1 worker everything runs in this process: the same function on the same tasks, so the
results are the same whatever the number of workers, as long as `function` depends on its
arguments only.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

IN_FLIGHT = 2  # tasks per worker submitted ahead: one running, one queued, so no worker waits

_context = None  # a worker's copy of the context, set when its process starts


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_workers(workers: int | None) -> None:
    """A config's `workers` check (its __post_init__): ValueError naming the field."""
    if workers is not None and workers < 0:
        raise ValueError(f"workers must be null (every core) or an integer >= 0, got {workers}")


def worker_count(workers: int | None) -> int:
    """A checked `workers` setting as a number of processes: None = every available core; 0 or 1 =
    this process only."""
    return available_cores() if workers is None else max(workers, 1)


def ordered_map(function: Callable, tasks: Iterable, context=None, workers: int = 1) -> Iterator:
    """function(context, task) for every task, in the tasks' order (see the module's note)."""
    if workers <= 1:
        for task in tasks:
            yield function(context, task)
        return
    methods = multiprocessing.get_all_start_methods()
    start = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(workers, mp_context=start, initializer=_set_context, initargs=(context,))
    try:
        pending = deque()
        for task in tasks:
            pending.append(pool.submit(_call, function, task))
            if len(pending) >= workers * IN_FLIGHT:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _set_context(context) -> None:
    global _context
    _context = context


def _call(function: Callable, task):
    return function(_context, task)
