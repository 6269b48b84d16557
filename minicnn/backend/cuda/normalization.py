"""Normalisation kernels on the GPU (kernels/batchnorm.cu, lrn.cu): batch norm and local response norm.

Batch norm works on x viewed as (N, C, L), as the NumPy kernels do; local
response norm on x viewed as (N, C, S), S the product of the spatial sizes.
An absent affine weight or bias (None) reaches the kernels as a null pointer.
"""
import numpy as np

from minicnn.backend.cuda.runtime import KernelCall

__all__ = [
    "batch_norm_statistics", "batch_norm_invstd", "batch_norm_forward", "batch_norm_backward",
    "batch_norm_update_running_stats", "local_response_norm_forward", "local_response_norm_backward",
]


# --- batch norm: x viewed as (N, C, L) -----------------------------------------
def _ncl(op, x, shapes):
    if x.ndim != 3:
        raise ValueError(f"{op}: expected x viewed as (N, C, L), got {shapes}")
    return tuple(int(v) for v in x.shape)


def batch_norm_statistics(x, eps):
    call = KernelCall("batch_norm_statistics", x)
    n, c, length = _ncl("batch_norm_statistics", x, call.shapes)
    mean, var, invstd = call.empty((c,)), call.empty((c,)), call.empty((c,))
    call.launch(c, x, mean, var, invstd, n, c, length, np.float64(eps))
    return mean, var, invstd


def batch_norm_invstd(var, eps):
    call = KernelCall("batch_norm_invstd", var)
    invstd = call.empty(var.shape)
    call.launch(var.size, var, invstd, var.size, np.float64(eps))
    return invstd


def batch_norm_forward(x, mean, invstd, weight, bias):
    call = KernelCall("batch_norm_forward", x, mean, invstd, weight, bias)
    n, c, length = _ncl("batch_norm_forward", x, call.shapes)
    y = call.empty(x.shape)
    call.launch(x.size, x, mean, invstd, weight, bias, y, n, c, length)
    return y


def batch_norm_backward(gy, x, mean, invstd, weight, batch_statistics, need_input_grad=True):
    call = KernelCall("batch_norm_backward", gy, x, mean, invstd, weight)
    n, c, length = _ncl("batch_norm_backward", x, call.shapes)
    if gy.shape != x.shape:
        raise ValueError(f"batch_norm_backward: gradient and input shapes differ: {call.shapes}")
    grad_weight, grad_bias = call.empty((c,)), call.empty((c,))
    call.launch(c, gy, x, mean, invstd, grad_weight, grad_bias, n, c, length,
                kernel="batch_norm_backward_reduce")
    if not need_input_grad:
        return None, grad_weight, grad_bias
    grad_x = call.empty(x.shape)
    call.launch(x.size, gy, x, mean, invstd, weight, grad_weight, grad_bias, grad_x, n, c, length,
                np.int32(bool(batch_statistics)), kernel="batch_norm_backward_input")
    return grad_x, grad_weight, grad_bias


def batch_norm_update_running_stats(running_mean, running_var, mean, var, count, momentum):
    """In place, like the NumPy kernel: the running arrays must be contiguous (a module's buffers are)."""
    if running_mean is None and running_var is None:
        return
    call = KernelCall("batch_norm_update_running_stats", running_mean, running_var, mean, var)
    for array in (running_mean, running_var):
        if array is not None and not array.flags.c_contiguous:
            raise ValueError(f"batch_norm_update_running_stats: running statistics must be contiguous to be "
                             f"updated in place, got {call.shapes}")
    channels = (running_mean if running_mean is not None else running_var).size
    call.launch(channels, running_mean, running_var, mean, var, channels, np.float64(count),
                np.float64(momentum))


# --- local response norm: x viewed as (N, C, S) --------------------------------
def local_response_norm_forward(x, size, alpha, beta, k):
    call = KernelCall("local_response_norm_forward", x)
    if x.ndim < 3:
        raise ValueError(f"local_response_norm_forward: expected (N, C, ...) with at least 3 dims, "
                         f"got {call.shapes}")
    call.check_int32("size", size)
    n, c = x.shape[:2]
    spatial = x.size // max(n * c, 1)
    y, scale = call.empty(x.shape), call.empty(x.shape)
    call.launch(x.size, x, y, scale, n, c, spatial, np.int32(size), np.float64(alpha), np.float64(beta),
                np.float64(k))
    return y, scale


def local_response_norm_backward(gy, x, y, scale, size, alpha, beta):
    call = KernelCall("local_response_norm_backward", gy, x, y, scale)
    if not gy.shape == x.shape == y.shape == scale.shape or x.ndim < 3:
        raise ValueError(f"local_response_norm_backward: expected four (N, C, ...) arrays of one shape, "
                         f"got {call.shapes}")
    call.check_int32("size", size)
    n, c = x.shape[:2]
    spatial = x.size // max(n * c, 1)
    grad_x = call.empty(x.shape)
    call.launch(x.size, gy, x, y, scale, grad_x, n, c, spatial, np.int32(size), np.float64(alpha),
                np.float64(beta))
    return grad_x
