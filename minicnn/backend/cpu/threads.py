"""Both cores for NumPy's element-wise passes: a small thread pool that splits work by slices.

NumPy's ufuncs (add, maximum, multiply, …) run on one core, but they release the
GIL while they loop, so two Python threads working on disjoint slices of the same
arrays really do run in parallel.  BLAS calls (matmul) already use every core and
stay on the calling thread: put only element-wise work in here.

    parallel_for(count, work)           calls work(start, stop) on contiguous pieces of range(count)
    parallel_blocks(count, block, work) the same on blocks of ``block`` items, each thread taking the next free one

The pool has as many workers as the process may use cores (``MINICNN_NUM_THREADS``
overrides it; 1 turns the pool off, which is also what tiny jobs get).
"""
import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["num_threads", "parallel_blocks", "parallel_for", "set_num_threads"]

# Below this many elements a piece costs more to hand to a thread than to compute here.
MIN_ELEMENTS_PER_THREAD = 1 << 16

_pool = None
_threads = None


def _default_threads():
    setting = os.environ.get("MINICNN_NUM_THREADS")
    if setting:
        try:
            count = int(setting)
        except ValueError:
            raise ValueError(f"MINICNN_NUM_THREADS must be a positive integer, got {setting!r}") from None
        if count < 1:
            raise ValueError(f"MINICNN_NUM_THREADS must be a positive integer, got {setting!r}")
        return count
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def num_threads():
    """How many threads element-wise kernels split their work across."""
    global _threads
    if _threads is None:
        _threads = _default_threads()
    return _threads


def set_num_threads(count):
    """Use ``count`` threads for element-wise kernels (1: everything on the calling thread)."""
    global _threads, _pool
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"set_num_threads: count must be an int, got {type(count).__name__}")
    if count < 1:
        raise ValueError(f"set_num_threads: count must be positive, got {count}")
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _threads = count


def parallel_for(count, work, elements_per_item=1):
    """Run ``work(start, stop)`` over pieces of range(count), one piece per thread; returns when all are done.

    ``elements_per_item`` is how many array elements one item touches: a job smaller
    than MIN_ELEMENTS_PER_THREAD per thread runs on the calling thread in one piece.
    Pieces must write disjoint outputs.  An exception in any piece is raised here.
    """
    global _pool
    threads = min(num_threads(), count, max(1, count * elements_per_item // MIN_ELEMENTS_PER_THREAD))
    if threads <= 1:
        if count:
            work(0, count)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=num_threads(), thread_name_prefix="minicnn-cpu")
    bounds = [count * k // threads for k in range(threads + 1)]
    # The calling thread takes the first piece itself rather than waiting idle.
    futures = [_pool.submit(work, start, stop) for start, stop in zip(bounds[1:-1], bounds[2:])]
    error = None
    try:
        work(bounds[0], bounds[1])
    except BaseException as raised:  # noqa: BLE001 - re-raised below, once every piece has stopped
        error = raised
    for future in futures:  # wait for all: no piece may still be writing when the caller reads
        try:
            future.result()
        except BaseException as raised:  # noqa: BLE001
            error = error or raised
    if error is not None:
        raise error


def parallel_blocks(count, block, work, elements_per_item=1):
    """Run ``work(start, stop)`` on blocks of ``block`` items of range(count); each thread takes the next free block.

    Blocks sized to the cache keep a kernel's intermediates there.  Taking the next free block, rather
    than a fixed share of them, means that on a shared machine a thread another process slows down
    does not hold the others back.
    """
    starts = iter(range(0, count, block))  # shared between the threads; next() on it is atomic under the GIL

    def take_blocks(_start, _stop):
        for start in starts:
            work(start, min(start + block, count))

    parallel_for(len(range(0, count, block)), take_blocks, elements_per_item=block * elements_per_item)
