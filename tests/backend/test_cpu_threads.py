"""The CPU thread pool (minicnn/backend/cpu/threads.py): every item once, errors surface, settings checked."""
import threading

import numpy as np
import pytest

from minicnn.backend.cpu import threads


@pytest.fixture
def two_threads(restore_threads):
    threads.set_num_threads(2)


@pytest.mark.parametrize("count", [0, 1, 2, 7, 1000])
def test_parallel_for_covers_every_item_exactly_once(two_threads, count):
    hits = np.zeros(count, dtype=int)
    threads.parallel_for(count, lambda start, stop: hits.__setitem__(slice(start, stop), hits[start:stop] + 1),
                         elements_per_item=threads.MIN_ELEMENTS_PER_THREAD)
    assert hits.tolist() == [1] * count


def test_a_big_job_runs_on_two_threads_and_a_small_one_on_the_caller(two_threads):
    names = set()
    lock = threading.Lock()

    def record(start, stop):
        with lock:
            names.add(threading.current_thread().name)

    threads.parallel_for(2, record, elements_per_item=threads.MIN_ELEMENTS_PER_THREAD)
    assert len(names) == 2 and threading.current_thread().name in names
    names.clear()
    threads.parallel_for(1000, record, elements_per_item=1)  # 1000 elements: not worth a thread
    assert names == {threading.current_thread().name}


def test_an_error_in_any_piece_is_raised_after_every_piece_stopped(two_threads):
    finished = []

    def work(start, stop):
        if start > 0:
            raise ArithmeticError(f"piece {start}")
        finished.append(start)

    with pytest.raises(ArithmeticError, match="piece"):
        threads.parallel_for(4, work, elements_per_item=threads.MIN_ELEMENTS_PER_THREAD)
    assert finished == [0]


@pytest.mark.parametrize("count, error, message", [
    (0, ValueError, "set_num_threads: count must be positive, got 0"),
    (1.5, TypeError, "set_num_threads: count must be an int, got float"),
    (True, TypeError, "set_num_threads: count must be an int, got bool")])
def test_set_num_threads_refuses_bad_counts_and_keeps_the_setting(count, error, message):
    before = threads.num_threads()
    with pytest.raises(error, match=message):
        threads.set_num_threads(count)
    assert threads.num_threads() == before


def test_minicnn_num_threads_sets_the_default_and_a_bad_value_is_named(monkeypatch):
    monkeypatch.setenv("MINICNN_NUM_THREADS", "3")
    assert threads._default_threads() == 3
    monkeypatch.setenv("MINICNN_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="MINICNN_NUM_THREADS must be a positive integer, got 'many'"):
        threads._default_threads()


@pytest.mark.parametrize("count, block", [(0, 3), (1, 3), (10, 3), (12, 4), (7, 100)])
def test_parallel_blocks_covers_every_item_once_in_blocks_of_the_size_asked(two_threads, count, block):
    hits = np.zeros(count, dtype=int)
    sizes = []
    lock = threading.Lock()

    def work(start, stop):
        with lock:
            sizes.append(stop - start)
        hits[start:stop] += 1

    threads.parallel_blocks(count, block, work, elements_per_item=threads.MIN_ELEMENTS_PER_THREAD)
    assert hits.tolist() == [1] * count
    assert sorted(sizes, reverse=True) == [min(block, count - start) for start in range(0, count, block)]
