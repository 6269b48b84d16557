"""The NumPy batch-norm kernels: each summing path, blocks, threads, layouts; float64 formulas and PyTorch.

normalization.py sums long rows one by one (BLAS dot products, cut into pieces
past DOT_LENGTH, einsum when L has no such cut) and short rows across the batch,
in blocks of whole channels shared between threads; each test names its path.
"""

import numpy as np
import pytest
from oracle import require_torch

import minicnn
from minicnn.backend.cpu import normalization
from minicnn.backend.cpu.threads import set_num_threads
from minicnn.functions.normalization import batch_norm

# (N, C, L) per summing path of _channel_sum / _channel_dot
SHAPES = {
    "long-rows": (4, 3, 300),
    "rows-cut-in-two": (2, 2, 9000),
    "prime-row-past-dot-length": (2, 1, 8209),
    "short-rows": (5, 3, 37),
    "batchnorm1d": (6, 4, 1),
}
EPS = 1e-5


def _arrays(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    weight, bias = (rng.standard_normal(shape[1]).astype(dtype) for _ in range(2))
    return x, gy, weight, bias


def _reference(x, gy, weight, bias):
    """The textbook formulas in float64: (y, dx, dweight, dbias) with batch statistics."""
    x, gy = x.astype(np.float64), gy.astype(np.float64)
    mean, var = x.mean(axis=(0, 2), keepdims=True), x.var(axis=(0, 2), keepdims=True)
    x_hat = (x - mean) / np.sqrt(var + EPS)
    w = weight.astype(np.float64)[None, :, None]
    y = x_hat * w + bias[None, :, None]
    g_hat = gy * w
    count = x.shape[0] * x.shape[2]
    dx = (count * g_hat - g_hat.sum(axis=(0, 2), keepdims=True)
          - x_hat * (g_hat * x_hat).sum(axis=(0, 2), keepdims=True)) / (count * np.sqrt(var + EPS))
    return y, dx, (gy * x_hat).sum(axis=(0, 2)), gy.sum(axis=(0, 2))


def _ours(x, gy, weight, bias, need_input_grad=True, batch_statistics=True):
    mean, _, invstd = normalization.batch_norm_statistics(x, EPS)
    y = normalization.batch_norm_forward(x, mean, invstd, weight, bias)
    grads = normalization.batch_norm_backward(gy, x, mean, invstd, weight, batch_statistics, need_input_grad)
    return (y, *grads)


@pytest.mark.parametrize("name", SHAPES)
def test_each_summing_path_matches_the_float64_formulas(name):
    arrays = _arrays(SHAPES[name])
    for ours, expected in zip(_ours(*arrays), _reference(*arrays)):
        np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["long-rows", "short-rows"])
def test_float32_matches_torch_and_stays_float32(name):
    torch = require_torch()
    x, gy, weight, bias = _arrays(SHAPES[name], np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    ty = torch.nn.functional.batch_norm(tx, None, None, tw, tb, training=True, eps=EPS)
    ty.backward(torch.tensor(gy))
    for ours, theirs in zip(_ours(x, gy, weight, bias), (ty, tx.grad, tw.grad, tb.grad)):
        assert ours.dtype == np.float32
        theirs = theirs.detach().numpy()
        assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())


@pytest.mark.parametrize("name", ["long-rows", "short-rows", "batchnorm1d"])
def test_float32_variance_is_accurate_when_the_mean_dwarfs_the_spread(name):
    # |mean| = 1e4, std = 1e-2: E[x²] − E[x]² would lose every digit; the corrected two passes keep them.
    x = (np.random.default_rng(2).standard_normal(SHAPES[name]) * 1e-2 + 1e4).astype(np.float32)
    _, var, _ = normalization.batch_norm_statistics(x, EPS)
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 2)), rtol=1e-2)


@pytest.mark.parametrize("name", ["long-rows", "short-rows", "rows-cut-in-two"])
def test_one_channel_per_block_gives_the_same_result(name, monkeypatch):
    arrays = _arrays(SHAPES[name])
    expected = _ours(*arrays)
    monkeypatch.setattr(normalization, "BLOCK_ELEMENTS", 1)
    for ours, whole in zip(_ours(*arrays), expected):
        np.testing.assert_allclose(ours, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(32, 64, 1024), (64, 256, 64)])
def test_one_thread_and_two_give_identical_bits(shape, restore_threads, record_threads):
    arrays = _arrays(shape, np.float32)
    workers = record_threads(normalization)
    results = []
    for threads in (1, 2):
        set_num_threads(threads)
        workers.clear()
        results.append(_ours(*arrays))
        assert len(workers) == threads  # the split really happened
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_a_channel_major_input_keeps_its_layout_and_its_values():
    # BN after a conv sees (N, C, L) views of channel-major buffers; y and dx come back channel-major too.
    x, gy, weight, bias = _arrays((4, 3, 300))
    x_view = np.ascontiguousarray(x.transpose(1, 0, 2)).transpose(1, 0, 2)
    gy_view = np.ascontiguousarray(gy.transpose(1, 0, 2)).transpose(1, 0, 2)
    y, grad_x, *grads = _ours(x_view, gy_view, weight, bias)
    assert y.transpose(1, 0, 2).flags.c_contiguous and grad_x.transpose(1, 0, 2).flags.c_contiguous
    for ours, expected in zip((y, grad_x, *grads), _ours(x, gy, weight, bias)):
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def test_running_statistics_make_dx_gy_times_scale_and_no_input_grad_gives_none():
    x, gy, weight, _ = _arrays(SHAPES["long-rows"])
    mean, var = np.full(3, 0.25), np.full(3, 4.0)
    invstd = normalization.batch_norm_invstd(var, EPS)
    grad_x, grad_weight, grad_bias = normalization.batch_norm_backward(gy, x, mean, invstd, weight, False)
    np.testing.assert_allclose(grad_x, gy * (invstd * weight)[None, :, None], rtol=1e-14)
    np.testing.assert_allclose(grad_weight, (gy * (x - 0.25) * invstd[0]).sum(axis=(0, 2)), rtol=1e-12)
    no_dx = normalization.batch_norm_backward(gy, x, mean, invstd, weight, False, need_input_grad=False)
    assert no_dx[0] is None
    np.testing.assert_array_equal(no_dx[2], grad_bias)


@pytest.mark.parametrize("name", ["long-rows", "short-rows", "rows-cut-in-two"])
def test_backward_of_an_empty_batch_gives_zero_weight_and_bias_gradients(name):
    _, c, length = SHAPES[name]
    x, gy = np.zeros((0, c, length)), np.zeros((0, c, length))
    mean, invstd = np.zeros(c), np.ones(c)
    grad_x, grad_weight, grad_bias = normalization.batch_norm_backward(gy, x, mean, invstd, np.ones(c), False)
    assert grad_x.shape == x.shape
    np.testing.assert_array_equal(grad_weight, np.zeros(c))
    np.testing.assert_array_equal(grad_bias, np.zeros(c))


@pytest.mark.parametrize("shape", [(3, 2, 300), (4, 3, 5), (5, 3)])
def test_batch_norm_gradcheck_in_float64_on_long_and_short_rows(shape):
    rng = np.random.default_rng(3)
    x, weight, bias = rng.standard_normal(shape), rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    def train_batch_norm(x, w, b):
        return batch_norm(x, None, None, w, b, training=True)
    assert minicnn.gradcheck(train_batch_norm, [x, weight, bias])
