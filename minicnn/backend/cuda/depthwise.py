"""Direct depthwise convolution on the GPU (kernels/depthwise.cu): each channel with its own KH×KW filter.

The backward launches one kernel for the input gradient and one for the weight
gradient, each skipped when that gradient is not needed.  Every kernel takes
the same sizes after its arrays: (N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW).
"""
from minicnn.backend.cuda.runtime import KernelCall, nchw_sizes, window

__all__ = ["depthwise_conv2d_forward", "depthwise_conv2d_backward"]


def _sizes(x_shape, weight, stride, padding, dilation, out_size):
    return (*nchw_sizes(x_shape, out_size), *window(weight.shape[2:], stride, padding, dilation))


def _check_depthwise(op, x_shape, weight, shapes):
    if len(x_shape) != 4 or weight.ndim != 4 or weight.shape[:2] != (x_shape[1], 1):
        raise ValueError(f"{op}: expected x (N, C, H, W) and weight (C, 1, KH, KW), got {shapes}")


def depthwise_conv2d_forward(x, weight, stride, padding, dilation, out_size):
    call = KernelCall("depthwise_conv2d_forward", x, weight)
    _check_depthwise("depthwise_conv2d_forward", x.shape, weight, call.shapes)
    y = call.empty((*x.shape[:2], *out_size))
    call.launch(y.size, x, weight, y, *_sizes(x.shape, weight, stride, padding, dilation, out_size))
    return y


def depthwise_conv2d_backward(gy, x, weight, stride, padding, dilation, need_x=True, need_weight=True):
    call = KernelCall("depthwise_conv2d_backward", gy, x, weight)
    _check_depthwise("depthwise_conv2d_backward", x.shape, weight, call.shapes)
    sizes = _sizes(x.shape, weight, stride, padding, dilation, gy.shape[2:])
    grad_x = grad_weight = None
    if need_x:
        grad_x = call.empty(x.shape)
        call.launch(grad_x.size, gy, weight, grad_x, *sizes, kernel="depthwise_conv2d_backward_input")
    if need_weight:
        grad_weight = call.empty(weight.shape)
        call.launch(grad_weight.size, gy, x, grad_weight, *sizes, kernel="depthwise_conv2d_backward_weight")
    return grad_x, grad_weight
