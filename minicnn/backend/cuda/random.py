"""Dropout masks on the GPU (kernels/dropout.cu): Philox4x32-10, bit-identical to the CPU's.

``philox4x32``/``uniform_from_counter`` are the host-side generator (NumPy
arrays in and out), kept for the known-answer tests.
"""
import math

import numpy as np

from minicnn.backend.cpu import random as _cpu_random
from minicnn.backend.cuda.runtime import KernelCall

__all__ = ["philox4x32", "uniform_from_counter", "dropout_mask"]


# --- dropout: Philox masks, bit-identical to the CPU's --------------------------
philox4x32 = _cpu_random.philox4x32  # host-side reference generator (NumPy arrays in and out)
uniform_from_counter = _cpu_random.uniform_from_counter


def dropout_mask(shape, p, seed, offset, dtype):
    """Inverted-dropout mask on the GPU: element i keeps when Philox(offset + i, seed) ≥ p, as on the CPU.

    The keep test runs in integers: (bits >> 8) · 2^-24 ≥ p exactly when
    bits >> 8 ≥ ceil(p · 2^24), a threshold computed once here (p · 2^24 is
    exact in double), so no float rounding can separate the GPU mask from the CPU's.
    """
    call = KernelCall("dropout_mask", dtype=dtype, note=f"shape={tuple(shape)}, p={p}")
    if not 0 <= p < 1:
        raise ValueError(f"dropout_mask: p must be in [0, 1), got {p}")
    keep_threshold = math.ceil(p * 2**24)
    mask = call.empty(shape)
    call.launch(mask.size, mask, mask.size, np.uint64(int(seed) % 2**64), np.uint64(int(offset) % 2**64),
                np.uint32(keep_threshold), call.scalar(1.0 / (1.0 - p)))
    return mask
