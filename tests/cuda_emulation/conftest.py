import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session")
def emulator():
    """The CPU emulator of our CUDA kernels; skips (visibly) where there is no C++20 compiler."""
    from emulator import CXX, Emulator

    if shutil.which(CXX) is None:
        pytest.skip(f"CUDA emulation needs {CXX} (a C++20 compiler with <barrier>); none found")
    return Emulator()
