"""minicnn: a from-scratch deep-learning engine for learning how CNNs really work."""
from minicnn import functions as _functions  # noqa: F401  (attaches Tensor's operators)
from minicnn.gradcheck import GradcheckError, gradcheck, gradcheck_directional
from minicnn.factories import arange, full, ones, ones_like, rand, randn, zeros, zeros_like
from minicnn.random import get_rng_state, initial_seed, manual_seed, set_rng_state
from minicnn.tensor import DEFAULT_DTYPE, Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"
