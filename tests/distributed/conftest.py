"""The distributed tests run twice: at one rank (plain pytest) and at two (tests/distributed/test_launch.py
runs ``mpiexec -n 2 python -m mpi4py -m pytest tests/distributed``).

Every test is written for any world size: each rank builds the same full data from a fixed seed, takes its
own share, and compares what the ranks computed together with what one process computes alone on the
whole, in the same process.  Every rank runs the same tests in the same order, and a test asserts only
after its last collective, so a failing assertion on one rank cannot leave another waiting.
"""
import pytest

from minicnn import distributed


@pytest.fixture
def world():
    return distributed.world()

