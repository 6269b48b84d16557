"""Compiling and launching our CUDA kernels through CuPy: the part every wrapper shares.

A wrapper (activation.py, pooling.py ...) says only what differs from kernel to
kernel, through one ``KernelCall``::

    call = KernelCall("avg_pool2d_forward", x)         # dtype -> f32/f64, sizes checked
    y = call.empty((n, c, oh, ow))                      # an output in x's dtype
    call.launch(y.size, x, y, n, c, h, w, oh, ow, ...)  # y.size threads, as launch.py says

* ``launch`` compiles kernels/<family>.cu (the family is the kernel's entry in
  launch.py) with ``cupy.RawModule`` the first time any of its kernels is
  needed, then keeps it for the life of the process: no kernel is ever rebuilt.
  It picks entry point ``<op>_f32``/``<op>_f64`` and launches it with
  launch.py's configuration for these work sizes.
* A failure to compile or launch raises ``CudaKernelError`` naming the kernel
  and the input shapes; ``check_size`` refuses sizes a kernel cannot index.

CuPy is imported inside these functions only, so importing minicnn costs
nothing on a machine without it.
"""
import math
from importlib import resources
from pathlib import Path

import numpy as np

from minicnn import device
from minicnn.backend.cuda.launch import kernel_family, launch_config

# dtype -> the suffix of its entry points
SUPPORTED_DTYPES = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_INT32_MAX = 2**31 - 1
# Sizes travel as long long; products such as N·C·H·W are formed in 64 bits inside the
# kernels, so each size (and each buffer) must stay well below 2^63.
_ELEMENT_LIMIT = 2**62

_modules = {}  # family -> compiled cupy.RawModule, one per process
_functions = {}  # (family, entry point) -> cupy.RawKernel


class CudaKernelError(RuntimeError):
    """A CUDA kernel failed to compile or to launch; the message names it and the shapes."""


# --- finding, compiling and launching kernels ---------------------------------
def kernel_directory():
    """kernels/ inside the installed package (minicnn/kernels), else the repository's kernels/."""
    try:
        installed = resources.files("minicnn.kernels")
        if installed.is_dir() and any(str(p.name).endswith(".cu") for p in installed.iterdir()):
            return installed
    except (ModuleNotFoundError, TypeError, FileNotFoundError):
        pass
    return Path(__file__).resolve().parents[3] / "kernels"


def kernel_source(family):
    """The CUDA C text of kernels/<family>.cu."""
    path = kernel_directory() / f"{family}.cu"
    try:
        return path.read_text()
    except (FileNotFoundError, OSError) as error:
        raise CudaKernelError(f"CUDA kernel source {family}.cu not found at {path} ({error}); "
                              "reinstall minicnn (the wheel carries kernels/*.cu)") from None


def import_cupy(op):
    """CuPy, or the RuntimeError saying why CUDA is not usable here."""
    try:
        import cupy
    except ImportError:
        device.require(f"minicnn.backend.cuda.{op}")
        raise
    return cupy


def _module(family, op, shapes):
    """The compiled RawModule of kernels/<family>.cu, compiled on first use only."""
    module = _modules.get(family)
    if module is None:
        cupy = import_cupy(op)
        source = kernel_source(family)
        try:
            module = cupy.RawModule(code=source)  # NVRTC, CuPy picks the GPU's architecture
            module.compile()  # compile now, so a failure names the file here and not at some launch
        except Exception as error:  # cupy.cuda.compiler.CompileException, NVRTC or driver errors
            raise CudaKernelError(f"{op}: compiling kernels/{family}.cu failed for inputs {shapes}: "
                                  f"{type(error).__name__}: {error}") from error
        _modules[family] = module
    return module


def _kernel(op, dtype_suffix, shapes):
    family = kernel_family(op)
    name = f"{op}_{dtype_suffix}"
    function = _functions.get((family, name))
    if function is None:
        module = _module(family, op, shapes)
        try:
            function = module.get_function(name)
        except Exception as error:
            raise CudaKernelError(f"{op}: kernels/{family}.cu has no entry point {name} "
                                  f"({type(error).__name__}: {error})") from error
        _functions[(family, name)] = function
    return function


def launch(op, dtype_suffix, work, args, shapes):
    """Run kernel ``<op>_<suffix>`` on ``args`` with launch.py's configuration for ``work`` sizes.

    Work sizes count what the kernel writes (elements, rows, channels; M, N and batch for GEMM), so when
    one is 0 (an empty batch) there is nothing to do, and no launch: a grid of 0 blocks is an
    invalid CUDA launch, and the outputs, allocated by the caller, are empty already.
    """
    if math.prod(int(size) for size in work) == 0:
        return
    kernel = _kernel(op, dtype_suffix, shapes)
    grid, block, shared_mem = launch_config(op, *work)
    try:
        kernel(grid, block, args, shared_mem=shared_mem)
    except Exception as error:  # CUDADriverError: bad launch configuration, out of resources ...
        raise CudaKernelError(f"{op}: launching {op}_{dtype_suffix} with grid={grid} block={block} "
                              f"shared_mem={shared_mem} failed for inputs {shapes}: "
                              f"{type(error).__name__}: {error}") from error


def dtype_suffix(op, *arrays):
    """'f32' or 'f64' for arrays of one floating dtype; a TypeError naming the op otherwise."""
    dtype = arrays[0].dtype
    if any(a.dtype != dtype for a in arrays[1:]):
        raise TypeError(f"{op}: CUDA kernels need one dtype, got {[str(a.dtype) for a in arrays]}")
    return _suffix(op, dtype)


def _suffix(op, dtype):
    try:
        return SUPPORTED_DTYPES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"{op}: CUDA kernels exist for float32 and float64, got {dtype}") from None


def check_size(op, shapes, *sizes, int32=()):
    """Refuse sizes the kernels cannot index: everything < 2^62, ``int32`` ones ≤ 2^31 − 1."""
    for size in sizes:
        if int(size) > _ELEMENT_LIMIT:
            raise ValueError(f"{op}: {int(size)} elements is more than the CUDA kernels index (2^62), "
                             f"inputs {shapes}")
    for name, value in int32:
        if not 0 <= int(value) <= _INT32_MAX:
            raise ValueError(f"{op}: {name}={value} does not fit the kernel's 32-bit int, inputs {shapes}")


def contiguous(array):
    """``array`` in C order (itself when it already is): the kernels index flat memory."""
    return device.get_array_module(array).ascontiguousarray(array)


def shape_text(*arrays):
    return ", ".join(str(tuple(a.shape)) if hasattr(a, "shape") else repr(a) for a in arrays)


def nchw_sizes(x_shape, out_size):
    """(N, C, H, W, OH, OW) as Python ints: the sizes every sliding-window kernel takes first."""
    n, c, h, w = (int(v) for v in x_shape)
    oh, ow = (int(v) for v in out_size)
    return n, c, h, w, oh, ow


def window(*pairs):
    """``window(kernel_size, stride, padding)`` -> (KH, KW, SH, SW, PH, PW), Python ints (long long)."""
    return tuple(int(v) for pair in pairs for v in pair)


# --- what every wrapper does the same way ------------------------------------------
class KernelCall:
    """One call of a wrapper: checks its inputs, allocates its outputs and launches its kernel(s).

    ``arrays`` are the inputs.  They name the call in error messages (followed
    by ``note``, e.g. ``"axis=1"``), must fit the kernels' 64-bit indexing, and
    must share one dtype, float32 or float64, which picks the entry point's
    suffix: ``dtype_of`` says which of them carry it when others hold integers
    (targets, argmax indices), and ``dtype`` gives it when there are no inputs.

    Arguments travel to a kernel as CuPy packs them (by NumPy type), so
    ``launch`` converts them by one rule: an array becomes a pointer to its
    contiguous data, None a null pointer (an absent weight), a Python int a
    C ``long long`` (every size and index in kernels/*.cu is one), and a NumPy
    scalar stays what it is (``np.int32(size)`` for an ``int``, ``np.float64(eps)``
    for a ``double``, ``call.scalar(v)`` for the kernel's ``T``).
    """

    def __init__(self, op, *arrays, dtype_of=None, dtype=None, note=None):
        self.op = op
        self.cupy = import_cupy(op)
        self.shapes = ", ".join(part for part in (shape_text(*arrays), note) if part)
        typed = [a for a in (arrays if dtype_of is None else dtype_of) if a is not None]
        if typed:
            self.suffix, self.dtype = dtype_suffix(op, *typed), np.dtype(typed[0].dtype)
        else:
            self.suffix, self.dtype = _suffix(op, dtype), np.dtype(dtype)
        check_size(op, self.shapes, *(a.size for a in arrays if a is not None))

    def check_int32(self, name, value):
        """Refuse a value the kernel receives as a 32-bit ``int`` when it does not fit one."""
        check_size(self.op, self.shapes, int32=[(name, value)])

    def empty(self, shape, dtype=None):
        """A new C-ordered output of ``shape`` (in the call's dtype unless given), its size checked first."""
        shape = tuple(int(size) for size in shape)
        check_size(self.op, self.shapes, math.prod(shape))
        return self.cupy.empty(shape, dtype=self.dtype if dtype is None else dtype)

    def scalar(self, value):
        """``value`` as the kernel's ``T`` (float for the f32 entry point, double for f64)."""
        return self.dtype.type(value)

    def launch(self, work, *args, kernel=None):
        """Launch ``kernel`` (default: the call's op) on ``args`` with launch.py's configuration for ``work``.

        ``work``: one size, or a tuple of them (GEMM's M, N, batch), as launch.py documents for the kernel.
        """
        work = tuple(work) if isinstance(work, tuple) else (work,)
        arguments = tuple(self._argument(value) for value in args)
        launch(kernel or self.op, self.suffix, work, arguments, self.shapes)

    def _argument(self, value):
        if value is None:
            return np.uint64(0)  # a null pointer: 8 zero bytes, the size of a device pointer
        if isinstance(value, np.generic):
            return value
        if isinstance(value, int):  # bool too: flags travel as long long 0/1
            return np.int64(value)
        if isinstance(value, float):
            raise TypeError(f"{self.op}: a Python float has no C type; pass np.float64(value) for a double "
                            f"or call.scalar(value) for the kernel's T")
        return contiguous(value)
