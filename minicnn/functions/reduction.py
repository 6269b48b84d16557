"""Reductions: sum, mean and max over all axes or some, with ``keepdims``.

Backward spreads the output gradient back over the reduced axes: equally for
``sum`` (scaled by 1/count for ``mean``), only to the maxima for ``max``.
"""
import numpy as np

from minicnn.backend import get_array_module
from minicnn.tensor import DEFAULT_DTYPE, Function


def normalize_axis(op, axis, ndim):
    """Return ``axis`` as a sorted tuple of non-negative axes (None means all)."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    rank = ndim or 1  # a 0-d tensor accepts axis 0 and -1, like PyTorch's reductions
    normalized = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: axis must be an integer or a tuple of integers, got {axis!r}")
        if not -rank <= a < rank:
            raise ValueError(f"{op}: axis {a!r} is out of range for a tensor with {ndim} dimensions")
        normalized.append(a % rank)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: axis {axis!r} repeats an axis")
    if ndim == 0:
        return ()  # a 0-d array has no axis 0 to hand to NumPy: reducing it changes nothing
    return tuple(sorted(int(a) for a in normalized))


def expand_reduced(grad, axes, keepdims):
    """Re-insert the reduced axes as size 1 so ``grad`` broadcasts against the input."""
    if keepdims:
        return grad
    xp = get_array_module(grad)
    return xp.expand_dims(grad, axes) if axes else grad


class Sum(Function):
    """y = Σ x over ``axes``;  ∂L/∂x = ∂L/∂y broadcast back over the reduced axes."""

    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        xp = get_array_module(gy)
        return xp.broadcast_to(expand_reduced(gy, self.axes, self.keepdims), self.x_shape)


class Mean(Function):
    """y = Σ x / n over ``axes``, n the number of values reduced (float32 for integer input);
    ∂L/∂x = ∂L/∂y / n broadcast back over the reduced axes.
    """

    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        self.x_shape = x.shape
        # NumPy's mean of integers or booleans is float64; ours is float32, like the rest.
        dtype = None if x.dtype.kind == "f" else DEFAULT_DTYPE
        return x.mean(axis=self.axes, keepdims=self.keepdims, dtype=dtype)

    def backward(self, gy):
        xp = get_array_module(gy)
        count = 1
        for a in self.axes:
            count *= self.x_shape[a]
        gy = expand_reduced(gy, self.axes, self.keepdims) / gy.dtype.type(count)
        return xp.broadcast_to(gy, self.x_shape)


class Max(Function):
    """y = max x over ``axes``;  ∂L/∂x = ∂L/∂y · [x = y] / #{x = y}, broadcast back.

    When several elements tie for the maximum, they share the gradient equally.
    """

    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        self.x = x
        self.y = x.max(axis=self.axes, keepdims=True)
        return self.y if self.keepdims else self.y.reshape([s for i, s in enumerate(x.shape) if i not in self.axes])

    def backward(self, gy):
        is_max = self.x == self.y
        share = is_max / is_max.sum(axis=self.axes, keepdims=True).astype(gy.dtype)
        return share.astype(gy.dtype) * expand_reduced(gy, self.axes, self.keepdims)


def _reduce(function_class, op, x, axis, keepdims):
    axes = normalize_axis(op, axis, x.ndim)
    if op == "max" and x.size == 0:
        raise ValueError("max: cannot take the maximum of an empty tensor")
    return function_class(axes, bool(keepdims))(x)


def sum(x, axis=None, keepdims=False):  # noqa: A001  (PyTorch's name)
    return _reduce(Sum, "sum", x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    return _reduce(Mean, "mean", x, axis, keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return _reduce(Max, "max", x, axis, keepdims)
