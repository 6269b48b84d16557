import os
import shutil
import sys
from pathlib import Path

import pytest

# The backend tests import fake_cupy (beside this file) and the CUDA emulator as plain modules.
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cuda_emulation"))


@pytest.fixture(scope="session")
def emulator():
    """The CUDA emulator behind the stand-in CuPy; skips (visibly) without a C++20 compiler.

    Fibers: the kernels meet OS threads in tests/cuda_emulation; here speed matters.
    """
    from emulator import CXX, Emulator

    if shutil.which(CXX) is None:
        pytest.skip(f"CUDA emulation needs {CXX} (a C++20 compiler); none found")
    return Emulator(scheduler="fibers")


@pytest.fixture
def restore_threads():
    """Put the CPU thread pool's size back after a test that changes it."""
    from minicnn.backend.cpu import threads

    before = threads.num_threads()
    yield
    threads.set_num_threads(before)


@pytest.fixture
def record_threads(monkeypatch):
    """record_threads(module): wrap module.parallel_for; the set returned fills with the threads that ran a piece."""
    import threading

    def record(module):
        workers, run = set(), module.parallel_for

        def recording(count, work, elements_per_item=1):
            def piece(start, stop):
                workers.add(threading.get_ident())
                work(start, stop)
            run(count, piece, elements_per_item)

        monkeypatch.setattr(module, "parallel_for", recording)
        return workers
    return record
