"""Bias add and its gradient on the GPU (kernels/bias.cu).

Both kernels see the array as (outer, C, inner) around the channel axis, so one
kernel serves conv's (OC, N, OH, OW), depthwise's (N, C, H, W) and linear's (..., F).
"""
import math

from minicnn.backend.cuda.runtime import KernelCall, contiguous

__all__ = ["bias_add", "channel_sum"]


def _outer_channels_inner(shape, axis):
    axis %= len(shape)
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def bias_add(y, bias, axis):
    """y += bias along ``axis``, in place when y is contiguous (the kernel may write over its input); returns y."""
    call = KernelCall("bias_add", y, bias)
    outer, channels, inner = _outer_channels_inner(y.shape, axis)
    if bias.shape != (channels,):
        raise ValueError(f"bias_add: bias must have shape ({channels},) for axis {axis}, got {call.shapes}")
    y = contiguous(y)  # once, here: the kernel reads and writes this one buffer
    call.launch(y.size, y, bias, y, outer, channels, inner)
    return y


def channel_sum(gy, axis):
    """Σ gy over every axis but ``axis``: one block per channel, a fixed summation order (no atomics)."""
    call = KernelCall("channel_sum", gy)
    outer, channels, inner = _outer_channels_inner(gy.shape, axis)
    out = call.empty((channels,))
    call.launch(channels, gy, out, outer, channels, inner)
    return out
