"""minicnn: a from-scratch deep-learning engine for learning how CNNs really work.

>>> import minicnn
>>> from minicnn import nn, optim
>>> import minicnn.nn.functional as F
"""
from minicnn import cuda  # minicnn.cuda.is_available(); imports no CuPy
from minicnn import functions as _functions  # noqa: F401  (attaches Tensor's operators)
from minicnn.device import get_default_device, set_default_device
from minicnn.factories import arange, full, ones, ones_like, rand, randn, zeros, zeros_like
from minicnn.functions.shape import cat, flatten
from minicnn.gradcheck import GradcheckError, gradcheck, gradcheck_directional
from minicnn.random import get_rng_state, initial_seed, manual_seed, set_rng_state
from minicnn.tensor import DEFAULT_DTYPE, Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor

from minicnn import nn, optim  # noqa: E402,I001  (the floors above must exist before these load)
from minicnn.summary import receptive_field_comparison, summary  # noqa: E402
from minicnn import models  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "Function", "DEFAULT_DTYPE",
    "cuda", "set_default_device", "get_default_device",
    "zeros", "ones", "full", "zeros_like", "ones_like", "randn", "rand", "arange",
    "cat", "flatten",
    "no_grad", "enable_grad", "is_grad_enabled",
    "manual_seed", "initial_seed", "get_rng_state", "set_rng_state",
    "gradcheck", "gradcheck_directional", "GradcheckError",
    "nn", "optim", "models", "summary", "receptive_field_comparison",
]
