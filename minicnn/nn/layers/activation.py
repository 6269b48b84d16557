"""Activation layers: each wraps one function of ``F`` so it can sit in a ``Sequential``.

``inplace`` is accepted so PyTorch model code runs unchanged, and shown by
``print`` as in PyTorch, but minicnn never overwrites its input: the autograd
graph may still need it.
"""
import minicnn.nn.functional as F
from minicnn.checks import check_number
from minicnn.nn.module import Module


class _Activation(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_Activation):
    """max(0, x)."""

    def forward(self, x):
        return F.relu(x)


class ReLU6(_Activation):
    """min(max(0, x), 6): ReLU capped for low-precision friendliness (MobileNet)."""

    def forward(self, x):
        return F.relu6(x)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope · x."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = check_number("LeakyReLU", "negative_slope", negative_slope)
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Hardswish(Module):
    """x · relu6(x + 3) / 6 (MobileNetV3)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.hardswish(x)


class Hardsigmoid(Module):
    """relu6(x + 3) / 6 (MobileNetV3's squeeze-and-excite gate)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        return F.hardsigmoid(x)


class Softmax(Module):
    """exp(x) / Σ exp(x) along ``dim``: probabilities (for inference; train on logits with CrossEntropyLoss)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along ``dim``, computed stably."""

    def forward(self, x):
        return F.log_softmax(x, self.dim)
