"""The CIFAR nets' width knob: ``width_mult`` scales the 16/32/64 stage filters of section 4.2."""
import math

import numpy as np
import pytest
from reference_facts import param_count

import minicnn
from minicnn import models, nn
from minicnn.models.resnet_cifar import ShortcutA, cifar_plain, cifar_resnet, cifar_stage_planes


def cifar_param_formula(depth, planes, num_classes=10, in_channels=3, shortcut="A"):
    """Parameters of a 6n + 2 CIFAR net with stage filters ``planes`` = (a, b, c), counted by hand.

    Every conv is 3×3 without bias, every BN has γ and β, option A shortcuts have no weights:
    stem 9·3·a + 2a; a stage of n blocks from p to q filters 9pq + 9q² + 4q for its first block and
    18q² + 4q for each other; fc c·K + K.  Option B adds a 1×1 conv and a BN where the filters change.
    """
    n = (depth - 2) // 6
    a, b, c = planes
    total = 9 * in_channels * a + 2 * a
    for p, q in ((a, a), (a, b), (b, c)):
        total += 9 * p * q + 9 * q * q + 4 * q + (n - 1) * (18 * q * q + 4 * q)
        if shortcut == "B" and p != q:
            total += p * q + 2 * q
    return total + c * num_classes + num_classes


@pytest.mark.parametrize("depth, count", [(20, 269_722), (56, 853_018)])
def test_the_formula_reproduces_the_default_counts(depth, count):
    assert cifar_param_formula(depth, (16, 32, 64)) == count == param_count(cifar_resnet(depth))


@pytest.mark.parametrize("builder", [cifar_resnet, cifar_plain])
@pytest.mark.parametrize("depth", [20, 56])
def test_default_width_keeps_every_key_and_shape(builder, depth):
    default, explicit = builder(depth), builder(depth, width_mult=1.0)
    shapes = {key: tuple(value.shape) for key, value in default.state_dict().items()}
    assert shapes == {key: tuple(value.shape) for key, value in explicit.state_dict().items()}
    assert list(default.state_dict()) == list(explicit.state_dict())
    assert shapes["conv1.weight"] == (16, 3, 3, 3) and shapes["fc.weight"] == (10, 64)


@pytest.mark.parametrize("width, planes", [(1.0, (16, 32, 64)), (0.5, (8, 16, 32)), (0.25, (4, 8, 16)),
                                           (0.125, (2, 4, 8)), (0.01, (1, 1, 1)), (2, (32, 64, 128))])
def test_stage_planes_scale_round_and_never_reach_zero(width, planes):
    assert cifar_stage_planes(width) == planes


@pytest.mark.parametrize("builder", [cifar_resnet, cifar_plain])
@pytest.mark.parametrize("depth", [20, 56])
@pytest.mark.parametrize("width", [0.5, 0.25])
def test_parameter_count_at_width_matches_the_formula(builder, depth, width):
    planes = tuple(int(p * width) for p in (16, 32, 64))
    model = builder(depth, width_mult=width)
    assert param_count(model) == cifar_param_formula(depth, planes)


def test_width_quarter_counts_by_hand():
    # a = 4, b = 8, c = 16, n = 3: stem 108 + 8; stage 1: 3 · (288 + 16); stage 2: 288 + 576 + 32 + 2 · (1152 + 32);
    # stage 3: 1152 + 2304 + 64 + 2 · (4608 + 64); fc 170
    assert param_count(cifar_resnet(20, width_mult=0.25)) == (116 + 912 + 3264 + 12864 + 170) == 17_326


def test_option_b_projections_scale_too():
    model = cifar_resnet(20, shortcut="B", width_mult=0.5)
    assert param_count(model) == cifar_param_formula(20, (8, 16, 32), shortcut="B")


def test_residual_and_plain_keep_the_same_keys_at_any_width():
    plain, residual = cifar_plain(20, width_mult=0.25), cifar_resnet(20, width_mult=0.25)
    assert list(plain.state_dict()) == list(residual.state_dict())
    residual.load_state_dict(plain.state_dict())
    assert np.array_equal(residual.layer3[2].conv2.weight.data, plain.layer3[2].conv2.weight.data)


def test_stage_shapes_at_width_quarter():
    model = cifar_resnet(20, width_mult=0.25, in_channels=1, num_classes=5)
    model.eval()
    x = minicnn.randn(3, 1, 32, 32)
    with minicnn.no_grad():
        features = model.relu(model.bn1(model.conv1(x)))
        assert features.shape == (3, 4, 32, 32)
        for stage, expected in zip((model.layer1, model.layer2, model.layer3),
                                   [(3, 4, 32, 32), (3, 8, 16, 16), (3, 16, 8, 8)]):
            features = stage(features)
            assert features.shape == expected
        assert model(x).shape == (3, 5)
    assert model.layer2[0].downsample.extra_repr() == "4 -> 8, stride=2"
    assert "width_mult=0.25" in repr(model).splitlines()[1]


@pytest.mark.parametrize("width", [0.25, 0.01])  # 0.01: one filter per stage, so stage 2's shortcut adds no zeros
@pytest.mark.parametrize("builder", [cifar_resnet, cifar_plain])
def test_forward_and_backward_reach_every_parameter(builder, width):
    minicnn.manual_seed(0)
    model = builder(20, width_mult=width)
    images = minicnn.randn(4, 3, 16, 16)
    labels = minicnn.tensor(np.arange(4) % 10)
    loss = nn.CrossEntropyLoss()(model(images), labels)
    loss.backward()
    assert math.isfinite(loss.item())
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient for {missing[:3]}"
    assert all(np.isfinite(p.grad.data).all() for p in model.parameters())
    if builder is cifar_resnet and width == 0.01:
        shortcut = model.layer2[0].downsample
        assert isinstance(shortcut, ShortcutA) and shortcut.in_planes == shortcut.out_planes == 1


@pytest.mark.parametrize("name", ["cifar_resnet20", "cifar_plain56"])
def test_get_model_passes_the_width_through(name):
    model = models.get_model(name, num_classes=4, width_mult=0.5)
    assert model.width_mult == 0.5
    assert model.fc.weight.shape == (4, 32)


def test_the_cli_builds_cifar_nets_at_its_width():
    from minicnn.cli import _build_model

    model = _build_model("cifar_plain20", num_classes=10, in_channels=1, width=0.25)
    assert (model.width_mult, model.in_channels) == (0.25, 1)
    assert model.conv1.weight.shape == (4, 1, 3, 3)


@pytest.mark.parametrize("builder, name", [(cifar_resnet, "cifar_resnet20"), (cifar_plain, "cifar_plain20")])
@pytest.mark.parametrize("width", [0, -0.5, float("nan"), float("inf")])
def test_a_width_that_is_not_positive_and_finite_is_refused_naming_the_builder(builder, name, width):
    with pytest.raises(ValueError, match=rf"{name}: width_mult must be a positive finite number"):
        builder(20, width_mult=width)


@pytest.mark.parametrize("width", ["0.5", None, True, [0.5]])
def test_a_width_that_is_not_a_number_is_refused_naming_the_builder(width):
    with pytest.raises(TypeError, match=rf"cifar_resnet56: width_mult must be a number, got "
                                        rf"{type(width).__name__}"):
        models.get_model("cifar_resnet56", width_mult=width)
