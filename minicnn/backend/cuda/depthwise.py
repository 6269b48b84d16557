"""Direct depthwise convolution on the GPU (kernels/depthwise.cu): each channel with its own KH×KW filter.

The backward launches one kernel for the input gradient and one for the weight
gradient, each skipped when that gradient is not needed.
"""
from minicnn.backend.cuda.im2col import _geometry  # (KH, KW, SH, SW, PH, PW, DH, DW) as long longs
from minicnn.backend.cuda.pooling import _pool_shapes  # (N, C, H, W, OH, OW) as ints
from minicnn.backend.cuda.runtime import (
    check_size,
    contiguous,
    dtype_suffix,
    import_cupy,
    launch,
    long_long,
    shape_text,
)

__all__ = ["depthwise_conv2d_forward", "depthwise_conv2d_backward"]


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
