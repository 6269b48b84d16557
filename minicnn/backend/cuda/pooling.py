"""Pooling kernels on the GPU (kernels/pooling.cu): max, average and adaptive average over (N, C, H, W).

``max_pool2d_input_indices`` has no kernel of its own: it is index arithmetic,
and the NumPy reference (written with ``xp = get_array_module(x)``) runs on CuPy
arrays unchanged.
"""
import numpy as np

from minicnn.backend.cpu import pooling as _cpu_pooling
from minicnn.backend.cuda.runtime import (
    check_size,
    contiguous,
    dtype_suffix,
    import_cupy,
    launch,
    long_long,
    shape_text,
)

__all__ = [
    "max_pool2d_forward", "max_pool2d_backward", "max_pool2d_input_indices",
    "avg_pool2d_forward", "avg_pool2d_backward",
    "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
]


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
