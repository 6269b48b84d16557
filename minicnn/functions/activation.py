"""Activations: relu, relu6, leaky_relu, sigmoid, tanh, hardswish, hardsigmoid.

Each Function keeps what its derivative needs (the input x, or for sigmoid and
tanh the output y, from which the derivative is cheapest) and calls the
backend's forward/backward kernel pair by name, so "go to definition" on
``relu_backward`` lands on the derivative.
"""
from minicnn.backend import kernels_for
from minicnn.checks import check_floating, check_type
from minicnn.tensor import Function, Tensor


class ReLU(Function):
    """y = max(x, 0);  ∂L/∂x = ∂L/∂y · [x > 0]  (0 at the kink x = 0, as in PyTorch).

    Kernels: relu_forward, relu_backward.
    """

    def forward(self, x):
        self.x = x
        return kernels_for(x).relu_forward(x)

    def backward(self, gy):
        return kernels_for(gy).relu_backward(gy, self.x)


class ReLU6(Function):
    """y = min(max(x, 0), 6), MobileNet's activation;  ∂L/∂x = ∂L/∂y · [0 < x < 6].

    Kernels: relu6_forward, relu6_backward.
    """

    def forward(self, x):
        self.x = x
        return kernels_for(x).relu6_forward(x)

    def backward(self, gy):
        return kernels_for(gy).relu6_backward(gy, self.x)


class Hardsigmoid(Function):
    """y = relu6(x + 3) / 6;  ∂L/∂x = ∂L/∂y · [−3 < x < 3] / 6.

    Kernels: hardsigmoid_forward, hardsigmoid_backward.
    """

    def forward(self, x):
        self.x = x
        return kernels_for(x).hardsigmoid_forward(x)

    def backward(self, gy):
        return kernels_for(gy).hardsigmoid_backward(gy, self.x)


class Hardswish(Function):
    """y = x · relu6(x + 3) / 6;
    ∂L/∂x = ∂L/∂y · (0 for x < −3, x/3 + 1/2 on [−3, 3], 1 for x > 3), PyTorch's derivative.

    Kernels: hardswish_forward, hardswish_backward.
    """

    def forward(self, x):
        self.x = x
        return kernels_for(x).hardswish_forward(x)

    def backward(self, gy):
        return kernels_for(gy).hardswish_backward(gy, self.x)


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e^−x), computed as (1 + tanh(x/2)) / 2, which never overflows;
    ∂L/∂x = ∂L/∂y · y(1 − y), from the saved output.

    Kernels: sigmoid_forward, sigmoid_backward.
    """

    def forward(self, x):
        self.y = kernels_for(x).sigmoid_forward(x)
        return self.y

    def backward(self, gy):
        return kernels_for(gy).sigmoid_backward(gy, self.y)


class Tanh(Function):
    """y = tanh x;  ∂L/∂x = ∂L/∂y · (1 − y²), from the saved output.

    Kernels: tanh_forward, tanh_backward.
    """

    def forward(self, x):
        self.y = kernels_for(x).tanh_forward(x)
        return self.y

    def backward(self, gy):
        return kernels_for(gy).tanh_backward(gy, self.y)


class LeakyReLU(Function):
    """y = x for x > 0, else negative_slope · x;  ∂L/∂x = ∂L/∂y · (1 if x > 0 else negative_slope).

    Kernels: leaky_relu_forward, leaky_relu_backward.
    """

    def __init__(self, negative_slope):
        self.negative_slope = negative_slope

    def forward(self, x):
        self.x = x
        return kernels_for(x).leaky_relu_forward(x, self.negative_slope)

    def backward(self, gy):
        return kernels_for(gy).leaky_relu_backward(gy, self.x, self.negative_slope)


def _check(op, x):
    check_type(op, "input", x, Tensor)
    check_floating(op, "input", x)
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
