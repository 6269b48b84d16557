"""minicnn.nn.init: the formulas, the statistics they produce, dtype, seeding and bad input."""
import math

import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.nn import init


def empty(*shape):
    return minicnn.zeros(*shape)


@pytest.mark.parametrize("shape, fans", [((5, 7), (7, 5)), ((8, 4, 3, 3), (36, 72)), ((6, 2, 5), (10, 30))])
def test_fan_in_and_fan_out(shape, fans):
    assert init._calculate_fan_in_and_fan_out(empty(*shape)) == fans


def test_fans_need_two_dimensions():
    with pytest.raises(ValueError, match=r"fewer than 2 dimensions, got shape \(4,\)"):
        init._calculate_fan_in_and_fan_out(empty(4))


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                        ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_calculate_gain_rejects_unknown_names_and_bad_slopes():
    with pytest.raises(ValueError, match="calculate_gain: unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="calculate_gain: negative_slope True is not a valid number"):
        init.calculate_gain("leaky_relu", True)


@pytest.mark.parametrize("mode, fan", [("fan_in", 64 * 9), ("fan_out", 128 * 9)])
def test_kaiming_normal_std_matches_the_formula(mode, fan):
    minicnn.manual_seed(0)
    weight = init.kaiming_normal_(empty(128, 64, 3, 3), mode=mode, nonlinearity="relu")
    expected = math.sqrt(2.0) / math.sqrt(fan)
    assert weight.data.std() == pytest.approx(expected, rel=0.02)
    assert abs(weight.data.mean()) < 0.02 * expected
    assert weight.dtype == np.float32


def test_kaiming_uniform_bound_and_std():
    minicnn.manual_seed(1)
    weight = init.kaiming_uniform_(empty(256, 300), a=math.sqrt(5))  # the Linear default: bound 1/sqrt(fan_in)
    bound = 1 / math.sqrt(300)
    assert np.abs(weight.data).max() <= bound
    assert np.abs(weight.data).max() > 0.99 * bound
    assert weight.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def test_xavier_uniform_and_normal_std():
    minicnn.manual_seed(2)
    expected = 2.0 * math.sqrt(2.0 / (200 + 300))
    uniform = init.xavier_uniform_(empty(300, 200), gain=2.0)
    normal = init.xavier_normal_(empty(300, 200), gain=2.0)
    assert np.abs(uniform.data).max() <= math.sqrt(3) * expected * (1 + 1e-6)
    assert uniform.data.std() == pytest.approx(expected, rel=0.02)
    assert normal.data.std() == pytest.approx(expected, rel=0.02)


def test_normal_and_uniform_statistics():
    minicnn.manual_seed(3)
    normal = init.normal_(empty(100_000), mean=2.0, std=0.5)
    assert normal.data.mean() == pytest.approx(2.0, abs=0.01) and normal.data.std() == pytest.approx(0.5, rel=0.02)
    uniform = init.uniform_(empty(100_000), -3.0, 1.0)
    assert uniform.data.min() >= -3.0 and uniform.data.max() <= 1.0
    assert uniform.data.mean() == pytest.approx(-1.0, abs=0.02)


def test_trunc_normal_respects_bounds_and_matches_truncated_moments():
    minicnn.manual_seed(4)
    weight = init.trunc_normal_(empty(200_000), mean=0.5, std=1.0, a=-0.5, b=3.0)
    assert weight.data.min() >= -0.5 and weight.data.max() <= 3.0
    # Truncated-normal mean: mu + sigma (phi(alpha) - phi(beta)) / Z with alpha, beta the standardised bounds.
    alpha, beta = -1.0, 2.5
    def phi(z):
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    z = init._normal_cdf(beta) - init._normal_cdf(alpha)
    assert weight.data.mean() == pytest.approx(0.5 + (phi(alpha) - phi(beta)) / z, abs=0.01)
    assert weight.dtype == np.float32


def test_trunc_normal_small_std_vit_style():
    minicnn.manual_seed(5)
    weight = init.trunc_normal_(empty(64, 64), std=0.02)
    assert np.abs(weight.data).max() <= 2.0
    assert weight.data.std() == pytest.approx(0.02, rel=0.05)


def test_trunc_normal_rejects_bad_bounds():
    with pytest.raises(ValueError, match="init.trunc_normal_: expected a < b, got a=1, b=1"):
        init.trunc_normal_(empty(3), a=1, b=1)
    with pytest.raises(ValueError, match="init.trunc_normal_: std must be positive, got 0"):
        init.trunc_normal_(empty(3), std=0)
    with pytest.raises(ValueError, match="rejection sampling would not finish"):
        init.trunc_normal_(empty(3), mean=0, std=1, a=10, b=11)


def test_constant_zeros_ones():
    tensor = minicnn.randn(3, 2)
    assert init.constant_(tensor, 0.25) is tensor and np.all(tensor.data == 0.25)
    assert not init.zeros_(tensor).data.any()
    assert np.all(init.ones_(tensor).data == 1) and tensor.dtype == np.float32


def test_init_writes_in_place_and_keeps_float64_when_asked():
    param = nn.Parameter(np.zeros((4, 4), dtype=np.float64))
    array = param.data
    init.kaiming_normal_(param)
    assert param.data is array and param.dtype == np.float64 and array.any()


def test_seed_makes_initialisation_and_layers_reproducible():
    minicnn.manual_seed(7)
    first = [nn.Conv2d(3, 4, 3).weight.data.copy(), nn.Linear(5, 2).bias.data.copy()]
    minicnn.manual_seed(7)
    second = [nn.Conv2d(3, 4, 3).weight.data.copy(), nn.Linear(5, 2).bias.data.copy()]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    third = nn.Linear(5, 2).bias.data
    assert not np.array_equal(second[1], third)


def test_layer_defaults_follow_torch():
    minicnn.manual_seed(8)
    conv = nn.Conv2d(16, 32, 3)  # fan_in = 144: weight and bias in U(±1/12)
    assert np.abs(conv.weight.data).max() <= 1 / 12 and np.abs(conv.bias.data).max() <= 1 / 12
    assert conv.weight.data.std() == pytest.approx(1 / 12 / math.sqrt(3), rel=0.05)
    bn = nn.BatchNorm2d(5)
    assert np.all(bn.weight.data == 1) and not bn.bias.data.any()


def test_init_rejects_non_tensors_integer_tensors_and_bad_modes():
    with pytest.raises(TypeError, match="init.normal_: expected a Tensor, got ndarray"):
        init.normal_(np.zeros(3))
    with pytest.raises(TypeError, match="init.uniform_: random initialisation needs a floating-point tensor, got "
                                        "dtype int64"):
        init.uniform_(minicnn.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="init.kaiming_normal_: mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_normal_(empty(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="init.uniform_: expected a <= b, got a=1, b=0"):
        init.uniform_(empty(3), 1, 0)
    with pytest.raises(ValueError, match="init.normal_: std must be non-negative, got -1"):
        init.normal_(empty(3), std=-1)
