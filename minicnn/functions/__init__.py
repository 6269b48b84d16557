"""The differentiable operations behind Tensor's operators and methods.

``tensor.py`` cannot import this package (it sits one floor below), so the
operators are attached to ``Tensor`` here, once, when minicnn is imported.
"""
from minicnn.functions import arithmetic, elementwise, reduction, shape
from minicnn.functions.arithmetic import add, broadcast_shapes, div, lift, matmul, mul, neg, pow, sub
from minicnn.functions.elementwise import abs, clip, exp, log, sqrt
from minicnn.functions.reduction import max, mean, sum
from minicnn.functions.shape import cat, flatten, getitem, permute, reshape, transpose
from minicnn.tensor import Tensor, _check_one_device


def _compare(name):
    def compare(self, other):
        other = lift(other, self)
        # A comparison is no Function, so it checks devices itself (CuPy would raise a bare TypeError).
        _check_one_device(name.strip("_"), (self, other))
        broadcast_shapes(name.strip("_"), self, other)
        return Tensor(getattr(self.data, name)(other.data))

    compare.__name__ = name
    return compare


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
    "reshape", "permute", "transpose", "flatten", "getitem", "cat",
]
