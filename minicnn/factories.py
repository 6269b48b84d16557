"""Ways to make tensors: zeros, ones, full, randn, rand, arange and the ``_like`` forms.

All default to float32; the random ones draw from the stream ``manual_seed`` sets.
"""
import numpy as np

from minicnn import random
from minicnn.tensor import DEFAULT_DTYPE, Tensor


def _shape(op, shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(s, (int, np.integer)) and s >= 0 for s in shape):
        raise ValueError(f"{op}: sizes must be non-negative integers, got {shape}")
    return tuple(int(s) for s in shape)


def zeros(*shape, dtype=DEFAULT_DTYPE, requires_grad=False):
    return Tensor(np.zeros(_shape("zeros", shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=DEFAULT_DTYPE, requires_grad=False):
    return Tensor(np.ones(_shape("ones", shape), dtype=dtype), requires_grad=requires_grad)


def full(shape, fill_value, dtype=DEFAULT_DTYPE, requires_grad=False):
    return Tensor(np.full(_shape("full", (shape,)), fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randn(*shape, dtype=DEFAULT_DTYPE, requires_grad=False):
    """Standard normal samples from the seeded stream."""
    data = random.generator().standard_normal(_shape("randn", shape), dtype=np.float64).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape, dtype=DEFAULT_DTYPE, requires_grad=False):
    """Uniform samples in [0, 1) from the seeded stream."""
    data = random.generator().random(_shape("rand", shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Like ``torch.arange``: integers give int64, any float argument gives float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, end, step))
        dtype = DEFAULT_DTYPE if is_float else np.int64
    return Tensor(np.arange(start, end, step).astype(dtype), requires_grad=requires_grad)
