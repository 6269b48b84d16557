"""The differentiable operations under PyTorch's names and argument order.

``import minicnn.nn.functional as F`` and write ``F.conv2d(x, w, padding=1)``
as with ``torch.nn.functional``.  Each name points at the function in
``minicnn.functions`` where its forward and backward stand side by side.
``conv2d_naive`` is the exception: conv2d's definition in plain loops, forward
only, to read and to test against.
"""
from minicnn.functions.activation import hardsigmoid, hardswish, leaky_relu, relu, relu6, sigmoid, tanh
from minicnn.functions.conv import conv2d
from minicnn.functions.conv_naive import conv2d_naive
from minicnn.functions.dropout import dropout
from minicnn.functions.linear import linear
from minicnn.functions.loss import cross_entropy, cross_entropy_of_heads, log_softmax, mse_loss, softmax
from minicnn.functions.normalization import batch_norm, local_response_norm
from minicnn.functions.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from minicnn.functions.shape import cat, flatten

__all__ = [
    "conv2d", "conv2d_naive", "linear", "dropout", "cat", "flatten",
    "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "hardswish", "hardsigmoid",
    "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "batch_norm", "local_response_norm",
    "softmax", "log_softmax", "cross_entropy", "cross_entropy_of_heads", "mse_loss",
]
