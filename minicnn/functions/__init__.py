"""The differentiable operations behind Tensor's operators and methods.

Every `Function` class states its forward and backward rule as math in its
docstring. Where it calls kernels (`kernels_for(x).<name>`: the NumPy kernel in
`minicnn/backend/cpu/<family>.py`, its CUDA twin in `minicnn/backend/cuda/` +
`kernels/<family>.cu`), the docstring names each kernel it calls; where the
NumPy math is short and runs unchanged on CuPy (`xp = get_array_module(x)`), it
sits in the Function itself.

``tensor.py`` cannot import this package (it sits one floor below), so the
operators are attached to ``Tensor`` here, once, when minicnn is imported.
"""
from minicnn.functions import arithmetic, elementwise, reduction, shape
from minicnn.functions.arithmetic import (
    Add,
    Div,
    Mul,
    Sub,
    add,
    broadcast_shapes,
    div,
    in_place,
    lift,
    matmul,
    mul,
    neg,
    pow,
    sub,
)
from minicnn.functions.elementwise import abs, clip, exp, log, sqrt
from minicnn.functions.reduction import max, mean, sum
from minicnn.functions.shape import cat, clone, flatten, getitem, permute, reshape, setitem, transpose
from minicnn.tensor import Tensor, check_one_device


def _compare(name):
    def compare(self, other):
        other = lift(other, self)
        # A comparison is no Function, so it checks devices itself (CuPy would raise a bare TypeError).
        check_one_device(name.strip("_"), (self, other))
        broadcast_shapes(name.strip("_"), self, other)
        return Tensor(getattr(self.data, name)(other.data))

    compare.__name__ = name
    return compare


def _set_all(x, value):
    setitem(x, Ellipsis, value)  # x[...] = value: broadcast into every element
    return x


def _attach():
    T = Tensor
    T.__add__ = add
    T.__radd__ = lambda self, other: add(other, self)
    T.__sub__ = sub
    T.__rsub__ = lambda self, other: sub(other, self)
    T.__mul__ = mul
    T.__rmul__ = lambda self, other: mul(other, self)
    T.__truediv__ = div
    T.__rtruediv__ = lambda self, other: div(other, self)
    T.__pow__ = pow
    T.__rpow__ = lambda self, other: pow(lift(other, self), self)
    T.__matmul__ = matmul
    T.__rmatmul__ = lambda self, other: matmul(other, self)
    T.__neg__ = neg
    T.__pos__ = lambda self: self
    T.__getitem__ = getitem
    T.__setitem__ = setitem

    # In place, as in PyTorch: the tensor's own array changes (see minicnn/inplace.py).
    T.__iadd__ = in_place("in-place +=", Add)
    T.__isub__ = in_place("in-place -=", Sub)
    T.__imul__ = in_place("in-place *=", Mul)
    T.__itruediv__ = in_place("in-place /=", Div)
    T.add_ = lambda self, other, alpha=1: T.__iadd__(self, other if alpha == 1 else other * alpha)
    T.sub_ = lambda self, other, alpha=1: T.__isub__(self, other if alpha == 1 else other * alpha)
    T.mul_ = T.__imul__
    T.div_ = T.__itruediv__
    T.copy_ = lambda self, source: _set_all(self, source)
    T.fill_ = lambda self, value: _set_all(self, value)
    T.zero_ = lambda self: _set_all(self, 0)
    T.clone = clone
    for name in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        setattr(T, name, _compare(name))
    # Defining __eq__ removes hashing; tensors are hashed by identity, like PyTorch's.
    T.__hash__ = object.__hash__

    T.sum = sum
    T.mean = mean
    T.max = max
    T.exp = exp
    T.log = log
    T.sqrt = sqrt
    T.abs = abs
    T.__abs__ = abs
    T.clip = clip
    T.clamp = clip
    T.reshape = reshape
    T.view = reshape
    T.permute = permute
    T.transpose = transpose
    T.flatten = flatten
    T.T = property(lambda self: transpose(self))


_attach()

__all__ = [
    "arithmetic", "elementwise", "reduction", "shape",
    "add", "sub", "mul", "div", "pow", "neg", "matmul",
    "exp", "log", "sqrt", "abs", "clip",
    "sum", "mean", "max",
    "reshape", "permute", "transpose", "flatten", "getitem", "setitem", "clone", "cat",
]
