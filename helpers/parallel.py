"""Process pools for the workbook's CPU-bound loops (synthesis, feature extraction), with a progress bar.

Workers are *spawned*, never forked. A forked child inherits the parent's OpenCV, BLAS or TensorFlow thread
pools with their locks in whatever state they were at the fork, and the first OpenCV call in the child can
then hang forever (seen with ``cv2.setNumThreads`` after the parent had used cv2). Spawning costs about a
second per worker for imports and is safe in scripts, tests and Jupyter kernels alike; the functions run must
therefore be importable module-level functions.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm.auto import tqdm

__all__ = ["default_workers", "process_map"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def default_workers() -> int:
    """The cores this process may use (respects CPU affinity, e.g. in containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    # One process per core already: nested OpenCV threads would only contend for the same cores.
    import cv2

    cv2.setNumThreads(1)


def process_map(
    func: Callable[[_T], _R],
    tasks: Sequence[_T] | Iterable[_T],
    *,
    workers: int | None = None,
    desc: str = "",
    unit: str = "it",
    progress: bool = True,
    chunksize: int | None = None,
) -> Iterator[_R]:
    """Apply ``func`` to every task in order, in ``workers`` spawned processes (``1``: in this process).

    Yields results in task order as they complete, advancing a tqdm bar. Exceptions raised by ``func``
    propagate; callers that must not stop on one bad item catch inside ``func``.
    """
    items = list(tasks)
    workers = max(1, workers if workers is not None else default_workers())
    workers = min(workers, max(1, len(items)))
    with tqdm(total=len(items), desc=desc, unit=unit, disable=not progress) as bar:
        if workers == 1:
            for item in items:
                yield func(item)
                bar.update()
            return
        size = chunksize or max(1, min(8, len(items) // (4 * workers)))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker) as pool:
            for result in pool.map(func, items, chunksize=size):
                yield result
                bar.update()
