"""VGG: torchvision's eight models against torchvision's facts, the paper's six configurations against
its Table 2, a training step on a slim VGG-11-BN, and the fully-convolutional test mode."""
import numpy as np
import pytest
from reference_facts import load_reference, param_count, state_dict_spec

import minicnn
from minicnn import nn
from minicnn.models.vgg import (
    MODELS,
    VGG,
    FullyConvolutionalVGG,
    cfgs,
    make_layers,
    vgg,
    vgg11_bn,
    vgg16,
    vgg_block,
    vgg_to_fully_convolutional,
)

TORCHVISION_NAMES = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
TORCHVISION_CFGS = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
SLIM = 1 / 16  # width multiplier for cheap VGGs: channels 4 ... 32, hidden layers 256


def _rel_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.fixture(scope="module")
def full_vgg16():
    """The one full-size model built with its real initialisation (benchmarks/bench_build.py times it)."""
    minicnn.manual_seed(0)
    return vgg16().eval()


@pytest.fixture(scope="module")
def vgg16_at_224(full_vgg16):
    model = full_vgg16
    x = minicnn.tensor(np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32))
    return x, model(x).numpy()


# --- torchvision's eight models ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_vgg_state_dict_and_parameter_count_match_torchvision(name):
    # Keys, shapes and counts do not depend on the initial values: skip the (slow) re-initialisation.
    model = MODELS[name](init_weights=False)
    reference = load_reference()[name]
    state = model.state_dict()
    assert [(key, tuple(array.shape)) for key, array in state.items()] == state_dict_spec(name)
    assert param_count(model) == reference["params"]
    if not name.endswith("_bn"):  # the same count by hand, from the cfgs table (Table 2's arithmetic)
        assert param_count(model) == _table_param_count(cfgs[TORCHVISION_CFGS[name]])
        assert sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules()) == int(name[3:])
    assert sum(1 for key in state if key.endswith("num_batches_tracked")) == reference["buffers"]["num_bn_layers"]
    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert sorted({(bn.eps, bn.momentum) for bn in batch_norms}) == [tuple(x) for x in reference["bn_eps_momentum"]]
    assert all(array.dtype == np.float32 for key, array in state.items() if "num_batches" not in key)


def test_vgg16_builds_in_float32(full_vgg16):
    model = full_vgg16
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}


@pytest.mark.slow
def test_vgg16_forward_at_224_gives_one_row_of_logits(vgg16_at_224):
    _, logits = vgg16_at_224
    assert logits.shape == tuple(load_reference()["vgg16"]["output_shape"])
    assert np.all(np.isfinite(logits)) and np.std(logits) > 0


def test_vgg16_at_32x32_replicates_the_single_feature_pixel_to_7x7(full_vgg16):
    model = full_vgg16
    facts = load_reference()["_vgg16_32x32"]
    x = minicnn.randn(1, 3, 32, 32)
    features = model.features(x)
    pooled = model.avgpool(features).numpy()
    assert features.shape == tuple(facts["features_shape"]) and pooled.shape == tuple(facts["avgpool_shape"])
    np.testing.assert_array_equal(pooled, np.broadcast_to(features.numpy(), pooled.shape))
    assert model(x).shape == tuple(facts["output_shape"])


def test_vgg_init_is_torchvisions_kaiming_fan_out_and_normal_001():
    minicnn.manual_seed(1)
    model = vgg11_bn(width_mult=0.25)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    # Standardise each conv's weights by its own He std (fan_out = out_channels·k·k), then pool them.
    standardised = np.concatenate([
        conv.weight.numpy().ravel() / np.sqrt(2.0 / (conv.out_channels * 9)) for conv in convs])
    assert abs(standardised.std() - 1) < 0.03 and abs(standardised.mean()) < 0.03
    assert all(not conv.bias.numpy().any() for conv in convs)
    linear_weights = np.concatenate([m.weight.numpy().ravel() for m in model.modules() if isinstance(m, nn.Linear)])
    assert abs(linear_weights.std() - 0.01) < 0.0005
    assert all(not m.bias.numpy().any() for m in model.modules() if isinstance(m, nn.Linear))
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert np.all(bn.weight.numpy() == 1) and not bn.bias.numpy().any()


# --- the paper's six configurations -----------------------------------------------------------------------

def _table_param_count(cfg, num_classes=1000):
    """Parameters of a configuration by hand: each conv (k·k·C_in + 1)·C_out, then the three FC layers."""
    total, in_channels = 0, 3
    for item in cfg:
        if item in ("M", "LRN"):
            continue
        out_channels, kernel_size = item if isinstance(item, tuple) else (item, 3)
        total += (kernel_size * kernel_size * in_channels + 1) * out_channels
        in_channels = out_channels
    return total + (in_channels * 49 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * num_classes


# Table 2 of the paper: number of parameters in millions; weight layers from Table 1's headings.
PAPER_TABLE = {"A": (133, 11), "A-LRN": (133, 11), "B": (133, 13), "C": (134, 16), "D": (138, 16), "E": (144, 19)}


def test_cfgs_table_holds_the_six_configurations_of_the_paper():
    assert list(cfgs) == list(PAPER_TABLE)
    assert cfgs["A-LRN"] == [64, "LRN"] + cfgs["A"][1:]
    # C is D with 1x1 instead of 3x3 for the last conv of stages 3, 4 and 5.
    assert [(item, 3) if isinstance(item, int) else item for item in cfgs["C"]] == [
        (item, 3) if isinstance(item, int) else item for item in cfgs["D"][:8] + [(256, 1)] + cfgs["D"][9:12]
        + [(512, 1)] + cfgs["D"][13:16] + [(512, 1)] + cfgs["D"][17:]]


@pytest.mark.parametrize("cfg", list(PAPER_TABLE))
def test_paper_configuration_parameter_count_rounds_to_table_2(cfg):
    # The hand count is checked against built models: A/B/D/E as vgg11/13/16/19, A-LRN and C below.
    millions, _ = PAPER_TABLE[cfg]
    assert round(_table_param_count(cfgs[cfg]) / 1e6) == millions


@pytest.mark.parametrize("cfg", ["A-LRN", "C"])
def test_paper_only_configurations_have_the_counted_parameters_and_layers(cfg):
    model = vgg(cfg, init_weights=False)
    assert param_count(model) == _table_param_count(cfgs[cfg])
    weight_layers = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    assert weight_layers == PAPER_TABLE[cfg][1]
    if cfg == "C":
        kernels = [m.kernel_size for m in model.features if isinstance(m, nn.Conv2d)]
        assert [i for i, k in enumerate(kernels) if k == (1, 1)] == [6, 9, 12]  # last conv of stages 3-5
    else:
        assert isinstance(model.features[2], nn.LocalResponseNorm)  # after conv1's ReLU, before the pool
        assert isinstance(model.features[3], nn.MaxPool2d)


def test_slim_paper_configurations_run_at_32x32():
    for cfg in ("A-LRN", "C"):
        model = vgg(cfg, width_mult=SLIM, num_classes=5).eval()
        assert model(minicnn.randn(2, 3, 32, 32)).shape == (2, 5)


def test_vgg_block_is_the_first_stage_of_the_table():
    block = vgg_block(2, 3, 64)
    stage = make_layers(cfgs["B"])[:5]  # conv, ReLU, conv, ReLU, pool
    assert [type(m) for m in block] == [type(m) for m in stage]
    reference = state_dict_spec("vgg13")[:4]  # features.0.weight/bias, features.2.weight/bias
    assert [("features." + key, tuple(a.shape)) for key, a in block.state_dict().items()] == reference
    assert block(minicnn.randn(1, 3, 32, 32)).shape == (1, 64, 16, 16)
    bn_block = vgg_block(1, 3, 8, batch_norm=True)
    assert [type(m) for m in bn_block] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    assert bn_block[0].bias is not None  # the conv keeps its bias before BN, as torchvision


# --- training ---------------------------------------------------------------------------------------------

def test_slim_vgg11_bn_training_steps_lower_the_loss_on_a_fixed_batch():
    minicnn.manual_seed(0)
    model = vgg11_bn(num_classes=10, width_mult=0.125, dropout=0.0)
    assert param_count(model) < 3_000_000
    rng = np.random.default_rng(0)
    images = minicnn.tensor(rng.standard_normal((8, 3, 32, 32)).astype(np.float32))
    labels = minicnn.tensor(rng.integers(0, 10, size=8))
    optimizer = minicnn.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses
    assert model.features[1].num_batches_tracked.item() == 6  # BN was in training mode


# --- fully convolutional test mode ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slim_vgg16_float64():
    minicnn.manual_seed(3)
    model = vgg("D", width_mult=SLIM, num_classes=10).double().eval()
    # Non-zero biases, so that a bias lost in the conversion would show.
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.bias.data[...] = np.random.default_rng(0).uniform(-0.1, 0.1, m.bias.shape)
    return model


def _images(*shape):
    return minicnn.tensor(np.random.default_rng(1).standard_normal(shape))


def test_fully_convolutional_vgg_gives_the_same_logits_at_224(slim_vgg16_float64):
    model = slim_vgg16_float64
    dense = vgg_to_fully_convolutional(model)
    x = _images(2, 3, 224, 224)
    logits = model(x).numpy()
    score_map = dense(x).numpy()
    assert score_map.shape == (2, 10, 1, 1)
    assert _rel_error(score_map[:, :, 0, 0], logits) < 1e-12
    assert _rel_error(dense.predict(x).numpy(), logits) < 1e-12


def test_fully_convolutional_vgg_slides_the_classifier_over_larger_inputs(slim_vgg16_float64):
    model = slim_vgg16_float64
    dense = model.fully_convolutional()
    x = _images(1, 3, 256, 288)  # features 8x9 → 2x3 windows of 7x7
    score_map = dense(x).numpy()
    assert score_map.shape == (1, 10, 2, 3)
    features = model.features(x)
    for i in range(2):
        for j in range(3):
            window = minicnn.tensor(features.numpy()[:, :, i:i + 7, j:j + 7])
            expected = model.classifier(minicnn.flatten(window, 1)).numpy()
            assert _rel_error(score_map[:, :, i, j], expected) < 1e-12
    np.testing.assert_allclose(dense.predict(x).numpy(), score_map.mean(axis=(2, 3)), rtol=1e-12)


def test_fully_convolutional_vgg_shares_the_original_weights(slim_vgg16_float64):
    model = slim_vgg16_float64
    dense = vgg_to_fully_convolutional(model)
    assert dense.features is model.features
    assert list(dense.state_dict()) == list(model.state_dict())  # same keys: classifier.0/.3/.6
    for index, kernel in ((0, 7), (3, 1), (6, 1)):
        conv, linear = dense.classifier[index], model.classifier[index]
        assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (kernel, kernel)
        assert np.shares_memory(conv.weight.data, linear.weight.data)
        np.testing.assert_array_equal(conv.weight.numpy().reshape(linear.weight.shape), linear.weight.numpy())
        assert conv.bias is linear.bias


def test_fully_convolutional_vgg_rejects_small_inputs_and_non_vgg_models(slim_vgg16_float64):
    dense = slim_vgg16_float64.fully_convolutional()
    with pytest.raises(ValueError, match=r"vgg \(D\) \(fully convolutional\): input 200x224 is too small, "
                                         r"the minimum is 224x224"):
        dense(_images(1, 3, 200, 224))
    with pytest.raises(TypeError, match="expected a VGG model, got Sequential"):
        vgg_to_fully_convolutional(nn.Sequential(nn.ReLU()))
    assert isinstance(dense, FullyConvolutionalVGG)


@pytest.mark.slow
def test_full_vgg16_converts_to_fully_convolutional(full_vgg16, vgg16_at_224):
    model = full_vgg16
    x, logits = vgg16_at_224
    dense = model.fully_convolutional()
    shapes = [tuple(dense.classifier[i].weight.shape) for i in (0, 3, 6)]
    assert shapes == [(4096, 512, 7, 7), (4096, 4096, 1, 1), (1000, 4096, 1, 1)]
    assert _rel_error(dense(x).numpy()[:, :, 0, 0], logits) < 1e-4


# --- bad inputs and the registry ---------------------------------------------------------------------------

def test_vgg_rejects_unknown_configurations_and_bad_options():
    with pytest.raises(ValueError, match="vgg: unknown configuration 'F', expected one of A, A-LRN, B, C, D, E"):
        vgg("F")
    with pytest.raises(TypeError, match="vgg: cfg must be a configuration name .* got int"):
        vgg(16)
    with pytest.raises(ValueError, match="vgg: configuration entry 'X' is not"):
        vgg([64, "X", "M"])
    with pytest.raises(ValueError, match="vgg: configuration .* has no convolution"):
        vgg(["M"])
    with pytest.raises(ValueError, match=r"vgg \(A\): width_mult must be a positive finite number, got 0"):
        vgg("A", width_mult=0)


def test_vgg_rejects_wrong_channels_small_inputs_and_non_tensors():
    model = vgg11_bn(width_mult=SLIM).eval()
    with pytest.raises(ValueError, match=r"vgg11_bn: expected input of shape \(N, 3, H, W\), got \(1, 1, 32, 32\)"):
        model(minicnn.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="vgg11_bn: input 16x32 is too small, the minimum is 32x32"):
        model(minicnn.randn(1, 3, 16, 32))
    with pytest.raises(TypeError, match="vgg11_bn: input must be a Tensor, got ndarray"):
        model(np.zeros((1, 3, 32, 32), dtype=np.float32))
    grey = vgg("A", width_mult=SLIM, in_channels=1).eval()
    assert grey(minicnn.randn(1, 1, 32, 32)).shape == (1, 1000)


def test_vgg_builders_are_registered_and_take_num_classes():
    assert set(TORCHVISION_NAMES) <= set(MODELS) and {"vgg11_lrn", "vgg16_c"} <= set(MODELS)
    for name, builder in MODELS.items():
        model = builder(num_classes=3, width_mult=SLIM)
        assert isinstance(model, VGG) and model.name == name
        assert model.classifier[6].out_features == 3
    assert MODELS["vgg16"] is vgg16
