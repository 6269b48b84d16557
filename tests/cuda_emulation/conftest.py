import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session", params=["threads", "fibers"])
def emulator(request):
    """The CPU emulator of our CUDA kernels, under both schedulers (README.md); skips (visibly) without g++.

    OS threads let the OS interleave the CUDA threads; fibers run them in a fixed order,
    which catches every missing barrier before a read of a higher thread's write.
    """
    from emulator import CXX, Emulator

    if shutil.which(CXX) is None:
        pytest.skip(f"CUDA emulation needs {CXX} (a C++20 compiler with <barrier>); none found")
    return Emulator(scheduler=request.param)
