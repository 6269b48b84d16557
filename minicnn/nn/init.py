"""Weight initialisation, in place, with PyTorch's names and formulas.

Every function overwrites ``tensor.data`` (keeping its dtype: float32 stays
float32), draws from ``minicnn.random.generator()`` so ``manual_seed`` makes it
reproducible, and returns the tensor.

Why the formulas: a layer with ``fan_in`` inputs of variance v outputs
variance ``fan_in · Var(w) · v``.  Keeping activations at the same scale
through depth needs ``Var(w) = gain² / fan_in`` (He et al. 2015, "Kaiming");
averaging the forward and backward conditions gives
``Var(w) = 2·gain² / (fan_in + fan_out)`` (Glorot & Bengio 2010, "Xavier").
A uniform distribution on [-bound, bound] has variance bound²/3, hence the √3.
"""
import math

import numpy as np

from minicnn import random
from minicnn.backend import get_array_module
from minicnn.tensor import Tensor

_LINEAR_GAINS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                 "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity, param=None):
    """The factor that keeps activation variance steady through ``nonlinearity``.

    >>> calculate_gain("relu")            # ReLU zeroes half the inputs: sqrt(2)
    1.4142135623730951
    >>> calculate_gain("leaky_relu", 0.2) # sqrt(2 / (1 + 0.2²))
    1.386750490563073
    """
    if nonlinearity in _LINEAR_GAINS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            negative_slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight: Linear (out, in); Conv (out, in/groups, kh, kw).

    Each output of a conv sees ``in/groups · kh · kw`` inputs, so the receptive
    field size multiplies both fans.
    """
    if tensor.ndim < 2:
        raise ValueError(
            f"init: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions, "
            f"got shape {tensor.shape}"
        )
    receptive_field_size = int(np.prod(tensor.shape[2:], dtype=np.int64))
    return tensor.shape[1] * receptive_field_size, tensor.shape[0] * receptive_field_size


def _check_tensor(op, tensor, random_fill=True):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init.{op}: expected a Tensor, got {type(tensor).__name__}")
    if random_fill and tensor.dtype.kind != "f":
        raise TypeError(f"init.{op}: random initialisation needs a floating-point tensor, got dtype {tensor.dtype}")


def _write(tensor, values):
    """Copy host ``values`` into the tensor's array, in place and in its own dtype."""
    xp = get_array_module(tensor.data)
    tensor.data[...] = xp.asarray(values).astype(tensor.dtype, copy=False)
    return tensor


def _fill_in_place(tensor, draw, scale, shift):
    """tensor ← draw · scale + shift, drawing straight into the tensor's memory when NumPy can.

    Drawing in the tensor's own precision into its own buffer matters at VGG's
    size: float64 draws, a cast and a copy would triple the time of building it.
    """
    data = tensor.data
    if isinstance(data, np.ndarray) and data.dtype in (np.float32, np.float64) and data.flags.c_contiguous:
        draw(out=data, dtype=data.dtype)
        data *= scale
        data += shift
        return tensor
    values = draw(size=tensor.shape, dtype=np.float64) * scale + shift  # other dtypes or devices
    return _write(tensor, values)


def _uniform(tensor, low, high):
    return _fill_in_place(tensor, random.generator().random, high - low, low)


def _normal(tensor, mean, std):
    return _fill_in_place(tensor, random.generator().standard_normal, std, mean)


def _fan(op, tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init.{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"init.{op}: {mode} is 0 for shape {tensor.shape}")
    return fan


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with samples from U(a, b)."""
    _check_tensor("uniform_", tensor)
    if a > b:
        raise ValueError(f"init.uniform_: expected a <= b, got a={a}, b={b}")
    return _uniform(tensor, a, b)


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with samples from N(mean, std²)."""
    _check_tensor("normal_", tensor)
    if std < 0:
        raise ValueError(f"init.normal_: std must be non-negative, got {std}")
    return _normal(tensor, mean, std)


def _normal_cdf(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Fill with N(mean, std²) samples conditioned on lying in [a, b] (a, b are absolute bounds).

    Rejection sampling: draw, keep what lands inside, redraw the rest.  Exact,
    and fast whenever [a, b] holds a fair share of the normal's mass.
    """
    _check_tensor("trunc_normal_", tensor)
    if std <= 0:
        raise ValueError(f"init.trunc_normal_: std must be positive, got {std}")
    if not a < b:
        raise ValueError(f"init.trunc_normal_: expected a < b, got a={a}, b={b}")
    mass = _normal_cdf((b - mean) / std) - _normal_cdf((a - mean) / std)
    if mass < 1e-6:
        raise ValueError(
            f"init.trunc_normal_: [{a}, {b}] holds only {mass:.2g} of N({mean}, {std}²); "
            "rejection sampling would not finish"
        )
    generator = random.generator()
    samples = np.empty(tensor.size, dtype=np.float64)
    filled = 0
    while filled < tensor.size:
        remaining = tensor.size - filled
        batch = min(int(remaining / mass * 1.1) + 16, 1 << 22)
        draws = generator.normal(mean, std, batch)
        inside = draws[(draws >= a) & (draws <= b)][:remaining]
        samples[filled:filled + inside.size] = inside
        filled += inside.size
    return _write(tensor, samples.reshape(tensor.shape))


def constant_(tensor, val):
    """Fill with the value ``val``."""
    _check_tensor("constant_", tensor, random_fill=False)
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)


def xavier_uniform_(tensor, gain=1.0):
    """U(-bound, bound) with bound = gain · sqrt(6 / (fan_in + fan_out))."""
    _check_tensor("xavier_uniform_", tensor)
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return _uniform(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """N(0, std²) with std = gain · sqrt(2 / (fan_in + fan_out))."""
    _check_tensor("xavier_normal_", tensor)
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _normal(tensor, 0.0, std)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound) with bound = gain · sqrt(3 / fan); ``a`` is the leaky-ReLU slope.

    Conv2d and Linear use ``a=sqrt(5)``, which gives bound = 1/sqrt(fan_in).
    """
    _check_tensor("kaiming_uniform_", tensor)
    if tensor.size == 0:
        return tensor
    fan = _fan("kaiming_uniform_", tensor, mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return _uniform(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std²) with std = gain / sqrt(fan) (He et al. 2015)."""
    _check_tensor("kaiming_normal_", tensor)
    if tensor.size == 0:
        return tensor
    fan = _fan("kaiming_normal_", tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _normal(tensor, 0.0, std)


_calculate_fan_in_and_fan_out = calculate_fan_in_and_fan_out  # PyTorch's (private) name, for code ported from it
