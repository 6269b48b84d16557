"""batch_norm and local_response_norm: against PyTorch, finite differences, running statistics, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import compare_with_torch, require_torch

import minicnn
from minicnn.functions.normalization import batch_norm, local_response_norm

bn_shapes = st.one_of(
    st.tuples(st.integers(2, 5), st.integers(1, 4)),                                     # BatchNorm1d (N, C)
    st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(2, 5)),                  # (N, C, L)
    st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),  # (N, C, H, W)
).filter(lambda shape: np.prod(shape) // shape[1] > 2)
# Training needs > 1 value per channel; with exactly 2 the output is ±1 whatever x is, so
# dx is only eps-sized rounding noise and no relative tolerance can compare it.


def _bn_arrays(shape, seed):
    rng = np.random.default_rng(seed)
    channels = shape[1]
    # Offset and scaled data: a channel mean far from 0 is where naive variance formulas break.
    x = 3 * rng.standard_normal(shape) + 2
    return x, rng.standard_normal(channels), rng.standard_normal(channels), rng.random(channels) + 0.5


@settings(max_examples=20, deadline=None)
@given(bn_shapes, st.booleans(), st.booleans())
def test_batch_norm_matches_torch_float32_and_float64(shape, training, affine):
    torch = require_torch()
    TF = torch.nn.functional
    x, weight, bias, running_var = _bn_arrays(shape, seed=11)
    running_mean = -weight
    for dtype in (np.float32, np.float64):
        ours_stats = minicnn.tensor(running_mean.astype(dtype)), minicnn.tensor(running_var.astype(dtype))
        theirs_stats = torch.tensor(running_mean.astype(dtype)), torch.tensor(running_var.astype(dtype))

        def ours(x, *params, stats=ours_stats):
            return batch_norm(x, *stats, *(params or (None, None)), training=training)

        def theirs(x, *params, stats=theirs_stats):
            return TF.batch_norm(x, *stats, *(params or (None, None)), training=training)

        compare_with_torch(ours, theirs, [x, weight, bias] if affine else [x], dtype=dtype, seed=12)


@settings(max_examples=15, deadline=None)
@given(bn_shapes, st.booleans())
def test_batch_norm_gradcheck(shape, training):
    x, weight, bias, running_var = _bn_arrays(shape, seed=13)
    running_mean, running_var = minicnn.tensor(-bias), minicnn.tensor(running_var)
    assert minicnn.gradcheck(
        lambda x, w, b: batch_norm(x, running_mean, running_var, w, b, training=training), [x, weight, bias])


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 3, 4, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_running_statistics_follow_torch_over_several_steps(shape, dtype):
    torch = require_torch()
    channels = shape[1]
    ours_mean, ours_var = minicnn.zeros(channels, dtype=dtype), minicnn.ones(channels, dtype=dtype)
    theirs_mean, theirs_var = torch.zeros(channels, dtype=torch.float64 if dtype == np.float64 else torch.float32), \
        torch.ones(channels, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    rng = np.random.default_rng(14)
    for step in range(4):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        ours = batch_norm(minicnn.tensor(x), ours_mean, ours_var, training=True, momentum=0.3)
        theirs = torch.nn.functional.batch_norm(torch.tensor(x), theirs_mean, theirs_var, training=True, momentum=0.3)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours_mean.numpy(), theirs_mean.numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(ours_var.numpy(), theirs_var.numpy(), rtol=tolerance, atol=tolerance)
    assert ours_mean.dtype == dtype and ours_var.dtype == dtype
    # Evaluation now uses the running statistics, exactly as torch does.
    x = rng.standard_normal(shape).astype(dtype)
    ours = batch_norm(minicnn.tensor(x), ours_mean, ours_var, training=False)
    theirs = torch.nn.functional.batch_norm(torch.tensor(x), theirs_mean, theirs_var, training=False)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)


def test_batch_norm_training_normalises_each_channel_to_mean_0_variance_1():
    x = np.random.default_rng(15).standard_normal((8, 4, 3, 3)).astype(np.float32) * 5 + 100
    y = batch_norm(minicnn.tensor(x), None, None, training=True).numpy()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)


def test_batch_norm_updates_running_statistics_under_no_grad():
    running_mean, running_var = minicnn.zeros(2), minicnn.ones(2)
    x = minicnn.tensor(np.array([[1.0, 10.0], [3.0, 30.0]], dtype=np.float32))
    with minicnn.no_grad():
        batch_norm(x, running_mean, running_var, training=True, momentum=0.5)
    np.testing.assert_allclose(running_mean.numpy(), [1.0, 10.0])
    # Unbiased batch variances 2 and 200, halfway from 1.
    np.testing.assert_allclose(running_var.numpy(), [1.5, 100.5])


def test_batch_norm_without_running_statistics_uses_the_batch_even_in_eval():
    x = minicnn.tensor(np.array([[1.0], [3.0]], dtype=np.float32))
    y = batch_norm(x, None, None, training=False, eps=0.0)
    np.testing.assert_allclose(y.numpy(), [[-1.0], [1.0]])


# --- local response norm -------------------------------------------------------
lrn_shapes = st.one_of(
    st.tuples(st.integers(1, 2), st.integers(1, 8), st.integers(1, 4)),
    st.tuples(st.integers(1, 2), st.integers(1, 8), st.integers(1, 3), st.integers(1, 3)),
)


@settings(max_examples=20, deadline=None)
@given(lrn_shapes, st.integers(1, 7), st.floats(0.01, 2.0), st.floats(0.25, 1.5), st.floats(0.5, 3.0))
def test_local_response_norm_matches_torch_float32_and_float64(shape, size, alpha, beta, k):

    TF = require_torch().nn.functional
    x = np.random.default_rng(16).standard_normal(shape)
    for dtype in (np.float32, np.float64):
        compare_with_torch(lambda t: local_response_norm(t, size, alpha, beta, k),
                           lambda t: TF.local_response_norm(t, size, alpha, beta, k), [x], dtype=dtype)


@settings(max_examples=15, deadline=None)
@given(lrn_shapes, st.integers(1, 6))
def test_local_response_norm_gradcheck(shape, size):
    x = np.random.default_rng(17).standard_normal(shape)
    assert minicnn.gradcheck(lambda t: local_response_norm(t, size, alpha=0.7, beta=0.75, k=1.0), [x])


def test_local_response_norm_alexnet_setting_matches_torch_on_a_5d_input():

    TF = require_torch().nn.functional
    x = np.random.default_rng(18).standard_normal((2, 6, 2, 3, 2)) * 10
    compare_with_torch(lambda t: local_response_norm(t, 5, 1e-4, 0.75, 2.0),
                       lambda t: TF.local_response_norm(t, 5, 1e-4, 0.75, 2.0), [x], dtype=np.float32)


# --- bad input ----------------------------------------------------------------
def _stats(channels):
    return minicnn.zeros(channels), minicnn.ones(channels)


@pytest.mark.parametrize("call, error, message", [
    (lambda: batch_norm(minicnn.zeros(1, 3), None, None, training=True), ValueError,
     r"batch_norm: expected more than 1 value per channel when training, got input of shape \(1, 3\)"),
    (lambda: batch_norm(minicnn.zeros(1, 3, 1, 1), *_stats(3), training=True), ValueError,
     r"batch_norm: expected more than 1 value per channel when training, got input of shape \(1, 3, 1, 1\)"),
    (lambda: batch_norm(minicnn.zeros(4, 3), *_stats(3), weight=minicnn.ones(4)), ValueError,
     r"batch_norm: weight has shape \(4,\) but the input has 3 channels"),
    (lambda: batch_norm(minicnn.zeros(4, 3), *_stats(2)), ValueError,
     r"batch_norm: running_mean has shape \(2,\) but the input has 3 channels"),
    (lambda: batch_norm(minicnn.zeros(4, 3), minicnn.zeros(3), None), ValueError,
     r"batch_norm: running_mean and running_var must both be Tensors or both be None"),
    (lambda: batch_norm(minicnn.zeros(4, 3), *_stats(3), bias=np.zeros(3)), TypeError,
     r"batch_norm: bias must be a Tensor or None, got ndarray"),
    (lambda: batch_norm(minicnn.zeros(4), None, None), ValueError,
     r"batch_norm: expected input of shape \(N, C, ...\) with at least 2 dimensions, got \(4,\)"),
    (lambda: batch_norm(minicnn.tensor(np.zeros((4, 3), dtype=np.int32)), None, None), TypeError,
     r"batch_norm: expected a floating-point input, got dtype int32"),
    (lambda: local_response_norm(minicnn.zeros(2, 3), 2), ValueError,
     r"local_response_norm: expected input of shape \(N, C, ...\) with at least 3 dimensions, got \(2, 3\)"),
    (lambda: local_response_norm(minicnn.zeros(2, 3, 4), 0), ValueError,
     r"local_response_norm: size must be positive, got 0"),
    (lambda: local_response_norm(minicnn.zeros(2, 3, 4), 1.5), TypeError,
     r"local_response_norm: size must be an int, got float 1.5"),
    (lambda: local_response_norm([[[1.0]]], 1), TypeError, r"local_response_norm: input must be a Tensor, got list"),
])
def test_normalization_rejects_bad_input_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()
