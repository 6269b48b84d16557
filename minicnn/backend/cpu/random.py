"""Counter-based random numbers (Philox4x32-10) for dropout masks.

Philox (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011)
turns a (counter, key) pair into random bits with ten cheap rounds of
multiply-and-xor.  Element i of a mask uses counter offset + i, so any device
can compute any element independently and get the same bits: the CUDA kernel
reproduces these masks exactly.
"""
import numpy as np

from minicnn.backend.cpu.threads import parallel_for

__all__ = ["philox4x32", "uniform_from_counter", "dropout_mask"]

_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
_KEY_STEPS = (0x9E3779B9, 0xBB67AE85)
_LOW32 = np.uint64(0xFFFFFFFF)


def philox4x32(counter, key, rounds=10):
    """Philox4x32 on 128-bit counters (four uint32 words, given as uint64 arrays) and a 64-bit key.

    Returns the four output words as uint64 arrays holding 32-bit values.
    """
    c0, c1, c2, c3 = (np.asarray(word, dtype=np.uint64) & _LOW32 for word in counter)
    k0, k1 = np.uint64(key & 0xFFFFFFFF), np.uint64((key >> 32) & 0xFFFFFFFF)
    m0, m1 = np.uint64(_MULTIPLIERS[0]), np.uint64(_MULTIPLIERS[1])
    for _ in range(rounds):
        product0, product1 = m0 * c0, m1 * c2  # 32×32 → 64-bit products: exact in uint64
        c0, c1, c2, c3 = ((product1 >> np.uint64(32)) ^ c1 ^ k0, product1 & _LOW32,
                          (product0 >> np.uint64(32)) ^ c3 ^ k1, product0 & _LOW32)
        k0 = (k0 + np.uint64(_KEY_STEPS[0])) & _LOW32
        k1 = (k1 + np.uint64(_KEY_STEPS[1])) & _LOW32
    return c0, c1, c2, c3


def uniform_from_counter(count, seed, offset):
    """``count`` floats in [0, 1): element i from Philox(counter = offset + i, key = seed), first word."""
    index = np.arange(offset, offset + count, dtype=np.uint64)
    zero = np.zeros((), dtype=np.uint64)
    bits = philox4x32((index & _LOW32, index >> np.uint64(32), zero, zero), seed)[0]
    # The top 24 bits make a float32-exact value in [0, 1).
    return (bits >> np.uint64(8)).astype(np.float64) * 2.0**-24


def dropout_mask(shape, p, seed, offset, dtype):
    """Inverted-dropout mask: 0 with probability p, else 1/(1 − p), so E[mask] = 1."""
    count = int(np.prod(shape))
    mask = np.empty(count, dtype=dtype)
    scale = dtype(1.0 / (1.0 - p))

    def fill(start, stop):  # Philox's hundred uint64 passes, split across the cores: element i is i's alone
        keep = uniform_from_counter(stop - start, seed, offset + start) >= p
        np.multiply(keep, scale, out=mask[start:stop])

    # About 40 array passes of 8-byte words per element: worth a thread from a few thousand elements on.
    parallel_for(count, fill, elements_per_item=40)
    return mask.reshape(shape)
