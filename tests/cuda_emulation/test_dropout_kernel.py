"""kernels/dropout.cu on the CPU emulator: Philox4x32-10 and dropout masks, bit-identical to the NumPy kernels.

The masks must not merely be close: the same (seed, offset) must drop the same
elements on the CPU and the GPU, or a run cannot be reproduced across devices.
"""
import math

import numpy as np
import pytest
from pairwise import all_pairs

from minicnn.backend.cpu.random import dropout_mask, philox4x32, uniform_from_counter
from minicnn.random import DEFAULT_SEED

# Random123's known-answer vectors for philox4x32-10 (kat_vectors): counter, key, output.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def run_philox(emulator, counters, keys):
    """counters (n, 4) and keys (n, 2) as uint32 → the four output words (n, 4)."""
    counters = np.ascontiguousarray(counters, dtype=np.uint32)
    keys = np.ascontiguousarray(keys, dtype=np.uint32)
    out = np.empty_like(counters)
    emulator.launch_op("philox4x32", (len(counters),), "philox4x32_u32", [counters, keys, out, np.int64(len(counters))])
    return out


def kernel_mask(emulator, count, p, seed, offset, dtype, grid=None, block=None):
    """What the CuPy backend's dropout_mask launches: the integer keep threshold and the rounded scale."""
    dtype = np.dtype(dtype)
    mask = np.empty(count, dtype=dtype)
    name = f"dropout_mask_{'f32' if dtype == np.float32 else 'f64'}"
    args = [mask, np.int64(count), np.uint64(seed), np.uint64(offset), np.uint32(math.ceil(p * 2**24)),
            dtype.type(1.0 / (1.0 - p))]
    if grid is None:
        emulator.launch_op("dropout_mask", (count,), name, args)
    else:
        emulator.launch(name, grid, block, args)
    return mask


def test_philox_kernel_reproduces_random123_known_answers(emulator):
    counters = [counter for counter, _, _ in KNOWN_ANSWERS]
    keys = [key for _, key, _ in KNOWN_ANSWERS]
    out = run_philox(emulator, counters, keys)
    np.testing.assert_array_equal(out, np.array([answer for _, _, answer in KNOWN_ANSWERS], dtype=np.uint32))


def test_philox_kernel_matches_the_numpy_generator_on_random_counters_and_keys(emulator):
    rng = np.random.default_rng(20)
    counters = rng.integers(0, 2**32, size=(300, 4), dtype=np.uint64)
    keys = rng.integers(0, 2**32, size=(300, 2), dtype=np.uint64)
    out = run_philox(emulator, counters, keys)
    for row in range(len(counters)):
        key = int(keys[row, 0]) | int(keys[row, 1]) << 32
        expected = [int(word) for word in philox4x32(tuple(counters[row]), key)]
        assert out[row].tolist() == expected, f"row {row}"


SEEDS_AND_OFFSETS = [
    (0, 0),
    (DEFAULT_SEED, 12345),
    (2**64 - 1, 2**32 - 100),  # all key bits set; counters cross into the high word mid-mask
    (0x0123456789ABCDEF, 2**40 + 7),
]


# All pairs (tests/pairwise.py): every p meets every (seed, offset), and each of them both dtypes.
@pytest.mark.parametrize("dtype, p, seed, offset", [
    (dtype, p, seed, offset) for dtype, p, (seed, offset)
    in all_pairs([np.float32, np.float64], [0.0, 0.1, 0.5, 1 / 3, 0.9], SEEDS_AND_OFFSETS)])
def test_dropout_mask_is_bit_identical_to_numpy(emulator, dtype, p, seed, offset):
    count = 333  # not a multiple of the block
    mask = kernel_mask(emulator, count, p, seed, offset, dtype)
    expected = dropout_mask((count,), p, seed, offset, dtype)
    assert mask.dtype == expected.dtype
    assert mask.tobytes() == expected.tobytes()
    assert set(np.unique(mask).tolist()) <= {0.0, float(dtype(1.0 / (1.0 - p)))}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_keeps_an_element_whose_uniform_equals_p_exactly(emulator, dtype):
    # u >= p keeps u == p; the kernel's integer threshold ceil(p·2^24) must agree at that boundary,
    # and drop the element once p moves past u by less than one step of 2^-24.
    seed, offset, count = DEFAULT_SEED, 77, 40
    u = uniform_from_counter(count, seed, offset)
    index = int(np.argmin(np.abs(u - 0.5)))
    for p in (float(u[index]), float(u[index]) + 2.0**-26, float(u[index]) - 2.0**-26):
        mask = kernel_mask(emulator, count, p, seed, offset, dtype)
        expected = dropout_mask((count,), p, seed, offset, dtype)
        assert mask.tobytes() == expected.tobytes(), p
        assert (mask[index] != 0) == (u[index] >= p)


def test_dropout_mask_grid_stride_loop_covers_more_work_than_threads(emulator):
    mask = kernel_mask(emulator, 200, 0.25, 42, 5, np.float32, grid=(1,), block=(32,))
    assert mask.tobytes() == dropout_mask((200,), 0.25, 42, 5, np.float32).tobytes()


def test_dropout_masks_of_consecutive_offsets_continue_one_stream(emulator):
    # Two masks drawn back to back (offset, then offset + first size) are one longer mask cut in two:
    # what lets next_philox_key hand out disjoint counters to successive dropout calls.
    first = kernel_mask(emulator, 50, 0.5, 7, 100, np.float64)
    second = kernel_mask(emulator, 70, 0.5, 7, 150, np.float64)
    whole = kernel_mask(emulator, 120, 0.5, 7, 100, np.float64)
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)
    assert 0 < np.count_nonzero(whole) < whole.size
