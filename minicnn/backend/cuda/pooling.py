"""Pooling kernels on the GPU (kernels/pooling.cu): max, average and adaptive average over (N, C, H, W).

One thread per element written; the backwards are gathers (each input pixel
sums over the windows that cover it), so no atomics.  Every kernel takes
(N, C, H, W, OH, OW) after its arrays, then its window (KH, KW, SH, SW, PH, PW).

``max_pool2d_input_indices`` has no kernel of its own: it is index arithmetic,
and the NumPy reference (written with ``xp = get_array_module(x)``) runs on CuPy
arrays unchanged.
"""
import numpy as np

from minicnn.backend.cpu import pooling as _cpu_pooling
from minicnn.backend.cuda.runtime import KernelCall, nchw_sizes, window

__all__ = [
    "max_pool2d_forward", "max_pool2d_backward", "max_pool2d_input_indices",
    "avg_pool2d_forward", "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
]


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, out_size):
    call = KernelCall("max_pool2d_forward", x)
    call.check_int32("KH*KW", kernel_size[0] * kernel_size[1])  # window_argmax holds a position in the window
    sizes = nchw_sizes(x.shape, out_size)
    n, c, _, _, oh, ow = sizes
    y = call.empty((n, c, oh, ow))
    window_argmax = call.empty((n, c, oh, ow), dtype=np.int32)
    call.launch(y.size, x, y, window_argmax, *sizes, *window(kernel_size, stride, padding, dilation))
    return y, window_argmax


def max_pool2d_backward(gy, window_argmax, x_shape, kernel_size, stride, padding, dilation):
    call = KernelCall("max_pool2d_backward", gy, window_argmax, dtype_of=[gy],
                      note=f"x_shape={tuple(x_shape)}")
    if window_argmax.shape != gy.shape:
        raise ValueError(f"max_pool2d_backward: window_argmax and the gradient must have one shape, "
                         f"got {call.shapes}")
    sizes = nchw_sizes(x_shape, gy.shape[2:])
    gx = call.empty(sizes[:4])
    call.launch(gx.size, gy, window_argmax.astype(np.int32, copy=False), gx, *sizes,
                *window(kernel_size, stride, padding, dilation))
    return gx


def max_pool2d_input_indices(window_argmax, x_shape, kernel_size, stride, padding, dilation):
    """Composed: index arithmetic on CuPy arrays (the NumPy reference, unchanged)."""
    return _cpu_pooling.max_pool2d_input_indices(window_argmax, x_shape, kernel_size, stride, padding, dilation)


def _divisor(call, divisor_override):
    # The kernel reads 0 as "no override"; PyTorch refuses divisor_override=0 anyway.
    return call.scalar(0 if divisor_override is None else divisor_override)


def avg_pool2d_forward(x, kernel_size, stride, padding, out_size, count_include_pad=True, divisor_override=None):
    call = KernelCall("avg_pool2d_forward", x)
    sizes = nchw_sizes(x.shape, out_size)
    n, c, _, _, oh, ow = sizes
    y = call.empty((n, c, oh, ow))
    call.launch(y.size, x, y, *sizes, *window(kernel_size, stride, padding), bool(count_include_pad),
                _divisor(call, divisor_override))
    return y


def avg_pool2d_backward(gy, x_shape, kernel_size, stride, padding, count_include_pad=True, divisor_override=None):
    call = KernelCall("avg_pool2d_backward", gy, note=f"x_shape={tuple(x_shape)}")
    sizes = nchw_sizes(x_shape, gy.shape[2:])
    gx = call.empty(sizes[:4])
    call.launch(gx.size, gy, gx, *sizes, *window(kernel_size, stride, padding), bool(count_include_pad),
                _divisor(call, divisor_override))
    return gx


def adaptive_avg_pool2d_forward(x, out_size):
    call = KernelCall("adaptive_avg_pool2d_forward", x)
    sizes = nchw_sizes(x.shape, out_size)
    n, c, _, _, oh, ow = sizes
    y = call.empty((n, c, oh, ow))
    call.launch(y.size, x, y, *sizes)
    return y


def adaptive_avg_pool2d_backward(gy, x_shape):
    call = KernelCall("adaptive_avg_pool2d_backward", gy, note=f"x_shape={tuple(x_shape)}")
    sizes = nchw_sizes(x_shape, gy.shape[2:])
    gx = call.empty(sizes[:4])
    call.launch(gx.size, gy, gx, *sizes)
    return gx
