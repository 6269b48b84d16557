"""Normalisation kernels on the GPU (kernels/batchnorm.cu, lrn.cu): batch norm and local response norm.

Batch norm works on x viewed as (N, C, L), as the NumPy kernels do; local
response norm on x viewed as (N, C, S), S the product of the spatial sizes.
"""
import numpy as np

from minicnn.backend.cuda.runtime import (
    check_size,
    contiguous,
    dtype_suffix,
    import_cupy,
    launch,
    long_long,
    null_pointer,
    shape_text,
)

__all__ = [
    "batch_norm_statistics", "batch_norm_invstd", "batch_norm_forward", "batch_norm_backward",
    "batch_norm_update_running_stats", "local_response_norm_forward", "local_response_norm_backward",
]


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
