"""kernels/pooling.cu, activation.cu and bias.cu, run on the CPU emulator, against the NumPy kernels.

Every launch uses the configuration in minicnn/backend/cuda/launch.py (what the
CuPy backend uses); a few tests also launch with a tiny grid to pin down that the
grid-stride loops cover any amount of work.
"""
import numpy as np
import pytest
from pairwise import all_pairs

from minicnn.backend.cpu import activation as cpu_activation
from minicnn.backend.cpu import pooling as cpu_pooling
from minicnn.backend.cpu.im2col import conv_output_size

DTYPES = [np.float32, np.float64]


def suffix(dtype):
    return {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}[np.dtype(dtype)]


def longs(*values):
    return [np.int64(v) for v in values]


def assert_close(actual, expected, dtype, rtol32=2e-6):
    """float64 to ~1e-12, float32 to a few ulps (sums may run in another order than NumPy's)."""
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype == np.dtype(dtype)
    assert actual.shape == expected.shape
    rtol = 1e-12 if np.dtype(dtype) == np.float64 else rtol32
    scale = float(np.max(np.abs(expected))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-30))


# --- pooling geometry ------------------------------------------------------------
class Pool:
    """One pooling geometry: x (N, C, H, W), window, stride, padding, dilation, ceil_mode."""

    def __init__(self, x_shape, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
        self.x_shape, self.kernel, self.stride = x_shape, kernel, stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.out_size = tuple(
            conv_output_size(size, k, s, p, d, ceil_mode)
            for size, k, s, p, d in zip(x_shape[2:], kernel, stride, padding, dilation))

    def __repr__(self):
        return (f"x{self.x_shape}-k{self.kernel}-s{self.stride}-p{self.padding}-d{self.dilation}"
                f"{'-ceil' if self.ceil_mode else ''}")

    @property
    def y_shape(self):
        return (*self.x_shape[:2], *self.out_size)

    def shape_args(self):
        return longs(*self.x_shape, *self.out_size)

    def window_args(self):
        return longs(*self.kernel, *self.stride, *self.padding)


POOLS = [
    Pool((2, 3, 7, 6), (3, 2), (2, 1), (1, 0), ceil_mode=True),  # odd sizes, rectangular window
    Pool((1, 2, 5, 5), (3, 3), (2, 2), (1, 1), dilation=(2, 2)),  # dilated
    Pool((2, 2, 9, 8), (2, 3), (3, 2), (1, 1), ceil_mode=True),  # stride > kernel: gaps between windows
    Pool((1, 1, 6, 6), (3, 3), (2, 2), (0, 0), ceil_mode=True),  # ceil_mode window overhangs past H + p
    Pool((3, 2, 4, 4), (2, 2), (2, 2), (0, 0)),  # plain non-overlapping 2x2
    Pool((1, 3, 8, 7), (3, 3), (1, 1), (1, 1)),  # stride 1: every pixel in up to 9 windows
]
AVG_POOLS = [pool for pool in POOLS if pool.dilation == (1, 1)]


def rand(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# --- max pooling -------------------------------------------------------------------
def max_pool_forward(emulator, x, pool, grid=None, block=None):
    y = np.empty(pool.y_shape, dtype=x.dtype)
    window_argmax = np.empty(pool.y_shape, dtype=np.int32)
    args = [x, y, window_argmax, *pool.shape_args(), *pool.window_args(), *longs(*pool.dilation)]
    name = f"max_pool2d_forward_{suffix(x.dtype)}"
    if grid is None:
        emulator.launch_op("max_pool2d_forward", (y.size,), name, args)
    else:
        emulator.launch(name, grid, block, args)
    return y, window_argmax


def max_pool_backward(emulator, gy, window_argmax, pool):
    gx = np.empty(pool.x_shape, dtype=gy.dtype)
    args = [gy, window_argmax, gx, *pool.shape_args(), *pool.window_args(), *longs(*pool.dilation)]
    emulator.launch_op("max_pool2d_backward", (gx.size,), f"max_pool2d_backward_{suffix(gy.dtype)}", args)
    return gx


def cpu_max_pool(x, pool):
    return cpu_pooling.max_pool2d_forward(x, pool.kernel, pool.stride, pool.padding, pool.dilation, pool.out_size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool", POOLS, ids=repr)
def test_max_pool_forward_and_backward_match_numpy(emulator, dtype, pool):
    rng = np.random.default_rng(5)
    x = rand(rng, pool.x_shape, dtype)
    y, window_argmax = max_pool_forward(emulator, x, pool)
    y_expected, argmax_expected = cpu_max_pool(x, pool)
    np.testing.assert_array_equal(y, y_expected)  # a max is a copy: exact
    assert window_argmax.dtype == np.int32
    np.testing.assert_array_equal(window_argmax, argmax_expected)

    gy = rand(rng, pool.y_shape, dtype)
    gx = max_pool_backward(emulator, gy, window_argmax, pool)
    expected = cpu_pooling.max_pool2d_backward(gy, argmax_expected, pool.x_shape, pool.kernel, pool.stride,
                                               pool.padding, pool.dilation)
    assert_close(gx, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_pads_with_minus_infinity_not_zero(emulator, dtype):
    # All inputs negative: a 0-padded pool would output 0 at the borders.
    pool = Pool((1, 2, 5, 5), (3, 3), (2, 2), (1, 1), ceil_mode=True)
    x = -np.abs(rand(np.random.default_rng(6), pool.x_shape, dtype)) - 1
    y, window_argmax = max_pool_forward(emulator, x, pool)
    assert np.all(y < 0)
    np.testing.assert_array_equal(y, cpu_max_pool(x, pool)[0])
    np.testing.assert_array_equal(window_argmax, cpu_max_pool(x, pool)[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_ties_pick_the_first_maximum_and_route_the_gradient_there(emulator, dtype):
    pool = Pool((1, 1, 4, 5), (2, 3), (1, 2), (0, 1))
    x = np.ones(pool.x_shape, dtype=dtype)
    x[0, 0, 2, 1:4] = 2.0  # ties inside windows, away from offset 0
    y, window_argmax = max_pool_forward(emulator, x, pool)
    y_expected, argmax_expected = cpu_max_pool(x, pool)
    np.testing.assert_array_equal(y, y_expected)
    np.testing.assert_array_equal(window_argmax, argmax_expected)
    gy = np.ones(pool.y_shape, dtype=dtype)
    gx = max_pool_backward(emulator, gy, window_argmax, pool)
    np.testing.assert_array_equal(gx, cpu_pooling.max_pool2d_backward(
        gy, argmax_expected, pool.x_shape, pool.kernel, pool.stride, pool.padding, pool.dilation))
    assert gx.sum() == gy.sum()  # every window sends its gradient to exactly one input


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_window_wholly_in_padding_gives_minus_infinity_and_no_gradient(emulator, dtype):
    # H = W = 1, dilation 2, padding 1: the window reads positions -1 and 1, both padding.
    pool = Pool((1, 2, 1, 1), (2, 2), (1, 1), (1, 1), dilation=(2, 2))
    assert pool.out_size == (1, 1)
    x = rand(np.random.default_rng(7), pool.x_shape, dtype)
    y, window_argmax = max_pool_forward(emulator, x, pool)
    assert np.all(np.isneginf(y))
    np.testing.assert_array_equal(window_argmax, cpu_max_pool(x, pool)[1])
    gx = max_pool_backward(emulator, np.ones(pool.y_shape, dtype=dtype), window_argmax, pool)
    np.testing.assert_array_equal(gx, np.zeros(pool.x_shape, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_nan_propagates_like_numpy(emulator, dtype):
    pool = Pool((1, 1, 4, 4), (2, 2), (2, 2), (0, 0))
    x = rand(np.random.default_rng(8), pool.x_shape, dtype)
    x[0, 0, 1, 1] = np.nan  # offset 3 of window (0, 0)
    y, window_argmax = max_pool_forward(emulator, x, pool)
    y_expected, argmax_expected = cpu_max_pool(x, pool)
    assert np.isnan(y[0, 0, 0, 0])
    np.testing.assert_array_equal(y, y_expected)  # NaNs compare equal here
    np.testing.assert_array_equal(window_argmax, argmax_expected)


def test_max_pool_grid_stride_loop_covers_more_work_than_threads(emulator):
    pool = POOLS[0]
    x = rand(np.random.default_rng(9), pool.x_shape, np.float64)
    y, window_argmax = max_pool_forward(emulator, x, pool, grid=(1,), block=(32,))
    assert y.size > 32
    np.testing.assert_array_equal(y, cpu_max_pool(x, pool)[0])
    np.testing.assert_array_equal(window_argmax, cpu_max_pool(x, pool)[1])


# --- average pooling ---------------------------------------------------------------
def avg_pool(emulator, direction, array, pool, count_include_pad, divisor_override):
    out_shape = pool.y_shape if direction == "forward" else pool.x_shape
    out = np.empty(out_shape, dtype=array.dtype)
    override = array.dtype.type(0 if divisor_override is None else divisor_override)
    args = [array, out, *pool.shape_args(), *pool.window_args(), np.int64(count_include_pad), override]
    op = f"avg_pool2d_{direction}"
    emulator.launch_op(op, (out.size,), f"{op}_{suffix(array.dtype)}", args)
    return out


# All pairs (tests/pairwise.py): every geometry under every divisor rule, each of them in both dtypes.
@pytest.mark.parametrize("dtype, pool, count_include_pad, divisor_override", [
    (dtype, pool, count_include_pad, divisor_override) for dtype, pool, (count_include_pad, divisor_override)
    in all_pairs(DTYPES, AVG_POOLS, [(True, None), (False, None), (True, 5)])],
    ids=lambda value: repr(value) if isinstance(value, Pool) else None)
def test_avg_pool_forward_and_backward_match_numpy(emulator, dtype, pool, count_include_pad, divisor_override):
    rng = np.random.default_rng(10)
    x = rand(rng, pool.x_shape, dtype)
    y = avg_pool(emulator, "forward", x, pool, count_include_pad, divisor_override)
    assert_close(y, cpu_pooling.avg_pool2d_forward(x, pool.kernel, pool.stride, pool.padding, pool.out_size,
                                                   count_include_pad, divisor_override), dtype)
    gy = rand(rng, pool.y_shape, dtype)
    gx = avg_pool(emulator, "backward", gy, pool, count_include_pad, divisor_override)
    assert_close(gx, cpu_pooling.avg_pool2d_backward(gy, pool.x_shape, pool.kernel, pool.stride, pool.padding,
                                                     count_include_pad, divisor_override), dtype)


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_divisors_follow_pytorch_at_padded_and_overhanging_windows(emulator, count_include_pad):
    # Ones in, so each output is (real inputs in the window) / divisor: the divisor rule, laid bare.
    torch = pytest.importorskip("torch")
    pool = Pool((1, 1, 6, 5), (3, 3), (2, 2), (1, 1), ceil_mode=True)
    x = np.ones(pool.x_shape, dtype=np.float64)
    y = avg_pool(emulator, "forward", x, pool, count_include_pad, None)
    expected = torch.nn.functional.avg_pool2d(torch.from_numpy(x), pool.kernel, pool.stride, pool.padding,
                                              ceil_mode=True, count_include_pad=count_include_pad).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-15)
    assert count_include_pad == bool(np.any(y < 1))  # padding counted: border windows average in zeros


# --- adaptive average pooling ------------------------------------------------------
ADAPTIVE = [((2, 3, 7, 5), (3, 2)), ((1, 2, 5, 5), (1, 1)), ((1, 2, 4, 6), (7, 9)), ((2, 1, 10, 7), (4, 3)),
            ((1, 1, 6, 6), (3, 3))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, out_size", ADAPTIVE, ids=str)
def test_adaptive_avg_pool_forward_and_backward_match_numpy(emulator, dtype, x_shape, out_size):
    # Overlapping bins (7 -> 3), global pooling (1, 1), more outputs than inputs (4 -> 7), exact division.
    rng = np.random.default_rng(11)
    sizes = longs(*x_shape, *out_size)
    x = rand(rng, x_shape, dtype)
    y = np.empty((*x_shape[:2], *out_size), dtype=dtype)
    emulator.launch_op("adaptive_avg_pool2d_forward", (y.size,), f"adaptive_avg_pool2d_forward_{suffix(dtype)}",
                       [x, y, *sizes])
    assert_close(y, cpu_pooling.adaptive_avg_pool2d_forward(x, out_size), dtype)
    gy = rand(rng, y.shape, dtype)
    gx = np.empty(x_shape, dtype=dtype)
    emulator.launch_op("adaptive_avg_pool2d_backward", (gx.size,), f"adaptive_avg_pool2d_backward_{suffix(dtype)}",
                       [gy, gx, *sizes])
    assert_close(gx, cpu_pooling.adaptive_avg_pool2d_backward(gy, x_shape), dtype)


# --- activations -------------------------------------------------------------------
ACTIVATIONS = ["relu", "relu6", "leaky_relu", "sigmoid", "tanh", "hardsigmoid", "hardswish"]
TAKES_OUTPUT = {"sigmoid", "tanh"}  # their backward takes y, as the NumPy kernels' do
TRANSCENDENTAL = {"sigmoid", "tanh"}  # libm's tanh and NumPy's may differ in the last bit


def activation_inputs(dtype):
    rng = np.random.default_rng(12)
    x = (rng.standard_normal(301) * 4).astype(dtype)  # 301: not a multiple of the block
    # The kinks (0, ±3, 6), a negative zero and the IEEE specials.
    x[:10] = [0.0, -0.0, -3.0, 3.0, 6.0, -6.0, np.nan, np.inf, -np.inf, 1e-30]
    gy = rng.standard_normal(301).astype(dtype)
    return x, gy


def launch_activation(emulator, name, direction, arrays, dtype, hyper, grid=None, block=None):
    out = np.empty_like(arrays[0])
    op = f"{name}_{direction}"
    kernel = f"{op}_{suffix(dtype)}"
    args = [*arrays, out, np.int64(out.size), *(dtype(h) for h in hyper)]
    if grid is None:
        emulator.launch_op(op, (out.size,), kernel, args)
    else:
        emulator.launch(kernel, grid, block, args)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_forward_and_backward_match_numpy(emulator, dtype, name):
    x, gy = activation_inputs(dtype)
    hyper = (0.01,) if name == "leaky_relu" else ()
    with np.errstate(invalid="ignore"):
        y_expected = getattr(cpu_activation, f"{name}_forward")(x, *hyper)
        saved = y_expected if name in TAKES_OUTPUT else x
        gx_expected = getattr(cpu_activation, f"{name}_backward")(gy, saved, *hyper)
    y = launch_activation(emulator, name, "forward", [x], dtype, hyper)
    gx = launch_activation(emulator, name, "backward", [gy, saved], dtype, hyper)
    if name in TRANSCENDENTAL:
        finite = np.isfinite(y_expected)
        np.testing.assert_array_equal(y[~finite], y_expected[~finite])
        assert_close(y[finite], y_expected[finite], dtype)
    else:
        np.testing.assert_array_equal(y, y_expected)  # same IEEE operations in the same order: exact
    np.testing.assert_array_equal(gx, gx_expected)


def test_activation_kinks_follow_pytorch(emulator):
    # ReLU'(0) = 0, ReLU6'(6) = 0, hardsigmoid'(±3) = 0, hardswish'(-3) = -1/2, hardswish'(3) = 3/2.
    x = np.array([0.0, 6.0, -3.0, 3.0], dtype=np.float64)
    gy = np.ones_like(x)
    kernel = {name: launch_activation(emulator, name, "backward", [gy, x], np.float64, ())
              for name in ("relu", "relu6", "hardsigmoid", "hardswish")}
    assert kernel["relu"][0] == 0 and kernel["relu6"][1] == 0
    np.testing.assert_array_equal(kernel["hardsigmoid"][2:], [0.0, 0.0])
    np.testing.assert_array_equal(kernel["hardswish"][2:], [-0.5, 1.5])


def test_activation_grid_stride_loop_covers_more_work_than_threads(emulator):
    x, _ = activation_inputs(np.float32)
    y = launch_activation(emulator, "hardswish", "forward", [x], np.float32, (), grid=(2,), block=(32,))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(y, cpu_activation.hardswish_forward(x))


# --- bias add and the per-channel sum of its gradient ------------------------------
# (outer, C, inner): conv output (N, C, H·W), channel-major conv output (1, C, N·OH·OW), linear (N, F, 1),
# and a channel longer than the 256-thread block (2·3·7·11 = 462 values per channel).
BIAS_LAYOUTS = [(3, 5, 12), (1, 4, 30), (7, 6, 1), (6, 3, 77)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", BIAS_LAYOUTS, ids=str)
def test_bias_add_matches_numpy(emulator, dtype, layout):
    outer, channels, inner = layout
    rng = np.random.default_rng(13)
    x = rand(rng, layout, dtype)
    bias = rand(rng, (channels,), dtype)
    y = np.empty_like(x)
    emulator.launch_op("bias_add", (x.size,), f"bias_add_{suffix(dtype)}", [x, bias, y, *longs(*layout)])
    np.testing.assert_array_equal(y, x + bias[:, None])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", BIAS_LAYOUTS, ids=str)
def test_channel_sum_matches_the_numpy_bias_gradient(emulator, dtype, layout):
    outer, channels, inner = layout
    gy = rand(np.random.default_rng(14), layout, dtype)
    out = np.empty(channels, dtype=dtype)
    emulator.launch_op("channel_sum", (channels,), f"channel_sum_{suffix(dtype)}", [gy, out, *longs(*layout)])
    assert_close(out, gy.sum(axis=(0, 2)), dtype)


def test_channel_sum_with_fewer_blocks_than_channels(emulator):
    # Block b sums channels b, b + gridDim.x, ...: a grid of 2 blocks still covers 5 channels.
    gy = rand(np.random.default_rng(15), (3, 5, 12), np.float64)
    out = np.empty(5, dtype=np.float64)
    emulator.launch("channel_sum_f64", (2,), (256,), [gy, out, *longs(3, 5, 12)])
    assert_close(out, gy.sum(axis=(0, 2)), np.float64)


def test_channel_sum_is_deterministic(emulator):
    gy = rand(np.random.default_rng(16), (6, 3, 77), np.float32)
    results = []
    for _ in range(2):
        out = np.empty(3, dtype=np.float32)
        emulator.launch_op("channel_sum", (3,), "channel_sum_f32", [gy, out, *longs(6, 3, 77)])
        results.append(out.tobytes())
    assert results[0] == results[1]
