"""Bias add and its gradient on the GPU (kernels/bias.cu).

Both kernels see the array as (outer, C, inner) around the channel axis, so one
kernel serves conv's (OC, N, OH, OW), depthwise's (N, C, H, W) and linear's (..., F).
"""
import math

from minicnn.backend.cuda.runtime import (
    check_size,
    contiguous,
    dtype_suffix,
    import_cupy,
    launch,
    long_long,
    shape_text,
)

__all__ = ["bias_add", "channel_sum"]


def _outer_channels_inner(shape, axis):
    axis %= len(shape)
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def bias_add(y, bias, axis):
    """y += bias along ``axis``, in place when y is contiguous (the kernel may write over its input); returns y."""
    import_cupy("bias_add")
    shapes = shape_text(y, bias)
    outer, channels, inner = _outer_channels_inner(y.shape, axis)
    if bias.shape != (channels,):
        raise ValueError(f"bias_add: bias must have shape ({channels},) for axis {axis}, got {shapes}")
    suffix = dtype_suffix("bias_add", y, bias)
    check_size("bias_add", shapes, y.size)
    y, bias = contiguous(y), contiguous(bias)
    launch("bias_add", suffix, (y.size,),
           (y, bias, y, long_long(outer), long_long(channels), long_long(inner)), shapes)
    return y


def channel_sum(gy, axis):
    """Σ gy over every axis but ``axis``: one block per channel, a fixed summation order (no atomics)."""
    cupy = import_cupy("channel_sum")
    shapes = shape_text(gy)
    outer, channels, inner = _outer_channels_inner(gy.shape, axis)
    suffix = dtype_suffix("channel_sum", gy)
    check_size("channel_sum", shapes, gy.size)
    gy = contiguous(gy)
    out = cupy.empty((channels,), dtype=gy.dtype)
    launch("channel_sum", suffix, (channels,),
           (gy, out, long_long(outer), long_long(channels), long_long(inner)), shapes)
    return out
