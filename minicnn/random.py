"""The global random state: one seed makes initialisation and dropout reproducible.

Two streams come from the seed.  Initialisers and ``randn`` draw from a NumPy
``Generator``.  Dropout uses a counter-based generator (Philox): its mask for
element ``i`` depends only on (seed, offset + i), so the CPU and a GPU kernel
can compute the very same mask, in any order, without sharing a state.
"""
import numpy as np

DEFAULT_SEED = 67280421310721  # PyTorch's default initial seed

_seed = DEFAULT_SEED
_generator = np.random.default_rng(DEFAULT_SEED)
_philox_offset = 0


def manual_seed(seed):
    """Seed every random stream minicnn uses (parameter init, randn, dropout)."""
    global _seed, _generator, _philox_offset
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative integer, got {seed!r}")
    _seed = int(seed) % 2**64
    _generator = np.random.default_rng(_seed)
    _philox_offset = 0


def initial_seed():
    return _seed


def generator():
    """The NumPy Generator behind ``randn``, ``rand`` and the initialisers."""
    return _generator


def next_philox_key(count):
    """Reserve ``count`` counters of the dropout stream: returns (seed, first counter)."""
    global _philox_offset
    offset = _philox_offset
    _philox_offset += int(count)
    return _seed, offset


def get_rng_state():
    """Everything needed to continue the random streams exactly (JSON-serialisable)."""
    return {"seed": _seed, "generator": _generator.bit_generator.state, "philox_offset": _philox_offset}


def set_rng_state(state):
    global _seed, _generator, _philox_offset
    _seed = int(state["seed"])
    _generator = np.random.default_rng()
    _generator.bit_generator.state = state["generator"]
    _philox_offset = int(state["philox_offset"])
