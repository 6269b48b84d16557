"""kernels/batchnorm.cu, softmax.cu and lrn.cu, run on the CPU emulator, against the NumPy kernels.

Every launch uses the configuration in minicnn/backend/cuda/launch.py (what the
CuPy backend uses); a few tests also launch with other grids and blocks to pin
down that the grid-stride loops and the block reductions do not depend on them.
"""
import numpy as np
import pytest
from pairwise import all_pairs

from minicnn.backend.cpu import loss as cpu_loss
from minicnn.backend.cpu import normalization as cpu_norm

DTYPES = [np.float32, np.float64]


def suffix(dtype):
    return {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[np.dtype(dtype)]


def run(emulator, op, work, dtype, args):
    """Launch ``<op>_f32`` or ``<op>_f64`` with the CuPy backend's configuration for these work sizes."""
    emulator.launch_op(op, work, f"{op}_{suffix(dtype)}", args)


def assert_close(actual, expected, dtype, rtol32=2e-6):
    """float64 to ~1e-12, float32 to a few ulps (reductions sum in another order than NumPy)."""
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype == np.dtype(dtype)
    rtol = 1e-12 if np.dtype(dtype) == np.float64 else rtol32
    scale = float(np.max(np.abs(expected))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-30))


def random(rng, shape, dtype, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(dtype)


# --- batch norm -----------------------------------------------------------------
BN_SHAPES = [(4, 3, 5), (3, 2, 1), (2, 5, 37), (1, 1, 300)]  # (N, C, L): odd sizes, BN1d, > 128 values


def bn_statistics(emulator, x, eps, grid=None, block=None):
    n, c, length = x.shape
    mean, var, invstd = (np.empty(c, dtype=x.dtype) for _ in range(3))
    args = [x, mean, var, invstd, np.int64(n), np.int64(c), np.int64(length), eps]
    name = f"batch_norm_statistics_{suffix(x.dtype)}"
    if grid is None:
        emulator.launch_op("batch_norm_statistics", (c,), name, args)
    else:
        emulator.launch(name, grid, block, args)
    return mean, var, invstd


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_statistics_match_numpy(emulator, dtype, shape):
    x = random(np.random.default_rng(1), shape, dtype, scale=2.0, shift=0.5)
    for actual, expected in zip(bn_statistics(emulator, x, 1e-5), cpu_norm.batch_norm_statistics(x, 1e-5)):
        assert_close(actual, expected, dtype)


def test_float32_batch_norm_sums_in_double_over_a_long_channel(emulator):
    # One channel of 256x112x112 / 16 values: each of the 128 threads adds up ~12,500 of them.
    # A float32 running sum near 1e6 has an ulp of 0.06 and drifts by whole units; the double
    # accumulator keeps the mean within float32 rounding of the exact float64 mean.
    x = random(np.random.default_rng(3), (16, 1, 100_352), np.float32, scale=1.0, shift=100.0)
    mean, var, _ = bn_statistics(emulator, x, 1e-5)
    exact = x.astype(np.float64)
    assert abs(mean[0] - exact.mean()) <= 1.2e-7 * abs(exact.mean())
    assert abs(var[0] - exact.var()) <= 1e-6 * exact.var()
    gy = random(np.random.default_rng(4), x.shape, np.float32, shift=1.0)
    grad_weight, grad_bias = np.empty(1, np.float32), np.empty(1, np.float32)
    invstd = np.ones(1, np.float32)
    run(emulator, "batch_norm_backward_reduce", (1,), np.float32,
        [gy, x, mean, invstd, grad_weight, grad_bias, np.int64(16), np.int64(1), np.int64(100_352)])
    exact_bias = gy.astype(np.float64).sum()
    exact_weight = (gy.astype(np.float64) * (exact - np.float64(mean[0]))).sum()
    assert abs(grad_bias[0] - exact_bias) <= 1.2e-7 * abs(exact_bias)
    assert abs(grad_weight[0] - exact_weight) <= 1e-6 * np.abs(gy.astype(np.float64) * (exact - mean[0])).sum()


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_variance_is_accurate_when_the_mean_dwarfs_the_spread(emulator, dtype):
    # |mean| = 1e4, std = 1e-2: in float32 x² is 1e8 with an ulp of 8, so E[x²] − E[x]² would
    # lose every digit of the 1e-4 variance; two passes only pay for the rounding of the mean.
    x = random(np.random.default_rng(2), (4, 2, 33), dtype, scale=1e-2, shift=1e4)
    mean, var, _ = bn_statistics(emulator, x, 1e-5)
    exact = x.astype(np.float64).var(axis=(0, 2))
    np.testing.assert_allclose(var, exact, rtol=1e-2 if dtype == np.float32 else 1e-9)
    assert_close(mean, cpu_norm.batch_norm_statistics(x, 1e-5)[0], dtype)


@pytest.mark.parametrize("grid, block", [((1, 1, 1), (32, 1, 1)), ((2, 1, 1), (64, 1, 1)),
                                         ((7, 1, 1), (96, 1, 1))])
def test_batch_norm_reductions_do_not_depend_on_grid_or_block(emulator, grid, block):
    # Fewer blocks than channels exercises the loop over channels; 1 to 3 warps the block_sum.
    x = random(np.random.default_rng(3), (3, 5, 21), np.float64)
    expected_statistics = cpu_norm.batch_norm_statistics(x, 1e-3)
    for actual, expected in zip(bn_statistics(emulator, x, 1e-3, grid, block), expected_statistics):
        assert_close(actual, expected, np.float64)
    gy = random(np.random.default_rng(4), x.shape, np.float64)
    mean, _, invstd = cpu_norm.batch_norm_statistics(x, 1e-3)
    grad_weight, grad_bias = np.empty(5), np.empty(5)
    emulator.launch("batch_norm_backward_reduce_f64", grid, block,
                    [gy, x, mean, invstd, grad_weight, grad_bias, np.int64(3), np.int64(5), np.int64(21)])
    _, expected_weight, expected_bias = cpu_norm.batch_norm_backward(gy, x, mean, invstd, None, True)
    assert_close(grad_weight, expected_weight, np.float64)
    assert_close(grad_bias, expected_bias, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_invstd_matches_numpy(emulator, dtype):
    var = np.abs(random(np.random.default_rng(5), (7,), dtype))
    invstd = np.empty_like(var)
    run(emulator, "batch_norm_invstd", (7,), dtype, [var, invstd, np.int64(7), 1e-5])
    assert_close(invstd, cpu_norm.batch_norm_invstd(var, 1e-5), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
def test_batch_norm_forward_matches_numpy(emulator, dtype, affine):
    rng = np.random.default_rng(6)
    x = random(rng, (3, 4, 10), dtype)
    mean, _, invstd = cpu_norm.batch_norm_statistics(x, 1e-5)
    weight = random(rng, (4,), dtype) if affine in ("both", "weight") else None
    bias = random(rng, (4,), dtype) if affine in ("both", "bias") else None
    y = np.empty_like(x)
    run(emulator, "batch_norm_forward", (x.size,), dtype,
        [x, mean, invstd, weight, bias, y, np.int64(3), np.int64(4), np.int64(10)])
    assert_close(y, cpu_norm.batch_norm_forward(x, mean, invstd, weight, bias), dtype)


def bn_backward(emulator, gy, x, mean, invstd, weight, batch_statistics):
    n, c, length = x.shape
    sizes = [np.int64(n), np.int64(c), np.int64(length)]
    grad_weight, grad_bias = np.empty(c, dtype=x.dtype), np.empty(c, dtype=x.dtype)
    run(emulator, "batch_norm_backward_reduce", (c,), x.dtype,
        [gy, x, mean, invstd, grad_weight, grad_bias, *sizes])
    grad_x = np.empty_like(x)
    run(emulator, "batch_norm_backward_input", (x.size,), x.dtype,
        [gy, x, mean, invstd, weight, grad_weight, grad_bias, grad_x, *sizes,
         np.int32(batch_statistics)])
    return grad_x, grad_weight, grad_bias


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_statistics", [True, False])
@pytest.mark.parametrize("with_weight", [True, False])
def test_batch_norm_backward_matches_numpy(emulator, dtype, batch_statistics, with_weight):
    rng = np.random.default_rng(7)
    x = random(rng, (5, 3, 7), dtype, scale=3.0, shift=-1.0)
    gy = random(rng, x.shape, dtype)
    weight = random(rng, (3,), dtype) if with_weight else None
    if batch_statistics:
        mean, _, invstd = cpu_norm.batch_norm_statistics(x, 1e-5)
    else:  # running statistics: constants, unrelated to this batch
        mean, invstd = random(rng, (3,), dtype), np.abs(random(rng, (3,), dtype)) + dtype(0.5)
    actual = bn_backward(emulator, gy, x, mean, invstd, weight, batch_statistics)
    expected = cpu_norm.batch_norm_backward(gy, x, mean, invstd, weight, batch_statistics)
    # dx subtracts two means from gy: cancellation, so float32 is compared at the scale of gy.
    for got, want in zip(actual, expected):
        assert_close(got, want, dtype, rtol32=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_backward_input_gradient_sums_to_zero(emulator, dtype):
    # With batch statistics dx is orthogonal to 1 and to x̂ in each channel: a property, not a copy.
    rng = np.random.default_rng(8)
    x = random(rng, (6, 2, 5), dtype)
    mean, _, invstd = cpu_norm.batch_norm_statistics(x, 0.0)
    grad_x, _, _ = bn_backward(emulator, random(rng, x.shape, dtype), x, mean, invstd, None, True)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(grad_x.sum(axis=(0, 2)), 0.0, atol=tolerance)
    x_hat = (x - mean[None, :, None]) * invstd[None, :, None]
    np.testing.assert_allclose((grad_x * x_hat).sum(axis=(0, 2)), 0.0, atol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("which", ["both", "mean only", "var only"])
def test_batch_norm_running_stats_update_matches_numpy(emulator, dtype, which):
    rng = np.random.default_rng(9)
    running_mean, running_var = random(rng, (5,), dtype), np.abs(random(rng, (5,), dtype))
    mean, var = random(rng, (5,), dtype), np.abs(random(rng, (5,), dtype))
    expected_mean, expected_var = running_mean.copy(), running_var.copy()
    cpu_norm.batch_norm_update_running_stats(None if which == "var only" else expected_mean,
                                             None if which == "mean only" else expected_var,
                                             mean, var, 12, 0.1)
    actual_mean, actual_var = running_mean.copy(), running_var.copy()
    run(emulator, "batch_norm_update_running_stats", (5,), dtype,
        [None if which == "var only" else actual_mean, None if which == "mean only" else actual_var,
         mean, var, np.int64(5), 12.0, 0.1])
    assert_close(actual_mean, expected_mean, dtype)
    assert_close(actual_var, expected_var, dtype)
    if which != "var only":
        assert not np.array_equal(actual_mean, running_mean)  # it did move


# --- softmax, log-softmax -----------------------------------------------------------
# (shape, axis): C < 32 and C > 32 (several classes per lane), inner > 1, rows not a multiple of 4.
SOFTMAX_CASES = [((3, 5), 1), ((2, 40), 1), ((3, 5, 4), 1), ((2, 3, 7), 2), ((4, 3, 2), 0), ((9,), 0)]


def as_outer_classes_inner(shape, axis):
    outer = int(np.prod(shape[:axis]))
    inner = int(np.prod(shape[axis + 1:]))
    return outer, shape[axis], inner


# All pairs (tests/pairwise.py): each op at every shape, each of them in both dtypes.
@pytest.mark.parametrize("dtype, shape, axis, op", [
    (dtype, shape, axis, op)
    for dtype, (shape, axis), op in all_pairs(DTYPES, SOFTMAX_CASES, ["softmax", "log_softmax"])])
def test_softmax_forward_and_backward_match_numpy(emulator, dtype, shape, axis, op):
    rng = np.random.default_rng(10)
    x = random(rng, shape, dtype, scale=3.0)
    gy = random(rng, shape, dtype)
    outer, classes, inner = as_outer_classes_inner(shape, axis)
    sizes = [np.int64(outer), np.int64(classes), np.int64(inner)]
    forward, backward = getattr(cpu_loss, f"{op}_forward"), getattr(cpu_loss, f"{op}_backward")

    y = np.empty_like(x)
    run(emulator, f"{op}_forward", (outer * inner,), dtype, [x, y, *sizes])
    expected_y = forward(x, axis)
    assert_close(y, expected_y, dtype)

    gx = np.empty_like(x)
    run(emulator, f"{op}_backward", (outer * inner,), dtype, [gy, expected_y, gx, *sizes])
    assert_close(gx, backward(gy, expected_y, axis), dtype, rtol32=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_huge_logits_is_finite(emulator, dtype):
    x = np.array([[1e4, -1e4, 0.0, 9999.0], [-3e4, -3e4, -3e4, -3e4]], dtype=dtype)
    y, log_y = np.empty_like(x), np.empty_like(x)
    sizes = [np.int64(2), np.int64(4), np.int64(1)]
    run(emulator, "softmax_forward", (2,), dtype, [x, y, *sizes])
    run(emulator, "log_softmax_forward", (2,), dtype, [x, log_y, *sizes])
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(log_y))
    assert_close(y, cpu_loss.softmax_forward(x, 1), dtype)
    assert_close(log_y, cpu_loss.log_softmax_forward(x, 1), dtype)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)


def test_softmax_row_with_nan_is_nan(emulator):
    x = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]])
    y = np.empty_like(x)
    run(emulator, "softmax_forward", (2,), np.float64, [x, y, np.int64(2), np.int64(3), np.int64(1)])
    assert np.all(np.isnan(y[0])) and np.all(np.isfinite(y[1]))


@pytest.mark.parametrize("grid, block", [((1, 1, 1), (32, 1, 1)), ((2, 1, 1), (64, 1, 1))])
def test_softmax_does_not_depend_on_grid_or_block(emulator, grid, block):
    x = random(np.random.default_rng(11), (11, 37), np.float64)
    y = np.empty_like(x)
    emulator.launch("log_softmax_forward_f64", grid, block, [x, y, np.int64(11), np.int64(37), np.int64(1)])
    assert_close(y, cpu_loss.log_softmax_forward(x, 1), np.float64)


# --- cross-entropy ----------------------------------------------------------------------
def ce_forward(emulator, logits, target, weight, ignore_index, label_smoothing):
    batch, classes = logits.shape[:2]
    inner = int(np.prod(logits.shape[2:]))
    log_probs = np.empty_like(logits)
    losses = np.empty(target.shape, dtype=logits.dtype)
    target_weights = np.empty(target.shape, dtype=logits.dtype)
    run(emulator, "cross_entropy_forward", (batch * inner,), logits.dtype,
        [logits, target.astype(np.int64), weight, log_probs, losses, target_weights,
         np.int64(batch), np.int64(classes), np.int64(inner), np.int64(ignore_index), float(label_smoothing)])
    return losses, log_probs, target_weights


def ce_backward(emulator, grad_losses, log_probs, target, weight, ignore_index, label_smoothing):
    batch, classes = log_probs.shape[:2]
    inner = int(np.prod(log_probs.shape[2:]))
    grad_logits = np.empty_like(log_probs)
    run(emulator, "cross_entropy_backward", (batch * inner,), log_probs.dtype,
        [np.ascontiguousarray(grad_losses), log_probs, target.astype(np.int64), weight, grad_logits,
         np.int64(batch), np.int64(classes), np.int64(inner), np.int64(ignore_index), float(label_smoothing)])
    return grad_logits


CE_SHAPES = [(6, 5), (3, 40), (2, 4, 3, 2)]  # (N, C), C > 32, per-pixel (N, C, H, W)


# All pairs (tests/pairwise.py), 8 cases instead of 48: float32 meets huge logits, weights meet label
# smoothing, and every shape meets every other option.
@pytest.mark.parametrize("dtype, shape, label_smoothing, weighted, magnitude",
                         all_pairs(DTYPES, CE_SHAPES, [0.0, 0.1], [False, True], [3.0, 1e4]))
def test_cross_entropy_forward_and_backward_match_numpy(emulator, dtype, shape, label_smoothing, weighted,
                                                         magnitude):
    rng = np.random.default_rng(12)
    classes = shape[1]
    logits = random(rng, shape, dtype, scale=magnitude)
    target = rng.integers(0, classes, size=shape[:1] + shape[2:])
    target.reshape(-1)[1] = -100  # one ignored element
    weight = (rng.random(classes) + 0.5).astype(dtype) if weighted else None

    actual = ce_forward(emulator, logits, target, weight, -100, label_smoothing)
    expected = cpu_loss.cross_entropy_forward(logits, target, weight, -100, label_smoothing)
    for got, want in zip(actual, expected):
        assert np.all(np.isfinite(got))
        assert_close(got, want, dtype)
    assert actual[0].reshape(-1)[1] == 0 and actual[2].reshape(-1)[1] == 0

    grad_losses = random(rng, target.shape, dtype)
    log_probs = expected[1]
    got = ce_backward(emulator, grad_losses, log_probs, target, weight, -100, label_smoothing)
    want = cpu_loss.cross_entropy_backward(grad_losses, log_probs, target, weight, -100, label_smoothing)
    assert_close(got, want, dtype, rtol32=1e-5)


def test_cross_entropy_backward_takes_a_broadcast_gradient(emulator):
    # The "mean" reduction hands the kernel one scalar broadcast to (N,): made contiguous first.
    rng = np.random.default_rng(13)
    logits, target = random(rng, (4, 3), np.float64), np.array([0, 2, 1, 1])
    _, log_probs, _ = cpu_loss.cross_entropy_forward(logits, target, None, -100, 0.0)
    grad_losses = np.broadcast_to(np.float64(0.25), (4,))
    got = ce_backward(emulator, grad_losses, log_probs, target, None, -100, 0.0)
    want = cpu_loss.cross_entropy_backward(grad_losses, log_probs, target, None, -100, 0.0)
    assert_close(got, want, np.float64)
    np.testing.assert_allclose(got.sum(axis=1), 0.0, atol=1e-15)  # softmax − onehot sums to zero


def test_cross_entropy_target_out_of_range_gives_nan_not_a_stray_read(emulator):
    logits = random(np.random.default_rng(14), (3, 4), np.float64)
    target = np.array([1, 7, -3])
    losses, _, target_weights = ce_forward(emulator, logits, target, None, -100, 0.0)
    assert np.isfinite(losses[0]) and np.isnan(losses[1]) and np.isnan(losses[2])
    assert target_weights[0] == 1 and np.all(np.isnan(target_weights[1:]))
    _, log_probs, _ = cpu_loss.cross_entropy_forward(logits, np.array([1, 0, 0]), None, -100, 0.0)
    grad = ce_backward(emulator, np.ones(3), log_probs, target, None, -100, 0.0)
    assert np.all(np.isfinite(grad[0])) and np.all(np.isnan(grad[1:]))


# --- local response norm ------------------------------------------------------------------
LRN_CASES = [((2, 7, 3, 4), 5), ((2, 7, 3, 4), 2), ((1, 3, 5), 1), ((2, 4, 2, 2), 9), ((3, 6, 1, 1, 2), 4)]


def lrn_sizes(shape):
    return [np.int64(shape[0]), np.int64(shape[1]), np.int64(int(np.prod(shape[2:])))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, size", LRN_CASES)
def test_local_response_norm_forward_and_backward_match_numpy(emulator, dtype, shape, size):
    rng = np.random.default_rng(15)
    x = random(rng, shape, dtype, scale=2.0)
    gy = random(rng, shape, dtype)
    alpha, beta, k = 1e-2, 0.75, 2.0
    y, scale = np.empty_like(x), np.empty_like(x)
    run(emulator, "local_response_norm_forward", (x.size,), dtype,
        [x, y, scale, *lrn_sizes(shape), np.int32(size), alpha, beta, k])
    expected_y, expected_scale = cpu_norm.local_response_norm_forward(x, size, alpha, beta, k)
    assert_close(scale, expected_scale, dtype)
    assert_close(y, expected_y, dtype)

    grad_x = np.empty_like(x)
    run(emulator, "local_response_norm_backward", (x.size,), dtype,
        [gy, x, expected_y, expected_scale, grad_x, *lrn_sizes(shape), np.int32(size), alpha, beta])
    expected_grad_x = cpu_norm.local_response_norm_backward(gy, x, expected_y, expected_scale, size,
                                                            alpha, beta)
    assert_close(grad_x, expected_grad_x, dtype)


def test_local_response_norm_window_is_pytorchs(emulator):
    # One hot channel: with size 4 the window of c is c−2 … c+1, so a spike in channel 3
    # raises the scale of channels 2, 3, 4 and 5 only.
    x = np.zeros((1, 8, 1), dtype=np.float64)
    x[0, 3, 0] = 10.0
    y, scale = np.empty_like(x), np.empty_like(x)
    run(emulator, "local_response_norm_forward", (8,), np.float64,
        [x, y, scale, np.int64(1), np.int64(8), np.int64(1), np.int32(4), 1.0, 0.75, 1.0])
    raised = np.flatnonzero(scale[0, :, 0] > 1.0)
    assert raised.tolist() == [2, 3, 4, 5]
