"""linear_to_conv: a fully connected layer as the convolution that computes it, with the same weights."""
import numpy as np
import pytest
from oracle import rel_error, require_torch

import minicnn
from minicnn import nn
from minicnn.models import linear_to_conv


def _inputs(*shape, dtype=np.float32, seed=0):
    return minicnn.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def _linear(in_features, out_features, bias=True, dtype=np.float32, seed=0):
    minicnn.manual_seed(seed)
    linear = nn.Linear(in_features, out_features, bias=bias)
    if dtype == np.float64:
        linear.double()
    if bias:  # non-zero, so a lost bias would show
        linear.bias.data[...] = np.random.default_rng(seed + 1).uniform(-0.5, 0.5, out_features)
    return linear


def test_the_courses_3x3x5_volume_into_4096_units_gives_the_same_outputs():
    fc = _linear(5 * 3 * 3, 4096)
    conv = linear_to_conv(fc, in_channels=5, kernel_size=3)
    assert isinstance(conv, nn.Conv2d)
    assert conv.weight.shape == (4096, 5, 3, 3) and conv.kernel_size == (3, 3)
    x = _inputs(4, 5, 3, 3)
    scores = conv(x).numpy()
    assert scores.shape == (4, 4096, 1, 1)
    assert rel_error(scores[:, :, 0, 0], fc(minicnn.flatten(x, 1)).numpy()) < 1e-5


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kernel_size", [1, (2, 3), (4, 1)])
def test_conv_equals_linear_on_flattened_float64_inputs(bias, kernel_size):
    kernel_height, kernel_width = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    fc = _linear(6 * kernel_height * kernel_width, 7, bias=bias, dtype=np.float64)
    conv = linear_to_conv(fc, 6, kernel_size)
    assert (conv.bias is None) == (not bias)
    x = _inputs(3, 6, kernel_height, kernel_width, dtype=np.float64, seed=2)
    scores = conv(x)
    assert scores.dtype == np.float64
    assert rel_error(scores.numpy()[:, :, 0, 0], fc(minicnn.flatten(x, 1)).numpy()) < 1e-12


def test_on_a_larger_input_the_conv_applies_the_linear_to_every_window():
    fc = _linear(4 * 2 * 3, 5, dtype=np.float64)
    conv = linear_to_conv(fc, 4, (2, 3))
    x = _inputs(2, 4, 5, 6, dtype=np.float64, seed=3)
    score_map = conv(x).numpy()
    assert score_map.shape == (2, 5, 4, 4)
    for i in range(4):
        for j in range(4):
            window = minicnn.tensor(x.numpy()[:, :, i:i + 2, j:j + 3])
            expected = fc(minicnn.flatten(window, 1)).numpy()
            assert rel_error(score_map[:, :, i, j], expected) < 1e-12


def test_conv_shares_the_linears_weight_memory_and_bias_parameter():
    fc = _linear(3 * 2 * 2, 4)
    fc.weight.requires_grad = False
    conv = linear_to_conv(fc, 3, 2)
    assert np.shares_memory(conv.weight.data, fc.weight.data)
    assert conv.bias is fc.bias
    assert conv.weight.requires_grad is False  # a frozen Linear gives a frozen conv
    fc.weight.data[0, 0] = 42.0
    assert conv.weight.data[0, 0, 0, 0] == 42.0


def test_gradients_through_the_conv_equal_those_through_the_linear():
    x = _inputs(3, 2, 3, 3, dtype=np.float64, seed=4)
    fc = _linear(2 * 3 * 3, 5, dtype=np.float64)
    (fc(minicnn.flatten(x, 1)) ** 2).sum().backward()
    linear_grads = fc.weight.grad.numpy().copy(), fc.bias.grad.numpy().copy()
    fc.bias.grad = None
    conv = linear_to_conv(fc, 2, 3)
    (conv(x) ** 2).sum().backward()
    assert rel_error(conv.weight.grad.numpy().reshape(5, 18), linear_grads[0]) < 1e-12
    assert rel_error(conv.bias.grad.numpy(), linear_grads[1]) < 1e-12


def test_conv_matches_torch_linear_on_the_flattened_input():
    torch = require_torch()
    fc = _linear(5 * 3 * 3, 16)
    conv = linear_to_conv(fc, 5, 3)
    x = _inputs(2, 5, 3, 3, seed=5)
    expected = torch.nn.functional.linear(torch.from_numpy(x.numpy()).flatten(1),
                                          torch.from_numpy(fc.weight.numpy()), torch.from_numpy(fc.bias.numpy()))
    assert rel_error(conv(x).numpy()[:, :, 0, 0], expected.numpy()) < 1e-5


def test_in_features_that_do_not_match_the_volume_are_refused():
    with pytest.raises(ValueError, match=r"linear_to_conv: the Linear has in_features=45, but in_channels·kH·kW = "
                                         r"4·3·3 = 36"):
        linear_to_conv(nn.Linear(45, 8), 4, 3)
    with pytest.raises(ValueError, match=r"in_channels·kH·kW = 5·3·2 = 30"):
        linear_to_conv(nn.Linear(45, 8), 5, (3, 2))


def test_non_linear_layers_and_bad_sizes_are_refused_naming_the_function():
    with pytest.raises(TypeError, match="linear_to_conv: expected an nn.Linear, got Conv2d"):
        linear_to_conv(nn.Conv2d(5, 8, 3), 5, 3)
    with pytest.raises(TypeError, match="linear_to_conv: expected an nn.Linear, got ndarray"):
        linear_to_conv(np.zeros((8, 45)), 5, 3)
    with pytest.raises(ValueError, match="linear_to_conv: in_channels must be positive, got 0"):
        linear_to_conv(nn.Linear(45, 8), 0, 3)
    with pytest.raises(TypeError, match="linear_to_conv: kernel_size must be an int or a pair of ints, got float 3.0"):
        linear_to_conv(nn.Linear(45, 8), 5, 3.0)
    with pytest.raises(ValueError, match="linear_to_conv: kernel_size must be an int or a pair of ints"):
        linear_to_conv(nn.Linear(45, 8), 5, (3, 3, 1))
