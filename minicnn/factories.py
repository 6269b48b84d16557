"""Ways to make tensors: zeros, ones, full, randn, rand, arange and the ``_like`` forms.

All default to float32; the random ones draw from the stream ``manual_seed`` sets.
Each takes ``device=`` ("cpu", "cuda"); None means ``minicnn.get_default_device()``.
Random values are drawn on the CPU from the one seeded stream and then moved,
so ``manual_seed(0); randn(3, device="cuda")`` holds the same numbers as on the CPU.
Constant ones (zeros, ones, full, arange) are built on their device directly: a host
array copied over would cost a PCIe transfer, ~10 ms for a 50 MB gradient of ones.
"""
import numpy as np

from minicnn import random
from minicnn.device import array_module, move_array, normalize_device
from minicnn.tensor import DEFAULT_DTYPE, Tensor


def _on_device(op, array, device, requires_grad):
    """Wrap a freshly made NumPy array, moved to ``device`` (default: the default device)."""
    return Tensor(move_array(array, normalize_device(op, device), op), requires_grad=requires_grad)


def _shape(op, shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(s, (int, np.integer)) and s >= 0 for s in shape):
        raise ValueError(f"{op}: sizes must be non-negative integers, got {shape}")
    return tuple(int(s) for s in shape)


def _number(op, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__} {value!r}")


def _built_on_device(op, make, device, requires_grad):
    """``make(xp)`` with the array module of ``device``: the array never crosses the bus."""
    return Tensor(make(array_module(device, op)), requires_grad=requires_grad)


def zeros(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, device=None):
    shape = _shape("zeros", shape)
    return _built_on_device("zeros", lambda xp: xp.zeros(shape, dtype=dtype), device, requires_grad)


def ones(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, device=None):
    shape = _shape("ones", shape)
    return _built_on_device("ones", lambda xp: xp.ones(shape, dtype=dtype), device, requires_grad)


def full(shape, fill_value, dtype=DEFAULT_DTYPE, requires_grad=False, device=None):
    if not isinstance(fill_value, bool):  # True/False fill a tensor too, as in PyTorch
        _number("full", "fill_value", fill_value)
    shape = _shape("full", (shape,))
    return _built_on_device("full", lambda xp: xp.full(shape, fill_value, dtype=dtype), device, requires_grad)


def zeros_like(t, dtype=None, requires_grad=False, device=None):
    """Like ``t`` in shape and dtype, and on ``t``'s device unless ``device`` says otherwise."""
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def ones_like(t, dtype=None, requires_grad=False, device=None):
    """Like ``t`` in shape and dtype, and on ``t``'s device unless ``device`` says otherwise."""
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=device or t.device)


def randn(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, device=None):
    """Standard normal samples from the seeded stream."""
    data = random.generator().standard_normal(_shape("randn", shape), dtype=np.float64).astype(dtype)
    return _on_device("randn", data, device, requires_grad)


def rand(*shape, dtype=DEFAULT_DTYPE, requires_grad=False, device=None):
    """Uniform samples in [0, 1) from the seeded stream."""
    data = random.generator().random(_shape("rand", shape)).astype(dtype)
    return _on_device("rand", data, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None):
    """Like ``torch.arange``: integers give int64, any float argument gives float32."""
    if end is None:
        start, end = 0, start
    for name, value in (("start", start), ("end", end), ("step", step)):
        _number("arange", name, value)
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, end, step))
        dtype = DEFAULT_DTYPE if is_float else np.int64
    return _built_on_device("arange", lambda xp: xp.arange(start, end, step).astype(dtype), device, requires_grad)
