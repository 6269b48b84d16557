"""Shape operations: reshape, transpose/permute, flatten, indexing, concatenation, and clone.

None of them changes a value, so each backward only undoes the rearrangement:
reshape back, permute with the inverse order, scatter into zeros, split.
``SetItem`` (``x[index] = value``) is their mirror: its backward sends the
gradient at ``index`` to ``value`` and the rest to ``x``.
"""
import math

import numpy as np

from minicnn.backend import get_array_module
from minicnn.functions.arithmetic import lift, sum_to
from minicnn.inplace import update_in_place
from minicnn.tensor import Function, Tensor


class Reshape(Function):
    """y = x.reshape(shape);  ∂L/∂x = ∂L/∂y.reshape(x.shape)."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.x_shape)


class Permute(Function):
    """y = x.transpose(axes);  ∂L/∂x = ∂L/∂y.transpose(inverse of axes)."""

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        inverse = [0] * len(self.axes)
        for position, axis in enumerate(self.axes):
            inverse[axis] = position
        return gy.transpose(inverse)


class GetItem(Function):
    """y = x[index];  ∂L/∂x = zeros(x.shape) with ∂L/∂y added in at index.

    ``add.at`` (``cupyx.scatter_add`` on the GPU) rather than ``grad[index] = gy``:
    an integer-array index may pick one element twice (``x[[0, 0]]``) and both
    picks must count.
    """

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.x_shape, self.x_dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        grad = xp.zeros(self.x_shape, dtype=gy.dtype)
        if xp.__name__ == "numpy":
            xp.add.at(grad, self.index, gy)
        else:
            import cupyx

            cupyx.scatter_add(grad, self.index, gy)
        return grad


class SetItem(Function):
    """y = x with y[index] = value: what ``x[index] = value`` computes inside a graph.

    ∂L/∂x = ∂L/∂y with zeros at index;  ∂L/∂value = sum_to(∂L/∂y[index], value.shape).
    The replaced elements no longer depend on x, so their gradient is zero
    there; value's gradient is what reached those elements, summed back over
    the axes broadcasting stretched it along.
    """

    def __init__(self, index):
        self.index = index

    def forward(self, x, value):
        self.value_shape = value.shape
        y = x.copy()
        try:
            y[self.index] = value
        except ValueError:
            raise ValueError(f"setitem: a value of shape {value.shape} does not fit x[index], which has "
                             f"shape {x[self.index].shape}") from None
        return y

    def backward(self, gy):
        grad_x = grad_value = None
        if self.needs_input_grad[0]:
            grad_x = gy.copy()
            grad_x[self.index] = 0
        if self.needs_input_grad[1]:
            grad_value = sum_to(gy[self.index], self.value_shape)
        return grad_x, grad_value


class Clone(Function):
    """y = x copied into its own memory, still in the graph (``torch.clone``);  ∂L/∂x = ∂L/∂y."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


class Cat(Function):
    """y = x₁, …, xₖ joined along ``axis``;  ∂L/∂xᵢ = the slice of ∂L/∂y where xᵢ sits.

    Backward splits ∂L/∂y at the running sums of the inputs' sizes along ``axis``.
    """

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        xp = get_array_module(*xs)
        self.sizes = [x.shape[self.axis] for x in xs]
        return xp.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        boundaries = [int(b) for b in xp.cumsum(xp.asarray(self.sizes))[:-1].tolist()]
        return tuple(xp.split(gy, boundaries, axis=self.axis))


def reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"reshape: sizes must be ints (one of them may be -1), got {shape}")
    shape = tuple(int(s) for s in shape)
    unknown = [i for i, s in enumerate(shape) if s == -1]
    known = math.prod(s for s in shape if s != -1)
    if len(unknown) > 1 or any(s < -1 for s in shape):
        raise ValueError(f"reshape: invalid shape {shape}")
    if unknown:
        if known == 0 or x.size % known:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}")
        shape = tuple(x.size // known if s == -1 else s for s in shape)
    if math.prod(shape) != x.size:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}")
    return Reshape(shape)(x)


def permute(x, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    in_range = all(isinstance(a, (int, np.integer)) and -x.ndim <= a < x.ndim for a in axes)
    if not in_range or sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
        raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} axes of a tensor of shape {x.shape}")
    return Permute(tuple(a % x.ndim for a in axes))(x)


def transpose(x, dim0=None, dim1=None):
    """Swap two axes (PyTorch); with no axes, reverse them all (NumPy's ``.T``)."""
    if dim0 is None and dim1 is None:
        return Permute(tuple(reversed(range(x.ndim))))(x)
    if dim0 is None or dim1 is None:
        raise ValueError(f"transpose: give both dim0 and dim1 or neither, got {dim0} and {dim1}")
    for d in (dim0, dim1):
        if not -x.ndim <= d < x.ndim:
            raise ValueError(f"transpose: axis {d} is out of range for a tensor with {x.ndim} dimensions")
    axes = list(range(x.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return Permute(tuple(axes))(x)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one: (N, C, H, W) → (N, C·H·W) with start_dim=1."""
    if x.ndim == 0:
        return reshape(x, 1)
    for d in (start_dim, end_dim):
        if not -x.ndim <= d < x.ndim:
            raise ValueError(f"flatten: dim {d} is out of range for a tensor with {x.ndim} dimensions")
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {x.shape}")
    merged = math.prod(x.shape[start : end + 1])
    return Reshape(x.shape[:start] + (merged,) + x.shape[end + 1 :])(x)


def _index_arrays(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def getitem(x, index):
    try:
        return GetItem(_index_arrays(index))(x)
    except IndexError as error:  # NumPy's own check, raised in forward before anything is recorded
        raise IndexError(f"getitem: {error} (tensor of shape {x.shape})") from None


def setitem(x, index, value):
    """``x[index] = value``, written into x's own array (values are cast to x's dtype, as in PyTorch)."""
    update_in_place(x, "setitem", SetItem(_index_arrays(index)), lift(value, x), casting="unsafe")


def clone(x):
    return Clone()(x)


def cat(tensors, dim=0):
    """Join tensors along an existing axis (``torch.cat``); all other axes must match."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"cat: expected a sequence of Tensors, but element {i} is a {type(t).__name__}")
    first = tensors[0]
    if not -first.ndim <= dim < first.ndim:
        raise ValueError(f"cat: dim {dim} is out of range for tensors with {first.ndim} dimensions")
    axis = dim % first.ndim
    for i, t in enumerate(tensors[1:], start=1):
        if t.ndim != first.ndim or any(a != b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != axis):
            raise ValueError(
                f"cat: tensor {i} has shape {t.shape} but tensor 0 has shape {first.shape}; "
                f"only dim {dim} may differ"
            )
    float_dtypes = [t.dtype for t in tensors if t.dtype.kind == "f"]
    if float_dtypes and len(float_dtypes) < len(tensors):  # ints join floats as the widest float, as in PyTorch
        widest = max(float_dtypes, key=lambda dtype: dtype.itemsize)
        tensors = [t if t.dtype.kind == "f" else Tensor(t.data.astype(widest)) for t in tensors]
    return Cat(axis)(*tensors)
