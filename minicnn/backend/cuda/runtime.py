"""Compiling and launching our CUDA kernels through CuPy: the part every wrapper shares.

* ``kernel_source(family)`` reads kernels/<family>.cu from the installed
  package (``minicnn/kernels``) or, in a source checkout, the repository.
* ``launch(op, suffix, work, args, shapes)`` compiles the family's file with
  ``cupy.RawModule`` the first time any of its kernels is needed (then keeps it
  for the life of the process: no kernel is ever rebuilt), picks entry point
  ``<op>_f32``/``<op>_f64`` and launches it with launch.py's configuration
  for these work sizes.
* A failure to compile or launch raises ``CudaKernelError`` naming the kernel
  and the input shapes; ``check_size`` refuses sizes a kernel cannot index.

CuPy is imported inside these functions only, so importing minicnn costs
nothing on a machine without it.
"""
import math
from importlib import resources
from pathlib import Path

import numpy as np

from minicnn.backend.cuda.launch import launch_config

# Which kernels/<family>.cu defines each kernel.
FAMILY = {
    "im2col": "im2col", "col2im": "im2col",
    "depthwise_conv2d_forward": "depthwise", "depthwise_conv2d_backward_input": "depthwise",
    "depthwise_conv2d_backward_weight": "depthwise",
    "gemm": "gemm", "gemm_blocked": "gemm",
    "max_pool2d_forward": "pooling", "max_pool2d_backward": "pooling",
    "avg_pool2d_forward": "pooling", "avg_pool2d_backward": "pooling",
    "adaptive_avg_pool2d_forward": "pooling", "adaptive_avg_pool2d_backward": "pooling",
    "batch_norm_statistics": "batchnorm", "batch_norm_invstd": "batchnorm", "batch_norm_forward": "batchnorm",
    "batch_norm_backward_reduce": "batchnorm", "batch_norm_backward_input": "batchnorm",
    "batch_norm_update_running_stats": "batchnorm",
    "local_response_norm_forward": "lrn", "local_response_norm_backward": "lrn",
    "softmax_forward": "softmax", "softmax_backward": "softmax", "log_softmax_forward": "softmax",
    "log_softmax_backward": "softmax", "cross_entropy_forward": "softmax", "cross_entropy_backward": "softmax",
    "dropout_mask": "dropout", "bias_add": "bias", "channel_sum": "bias",
}
for _name in ("relu", "relu6", "leaky_relu", "sigmoid", "tanh", "hardswish", "hardsigmoid"):
    FAMILY[f"{_name}_forward"] = FAMILY[f"{_name}_backward"] = "activation"

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
    try:
        import cupy
    except ImportError:
        from minicnn import cuda

        cuda.require(f"minicnn.backend.cuda.{op}")
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
    family = FAMILY[op]
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
    from minicnn.backend import get_array_module

    return get_array_module(array).ascontiguousarray(array)


def null_pointer():
    """A null pointer argument (weight=None): 8 zero bytes, the size of a device pointer."""
    return np.uint64(0)


def long_long(value):
    return np.int64(int(value))


def shape_text(*arrays):
    return ", ".join(str(tuple(a.shape)) if hasattr(a, "shape") else repr(a) for a in arrays)


