"""Activation kernels on the GPU (kernels/activation.cu): forward(x) and backward(grad_output, saved).

Every activation is one elementwise kernel pair, so two helpers do the checking,
allocating and launching and each public function only names its kernel (and
passes its hyperparameter, such as leaky ReLU's negative slope).
"""
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
    "relu_forward", "relu_backward", "relu6_forward", "relu6_backward",
    "leaky_relu_forward", "leaky_relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward", "hardswish_forward", "hardswish_backward",
    "hardsigmoid_forward", "hardsigmoid_backward",
]


# --- activations: one thread per element --------------------------------------
def _activation_forward(name, x, *hyper):
    cupy = import_cupy(f"{name}_forward")
    op = f"{name}_forward"
    suffix = dtype_suffix(op, x)
    check_size(op, shape_text(x), x.size)
    x = contiguous(x)
    y = cupy.empty_like(x)
    launch(op, suffix, (x.size,), (x, y, long_long(x.size), *(x.dtype.type(h) for h in hyper)), shape_text(x))
    return y


def _activation_backward(name, gy, saved, *hyper):
    cupy = import_cupy(f"{name}_backward")
    op = f"{name}_backward"
    shapes = shape_text(gy, saved)
    if gy.shape != saved.shape:
        raise ValueError(f"{op}: the gradient and the saved tensor must have one shape, got {shapes}")
    suffix = dtype_suffix(op, gy, saved)
    check_size(op, shapes, gy.size)
    gy, saved = contiguous(gy), contiguous(saved)
    gx = cupy.empty_like(gy)
    launch(op, suffix, (gy.size,), (gy, saved, gx, long_long(gy.size), *(gy.dtype.type(h) for h in hyper)), shapes)
    return gx


def relu_forward(x):
    return _activation_forward("relu", x)


def relu_backward(gy, x):
    return _activation_backward("relu", gy, x)


def relu6_forward(x):
    return _activation_forward("relu6", x)


def relu6_backward(gy, x):
    return _activation_backward("relu6", gy, x)


def leaky_relu_forward(x, negative_slope):
    return _activation_forward("leaky_relu", x, negative_slope)


def leaky_relu_backward(gy, x, negative_slope):
    return _activation_backward("leaky_relu", gy, x, negative_slope)


def sigmoid_forward(x):
    return _activation_forward("sigmoid", x)


def sigmoid_backward(gy, y):
    return _activation_backward("sigmoid", gy, y)


def tanh_forward(x):
    return _activation_forward("tanh", x)


def tanh_backward(gy, y):
    return _activation_backward("tanh", gy, y)


def hardsigmoid_forward(x):
    return _activation_forward("hardsigmoid", x)


def hardsigmoid_backward(gy, x):
    return _activation_backward("hardsigmoid", gy, x)


def hardswish_forward(x):
    return _activation_forward("hardswish", x)


def hardswish_backward(gy, x):
    return _activation_backward("hardswish", gy, x)
