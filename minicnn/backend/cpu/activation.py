"""Activation kernels: forward(x) and backward(grad_output, x) for the ReLU family and friends.

Each backward multiplies the incoming gradient by the derivative at x, using
PyTorch's conventions at the kinks (derivative 0 at x = 0 for ReLU).
"""
import numpy as np

from minicnn.device import get_array_module

__all__ = [
    "relu_forward", "relu_backward", "relu6_forward", "relu6_backward",
    "leaky_relu_forward", "leaky_relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward", "hardswish_forward", "hardswish_backward",
    "hardsigmoid_forward", "hardsigmoid_backward",
]


def _xp(x):
    return get_array_module(x)


def relu_forward(x):
    return _xp(x).maximum(x, 0)


def relu_backward(gy, x):
    return gy * (x > 0)


def relu6_forward(x):
    return _xp(x).clip(x, 0, 6)


def relu6_backward(gy, x):
    return gy * ((x > 0) & (x < 6))


def leaky_relu_forward(x, negative_slope):
    return _xp(x).where(x > 0, x, x * x.dtype.type(negative_slope))


def leaky_relu_backward(gy, x, negative_slope):
    return _xp(x).where(x > 0, gy, gy * gy.dtype.type(negative_slope))


def sigmoid_forward(x):
    # 1/(1+e^-x) overflows for large negative x; the tanh form never does.
    half = x.dtype.type(0.5)
    return half * (1 + _xp(x).tanh(half * x))


def sigmoid_backward(gy, y):
    """Takes the output y: σ'(x) = σ(x)(1 − σ(x))."""
    return gy * y * (1 - y)


def tanh_forward(x):
    return _xp(x).tanh(x)


def tanh_backward(gy, y):
    """Takes the output y: tanh'(x) = 1 − tanh²(x)."""
    return gy * (1 - y * y)


def hardsigmoid_forward(x):
    """relu6(x + 3) / 6, PyTorch's (and MobileNetV3's) piecewise-linear sigmoid."""
    return _xp(x).clip(x + 3, 0, 6) / x.dtype.type(6)


def hardsigmoid_backward(gy, x):
    return gy * ((x > -3) & (x < 3)) / gy.dtype.type(6)


def hardswish_forward(x):
    """x · relu6(x + 3) / 6."""
    return x * hardsigmoid_forward(x)


def hardswish_backward(gy, x):
    # PyTorch's derivative: 0 below −3, x/3 + 1/2 on [−3, 3], 1 above 3.
    xp = _xp(x)
    middle = gy * (x / x.dtype.type(3) + x.dtype.type(0.5))
    return xp.where(x < -3, np.zeros((), dtype=gy.dtype), xp.where(x <= 3, middle, gy))
