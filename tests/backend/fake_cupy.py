"""A stand-in for CuPy on machines without a GPU (test code only).

``FakeGpuArray`` is a NumPy array whose type lives in a module named ``cupy…``, so
``get_array_module`` takes it for a GPU array, and ``module()`` builds a ``cupy`` module that
answers with NumPy, wrapping array results as FakeGpuArray.  With it the device logic (and, with
the CUDA emulator as its ``RawModule``, the CuPy backend's launches) run on the CPU.

It is as strict as CuPy about mixing devices: an operator or ufunc (``gpu + host``,
``np.exp(host, out=gpu)``), a NumPy function (``np.where(gpu, host, 0)``) or a fake ``cupy``
function that meets a ``numpy.ndarray`` with ndim >= 1 next to a GPU array raises TypeError.
Scalars (Python, NumPy, 0-d arrays) mix freely, as in CuPy.  Results of NumPy calls on GPU arrays
stay FakeGpuArray, a reduction or an element included (a 0-d one, where NumPy would give a
scalar); ``.get()`` gives a NumPy array; ``cupy.asarray`` copies host data to the "GPU".

What it cannot catch, since a NumPy subclass has no hook for it: ``np.asarray(gpu)`` and
``np.array(gpu)``, which real CuPy refuses ("Implicit conversion to a NumPy array is not
allowed"), so host code that reads a GPU array without ``.get()`` still passes here; nor calls
that bypass NumPy's dispatch, such as ``gpu.dot(host)``.
"""
import sys
import types

import numpy as np


class FakeGpuArray(np.ndarray):
    """Looks like a CuPy array to get_array_module; computes with NumPy; refuses host arrays."""

    def get(self):
        return self.view(np.ndarray).copy()

    def __getitem__(self, index):
        return _wrap(super().__getitem__(index))  # an element is a 0-d GPU array, as in CuPy

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        operands = inputs[:1] + inputs[2:] if method == "at" else inputs  # ufunc.at's index may be on the host
        _refuse_host_arrays(operands + (out or ()) + tuple(kwargs.values()))
        if out is not None:
            kwargs["out"] = _host(out)
        result = getattr(ufunc, method)(*_host(inputs), **{k: _host(v) for k, v in kwargs.items()})
        if out is None:
            return _wrap(result)
        return out[0] if len(out) == 1 else out

    def __array_function__(self, func, types, args, kwargs):
        return _call_on_gpu(func, args, kwargs)


FakeGpuArray.__module__ = "cupy_fake_for_tests"


def on_fake_gpu(array):
    return np.array(array, copy=True).view(FakeGpuArray)


def _refuse_host_arrays(values):
    for value in values:
        if isinstance(value, (list, tuple)):
            _refuse_host_arrays(value)
        elif isinstance(value, np.ndarray) and not isinstance(value, FakeGpuArray) and value.ndim > 0:
            raise TypeError("fake cupy: operand of type numpy.ndarray mixed with a GPU array "
                            "(real CuPy raises TypeError here; move it with cupy.asarray, or back with .get())")


def _host(value):
    """FakeGpuArray -> a plain NumPy view of it (through lists and tuples), so NumPy computes without us."""
    if isinstance(value, FakeGpuArray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)([_host(v) for v in value])
    return value


def _wrap(value):
    """NumPy results -> FakeGpuArray (through lists and tuples); a NumPy scalar becomes a 0-d one, as in CuPy."""
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and not isinstance(value, FakeGpuArray):
        return value.view(FakeGpuArray)
    if isinstance(value, (list, tuple)):
        return type(value)([_wrap(v) for v in value])
    return value


def _call_on_gpu(func, args, kwargs):
    """Run a NumPy function as CuPy would: refuse host arrays, compute on NumPy views, wrap the results."""
    _refuse_host_arrays(args + tuple(kwargs.values()))
    result = func(*_host(args), **{k: _host(v) for k, v in kwargs.items()})
    out = kwargs.get("out")
    return out if isinstance(out, FakeGpuArray) else _wrap(result)


def _to_gpu(a, dtype=None, copy=True):
    """``cupy.array``/``cupy.asarray``: host data is copied over; asarray keeps a GPU array of that dtype as is."""
    if isinstance(a, FakeGpuArray) and not copy and (dtype is None or a.dtype == dtype):
        return a
    return np.array(_host(a), dtype=dtype, copy=True).view(FakeGpuArray)


class _FakeCupyModule(types.ModuleType):
    def __getattr__(self, name):
        attribute = getattr(np, name)
        if callable(attribute) and not isinstance(attribute, type):
            return lambda *args, **kwargs: _call_on_gpu(attribute, args, kwargs)
        return attribute


def module(raw_module=None):
    """A fake ``cupy``: NumPy underneath, ``asarray`` giving FakeGpuArray, optional ``RawModule``."""
    fake = _FakeCupyModule("cupy")
    fake.ndarray = FakeGpuArray
    fake.array = lambda a, dtype=None, copy=True: _to_gpu(a, dtype, copy)
    fake.asarray = lambda a, dtype=None: _to_gpu(a, dtype, copy=False)
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
                converted.append(value.view(np.ndarray))  # the emulator is the device: it sees the raw memory
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
