"""Which convolution algorithm the GPU runs: im2col + GEMM, or the direct depthwise kernel.

The CPU's selection point (minicnn/backend/cpu/conv_algorithm.py) has a third
algorithm, Winograd F(2×2, 3×3), written in NumPy; the GPU has no Winograd kernel,
so here the answer depends only on whether the layer is depthwise.
"""
from minicnn.shapes import is_depthwise

__all__ = ["conv2d_algorithm"]


def conv2d_algorithm(x_shape, weight_shape, stride, dilation, groups):
    """"direct" for depthwise conv (groups == channels, one filter each), else "im2col"."""
    return "direct" if is_depthwise(x_shape[1], weight_shape[0], groups) else "im2col"
