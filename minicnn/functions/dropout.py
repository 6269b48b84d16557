"""Inverted dropout: zero each element with probability p, scale the survivors by 1/(1 − p).

Scaling at training time keeps E[output] = input, so evaluation is the identity.
The mask comes from the counter-based Philox stream that ``manual_seed`` seeds:
the same seed gives the same masks, on the CPU and on the GPU.
"""
from minicnn import random
from minicnn.backend import kernels_for
from minicnn.checks import check_floating, check_probability, check_type
from minicnn.tensor import Function, Tensor


class Dropout(Function):
    """y = x · mask, mask = [u ≥ p] / (1 − p) with u uniform in [0, 1) from the seeded Philox stream;
    ∂L/∂x = ∂L/∂y · mask, the same mask.

    Kernel: dropout_mask.
    """

    def __init__(self, p):
        self.p = p

    def forward(self, x):
        seed, offset = random.next_philox_key(x.size)
        self.mask = kernels_for(x).dropout_mask(x.shape, self.p, seed, offset, x.dtype.type)
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask


def dropout(x, p=0.5, training=True):
    """Drop elements of ``x`` with probability ``p`` while ``training``; identity otherwise."""
    check_type("dropout", "input", x, Tensor)
    check_floating("dropout", "input", x)
    p = check_probability("dropout", "p", p)
    if not training or p == 0:
        return x
    return Dropout(p)(x)
