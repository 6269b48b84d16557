"""The CUDA kernel set: the NumPy kernel list, computed by our own kernels in kernels/*.cu.

Every function here has the name and signature of its twin in
``minicnn.backend.cpu`` and takes and returns CuPy arrays.  Reading one is
reading three steps:

1. check the input (dtype float32/float64, shapes the kernel supports) and make
   it contiguous, since the kernels index flat memory;
2. allocate the outputs with ``cupy.empty``;
3. launch ``<op>_f32`` or ``<op>_f64`` from the ``.cu`` file of its family,
   with the grid/block/shared memory that ``launch.py`` gives for it (the CPU
   emulation tests launch with exactly the same configuration).

Each ``.cu`` file is compiled by ``cupy.RawModule`` (NVRTC) the first time one
of its kernels is needed and kept for the life of the process, so no kernel is
ever rebuilt (``runtime.py`` does the compiling, caching and launching).  CuPy
itself is imported inside these functions only: importing this module costs
nothing on a machine without a GPU.

``max_pool2d_input_indices`` has no kernel of its own: it is index arithmetic,
and the NumPy reference (written with ``xp = get_array_module(x)``) runs on CuPy
arrays unchanged.  ``philox4x32``/``uniform_from_counter`` are the host-side
generator, kept for the known-answer tests.
"""
import math

import numpy as np

from minicnn.backend.cpu import pooling as _cpu_pooling
from minicnn.backend.cpu import random as _cpu_random
from minicnn.backend.cpu.im2col import conv_output_size  # shape arithmetic, the same on every backend
from minicnn.backend.cuda.runtime import SUPPORTED_DTYPES as _SUFFIX
from minicnn.backend.cuda.runtime import (
    CudaKernelError,
    check_size,
    contiguous,
    dtype_suffix,
    import_cupy,
    kernel_source,
    launch,
    long_long,
    null_pointer,
    shape_text,
)

__all__ = [
    "CudaKernelError", "kernel_source", "use_teaching_gemm", "teaching_gemm_enabled", "matmul", "gemm",
    "conv_output_size", "im2col", "col2im",
    "depthwise_conv2d_forward", "depthwise_conv2d_backward",
    "relu_forward", "relu_backward", "relu6_forward", "relu6_backward",
    "leaky_relu_forward", "leaky_relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward", "hardswish_forward", "hardswish_backward",
    "hardsigmoid_forward", "hardsigmoid_backward",
    "max_pool2d_forward", "max_pool2d_backward", "max_pool2d_input_indices",
    "avg_pool2d_forward", "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
    "batch_norm_statistics", "batch_norm_invstd", "batch_norm_forward", "batch_norm_backward",
    "batch_norm_update_running_stats", "local_response_norm_forward", "local_response_norm_backward",
    "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
    "cross_entropy_forward", "cross_entropy_backward",
    "philox4x32", "uniform_from_counter", "dropout_mask",
]

_teaching_gemm = False

# --- GEMM: cuBLAS by default, our tiled SGEMM when asked ----------------------
def use_teaching_gemm(enabled=True):
    """Route 2-D ``matmul`` through kernels/gemm.cu's shared-memory tiled kernel instead of cuBLAS.

    The teaching kernel is for reading and for comparing with cuBLAS, not for
    speed; batched (3-D and up) products always use ``cupy.matmul``.

    >>> minicnn.backend.cuda.use_teaching_gemm(True)
    """
    global _teaching_gemm
    _teaching_gemm = bool(enabled)


def teaching_gemm_enabled():
    return _teaching_gemm


def gemm(a, b):
    """C = A @ B with the teaching shared-memory tiled kernel (gemm.cu).

    2-D (M, K) @ (K, N), or a batch of them, (G, M, K) @ (G, K, N) — the shape of
    grouped convolution's product — one grid layer (blockIdx.z) per batch entry.
    """
    cupy = import_cupy("gemm")
    shapes = shape_text(a, b)
    batched = a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0]
    if not (batched or (a.ndim == 2 and b.ndim == 2)) or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"gemm: expected (M, K) @ (K, N) or (G, M, K) @ (G, K, N), got {shapes}")
    suffix = dtype_suffix("gemm", a, b)
    batch = a.shape[0] if batched else 1
    (m, k), n = a.shape[-2:], b.shape[-1]
    check_size("gemm", shapes, batch * m * k, batch * k * n, batch * m * n)
    if -(-m // 16) > 65535 or batch > 65535:
        raise ValueError(f"gemm: the grid holds at most 65535 row tiles (M <= 1,048,560) and 65535 batch "
                         f"entries, got M={m}, batch={batch} for inputs {shapes}")
    c = cupy.empty((batch, m, n) if batched else (m, n), dtype=a.dtype)
    launch("gemm", suffix, (m, n, batch),
           (contiguous(a), contiguous(b), c, long_long(m), long_long(n), long_long(k)), shapes)
    return c


def matmul(a, b):
    """a @ b: cuBLAS (``cupy.matmul``), or the teaching tiled GEMM when switched on (2-D or same-size batches)."""
    teachable = (a.ndim == b.ndim == 2) or (a.ndim == b.ndim == 3 and a.shape[0] == b.shape[0])
    if _teaching_gemm and teachable and a.dtype == b.dtype and a.dtype in _SUFFIX:
        return gemm(a, b)
    return import_cupy("matmul").matmul(a, b)


# --- activations: one thread per element --------------------------------------
def _activation_forward(name, x, *hyper):
    cupy = import_cupy(f"{name}_forward")
    op = f"{name}_forward"
    suffix = dtype_suffix(op, x)
    check_size(op, shape_text(x), x.size)
    x = contiguous(x)
    y = cupy.empty_like(x)
    launch(op, suffix, (x.size,), (x, y, long_long(x.size), *(x.dtype.type(h) for h in hyper)), shape_text(x))
    return y


def _activation_backward(name, gy, saved, *hyper):
    cupy = import_cupy(f"{name}_backward")
    op = f"{name}_backward"
    shapes = shape_text(gy, saved)
    if gy.shape != saved.shape:
        raise ValueError(f"{op}: the gradient and the saved tensor must have one shape, got {shapes}")
    suffix = dtype_suffix(op, gy, saved)
    check_size(op, shapes, gy.size)
    gy, saved = contiguous(gy), contiguous(saved)
    gx = cupy.empty_like(gy)
    launch(op, suffix, (gy.size,), (gy, saved, gx, long_long(gy.size), *(gy.dtype.type(h) for h in hyper)), shapes)
    return gx


def relu_forward(x):
    return _activation_forward("relu", x)


def relu_backward(gy, x):
    return _activation_backward("relu", gy, x)


def relu6_forward(x):
    return _activation_forward("relu6", x)


def relu6_backward(gy, x):
    return _activation_backward("relu6", gy, x)


def leaky_relu_forward(x, negative_slope):
    return _activation_forward("leaky_relu", x, negative_slope)


def leaky_relu_backward(gy, x, negative_slope):
    return _activation_backward("leaky_relu", gy, x, negative_slope)


def sigmoid_forward(x):
    return _activation_forward("sigmoid", x)


def sigmoid_backward(gy, y):
    return _activation_backward("sigmoid", gy, y)


def tanh_forward(x):
    return _activation_forward("tanh", x)


def tanh_backward(gy, y):
    return _activation_backward("tanh", gy, y)


def hardsigmoid_forward(x):
    return _activation_forward("hardsigmoid", x)


def hardsigmoid_backward(gy, x):
    return _activation_backward("hardsigmoid", gy, x)


def hardswish_forward(x):
    return _activation_forward("hardswish", x)


def hardswish_backward(gy, x):
    return _activation_backward("hardswish", gy, x)


# --- pooling: one thread per element written (backward = gather, no atomics) --
def _pool_shapes(x_shape, out_size):
    n, c, h, w = (int(v) for v in x_shape)
    oh, ow = (int(v) for v in out_size)
    return n, c, h, w, oh, ow


def _pool_window(kernel_size, stride, padding):
    return tuple(long_long(v) for v in (*kernel_size, *stride, *padding))


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, out_size):
    cupy = import_cupy("max_pool2d_forward")
    shapes = shape_text(x)
    suffix = dtype_suffix("max_pool2d_forward", x)
    n, c, h, w, oh, ow = _pool_shapes(x.shape, out_size)
    check_size("max_pool2d_forward", shapes, x.size, n * c * oh * ow,
                int32=[("KH*KW", kernel_size[0] * kernel_size[1])])
    x = contiguous(x)
    y = cupy.empty((n, c, oh, ow), dtype=x.dtype)
    window_argmax = cupy.empty((n, c, oh, ow), dtype=np.int32)
    launch("max_pool2d_forward", suffix, (y.size,),
            (x, y, window_argmax, *map(long_long, (n, c, h, w, oh, ow)), *_pool_window(kernel_size, stride, padding),
             *map(long_long, dilation)), shapes)
    return y, window_argmax


def max_pool2d_backward(gy, window_argmax, x_shape, kernel_size, stride, padding, dilation):
    cupy = import_cupy("max_pool2d_backward")
    shapes = shape_text(gy, window_argmax) + f", x_shape={tuple(x_shape)}"
    suffix = dtype_suffix("max_pool2d_backward", gy)
    n, c, h, w, oh, ow = _pool_shapes(x_shape, gy.shape[2:])
    if window_argmax.shape != gy.shape:
        raise ValueError(f"max_pool2d_backward: window_argmax and the gradient must have one shape, got {shapes}")
    check_size("max_pool2d_backward", shapes, gy.size, n * c * h * w)
    gy, window_argmax = contiguous(gy), contiguous(window_argmax.astype(np.int32, copy=False))
    gx = cupy.empty((n, c, h, w), dtype=gy.dtype)
    launch("max_pool2d_backward", suffix, (gx.size,),
            (gy, window_argmax, gx, *map(long_long, (n, c, h, w, oh, ow)), *_pool_window(kernel_size, stride, padding),
             *map(long_long, dilation)), shapes)
    return gx


def max_pool2d_input_indices(window_argmax, x_shape, kernel_size, stride, padding, dilation):
    """Composed: index arithmetic on CuPy arrays (the NumPy reference, unchanged)."""
    return _cpu_pooling.max_pool2d_input_indices(window_argmax, x_shape, kernel_size, stride, padding, dilation)


def _divisor_argument(divisor_override, dtype):
    # The kernel reads 0 as "no override"; PyTorch refuses divisor_override=0 anyway.
    return dtype.type(0 if divisor_override is None else divisor_override)


def avg_pool2d_forward(x, kernel_size, stride, padding, out_size, count_include_pad=True, divisor_override=None):
    cupy = import_cupy("avg_pool2d_forward")
    shapes = shape_text(x)
    suffix = dtype_suffix("avg_pool2d_forward", x)
    n, c, h, w, oh, ow = _pool_shapes(x.shape, out_size)
    check_size("avg_pool2d_forward", shapes, x.size, n * c * oh * ow)
    x = contiguous(x)
    y = cupy.empty((n, c, oh, ow), dtype=x.dtype)
    launch("avg_pool2d_forward", suffix, (y.size,),
            (x, y, *map(long_long, (n, c, h, w, oh, ow)), *_pool_window(kernel_size, stride, padding),
             long_long(bool(count_include_pad)), _divisor_argument(divisor_override, x.dtype)), shapes)
    return y


def avg_pool2d_backward(gy, x_shape, kernel_size, stride, padding, count_include_pad=True, divisor_override=None):
    cupy = import_cupy("avg_pool2d_backward")
    shapes = shape_text(gy) + f", x_shape={tuple(x_shape)}"
    suffix = dtype_suffix("avg_pool2d_backward", gy)
    n, c, h, w, oh, ow = _pool_shapes(x_shape, gy.shape[2:])
    check_size("avg_pool2d_backward", shapes, gy.size, n * c * h * w)
    gy = contiguous(gy)
    gx = cupy.empty((n, c, h, w), dtype=gy.dtype)
    launch("avg_pool2d_backward", suffix, (gx.size,),
            (gy, gx, *map(long_long, (n, c, h, w, oh, ow)), *_pool_window(kernel_size, stride, padding),
             long_long(bool(count_include_pad)), _divisor_argument(divisor_override, gy.dtype)), shapes)
    return gx


def adaptive_avg_pool2d_forward(x, out_size):
    cupy = import_cupy("adaptive_avg_pool2d_forward")
    shapes = shape_text(x)
    suffix = dtype_suffix("adaptive_avg_pool2d_forward", x)
    n, c, h, w, oh, ow = _pool_shapes(x.shape, out_size)
    check_size("adaptive_avg_pool2d_forward", shapes, x.size, n * c * oh * ow)
    x = contiguous(x)
    y = cupy.empty((n, c, oh, ow), dtype=x.dtype)
    launch("adaptive_avg_pool2d_forward", suffix, (y.size,), (x, y, *map(long_long, (n, c, h, w, oh, ow))), shapes)
    return y


def adaptive_avg_pool2d_backward(gy, x_shape):
    cupy = import_cupy("adaptive_avg_pool2d_backward")
    shapes = shape_text(gy) + f", x_shape={tuple(x_shape)}"
    suffix = dtype_suffix("adaptive_avg_pool2d_backward", gy)
    n, c, h, w, oh, ow = _pool_shapes(x_shape, gy.shape[2:])
    check_size("adaptive_avg_pool2d_backward", shapes, gy.size, n * c * h * w)
    gy = contiguous(gy)
    gx = cupy.empty((n, c, h, w), dtype=gy.dtype)
    launch("adaptive_avg_pool2d_backward", suffix, (gx.size,), (gy, gx, *map(long_long, (n, c, h, w, oh, ow))),
            shapes)
    return gx


# --- batch norm: x viewed as (N, C, L) -----------------------------------------
def _ncl(op, x, shapes):
    if x.ndim != 3:
        raise ValueError(f"{op}: expected x viewed as (N, C, L), got {shapes}")
    return tuple(int(v) for v in x.shape)


def _optional(array):
    return null_pointer() if array is None else contiguous(array)


def batch_norm_statistics(x, eps):
    cupy = import_cupy("batch_norm_statistics")
    shapes = shape_text(x)
    suffix = dtype_suffix("batch_norm_statistics", x)
    n, c, length = _ncl("batch_norm_statistics", x, shapes)
    check_size("batch_norm_statistics", shapes, x.size)
    x = contiguous(x)
    mean, var, invstd = (cupy.empty((c,), dtype=x.dtype) for _ in range(3))
    launch("batch_norm_statistics", suffix, (c,),
            (x, mean, var, invstd, long_long(n), long_long(c), long_long(length), np.float64(eps)), shapes)
    return mean, var, invstd


def batch_norm_invstd(var, eps):
    cupy = import_cupy("batch_norm_invstd")
    shapes = shape_text(var)
    suffix = dtype_suffix("batch_norm_invstd", var)
    var = contiguous(var)
    invstd = cupy.empty_like(var)
    launch("batch_norm_invstd", suffix, (var.size,), (var, invstd, long_long(var.size), np.float64(eps)), shapes)
    return invstd


def batch_norm_forward(x, mean, invstd, weight, bias):
    cupy = import_cupy("batch_norm_forward")
    shapes = shape_text(x, mean, invstd, weight, bias)
    n, c, length = _ncl("batch_norm_forward", x, shapes)
    suffix = dtype_suffix("batch_norm_forward", x, mean, invstd, *(a for a in (weight, bias) if a is not None))
    check_size("batch_norm_forward", shapes, x.size)
    x = contiguous(x)
    y = cupy.empty_like(x)
    launch("batch_norm_forward", suffix, (x.size,),
            (x, contiguous(mean), contiguous(invstd), _optional(weight), _optional(bias), y,
             long_long(n), long_long(c), long_long(length)), shapes)
    return y


def batch_norm_backward(gy, x, mean, invstd, weight, batch_statistics, need_input_grad=True):
    cupy = import_cupy("batch_norm_backward")
    shapes = shape_text(gy, x, mean, invstd, weight)
    n, c, length = _ncl("batch_norm_backward", x, shapes)
    if gy.shape != x.shape:
        raise ValueError(f"batch_norm_backward: gradient and input shapes differ: {shapes}")
    suffix = dtype_suffix("batch_norm_backward", gy, x, mean, invstd, *(a for a in (weight,) if a is not None))
    check_size("batch_norm_backward", shapes, x.size)
    gy, x, mean, invstd = (contiguous(a) for a in (gy, x, mean, invstd))
    grad_weight, grad_bias = cupy.empty((c,), dtype=x.dtype), cupy.empty((c,), dtype=x.dtype)
    sizes = (long_long(n), long_long(c), long_long(length))
    launch("batch_norm_backward_reduce", suffix, (c,), (gy, x, mean, invstd, grad_weight, grad_bias, *sizes),
            shapes)
    if not need_input_grad:
        return None, grad_weight, grad_bias
    grad_x = cupy.empty_like(x)
    launch("batch_norm_backward_input", suffix, (x.size,),
            (gy, x, mean, invstd, _optional(weight), grad_weight, grad_bias, grad_x, *sizes,
             np.int32(bool(batch_statistics))), shapes)
    return grad_x, grad_weight, grad_bias


def batch_norm_update_running_stats(running_mean, running_var, mean, var, count, momentum):
    """In place, like the NumPy kernel: the running arrays must be contiguous (a module's buffers are)."""
    shapes = shape_text(running_mean, running_var, mean, var)
    if running_mean is None and running_var is None:
        return
    for array in (running_mean, running_var):
        if array is not None and not array.flags.c_contiguous:
            raise ValueError(f"batch_norm_update_running_stats: running statistics must be contiguous to be "
                             f"updated in place, got {shapes}")
    present = [a for a in (running_mean, running_var) if a is not None]
    suffix = dtype_suffix("batch_norm_update_running_stats", *present, mean, var)
    channels = present[0].size
    launch("batch_norm_update_running_stats", suffix, (channels,),
            (_optional(running_mean), _optional(running_var), contiguous(mean), contiguous(var), long_long(channels),
             np.float64(count), np.float64(momentum)), shapes)


# --- local response norm: x viewed as (N, C, S) --------------------------------
def local_response_norm_forward(x, size, alpha, beta, k):
    cupy = import_cupy("local_response_norm_forward")
    shapes = shape_text(x)
    suffix = dtype_suffix("local_response_norm_forward", x)
    if x.ndim < 3:
        raise ValueError(f"local_response_norm_forward: expected (N, C, ...) with at least 3 dims, got {shapes}")
    check_size("local_response_norm_forward", shapes, x.size, int32=[("size", size)])
    n, c = x.shape[:2]
    spatial = x.size // max(n * c, 1)
    x = contiguous(x)
    y, scale = cupy.empty_like(x), cupy.empty_like(x)
    launch("local_response_norm_forward", suffix, (x.size,),
            (x, y, scale, long_long(n), long_long(c), long_long(spatial), np.int32(size), np.float64(alpha), np.float64(beta),
             np.float64(k)), shapes)
    return y, scale


def local_response_norm_backward(gy, x, y, scale, size, alpha, beta):
    cupy = import_cupy("local_response_norm_backward")
    shapes = shape_text(gy, x, y, scale)
    suffix = dtype_suffix("local_response_norm_backward", gy, x, y, scale)
    if not gy.shape == x.shape == y.shape == scale.shape or x.ndim < 3:
        raise ValueError(f"local_response_norm_backward: expected four (N, C, ...) arrays of one shape, got {shapes}")
    check_size("local_response_norm_backward", shapes, x.size, int32=[("size", size)])
    n, c = x.shape[:2]
    spatial = x.size // max(n * c, 1)
    gy, x, y, scale = (contiguous(a) for a in (gy, x, y, scale))
    grad_x = cupy.empty_like(x)
    launch("local_response_norm_backward", suffix, (x.size,),
            (gy, x, y, scale, grad_x, long_long(n), long_long(c), long_long(spatial), np.int32(size), np.float64(alpha),
             np.float64(beta)), shapes)
    return grad_x


# --- softmax family: rows along one axis, one warp per row ---------------------
def _outer_classes_inner(op, shape, axis):
    ndim = len(shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for shape {tuple(shape)}")
    axis %= ndim
    return math.prod(shape[:axis]), int(shape[axis]), math.prod(shape[axis + 1:])


def _softmax_like(op, x, axis):
    cupy = import_cupy(op)
    shapes = shape_text(x) + f", axis={axis}"
    suffix = dtype_suffix(op, x)
    outer, classes, inner = _outer_classes_inner(op, x.shape, axis)
    check_size(op, shapes, x.size)
    x = contiguous(x)
    y = cupy.empty_like(x)
    launch(op, suffix, (outer * inner,), (x, y, long_long(outer), long_long(classes), long_long(inner)), shapes)
    return y


def _softmax_like_backward(op, gy, y, axis):
    cupy = import_cupy(op)
    shapes = shape_text(gy, y) + f", axis={axis}"
    if gy.shape != y.shape:
        raise ValueError(f"{op}: gradient and output shapes differ: {shapes}")
    suffix = dtype_suffix(op, gy, y)
    outer, classes, inner = _outer_classes_inner(op, y.shape, axis)
    check_size(op, shapes, y.size)
    gy, y = contiguous(gy), contiguous(y)
    gx = cupy.empty_like(y)
    launch(op, suffix, (outer * inner,), (gy, y, gx, long_long(outer), long_long(classes), long_long(inner)), shapes)
    return gx


def softmax_forward(x, axis):
    return _softmax_like("softmax_forward", x, axis)


def softmax_backward(gy, y, axis):
    return _softmax_like_backward("softmax_backward", gy, y, axis)


def log_softmax_forward(x, axis):
    return _softmax_like("log_softmax_forward", x, axis)


def log_softmax_backward(gy, y, axis):
    return _softmax_like_backward("log_softmax_backward", gy, y, axis)


def _cross_entropy_sizes(op, logits_shape, target, weight, shapes):
    if len(logits_shape) < 2 or tuple(target.shape) != (logits_shape[0], *logits_shape[2:]):
        raise ValueError(f"{op}: expected logits (N, C, *rest) and target (N, *rest), got {shapes}")
    if weight is not None and tuple(weight.shape) != (logits_shape[1],):
        raise ValueError(f"{op}: class weights must have shape (C,), got {shapes}")
    return int(logits_shape[0]), int(logits_shape[1]), math.prod(logits_shape[2:])


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    cupy = import_cupy("cross_entropy_forward")
    shapes = shape_text(logits, target, weight)
    suffix = dtype_suffix("cross_entropy_forward", logits, *(a for a in (weight,) if a is not None))
    batch, classes, inner = _cross_entropy_sizes("cross_entropy_forward", logits.shape, target, weight, shapes)
    check_size("cross_entropy_forward", shapes, logits.size)
    logits, target = contiguous(logits), contiguous(target.astype(np.int64, copy=False))
    log_probs = cupy.empty_like(logits)
    losses = cupy.empty(target.shape, dtype=logits.dtype)
    target_weights = cupy.empty(target.shape, dtype=logits.dtype)
    launch("cross_entropy_forward", suffix, (batch * inner,),
            (logits, target, _optional(weight), log_probs, losses, target_weights, long_long(batch), long_long(classes),
             long_long(inner), long_long(ignore_index), np.float64(label_smoothing)), shapes)
    return losses, log_probs, target_weights


def cross_entropy_backward(grad_losses, log_probs, target, weight, ignore_index, label_smoothing):
    cupy = import_cupy("cross_entropy_backward")
    shapes = shape_text(grad_losses, log_probs, target, weight)
    suffix = dtype_suffix("cross_entropy_backward", grad_losses, log_probs, *(a for a in (weight,) if a is not None))
    batch, classes, inner = _cross_entropy_sizes("cross_entropy_backward", log_probs.shape, target, weight, shapes)
    if grad_losses.shape != target.shape:
        raise ValueError(f"cross_entropy_backward: grad_losses must have the target's shape, got {shapes}")
    check_size("cross_entropy_backward", shapes, log_probs.size)
    grad_losses, log_probs = contiguous(grad_losses), contiguous(log_probs)
    target = contiguous(target.astype(np.int64, copy=False))
    grad_logits = cupy.empty_like(log_probs)
    launch("cross_entropy_backward", suffix, (batch * inner,),
            (grad_losses, log_probs, target, _optional(weight), grad_logits, long_long(batch), long_long(classes),
             long_long(inner), long_long(ignore_index), np.float64(label_smoothing)), shapes)
    return grad_logits


# --- dropout: Philox masks, bit-identical to the CPU's --------------------------
philox4x32 = _cpu_random.philox4x32  # host-side reference generator (NumPy arrays in and out)
uniform_from_counter = _cpu_random.uniform_from_counter


def dropout_mask(shape, p, seed, offset, dtype):
    """Inverted-dropout mask on the GPU: element i keeps when Philox(offset + i, seed) ≥ p, as on the CPU.

    The keep test runs in integers: (bits >> 8) · 2^-24 ≥ p exactly when
    bits >> 8 ≥ ceil(p · 2^24), a threshold computed once here (p · 2^24 is
    exact in double), so no float rounding can separate the GPU mask from the CPU's.
    """
    cupy = import_cupy("dropout_mask")
    dtype = np.dtype(dtype)
    suffix = dtype_suffix("dropout_mask", np.empty(0, dtype=dtype))
    shapes = f"shape={tuple(shape)}, p={p}"
    count = math.prod(shape)
    check_size("dropout_mask", shapes, count)
    if not 0 <= p < 1:
        raise ValueError(f"dropout_mask: p must be in [0, 1), got {p}")
    keep_threshold = math.ceil(p * 2**24)
    scale = dtype.type(1.0 / (1.0 - p))
    mask = cupy.empty(tuple(shape), dtype=dtype)
    launch("dropout_mask", suffix, (count,),
            (mask, long_long(count), np.uint64(int(seed) % 2**64), np.uint64(int(offset) % 2**64),
             np.uint32(keep_threshold), scale), shapes)
    return mask


# --- im2col / col2im and depthwise convolution ------------------------------------
def _geometry(kernel_size, stride, padding, dilation):
    return tuple(long_long(v) for v in (*kernel_size, *stride, *padding, *dilation))


def im2col(x, kernel_size, stride, padding, dilation, out_size, pad_value=0.0):
    """cols (C, KH, KW, N, OH, OW), one thread per column entry."""
    cupy = import_cupy("im2col")
    shapes = shape_text(x) + f", kernel_size={tuple(kernel_size)}, out_size={tuple(out_size)}"
    suffix = dtype_suffix("im2col", x)
    n, c, h, w, oh, ow = _pool_shapes(x.shape, out_size)
    kh, kw = (int(v) for v in kernel_size)
    total = c * kh * kw * n * oh * ow
    check_size("im2col", shapes, x.size, total)
    x = contiguous(x)
    cols = cupy.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    launch("im2col", suffix, (total,),
            (x, cols, *map(long_long, (n, c, h, w, oh, ow)), *_geometry(kernel_size, stride, padding, dilation),
             x.dtype.type(pad_value)), shapes)
    return cols


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """(N, C, H, W): each input pixel gathers the column entries that read it (no atomics)."""
    cupy = import_cupy("col2im")
    shapes = shape_text(cols) + f", x_shape={tuple(x_shape)}"
    suffix = dtype_suffix("col2im", cols)
    if cols.ndim != 6 or tuple(cols.shape[1:3]) != tuple(kernel_size):
        raise ValueError(f"col2im: expected cols (C, KH, KW, N, OH, OW) for kernel {tuple(kernel_size)}, "
                         f"got {shapes}")
    n, c, h, w, oh, ow = _pool_shapes(x_shape, cols.shape[4:])
    check_size("col2im", shapes, cols.size, n * c * h * w)
    cols = contiguous(cols)  # a broadcast view (avg-pool backward) becomes a real buffer here
    x = cupy.empty((n, c, h, w), dtype=cols.dtype)
    launch("col2im", suffix, (x.size,),
            (cols, x, *map(long_long, (n, c, h, w, oh, ow)), *_geometry(kernel_size, stride, padding, dilation)),
            shapes)
    return x


def _depthwise_arguments(x_shape, weight, stride, padding, dilation, out_size):
    n, c, h, w, oh, ow = _pool_shapes(x_shape, out_size)
    return (*map(long_long, (n, c, h, w, oh, ow)), *_geometry(weight.shape[2:], stride, padding, dilation))


def _check_depthwise(op, x_shape, weight, shapes):
    if len(x_shape) != 4 or weight.ndim != 4 or weight.shape[:2] != (x_shape[1], 1):
        raise ValueError(f"{op}: expected x (N, C, H, W) and weight (C, 1, KH, KW), got {shapes}")


def depthwise_conv2d_forward(x, weight, stride, padding, dilation, out_size):
    cupy = import_cupy("depthwise_conv2d_forward")
    shapes = shape_text(x, weight)
    _check_depthwise("depthwise_conv2d_forward", x.shape, weight, shapes)
    suffix = dtype_suffix("depthwise_conv2d_forward", x, weight)
    n, c = x.shape[:2]
    check_size("depthwise_conv2d_forward", shapes, x.size, n * c * out_size[0] * out_size[1])
    x, weight = contiguous(x), contiguous(weight)
    y = cupy.empty((n, c, *out_size), dtype=x.dtype)
    launch("depthwise_conv2d_forward", suffix, (y.size,),
            (x, weight, y, *_depthwise_arguments(x.shape, weight, stride, padding, dilation, out_size)), shapes)
    return y


def depthwise_conv2d_backward(gy, x, weight, stride, padding, dilation, need_x=True, need_weight=True):
    cupy = import_cupy("depthwise_conv2d_backward")
    shapes = shape_text(gy, x, weight)
    _check_depthwise("depthwise_conv2d_backward", x.shape, weight, shapes)
    suffix = dtype_suffix("depthwise_conv2d_backward", gy, x, weight)
    check_size("depthwise_conv2d_backward", shapes, x.size, gy.size)
    gy, x, weight = contiguous(gy), contiguous(x), contiguous(weight)
    arguments = _depthwise_arguments(x.shape, weight, stride, padding, dilation, gy.shape[2:])
    grad_x = grad_weight = None
    if need_x:
        grad_x = cupy.empty_like(x)
        launch("depthwise_conv2d_backward_input", suffix, (grad_x.size,), (gy, weight, grad_x, *arguments), shapes)
    if need_weight:
        grad_weight = cupy.empty_like(weight)
        launch("depthwise_conv2d_backward_weight", suffix, (grad_weight.size,), (gy, x, grad_weight, *arguments),
                shapes)
    return grad_x, grad_weight
