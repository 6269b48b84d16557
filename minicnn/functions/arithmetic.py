"""Element-wise arithmetic with NumPy broadcasting: + - * / ** @ and unary minus.

Broadcasting copies an operand along new or size-1 axes in the forward pass,
so in the backward pass its gradient is the sum over those axes
(``sum_to``): every copy contributed to the loss.
"""
import numpy as np

from minicnn.backend import get_array_module
from minicnn.device import is_gpu_array, move_array
from minicnn.inplace import update_in_place
from minicnn.tensor import DEFAULT_DTYPE, Function, Tensor, as_array


def sum_to(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``."""
    if grad.shape == tuple(shape):
        return grad
    leading = grad.ndim - len(shape)
    stretched = tuple(leading + axis for axis, size in enumerate(shape) if size == 1)
    grad = grad.sum(axis=tuple(range(leading)) + stretched, keepdims=True)
    return grad.reshape(shape)


def broadcast_shapes(op, a, b):
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


def lift(value, like):
    """Wrap a Python number as an array of ``like``'s dtype (so float32 stays float32) on its device."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, int, float, np.number)):
        xp = get_array_module(like.data)
        dtype = like.dtype if like.dtype.kind == "f" or isinstance(value, (int, np.integer)) else np.float32
        return Tensor(xp.asarray(value, dtype=dtype))
    if isinstance(value, np.ndarray) or is_gpu_array(value):
        return Tensor(value)  # an array keeps its device: a NumPy array beside a GPU tensor is an error
    return Tensor(move_array(as_array(value), like.device))  # a list follows the tensor it meets


class Add(Function):
    """y = a + b;  ∂L/∂a = sum_to(∂L/∂y, a.shape),  ∂L/∂b = sum_to(∂L/∂y, b.shape)."""

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.a_shape), sum_to(gy, self.b_shape)


class Sub(Function):
    """y = a − b;  ∂L/∂a = sum_to(∂L/∂y, a.shape),  ∂L/∂b = sum_to(−∂L/∂y, b.shape)."""

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.a_shape), sum_to(-gy, self.b_shape)


class Mul(Function):
    """y = a · b;  ∂L/∂a = sum_to(∂L/∂y · b, a.shape),  ∂L/∂b = sum_to(∂L/∂y · a, b.shape)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        ga = sum_to(gy * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b;  ∂L/∂a = sum_to(∂L/∂y / b, a.shape),  ∂L/∂b = sum_to(−∂L/∂y · a / b², b.shape)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        ga = sum_to(gy / self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-gy * self.a / (self.b * self.b), self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """y = x^p for a constant exponent p;  ∂L/∂x = ∂L/∂y · p · x^(p−1).

    For p = 0 the gradient is zeros: x⁰ is constant, and 0 · x⁻¹ would be nan at x = 0.
    """

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, x):
        self.x = x
        return x**self.exponent

    def backward(self, gy):
        if self.exponent == 0:  # x ** 0 is constant; 0 * x ** -1 would be nan at x = 0
            return get_array_module(gy).zeros_like(gy)
        return gy * self.exponent * self.x ** (self.exponent - 1)


class PowTensor(Function):
    """y = a^b with both operands tensors:
    ∂L/∂a = sum_to(∂L/∂y · b · a^(b−1), a.shape),
    ∂L/∂b = sum_to(∂L/∂y · y · log a, b.shape),
    with log a read as 0 where a ≤ 0 (no real logarithm there).
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a**b
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        ga = sum_to(gy * self.b * self.a ** (self.b - 1), self.a.shape) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            log_a = xp.log(xp.where(self.a > 0, self.a, 1))  # a ≤ 0 has no real log; PyTorch gives 0 there too
            gb = sum_to(gy * self.y * log_a, self.b.shape)
        return ga, gb


class Neg(Function):
    """y = −x;  ∂L/∂x = −∂L/∂y."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class MatMul(Function):
    """y = a @ b for 1-D to N-D operands, batched like ``np.matmul``.

    Backward for 2-D operands: ∂L/∂a = ∂L/∂y @ bᵀ,  ∂L/∂b = aᵀ @ ∂L/∂y.  A 1-D
    operand is first lifted to a matrix (a → (1, K), b → (K, 1)), and batch axes
    that broadcasting added are summed away (``sum_to``).
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        xp = get_array_module(gy)
        a, b = self.a, self.b
        # Lift 1-D operands to matrices so one rule covers every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        gy2 = gy
        # b's axis first: for vector @ vector gy is 0-d, () -> (1,) -> (1, 1).
        if b.ndim == 1:
            gy2 = xp.expand_dims(gy2, -1)
        if a.ndim == 1:
            gy2 = xp.expand_dims(gy2, -2)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = gy2 @ xp.swapaxes(b2, -1, -2)
            ga = sum_to(ga, a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = xp.swapaxes(a2, -1, -2) @ gy2
            gb = sum_to(gb, b2.shape).reshape(b.shape)
        return ga, gb


def add(a, b):
    a, b = _operands("add", a, b)
    return Add()(a, b)


def sub(a, b):
    a, b = _operands("sub", a, b)
    return Sub()(a, b)


def mul(a, b):
    a, b = _operands("mul", a, b)
    return Mul()(a, b)


def div(a, b):
    a, b = _operands("div", a, b)
    if a.dtype.kind != "f" and b.dtype.kind != "f":  # true division of integers gives float32, as in PyTorch
        a, b = Tensor(a.data.astype(DEFAULT_DTYPE)), Tensor(b.data.astype(DEFAULT_DTYPE))
    return Div()(a, b)


def pow(a, exponent):  # noqa: A001  (PyTorch's name)
    if isinstance(exponent, (int, float, np.number)) and not isinstance(exponent, bool):
        # A NumPy scalar exponent (np.float64(2)) would turn a float32 array into float64.
        return Pow(exponent.item() if isinstance(exponent, np.number) else exponent)(a)
    a, exponent = _operands("pow", a, exponent)
    return PowTensor()(a, exponent)


def neg(x):
    return Neg()(x)


def matmul(a, b):
    a, b = _operands("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes {a.shape} and {b.shape}")
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ValueError(
            f"matmul: inner dimensions differ, {a.shape} @ {b.shape} ({inner_a} != {inner_b})"
        )
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} cannot be broadcast together "
            f"({a.shape} @ {b.shape})"
        ) from None
    return MatMul()(a, b)


def in_place(op, function_class):
    """The method behind ``x += y`` (op "in-place +=") and friends: x's own array takes the result, as in PyTorch.

    ``y`` may be a tensor, an array or a number and must broadcast to x's shape;
    a float result cannot go into an integer tensor (a TypeError, not a
    silent truncation).  ``inplace.update_in_place`` keeps the graph right.
    """
    def update(self, other):
        other = lift(other, self)
        if self.dtype.kind == "f" and other.dtype.kind in "biu":
            other = Tensor(other.data.astype(self.dtype))
        broadcast_shapes(op, self, other)
        return update_in_place(self, op, function_class(), other)

    return update


def _operands(op, a, b):
    """Make both operands tensors of one dtype and check they broadcast."""
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")
        a = lift(a, b)
    b = lift(b, a)  # devices are checked once for every op, in Function.__call__
    # An integer operand takes the float operand's dtype (PyTorch's rule); NumPy would
    # make float32 * int64 a float64.
    if a.dtype.kind == "f" and b.dtype.kind in "biu":
        b = Tensor(b.data.astype(a.dtype))
    elif b.dtype.kind == "f" and a.dtype.kind in "biu":
        a = Tensor(a.data.astype(b.dtype))
    if op != "matmul":
        broadcast_shapes(op, a, b)
    return a, b
