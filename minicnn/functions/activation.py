"""Activations: relu, relu6, leaky_relu, sigmoid, tanh, hardswish, hardsigmoid.

Each Function keeps what its derivative needs (the input, or for sigmoid and
tanh the output) and calls the backend's forward/backward kernel pair.
"""
from minicnn.backend import kernels_for
from minicnn.tensor import Function, Tensor


class _InputActivation(Function):
    """An activation whose derivative is a function of the input x."""

    name = None

    def forward(self, x):
        self.x = x
        return getattr(kernels_for(x), f"{self.name}_forward")(x)

    def backward(self, gy):
        return getattr(kernels_for(gy), f"{self.name}_backward")(gy, self.x)


class _OutputActivation(Function):
    """An activation whose derivative is cheapest from the output y (sigmoid, tanh)."""

    name = None

    def forward(self, x):
        self.y = getattr(kernels_for(x), f"{self.name}_forward")(x)
        return self.y

    def backward(self, gy):
        return getattr(kernels_for(gy), f"{self.name}_backward")(gy, self.y)


class ReLU(_InputActivation):
    """max(0, x); derivative 1 for x > 0, else 0."""

    name = "relu"


class ReLU6(_InputActivation):
    """min(max(0, x), 6); MobileNet's activation, derivative 1 on (0, 6)."""

    name = "relu6"


class Hardsigmoid(_InputActivation):
    """relu6(x + 3) / 6; derivative 1/6 on (−3, 3)."""

    name = "hardsigmoid"


class Hardswish(_InputActivation):
    """x · relu6(x + 3) / 6; derivative x/3 + 1/2 on [−3, 3]."""

    name = "hardswish"


class Sigmoid(_OutputActivation):
    """1 / (1 + e^−x); derivative y(1 − y)."""

    name = "sigmoid"


class Tanh(_OutputActivation):
    """tanh x; derivative 1 − y²."""

    name = "tanh"


class LeakyReLU(Function):
    """x for x > 0, else negative_slope · x."""

    def __init__(self, negative_slope):
        self.negative_slope = negative_slope

    def forward(self, x):
        self.x = x
        return kernels_for(x).leaky_relu_forward(x, self.negative_slope)

    def backward(self, gy):
        return kernels_for(gy).leaky_relu_backward(gy, self.x, self.negative_slope)


def _check(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {x.dtype}")
    return x


def relu(x):
    return ReLU()(_check("relu", x))


def relu6(x):
    return ReLU6()(_check("relu6", x))


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU(negative_slope)(_check("leaky_relu", x))


def sigmoid(x):
    return Sigmoid()(_check("sigmoid", x))


def tanh(x):
    return Tanh()(_check("tanh", x))


def hardswish(x):
    return Hardswish()(_check("hardswish", x))


def hardsigmoid(x):
    return Hardsigmoid()(_check("hardsigmoid", x))
