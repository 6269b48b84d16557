import os
import shutil
import sys
from pathlib import Path

import pytest

# Tests import their shared helpers (tests/oracle.py) as plain modules.
sys.path.insert(0, os.path.dirname(__file__))

from hypothesis import settings  # noqa: E402

# CI replays the same examples every run, so a red build always means a change, never a new random draw;
# local runs keep exploring fresh examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The op suite (tests/functions) reruns unchanged on another device:
#   MINICNN_TEST_DEVICE=cuda      pytest tests/functions   (a real GPU through CuPy)
#   MINICNN_TEST_DEVICE=emulated  pytest tests/functions   (no GPU: kernels/*.cu on the CPU emulator)
# The oracle's leaves and gradcheck's inputs go to minicnn's default device, which this sets.
TEST_DEVICE_VARIABLE = "MINICNN_TEST_DEVICE"
TEST_DEVICES = ("cpu", "cuda", "emulated")


def pytest_configure(config):
    test_device = os.environ.get(TEST_DEVICE_VARIABLE, "cpu").strip().lower() or "cpu"
    if test_device not in TEST_DEVICES:
        raise pytest.UsageError(f"{TEST_DEVICE_VARIABLE} must be one of {TEST_DEVICES}, got {test_device!r}")
    config.minicnn_test_device = test_device
    if test_device == "cpu":
        return
    import minicnn
    from minicnn import cuda

    if test_device == "emulated":
        _install_emulated_gpu(config)
    if not cuda.is_available():
        raise pytest.UsageError(f"{TEST_DEVICE_VARIABLE}={test_device}: CUDA is not available "
                                f"({cuda.unavailable_reason()})")
    minicnn.set_default_device("cuda")


def _install_emulated_gpu(config):
    """Session-wide fake CuPy whose RawModule runs kernels/*.cu on the CPU emulator."""
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here / "backend"))
    sys.path.insert(0, str(here / "cuda_emulation"))
    import fake_cupy
    from emulator import CXX, Emulator

    from minicnn import cuda

    if shutil.which(CXX) is None:
        raise pytest.UsageError(f"{TEST_DEVICE_VARIABLE}=emulated needs {CXX} (a C++20 compiler); none found")
    patch = pytest.MonkeyPatch()
    config.add_cleanup(patch.undo)
    fake_cupy.install_emulated(patch, Emulator(scheduler="fibers"), here.parent / "kernels")
    cuda._reset_probe_for_tests()
    config.add_cleanup(cuda._reset_probe_for_tests)


def pytest_collection_modifyitems(config, items):
    """Under a GPU test device only the op suite runs; its ``cpu_only(reason)`` tests are skipped, saying why."""
    if config.minicnn_test_device == "cpu":
        return
    op_suite = Path(__file__).resolve().parent / "functions"
    for item in items:
        if op_suite not in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.skip(reason=f"{TEST_DEVICE_VARIABLE} reruns tests/functions only "
                                                    "(the other suites choose their devices themselves)"))
            continue
        marker = item.get_closest_marker("cpu_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else "NumPy-specific behaviour"
            item.add_marker(pytest.mark.skip(reason=f"cpu only: {reason}"))


@pytest.fixture(autouse=True)
def _a_gpu_fault_names_its_test(request):
    """On a real GPU, wait for each test's kernels and stop the run at the first fault.

    Kernels run asynchronously: an illegal memory access surfaces at some later CUDA call, in whichever
    test makes it, and it poisons the CUDA context, so every test after it fails too (the first GPU
    session: one kernel's bad read showed up as 340 failures in the tests that followed). Synchronising
    after each test pins the fault on the test that launched it and ends the run there, saying so.
    """
    yield
    cupy = sys.modules.get("cupy")
    if cupy is None or not hasattr(getattr(cupy, "cuda", None), "Device"):
        return  # no CuPy imported, or the tests' fake one (whose launches are synchronous)
    from minicnn import cuda

    if not cuda.is_available():
        return
    try:
        cupy.cuda.Device().synchronize()
    except Exception as error:  # CUDADriverError / CUDARuntimeError: the context is lost
        pytest.exit(f"{request.node.nodeid}: the GPU faulted while this test ran ({type(error).__name__}: "
                    f"{error}); the CUDA context is lost, so no later test could run", returncode=1)


def pytest_report_header(config):
    return f"minicnn test device: {config.minicnn_test_device} (set {TEST_DEVICE_VARIABLE} to change)"
