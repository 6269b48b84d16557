"""max_pool2d, avg_pool2d, adaptive_avg_pool2d: against PyTorch, finite differences, and bad input."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from oracle import compare_with_torch, require_torch

import minicnn
from minicnn.functions.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from minicnn.shapes import conv_output_size


@st.composite
def pool_cases(draw, with_dilation=True):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if with_dilation else (1, 1)
    # Smallest input whose padded size holds one window (1×1 for 1×1 kernels or enough padding).
    min_h = max(1, dilation[0] * (kernel[0] - 1) + 1 - 2 * padding[0])
    min_w = max(1, dilation[1] * (kernel[1] - 1) + 1 - 2 * padding[1])
    h, w = draw(st.integers(min_h, min_h + 5)), draw(st.integers(min_w, min_w + 5))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    ceil_mode = draw(st.booleans())
    # A dilated window can fall wholly into the padding (PyTorch then outputs −inf); keep those out.
    assume(all(_every_window_sees_input(*axis, ceil_mode)
               for axis in zip((h, w), kernel, stride, padding, dilation)))
    return {"shape": shape, "kernel_size": kernel, "stride": stride, "padding": padding, "dilation": dilation,
                "ceil_mode": ceil_mode}


def _every_window_sees_input(size, kernel, stride, padding, dilation, ceil_mode):
    out = conv_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    return all(any(0 <= o * stride - padding + i * dilation < size for i in range(kernel)) for o in range(out))


def distinct_values(shape, seed=0):
    """A shuffled grid of distinct values 0.25 apart, half of them negative: no ties, exact in float32."""
    count = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(count) - count / 2
    return (0.25 * values).reshape(shape)


def _max_pool_args(case):
    return {"kernel_size": case["kernel_size"], "stride": case["stride"], "padding": case["padding"],
                "dilation": case["dilation"], "ceil_mode": case["ceil_mode"]}


def _avg_pool_args(case, count_include_pad):
    return {"kernel_size": case["kernel_size"], "stride": case["stride"], "padding": case["padding"],
                "ceil_mode": case["ceil_mode"], "count_include_pad": count_include_pad}


# --- max pooling -------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(pool_cases())
def test_max_pool2d_matches_torch_float32_and_float64(case):

    TF = require_torch().nn.functional
    args = _max_pool_args(case)
    for dtype in (np.float32, np.float64):
        compare_with_torch(lambda x: max_pool2d(x, **args), lambda x: TF.max_pool2d(x, **args),
                           [distinct_values(case["shape"])], dtype=dtype)


@settings(max_examples=15, deadline=None)
@given(pool_cases())
def test_max_pool2d_gradcheck(case):
    args = _max_pool_args(case)
    assert minicnn.gradcheck(lambda x: max_pool2d(x, **args), [distinct_values(case["shape"], seed=1)])


def test_max_pool2d_pads_with_minus_infinity_not_zero():
    x = minicnn.tensor(-np.arange(1.0, 17.0, dtype=np.float32).reshape(1, 1, 4, 4))
    y = max_pool2d(x, 3, stride=2, padding=1)
    # Every window holds only negative inputs; zero padding would have produced zeros.
    assert y.tolist() == [[[[-1.0, -2.0], [-5.0, -6.0]]]]


def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum_like_torch():

    TF = require_torch().nn.functional
    # All-equal input: every window ties; overlapping windows (stride 1) pile up on the first position.
    compare_with_torch(lambda x: max_pool2d(x, 2, stride=1), lambda x: TF.max_pool2d(x, 2, stride=1),
                       [np.ones((2, 2, 4, 5))], dtype=np.float32)


def test_max_pool2d_return_indices_match_torch():
    torch = require_torch()
    x = distinct_values((2, 3, 7, 6))
    args = {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": (1, 2), "ceil_mode": True}
    output, indices = max_pool2d(minicnn.tensor(x), return_indices=True, **args)
    expected_output, expected_indices = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **args)
    np.testing.assert_array_equal(output.numpy(), expected_output.numpy())
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    assert indices.dtype == np.int64


def test_max_pool2d_accepts_unbatched_input():

    TF = require_torch().nn.functional
    x = distinct_values((3, 5, 4))
    compare_with_torch(lambda t: max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2), [x], dtype=np.float32)
    _, indices = max_pool2d(minicnn.tensor(x), 2, return_indices=True)
    _, expected_indices = TF.max_pool2d(require_torch().tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())


def test_max_pool2d_backward_is_idempotent():
    x = minicnn.tensor(distinct_values((1, 2, 6, 6)), requires_grad=True)
    y = max_pool2d(x, 3, stride=2)
    upstream = minicnn.tensor(np.random.default_rng(0).standard_normal(y.shape))
    y.backward(upstream)
    first = x.grad.numpy().copy()
    y.backward(upstream)
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    assert upstream.shape == y.shape  # the upstream gradient was not resized or consumed


# --- average pooling ---------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(pool_cases(with_dilation=False), st.booleans())
def test_avg_pool2d_matches_torch_float32_and_float64(case, count_include_pad):

    TF = require_torch().nn.functional
    args = _avg_pool_args(case, count_include_pad)
    x = np.random.default_rng(2).standard_normal(case["shape"])
    for dtype in (np.float32, np.float64):
        compare_with_torch(lambda t: avg_pool2d(t, **args), lambda t: TF.avg_pool2d(t, **args), [x], dtype=dtype)


@settings(max_examples=15, deadline=None)
@given(pool_cases(with_dilation=False), st.booleans())
def test_avg_pool2d_gradcheck(case, count_include_pad):
    args = _avg_pool_args(case, count_include_pad)
    x = np.random.default_rng(3).standard_normal(case["shape"])
    assert minicnn.gradcheck(lambda t: avg_pool2d(t, **args), [x])


def test_avg_pool2d_ceil_mode_divisor_excludes_the_overhang_beyond_padding():
    # 5×5 input, kernel 2, stride 2, padding 1, ceil_mode: the last window overhangs the padded input.
    x = minicnn.tensor(np.ones((1, 1, 5, 5), dtype=np.float32))
    with_pad = avg_pool2d(x, 2, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
    without_pad = avg_pool2d(x, 2, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    # Corner window: 1 input + 3 padding → 1/4; last row/col windows: 2 inputs of 2 counted → 1.
    assert with_pad.numpy()[0, 0, 0, 0] == 0.25
    assert with_pad.numpy()[0, 0, 2, 2] == 1.0
    np.testing.assert_array_equal(without_pad.numpy(), np.ones((1, 1, 3, 3), dtype=np.float32))


def test_avg_pool2d_divisor_override_matches_torch():

    TF = require_torch().nn.functional
    x = np.random.default_rng(4).standard_normal((2, 2, 5, 6))
    compare_with_torch(lambda t: avg_pool2d(t, 3, 2, 1, divisor_override=5),
                       lambda t: TF.avg_pool2d(t, 3, 2, 1, divisor_override=5), [x], dtype=np.float64)


# --- adaptive average pooling --------------------------------------------------
output_sizes = st.one_of(st.integers(1, 8), st.tuples(st.one_of(st.none(), st.integers(1, 8)),
                                                       st.one_of(st.none(), st.integers(1, 8))))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), output_sizes)
def test_adaptive_avg_pool2d_matches_torch_float32_and_float64(h, w, output_size):

    TF = require_torch().nn.functional
    x = np.random.default_rng(5).standard_normal((2, 3, h, w))
    for dtype in (np.float32, np.float64):
        compare_with_torch(lambda t: adaptive_avg_pool2d(t, output_size),
                           lambda t: TF.adaptive_avg_pool2d(t, output_size), [x], dtype=dtype)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7), output_sizes)
def test_adaptive_avg_pool2d_gradcheck(h, w, output_size):
    x = np.random.default_rng(6).standard_normal((1, 2, h, w))
    assert minicnn.gradcheck(lambda t: adaptive_avg_pool2d(t, output_size), [x])


def test_adaptive_avg_pool2d_spreads_a_1x1_map_to_7x7():
    x = minicnn.tensor(np.arange(4, dtype=np.float32).reshape(2, 2, 1, 1))
    y = adaptive_avg_pool2d(x, 7)
    assert y.shape == (2, 2, 7, 7) and y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), np.broadcast_to(x.numpy(), (2, 2, 7, 7)))


def test_adaptive_avg_pool2d_to_1x1_is_the_global_mean():
    x = np.random.default_rng(7).standard_normal((2, 3, 7, 7)).astype(np.float32)
    y = adaptive_avg_pool2d(minicnn.tensor(x), (1, 1))
    np.testing.assert_allclose(y.numpy(), x.mean(axis=(2, 3), keepdims=True), rtol=1e-6)


# --- bad input ----------------------------------------------------------------
def _image(shape=(1, 1, 4, 4), dtype=np.float32):
    return minicnn.tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("call, error, message", [
    (lambda: max_pool2d(_image(), 0), ValueError, r"max_pool2d: kernel_size must be positive, got 0"),
    (lambda: max_pool2d(_image(), 2, stride=0), ValueError, r"max_pool2d: stride must be positive, got 0"),
    (lambda: max_pool2d(_image(), 2, dilation=(1, 0)), ValueError,
     r"max_pool2d: dilation must be positive, got \(1, 0\)"),
    (lambda: max_pool2d(_image(), 2.5), TypeError,
     r"max_pool2d: kernel_size must be an int or a pair of ints, got float 2.5"),
    (lambda: max_pool2d(_image(), 3, padding=2), ValueError,
     r"max_pool2d: padding must be at most half of kernel_size, got padding=2, kernel_size=3"),
    (lambda: max_pool2d(_image((1, 1, 1, 1)), 3), ValueError,
     r"max_pool2d: output size is 0x0 for input 1x1 with kernel \(3, 3\)"),
    (lambda: max_pool2d(_image((2, 2)), 2), ValueError,
     r"max_pool2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got \(2, 2\)"),
    (lambda: max_pool2d(np.zeros((1, 1, 4, 4)), 2), TypeError, r"max_pool2d: input must be a Tensor, got ndarray"),
    (lambda: max_pool2d(_image(dtype=np.int64), 2), TypeError,
     r"max_pool2d: expected a floating-point input, got dtype int64"),
    (lambda: max_pool2d(_image((1, 0, 4, 4)), 2), ValueError, r"max_pool2d: expected non-zero channels"),
    (lambda: avg_pool2d(_image(), 2, padding=-1), ValueError, r"avg_pool2d: padding must be >= 0, got -1"),
    (lambda: avg_pool2d(_image(), 2, divisor_override=0), ValueError,
     r"avg_pool2d: divisor_override must be a non-zero int or None, got 0"),
    (lambda: avg_pool2d(_image((1, 1, 2, 2)), 5, padding=1), ValueError, r"avg_pool2d: output size is 0x0 for input 2x2"),
    (lambda: adaptive_avg_pool2d(_image(), (2, 2, 2)), ValueError,
     r"adaptive_avg_pool2d: output_size must be an int or a pair of ints \(or None\), got \(2, 2, 2\)"),
    (lambda: adaptive_avg_pool2d(_image(), 0), ValueError, r"adaptive_avg_pool2d: output_size must be positive, got 0"),
])
def test_pooling_rejects_bad_input_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()
