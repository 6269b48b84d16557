"""Unary element-wise math: exp, log, sqrt, abs, clip.

Each backward is the derivative evaluated at the saved input (or output):
exp' = exp, log' = 1/x, sqrt' = 1/(2·sqrt), abs' = sign, clip' = 1 inside the range.
"""
import numbers

from minicnn.backend import get_array_module
from minicnn.tensor import DEFAULT_DTYPE, Function, Tensor


class Exp(Function):
    """y = eˣ;  ∂L/∂x = ∂L/∂y · y, from the saved output."""

    def forward(self, x):
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    """y = log x;  ∂L/∂x = ∂L/∂y / x."""

    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Function):
    """y = √x;  ∂L/∂x = ∂L/∂y / (2y), from the saved output."""

    def forward(self, x):
        self.y = get_array_module(x).sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Abs(Function):
    """y = |x|;  ∂L/∂x = ∂L/∂y · sign(x)  (0 at x = 0)."""

    def forward(self, x):
        self.x = x
        return get_array_module(x).abs(x)

    def backward(self, gy):
        return gy * get_array_module(gy).sign(self.x)


class Clip(Function):
    """y = min(max(x, low), high), a None bound left out;  ∂L/∂x = ∂L/∂y · [low ≤ x ≤ high].

    The gradient passes only where the input was inside the range (bounds included).
    """

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        return xp.clip(x, self.low, self.high).astype(x.dtype, copy=False)

    def backward(self, gy):
        inside = (self.low is None or self.x >= self.low) & (self.high is None or self.x <= self.high)
        return gy * inside


def _floating(x):
    """Integers and bools become float32 first, as in PyTorch (NumPy would pick float64 or float16)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    return x if x.dtype.kind == "f" else Tensor(x.data.astype(DEFAULT_DTYPE))


def exp(x):
    return Exp()(_floating(x))


def log(x):
    return Log()(_floating(x))


def sqrt(x):
    return Sqrt()(_floating(x))


def abs(x):  # noqa: A001  (PyTorch's name)
    return Abs()(x)


def clip(x, min=None, max=None):  # noqa: A002  (PyTorch's argument names)
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, numbers.Real)):
            raise TypeError(f"clip: {name} must be a number or None, got {type(bound).__name__} {bound!r}")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min ({min}) is greater than max ({max})")
    return Clip(min, max)(x)
