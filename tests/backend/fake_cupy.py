"""A stand-in for CuPy on machines without a GPU (test code only).

``FakeGpuArray`` is a NumPy array whose type lives in a module named
``cupy…``, so ``get_array_module`` takes it for a GPU array, and ``module()``
builds a ``cupy`` module that answers with NumPy, wrapping array results as
FakeGpuArray.  With it the device logic (and, with the CUDA emulator as its
``RawModule``, the CuPy backend's launches) run on the CPU.
"""
import sys
import types

import numpy as np


class FakeGpuArray(np.ndarray):
    """Looks like a CuPy array to get_array_module; behaves like NumPy."""

    def get(self):
        return np.array(self, copy=True).view(np.ndarray)


FakeGpuArray.__module__ = "cupy_fake_for_tests"


def on_fake_gpu(array):
    return np.asarray(array).view(FakeGpuArray)


def _wrap(value):
    if isinstance(value, np.ndarray) and not isinstance(value, FakeGpuArray):
        return value.view(FakeGpuArray)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


class _FakeCupyModule(types.ModuleType):
    def __getattr__(self, name):
        attribute = getattr(np, name)
        if callable(attribute) and not isinstance(attribute, type):
            return lambda *args, **kwargs: _wrap(attribute(*args, **kwargs))
        return attribute


def module(raw_module=None):
    """A fake ``cupy``: NumPy underneath, ``asarray`` giving FakeGpuArray, optional ``RawModule``."""
    fake = _FakeCupyModule("cupy")
    fake.ndarray = FakeGpuArray
    fake.asarray = lambda a, dtype=None: _wrap(np.array(a, dtype=dtype, copy=True))
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    if raw_module is not None:
        fake.RawModule = raw_module
    return fake


def cupyx_module():
    """A fake ``cupyx`` with the one function minicnn uses: ``scatter_add`` (NumPy's ``add.at``)."""
    fake = types.ModuleType("cupyx")
    fake.scatter_add = lambda array, index, values: np.add.at(array, index, values)
    return fake


def install(monkeypatch, raw_module=None):
    fake = module(raw_module)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx_module())
    return fake


_SCALAR_DTYPES = {"q": np.int64, "l": np.int64, "Q": np.uint64, "L": np.uint64, "i": np.int32, "I": np.uint32,
                  "f": np.float32, "d": np.float64}


class StrictEmulatedKernel:
    """What ``RawModule.get_function`` returns: checks each argument as CuPy would pack it, then
    launches on the CPU emulator.

    CuPy packs a scalar by its NumPy dtype, so an np.int64 where the kernel takes
    an ``int`` would shift every later argument: the width must match exactly.
    """

    def __init__(self, kernel, launches):
        self.kernel, self.launches = kernel, launches

    def __call__(self, grid, block, args, shared_mem=0):
        assert isinstance(grid, tuple) and isinstance(block, tuple), "grid and block must be tuples"
        converted = []
        for index, (code, value) in enumerate(zip(self.kernel.signature, args)):
            if code.startswith("*"):
                if isinstance(value, np.uint64) and value == 0:
                    converted.append(None)  # the wrapper's null pointer
                    continue
                assert isinstance(value, FakeGpuArray), (
                    f"{self.kernel.name}: argument {index} is a pointer, got {type(value).__name__}")
                converted.append(value)
            else:
                expected = _SCALAR_DTYPES[code]
                assert isinstance(value, np.generic) and value.dtype == expected, (
                    f"{self.kernel.name}: argument {index} must be {np.dtype(expected)} (C type {code}); "
                    f"got {value!r} of {getattr(value, 'dtype', type(value).__name__)}: CuPy would pack it wrongly")
                converted.append(value)
        self.launches.append(self.kernel.name)
        self.kernel(grid, block, converted, shared_mem)


def emulated_raw_module(emulator, kernels_dir, launches):
    """A ``cupy.RawModule`` stand-in that compiles kernels/*.cu for the CPU emulator."""
    sources = {path.read_text(): path for path in kernels_dir.glob("*.cu")}

    class EmulatedRawModule:
        def __init__(self, code, options=()):
            assert code in sources, "RawModule got a source that is not one of kernels/*.cu"
            self.path = sources[code]

        def compile(self):
            emulator.module(self.path)

        def get_function(self, name):
            return StrictEmulatedKernel(emulator.module(self.path)[name], launches)

    return EmulatedRawModule


def install_emulated(monkeypatch, emulator, kernels_dir):
    """Fake CuPy whose kernels run on the emulator; returns the list of launched kernel names."""
    from minicnn.backend.cuda import runtime as cuda_runtime

    launches = []
    install(monkeypatch, emulated_raw_module(emulator, kernels_dir, launches))
    monkeypatch.setattr(cuda_runtime, "_modules", {})
    monkeypatch.setattr(cuda_runtime, "_functions", {})
    return launches
