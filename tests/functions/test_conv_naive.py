"""conv2d_naive, the definition in loops: the same numbers as conv2d and PyTorch, the same checks, no graph."""
import numpy as np
import pytest
from oracle import rel_error, require_torch

import minicnn
import minicnn.nn.functional as F

# (input shape, weight shape, keyword arguments): strides, paddings, dilations, groups, rectangles
CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), {}),
    ((1, 3, 8, 8), (10, 3, 5, 5), {"padding": 2}),                               # the course's layer, smaller
    ((2, 2, 9, 7), (3, 2, 3, 2), {"stride": 2, "padding": 1}),
    ((1, 3, 8, 9), (2, 3, 3, 3), {"stride": (2, 3), "padding": (0, 2)}),
    ((1, 2, 9, 9), (2, 2, 3, 3), {"dilation": 2, "padding": 2}),
    ((1, 2, 10, 8), (3, 2, 2, 3), {"dilation": (3, 1), "stride": (1, 2)}),
    ((2, 4, 6, 6), (6, 2, 3, 3), {"groups": 2, "padding": 1}),                   # grouped (ResNeXt)
    ((1, 6, 5, 5), (3, 2, 1, 1), {"groups": 3}),                                 # grouped 1×1
    ((2, 3, 6, 5), (3, 1, 3, 3), {"groups": 3, "padding": 1}),                   # depthwise (MobileNet)
    ((1, 4, 7, 7), (4, 1, 3, 3), {"groups": 4, "stride": 2, "dilation": 2, "padding": 2}),
    ((1, 1, 3, 3), (1, 1, 5, 5), {"padding": 2}),                                # windows mostly padding
]


def _arrays(x_shape, w_shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])


@pytest.mark.parametrize("with_bias", [False, True], ids=["no_bias", "bias"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CASES)
def test_naive_equals_im2col_conv2d_in_float64(x_shape, w_shape, kwargs, with_bias):
    x, w, b = (minicnn.tensor(a) for a in _arrays(x_shape, w_shape))
    bias = b if with_bias else None
    naive = F.conv2d_naive(x, w, bias, **kwargs)
    fast = F.conv2d(x, w, bias, **kwargs)
    assert naive.shape == fast.shape and naive.dtype == np.float64
    assert rel_error(naive.numpy(), fast.numpy()) < 1e-12


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CASES)
def test_naive_equals_torch(x_shape, w_shape, kwargs):
    torch = require_torch()
    x, w, b = _arrays(x_shape, w_shape, seed=1)
    naive = F.conv2d_naive(minicnn.tensor(x), minicnn.tensor(w), minicnn.tensor(b), **kwargs)
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kwargs)
    assert naive.shape == tuple(expected.shape)
    assert rel_error(naive.numpy(), expected.numpy()) < 1e-12


def test_naive_is_cross_correlation_by_hand():
    # x = 1..9 in a 3×3 grid, kernel [[1, 0], [0, -1]]: each output is top-left minus bottom-right of
    # its window, x[r, c] − x[r+1, c+1] = −4 everywhere; a flipped (true) convolution would give +4.
    x = minicnn.tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    w = minicnn.tensor(np.array([[[[1.0, 0.0], [0.0, -1.0]]]]))
    np.testing.assert_array_equal(F.conv2d_naive(x, w).numpy(), np.full((1, 1, 2, 2), -4.0))


def test_naive_keeps_float32_and_the_device_and_has_no_graph():
    x = minicnn.randn(1, 3, 6, 6, requires_grad=True)
    w = minicnn.randn(2, 3, 3, 3, requires_grad=True)
    y = F.conv2d_naive(x, w, padding=1)
    assert y.dtype == np.float32 and y.device == x.device
    assert not y.requires_grad and y.creator is None  # not differentiable: nothing to backpropagate into
    assert rel_error(y.numpy(), F.conv2d(x, w, padding=1).numpy()) < 1e-5


def test_naive_on_an_empty_batch_is_empty():
    y = F.conv2d_naive(minicnn.zeros(0, 3, 5, 5), minicnn.zeros(4, 3, 3, 3), stride=2)
    assert y.shape == (0, 4, 2, 2)


# (keyword arguments, input shape, weight shape, bias shape or None): each one conv2d refuses
BAD = [
    ({}, (1, 4, 8, 8), (2, 3, 3, 3), None),
    ({}, (4, 8, 8), (2, 4, 3, 3), None),
    ({}, (1, 3, 8, 8), (2, 3, 3), None),
    ({}, (1, 3, 2, 2), (2, 3, 3, 3), None),
    ({"groups": 2}, (1, 3, 8, 8), (4, 1, 3, 3), None),
    ({"groups": 2}, (1, 4, 8, 8), (3, 2, 3, 3), None),
    ({"groups": 0}, (1, 4, 8, 8), (4, 4, 3, 3), None),
    ({"padding": -1}, (1, 3, 8, 8), (2, 3, 3, 3), None),
    ({"stride": 0}, (1, 3, 8, 8), (2, 3, 3, 3), None),
    ({"stride": 1.5}, (1, 3, 8, 8), (2, 3, 3, 3), None),
    ({"dilation": (1, 0)}, (1, 3, 8, 8), (2, 3, 3, 3), None),
    ({}, (1, 3, 8, 8), (2, 3, 3, 3), (3,)),
]


def _error(function, *args, **kwargs):
    with pytest.raises((TypeError, ValueError)) as caught:
        function(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize("kwargs, x_shape, w_shape, bias_shape", BAD)
def test_naive_rejects_what_conv2d_rejects_with_the_same_message(kwargs, x_shape, w_shape, bias_shape):
    x, w = minicnn.zeros(*x_shape), minicnn.zeros(*w_shape)
    bias = None if bias_shape is None else minicnn.zeros(*bias_shape)
    ours, reference = _error(F.conv2d_naive, x, w, bias, **kwargs), _error(F.conv2d, x, w, bias, **kwargs)
    assert type(ours) is type(reference)
    assert str(ours).startswith("conv2d_naive: ")
    assert str(ours) == str(reference).replace("conv2d: ", "conv2d_naive: ", 1)


def test_naive_rejects_arrays_integers_and_mixed_dtypes():
    w = minicnn.zeros(2, 3, 3, 3)
    with pytest.raises(TypeError, match="conv2d_naive: input must be a Tensor, got ndarray"):
        F.conv2d_naive(np.zeros((1, 3, 8, 8)), w)
    with pytest.raises(TypeError, match="conv2d_naive: weight must be a Tensor, got list"):
        F.conv2d_naive(minicnn.zeros(1, 3, 8, 8), [[1.0]])
    with pytest.raises(TypeError, match="conv2d_naive: expected a floating-point input, got dtype int64"):
        F.conv2d_naive(minicnn.tensor(np.zeros((1, 3, 8, 8), dtype=np.int64)), w)
    with pytest.raises(TypeError, match="conv2d_naive: input dtype float64 differs from weight dtype float32"):
        F.conv2d_naive(minicnn.zeros(1, 3, 8, 8, dtype=np.float64), w)
