"""Activation kernels on the GPU (kernels/activation.cu): forward(x) and backward(grad_output, saved).

Every activation is one elementwise kernel pair, one thread per element, so two
helpers launch them and each public function names its kernel (and passes its
hyperparameter, such as leaky ReLU's negative slope, as the kernel's T).
"""
from minicnn.backend.cuda.runtime import KernelCall

__all__ = [
    "relu_forward", "relu_backward", "relu6_forward", "relu6_backward",
    "leaky_relu_forward", "leaky_relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward", "hardswish_forward", "hardswish_backward",
    "hardsigmoid_forward", "hardsigmoid_backward",
]


def _forward(kernel, x, *hyperparameters):
    """y = f(x): kernel(x, y, n, *hyperparameters)."""
    call = KernelCall(kernel, x)
    y = call.empty(x.shape)
    call.launch(x.size, x, y, x.size, *map(call.scalar, hyperparameters))
    return y


def _backward(kernel, gy, saved, *hyperparameters):
    """gx = gy · f'(saved), saved being x or y: kernel(gy, saved, gx, n, *hyperparameters)."""
    call = KernelCall(kernel, gy, saved)
    if gy.shape != saved.shape:
        raise ValueError(f"{kernel}: the gradient and the saved tensor must have one shape, "
                         f"got {call.shapes}")
    gx = call.empty(gy.shape)
    call.launch(gy.size, gy, saved, gx, gy.size, *map(call.scalar, hyperparameters))
    return gx


def relu_forward(x):
    return _forward("relu_forward", x)


def relu_backward(gy, x):
    return _backward("relu_backward", gy, x)


def relu6_forward(x):
    return _forward("relu6_forward", x)


def relu6_backward(gy, x):
    return _backward("relu6_backward", gy, x)


def leaky_relu_forward(x, negative_slope):
    return _forward("leaky_relu_forward", x, negative_slope)


def leaky_relu_backward(gy, x, negative_slope):
    return _backward("leaky_relu_backward", gy, x, negative_slope)


def sigmoid_forward(x):
    return _forward("sigmoid_forward", x)


def sigmoid_backward(gy, y):
    return _backward("sigmoid_backward", gy, y)


def tanh_forward(x):
    return _forward("tanh_forward", x)


def tanh_backward(gy, y):
    return _backward("tanh_backward", gy, y)


def hardsigmoid_forward(x):
    return _forward("hardsigmoid_forward", x)


def hardsigmoid_backward(gy, x):
    return _backward("hardsigmoid_backward", gy, x)


def hardswish_forward(x):
    return _forward("hardswish_forward", x)


def hardswish_backward(gy, x):
    return _backward("hardswish_backward", gy, x)
