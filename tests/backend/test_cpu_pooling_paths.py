"""The NumPy pooling kernels' fast passes against one-window-at-a-time loops and PyTorch.

The kernels take each window apart (a column pass, then a row pass, over strided
"taps"), cut the planes into blocks shared between threads, and follow the input's
memory layout.  Each geometry below sends the passes down a different road (exact
tiling, a dropped last row, ceil_mode overhang, padding, dilation, windows that skip
inputs or lie wholly in the padding); the loops are the definition they must meet.
"""
import numpy as np
import pytest
from oracle import require_torch

from minicnn.backend.cpu import pooling, threads
from minicnn.shapes import conv_output_size

# (kernel, stride, padding, dilation, ceil_mode, (H, W))
GEOMETRIES = {
    "2x2 stride 2 tiling the input": ((2, 2), (2, 2), (0, 0), (1, 1), False, (8, 6)),
    "2x2 stride 2, odd size drops the last row and column": ((2, 2), (2, 2), (0, 0), (1, 1), False, (7, 5)),
    "2x2 stride 2, ceil_mode keeps the overhanging window": ((2, 2), (2, 2), (0, 0), (1, 1), True, (7, 5)),
    "3x3 stride 2 padding 1 (ResNet stem)": ((3, 3), (2, 2), (1, 1), (1, 1), False, (9, 8)),
    "3x3 stride 2 padding 1, ceil_mode": ((3, 3), (2, 2), (1, 1), (1, 1), True, (8, 9)),
    "3x3 stride 1 padding 1 (GoogLeNet)": ((3, 3), (1, 1), (1, 1), (1, 1), True, (5, 6)),
    "3x3 dilation 2 padding 1": ((3, 3), (1, 2), (1, 1), (2, 2), False, (7, 8)),
    "kernel smaller than stride: inputs skipped": ((2, 2), (3, 3), (0, 1), (1, 1), False, (8, 7)),
    "1x1 stride 2": ((1, 1), (2, 2), (0, 0), (1, 1), False, (5, 6)),
    "rectangular 2x3": ((2, 3), (1, 2), (1, 1), (1, 2), True, (6, 9)),
    "dilated windows wholly in the padding": ((2, 2), (1, 1), (1, 1), (2, 2), False, (1, 3)),
}


def output_size(geometry):
    kernel, stride, padding, dilation, ceil_mode, size = geometry
    return tuple(conv_output_size(*axis, ceil_mode) for axis in zip(size, kernel, stride, padding, dilation))


def sample(kind, shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "distinct":
        values = rng.standard_normal(shape)
    elif kind == "ties":  # three values only: most windows hold several equal maxima
        values = rng.integers(-1, 2, shape).astype(float)
    elif kind == "negative":  # every input below 0: a 0-padded max would be wrong everywhere near the border
        values = -1.0 - rng.random(shape)
    else:  # "nan and -inf": windows of nothing but −inf, and NaN after a real maximum
        values = rng.choice([-np.inf, -1.0, 0.0, 1.0, np.nan], size=shape, p=[0.4, 0.15, 0.15, 0.15, 0.15])
    return values.astype(dtype)


def loop_max_pool(x, kernel, stride, padding, dilation, out_size):
    """One window at a time: −inf padding, the first of equal maxima wins, a NaN window gives (NaN, 0)."""
    y = np.empty(x.shape[:2] + out_size, dtype=x.dtype)
    window_argmax = np.zeros(y.shape, dtype=np.int32)
    for n, c, oh, ow in np.ndindex(*y.shape):
        best, best_offset = -np.inf, 0
        for i, j in np.ndindex(*kernel):
            row, col = oh * stride[0] - padding[0] + i * dilation[0], ow * stride[1] - padding[1] + j * dilation[1]
            if not (0 <= row < x.shape[2] and 0 <= col < x.shape[3]):
                continue
            value = x[n, c, row, col]
            if np.isnan(value):
                best, best_offset = np.nan, 0
                break
            if value > best:
                best, best_offset = value, i * kernel[1] + j
        y[n, c, oh, ow], window_argmax[n, c, oh, ow] = best, best_offset
    return y, window_argmax


def loop_max_pool_backward(gy, window_argmax, x_shape, kernel, stride, padding, dilation):
    gx = np.zeros(x_shape, dtype=gy.dtype)
    for n, c, oh, ow in np.ndindex(*gy.shape):
        i, j = divmod(int(window_argmax[n, c, oh, ow]), kernel[1])
        row, col = oh * stride[0] - padding[0] + i * dilation[0], ow * stride[1] - padding[1] + j * dilation[1]
        if 0 <= row < x_shape[2] and 0 <= col < x_shape[3]:  # a maximum in the padding passes nothing
            gx[n, c, row, col] += gy[n, c, oh, ow]
    return gx


def run_max_pool(x, geometry, seed=1):
    kernel, stride, padding, dilation, _, _ = geometry
    y, window_argmax = pooling.max_pool2d_forward(x, kernel, stride, padding, dilation, output_size(geometry))
    gy = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
    gx = pooling.max_pool2d_backward(gy, window_argmax, x.shape, kernel, stride, padding, dilation)
    return y, window_argmax, gy, gx


@pytest.fixture
def many_blocks_on_two_threads(monkeypatch):
    """One plane per block and two threads even for tiny inputs: the block and thread seams get exercised."""
    previous = threads.num_threads()
    monkeypatch.setattr(pooling, "BLOCK_BYTES", 1)
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_THREAD", 1)
    threads.set_num_threads(2)
    yield
    threads.set_num_threads(previous)


# --- max pooling -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["distinct", "ties", "negative", "nan and -inf"])
@pytest.mark.parametrize("name", GEOMETRIES)
def test_max_pool_kernels_match_the_window_loop(name, kind, dtype):
    geometry = GEOMETRIES[name]
    kernel, stride, padding, dilation, _, size = geometry
    x = sample(kind, (2, 3, *size), dtype)
    y, window_argmax, gy, gx = run_max_pool(x, geometry)
    expected_y, expected_argmax = loop_max_pool(x, kernel, stride, padding, dilation, output_size(geometry))
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(window_argmax, expected_argmax)
    assert y.dtype == dtype and window_argmax.dtype == np.int32
    expected_gx = loop_max_pool_backward(gy, expected_argmax, x.shape, kernel, stride, padding, dilation)
    np.testing.assert_allclose(gx, expected_gx, rtol=1e-6, atol=1e-12)
    assert gx.shape == x.shape and gx.dtype == dtype


@pytest.mark.parametrize("name", GEOMETRIES)
def test_max_pool_blocks_and_threads_do_not_change_the_result(name, many_blocks_on_two_threads):
    geometry = GEOMETRIES[name]
    x = sample("ties", (3, 4, *geometry[-1]), np.float32)
    kernel, stride, padding, dilation, _, _ = geometry
    expected_y, expected_argmax = loop_max_pool(x, kernel, stride, padding, dilation, output_size(geometry))
    y, window_argmax, gy, gx = run_max_pool(x, geometry)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(window_argmax, expected_argmax)
    np.testing.assert_allclose(gx, loop_max_pool_backward(gy, expected_argmax, x.shape, kernel, stride, padding,
                                                          dilation), rtol=1e-6)


def test_max_pool_follows_a_channel_major_input_without_changing_values():
    geometry = GEOMETRIES["3x3 stride 2 padding 1 (ResNet stem)"]
    x = sample("distinct", (2, 3, 9, 8), np.float32)
    channel_major = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)  # as conv outputs are
    y, window_argmax, _, gx = run_max_pool(x, geometry)
    y_cm, argmax_cm, _, gx_cm = run_max_pool(channel_major, geometry)
    np.testing.assert_array_equal(y_cm, y)
    np.testing.assert_array_equal(argmax_cm, window_argmax)
    np.testing.assert_array_equal(gx_cm, gx)
    # The output keeps the input's layout (its planes were read in memory order, no copy).
    assert y_cm.transpose(1, 0, 2, 3).flags.c_contiguous and y.flags.c_contiguous


def test_max_pool_nan_and_all_minus_infinity_windows_report_offset_zero():
    x = np.full((1, 1, 4, 4), -np.inf, dtype=np.float32)
    x[0, 0, 0, 3] = 5.0  # window (0, 1) meets it first, at offset 1·3 + 2 = 5 ...
    x[0, 0, 1, 1:3] = 7.0, np.nan  # ... then a NaN: the window is NaN, and its offset 0, not 5
    y, window_argmax = pooling.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1), (1, 1), (2, 2))
    # The 7 sits at offset (2, 2) of window (0, 0) and (0, 2) of window (1, 0).
    np.testing.assert_array_equal(y[0, 0], [[7.0, np.nan], [7.0, np.nan]])
    np.testing.assert_array_equal(window_argmax[0, 0], [[8, 0], [2, 0]])
    # A lone window whose first real tap is not offset 0: all −inf still reports 0, and its gradient
    # (offset 0 is in the padding) is dropped.
    lone = np.full((1, 1, 2, 2), -np.inf, dtype=np.float64)
    y, window_argmax = pooling.max_pool2d_forward(lone, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1))
    assert y.item() == -np.inf and window_argmax.item() == 0
    gx = pooling.max_pool2d_backward(np.ones((1, 1, 1, 1)), window_argmax, lone.shape, (3, 3), (2, 2), (1, 1), (1, 1))
    np.testing.assert_array_equal(gx, np.zeros(lone.shape))


@pytest.mark.parametrize("kind", ["distinct", "ties", "negative"])
@pytest.mark.parametrize("shape, kernel, stride, padding", [
    ((2, 4, 12, 10), 2, 2, 0),   # the benchmark's VGG pool, scaled down
    ((2, 4, 14, 13), 3, 2, 1),   # the benchmark's ResNet stem pool, scaled down
])
def test_max_pool_kernels_match_torch_values_indices_and_gradient(shape, kernel, stride, padding, kind):
    torch = require_torch()
    x = sample(kind, shape, np.float32)
    geometry = ((kernel,) * 2, (stride,) * 2, (padding,) * 2, (1, 1), False, shape[2:])
    y, window_argmax, gy, gx = run_max_pool(x, geometry)
    indices = pooling.max_pool2d_input_indices(window_argmax, shape, *geometry[:4])
    x_torch = torch.tensor(x, requires_grad=True)
    expected_y, expected_indices = torch.nn.functional.max_pool2d(x_torch, kernel, stride, padding,
                                                                  return_indices=True)
    expected_y.backward(torch.tensor(gy))
    np.testing.assert_array_equal(y, expected_y.detach().numpy())
    np.testing.assert_array_equal(indices, expected_indices.numpy())
    np.testing.assert_allclose(gx, x_torch.grad.numpy(), rtol=1e-6, atol=1e-7)


# --- average pooling ---------------------------------------------------------------------------
def loop_avg_windows(x_shape, kernel, stride, padding, out_size, count_include_pad, divisor_override):
    """Per output: its window's input rows and columns, and PyTorch's divisor (the window clipped to
    [−p, size + p), then, without count_include_pad, to the input)."""
    for n, c, oh, ow in np.ndindex(*x_shape[:2], *out_size):
        top, left = oh * stride[0] - padding[0], ow * stride[1] - padding[1]
        bottom = min(top + kernel[0], x_shape[2] + padding[0])
        right = min(left + kernel[1], x_shape[3] + padding[1])
        count = (bottom - top) * (right - left)
        top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, x_shape[2]), min(right, x_shape[3])
        if not count_include_pad:
            count = (bottom - top) * (right - left)
        yield (n, c, oh, ow), (n, c, slice(top, bottom), slice(left, right)), divisor_override or count


def loop_avg_pool(x, *window_args):
    y = np.empty(x.shape[:2] + window_args[3], dtype=x.dtype)
    for output, window, divisor in loop_avg_windows(x.shape, *window_args):
        y[output] = x[window].astype(np.float64).sum() / divisor
    return y


def loop_avg_pool_backward(gy, x_shape, *window_args):
    gx = np.zeros(x_shape, dtype=np.float64)
    for output, window, divisor in loop_avg_windows(x_shape, *window_args):
        gx[window] += gy[output] / divisor
    return gx


AVG_GEOMETRIES = {name: geometry for name, geometry in GEOMETRIES.items() if geometry[3] == (1, 1)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count_include_pad, divisor_override", [(True, None), (False, None), (True, 5)])
@pytest.mark.parametrize("name", AVG_GEOMETRIES)
def test_avg_pool_kernels_match_the_window_loop(name, count_include_pad, divisor_override, dtype):
    kernel, stride, padding, _, _, size = geometry = AVG_GEOMETRIES[name]
    window_args = (kernel, stride, padding, output_size(geometry), count_include_pad, divisor_override)
    x = sample("distinct", (2, 3, *size), dtype)
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    y = pooling.avg_pool2d_forward(x, *window_args)
    np.testing.assert_allclose(y, loop_avg_pool(x, *window_args), rtol=tolerance, atol=tolerance)
    gy = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    gx = pooling.avg_pool2d_backward(gy, x.shape, *window_args[:3], count_include_pad, divisor_override)
    np.testing.assert_allclose(gx, loop_avg_pool_backward(gy, x.shape, *window_args), rtol=tolerance, atol=tolerance)
    assert y.dtype == gx.dtype == dtype and gx.shape == x.shape


def test_avg_pool_blocks_and_threads_do_not_change_the_result(many_blocks_on_two_threads):
    kernel, stride, padding, _, _, size = geometry = GEOMETRIES["3x3 stride 2 padding 1, ceil_mode"]
    x = sample("distinct", (3, 4, *size), np.float64)
    window_args = (kernel, stride, padding, output_size(geometry), False, None)
    y = pooling.avg_pool2d_forward(x, *window_args)
    np.testing.assert_allclose(y, loop_avg_pool(x, *window_args), rtol=1e-12)
    gy = np.random.default_rng(2).standard_normal(y.shape)
    np.testing.assert_allclose(pooling.avg_pool2d_backward(gy, x.shape, kernel, stride, padding, False),
                               loop_avg_pool_backward(gy, x.shape, *window_args), rtol=1e-12)


@pytest.mark.parametrize("in_size, out_size", [((14, 14), (7, 7)), ((12, 9), (4, 3)), ((7, 7), (7, 7))])
def test_adaptive_avg_pool_with_equal_bins_matches_torch(in_size, out_size):
    torch = require_torch()
    x = sample("distinct", (2, 3, *in_size), np.float64)
    gy = np.random.default_rng(3).standard_normal((2, 3, *out_size))
    x_torch = torch.tensor(x, requires_grad=True)
    expected = torch.nn.functional.adaptive_avg_pool2d(x_torch, out_size)
    expected.backward(torch.tensor(gy))
    np.testing.assert_allclose(pooling.adaptive_avg_pool2d_forward(x, out_size), expected.detach().numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(pooling.adaptive_avg_pool2d_backward(gy, x.shape), x_torch.grad.numpy(), rtol=1e-12)
