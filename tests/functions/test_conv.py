"""conv2d: against PyTorch, against finite differences, and its error messages."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import compare_with_torch

import minicnn
import minicnn.nn.functional as F


@st.composite
def conv_cases(draw, depthwise=False):
    groups = draw(st.integers(1, 3))
    channels_per_group = 1 if depthwise else draw(st.integers(1, 3))
    in_channels = groups * channels_per_group
    out_channels = in_channels if depthwise else groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    # Smallest input the kernel fits in once padded; 1×1 inputs happen for 1×1 kernels.
    min_h = max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0])
    min_w = max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1])
    h, w = draw(st.integers(min_h, min_h + 4)), draw(st.integers(min_w, min_w + 4))
    n = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    return dict(shape=(n, in_channels, h, w), weight=(out_channels, channels_per_group, kh, kw),
                stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)


def _arrays(case, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(case["shape"]), rng.standard_normal(case["weight"])]
    if case["bias"]:
        arrays.append(rng.standard_normal(case["weight"][0]))
    return arrays


def _ours(case):
    def run(x, w, b=None):
        return F.conv2d(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"])
    return run


def _theirs(case):
    import torch.nn.functional as TF

    def run(x, w, b=None):
        return TF.conv2d(x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"])
    return run


@settings(max_examples=25, deadline=None)
@given(conv_cases())
def test_conv2d_matches_torch_float32_and_float64(case):
    pytest.importorskip("torch", reason="PyTorch (the test oracle) is not installed")
    for dtype in (np.float32, np.float64):
        compare_with_torch(_ours(case), _theirs(case), _arrays(case), dtype=dtype)


@settings(max_examples=15, deadline=None)
@given(conv_cases(depthwise=True))
def test_depthwise_conv2d_matches_torch(case):
    pytest.importorskip("torch", reason="PyTorch (the test oracle) is not installed")
    compare_with_torch(_ours(case), _theirs(case), _arrays(case), dtype=np.float64)


@settings(max_examples=15, deadline=None)
@given(conv_cases())
def test_conv2d_gradcheck(case):
    assert minicnn.gradcheck(_ours(case), _arrays(case))


@settings(max_examples=10, deadline=None)
@given(conv_cases(depthwise=True))
def test_depthwise_conv2d_gradcheck(case):
    assert minicnn.gradcheck(_ours(case), _arrays(case))


def test_conv2d_naive_loop_agrees_with_im2col():
    """The definition, written as loops, against the fast path (the course's naive-vs-im2col exercise)."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    stride, pad = 2, 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (6 + 2 * pad - 3) // stride + 1, (5 + 2 * pad - 3) // stride + 1
    expected = np.zeros((2, 4, oh, ow))
    for n in range(2):
        for o in range(4):
            for i in range(oh):
                for j in range(ow):
                    window = xp[n, :, i * stride : i * stride + 3, j * stride : j * stride + 3]
                    expected[n, o, i, j] = (window * w[o]).sum() + b[o]
    got = F.conv2d(minicnn.tensor(x), minicnn.tensor(w), minicnn.tensor(b), stride=stride, padding=pad)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_conv2d_keeps_float32_and_the_course_example_shape():
    # 32×32×3 input, ten 5×5×3 filters, stride 1, padding 2 → 32×32×10; 760 parameters.
    x = minicnn.randn(1, 3, 32, 32)
    w = minicnn.randn(10, 3, 5, 5, requires_grad=True)
    b = minicnn.zeros(10, requires_grad=True)
    y = F.conv2d(x, w, b, padding=2)
    assert y.shape == (1, 10, 32, 32) and y.dtype == np.float32
    assert w.numel() + b.numel() == 760
    y.sum().backward()
    assert w.grad.dtype == np.float32 and b.grad.dtype == np.float32


def test_conv2d_skips_input_gradient_when_input_needs_none():
    x = minicnn.randn(2, 3, 8, 8)  # an image: no gradient wanted
    w = minicnn.randn(4, 3, 3, 3, requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert x.grad is None and w.grad is not None


@pytest.mark.parametrize("kwargs, x_shape, w_shape, error, message", [
    ({}, (1, 4, 8, 8), (2, 3, 3, 3), ValueError, r"conv2d: input has 4 channels but weight expects 3 \(groups=1\)"),
    ({}, (4, 8, 8), (2, 4, 3, 3), ValueError, r"conv2d: expected input of shape \(N, C, H, W\), got \(4, 8, 8\)"),
    ({}, (1, 3, 8, 8), (2, 3, 3), ValueError, r"conv2d: expected 4-D weight"),
    ({}, (1, 3, 2, 2), (2, 3, 3, 3), ValueError, r"conv2d: kernel 3x3 .* is larger than the padded input 2x2"),
    ({"groups": 2}, (1, 3, 8, 8), (4, 1, 3, 3), ValueError, r"conv2d: groups=2 does not divide the 3 input channels"),
    ({"groups": 2}, (1, 4, 8, 8), (3, 2, 3, 3), ValueError, r"conv2d: groups=2 does not divide the 3 output channels"),
    ({"groups": 0}, (1, 4, 8, 8), (4, 4, 3, 3), ValueError, r"conv2d: groups must be positive, got 0"),
    ({"padding": -1}, (1, 3, 8, 8), (2, 3, 3, 3), ValueError, r"conv2d: padding must be >= 0, got -1"),
    ({"stride": 0}, (1, 3, 8, 8), (2, 3, 3, 3), ValueError, r"conv2d: stride must be positive, got 0"),
    ({"stride": 1.5}, (1, 3, 8, 8), (2, 3, 3, 3), TypeError, r"conv2d: stride must be an int or a pair of ints"),
    ({"dilation": (1, 0)}, (1, 3, 8, 8), (2, 3, 3, 3), ValueError, r"conv2d: dilation must be positive, got \(1, 0\)"),
])
def test_conv2d_rejects_bad_input(kwargs, x_shape, w_shape, error, message):
    with pytest.raises(error, match=message):
        F.conv2d(minicnn.zeros(*x_shape), minicnn.zeros(*w_shape), **kwargs)


def test_conv2d_rejects_wrong_bias_and_dtype_mismatch():
    x, w = minicnn.zeros(1, 3, 8, 8), minicnn.zeros(2, 3, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(2,\), got \(3,\)"):
        F.conv2d(x, w, minicnn.zeros(3))
    with pytest.raises(TypeError, match="conv2d: input dtype float64 differs from weight dtype float32"):
        F.conv2d(minicnn.zeros(1, 3, 8, 8, dtype=np.float64), w)
    with pytest.raises(TypeError, match="conv2d: input must be a Tensor, got ndarray"):
        F.conv2d(np.zeros((1, 3, 8, 8)), w)
