"""MobileNet v1, v2, v3: torchvision's keys/shapes/counts, the papers' figures, block numerics, training, bad input."""
import importlib

import numpy as np
import pytest
from reference_facts import load_reference, param_count, state_dict_spec

import minicnn
from minicnn import nn, optim
from minicnn.models.mobilenet_v1 import MODELS as V1_MODELS
from minicnn.models.mobilenet_v1 import mobilenet_v1
from minicnn.models.mobilenet_v2 import MODELS as V2_MODELS
from minicnn.models.mobilenet_v2 import InvertedResidual, make_divisible, mobilenet_v2
from minicnn.models.mobilenet_v3 import MODELS as V3_MODELS
from minicnn.models.mobilenet_v3 import (
    BlockConfig,
    InvertedResidualV3,
    SqueezeExcitation,
    mobilenet_v3_large,
    mobilenet_v3_small,
)

TORCHVISION_NAMES = ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]
BUILDERS = {"mobilenet_v1": mobilenet_v1, "mobilenet_v2": mobilenet_v2,
            "mobilenet_v3_large": mobilenet_v3_large, "mobilenet_v3_small": mobilenet_v3_small}


@pytest.fixture(scope="module")
def models():
    """Every MobileNet at width 1.0 and 1000 classes, built once for the module, in eval mode."""
    minicnn.manual_seed(0)
    return {name: builder().eval() for name, builder in BUILDERS.items()}


def count_macs(model, x):
    """Run ``model(x)`` counting multiply-adds per image as the reference does
    (conv: C_out·H_out·W_out·C_in/groups·kh·kw, linear: in·out)."""
    total = [0]

    def hook(layer, inputs, output):
        if isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            total[0] += int(np.prod(output.shape[1:])) * layer.in_channels // layer.groups * kh * kw
        else:
            total[0] += layer.in_features * layer.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        output = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return output, total[0]


@pytest.fixture(scope="module")
def at_224(models):
    """(logits, MACs) of each model on one 224×224 image: the only full-size forward passes in this file."""
    minicnn.manual_seed(1)
    image = minicnn.randn(1, 3, 224, 224)
    with minicnn.no_grad():
        return {name: count_macs(model, image) for name, model in models.items()}


# --- registry ------------------------------------------------------------------------------------------

def test_each_file_registers_its_builders():
    # importlib: the package re-exports the builders, so the attribute minicnn.models.mobilenet_v2 is the
    # function, while the module itself stays reachable by its import path.
    for family in ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3"):
        module = importlib.import_module(f"minicnn.models.{family}")
        assert sorted(module.__all__) == sorted(module.MODELS)
    assert V1_MODELS == {"mobilenet_v1": mobilenet_v1}
    assert V2_MODELS == {"mobilenet_v2": mobilenet_v2}
    assert V3_MODELS == {"mobilenet_v3_large": mobilenet_v3_large, "mobilenet_v3_small": mobilenet_v3_small}
    models = importlib.import_module("minicnn.models")
    assert set(BUILDERS) <= set(models.list_models())
    assert models.get_model("mobilenet_v3_small", num_classes=3, width_mult=0.5).classifier[3].out_features == 3


# --- torchvision compatibility ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_state_dict_keys_order_and_shapes_equal_torchvision(models, name):
    ours = [(key, tuple(value.shape)) for key, value in models[name].state_dict().items()]
    assert ours == state_dict_spec(name)


@pytest.mark.parametrize("name, expected", [("mobilenet_v2", 3_504_872), ("mobilenet_v3_large", 5_483_032),
                                            ("mobilenet_v3_small", 2_542_856)])
def test_parameter_count_equals_torchvision(models, name, expected):
    assert param_count(models[name]) == expected == load_reference()[name]["params"]


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_batch_norm_eps_and_momentum_equal_torchvision(models, name):
    settings = {(bn.eps, bn.momentum) for bn in models[name].modules() if isinstance(bn, nn.BatchNorm2d)}
    assert settings == {tuple(pair) for pair in load_reference()[name]["bn_eps_momentum"]}
    bn_layers = sum(isinstance(m, nn.BatchNorm2d) for m in models[name].modules())
    assert bn_layers == load_reference()[name]["buffers"]["num_bn_layers"]


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_output_shape_and_macs_at_224_equal_torchvision(at_224, name):
    logits, macs = at_224[name]
    assert logits.shape == tuple(load_reference()[name]["output_shape"])
    assert macs == load_reference()[name]["macs_224"]
    assert np.isfinite(logits.data).all()


def test_state_dict_round_trip_gives_the_same_logits(models):
    minicnn.manual_seed(2)
    source = mobilenet_v3_small(num_classes=10, width_mult=0.5).eval()
    for name, buffer in source.named_buffers():  # non-trivial running statistics, so loading them matters
        if name.endswith(("running_mean", "running_var")):
            buffer.data[...] = np.random.default_rng(0).uniform(0.5, 1.5, buffer.shape)
    copy = mobilenet_v3_small(num_classes=10, width_mult=0.5).eval()
    copy.load_state_dict(source.state_dict())
    image = minicnn.randn(2, 3, 32, 32)
    np.testing.assert_array_equal(copy(image).data, source(image).data)


# --- MobileNet v1 and its paper ------------------------------------------------------------------------------

def v1_macs(model, size):
    """Multiply-adds of MobileNet v1 worked out by hand from its layers (a plain chain, so the conv
    arithmetic H_out = (H + 2P − K) / S + 1 suffices), classifier included."""
    height = size
    total = 0
    for conv in (m for m in model.features.modules() if isinstance(m, nn.Conv2d)):
        (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
        height = (height + 2 * p - k) // s + 1
        total += conv.out_channels * height * height * conv.in_channels // conv.groups * k * k
    linear = model.classifier[-1]
    return total + linear.in_features * linear.out_features


# Table 6 of the paper: width multiplier α → (million parameters, million mult-adds at 224).
@pytest.mark.parametrize("width_mult, million_params, million_macs, digits",
                         [(1.0, 4.2, 569, 1), (0.75, 2.6, 325, 1), (0.5, 1.3, 149, 1), (0.25, 0.47, 41, 2)])
def test_v1_params_and_mult_adds_round_to_the_papers_table_6(width_mult, million_params, million_macs, digits):
    model = mobilenet_v1(width_mult=width_mult)
    assert round(param_count(model) / 1e6, digits) == million_params
    assert round(v1_macs(model, 224) / 1e6) == million_macs


def test_v1_parameter_count_by_hand_from_table_1():
    model = mobilenet_v1()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    depthwise_widths = [32, 64, 128, 128, 256, 256] + [512] * 6 + [1024]
    pointwise = [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512)] + [(512, 512)] * 5 \
        + [(512, 1024), (1024, 1024)]
    assert sum(c.weight.numel() for c in convs) == 3 * 3 * 3 * 32 + sum(9 * c for c in depthwise_widths) \
        + sum(m * n for m, n in pointwise) == 3_185_088
    batch_norm_widths = 32 + sum(depthwise_widths) + sum(n for _, n in pointwise)
    assert sum(bn.weight.numel() + bn.bias.numel() for bn in model.modules()
               if isinstance(bn, nn.BatchNorm2d)) == 2 * batch_norm_widths == 21_888
    assert param_count(model) == 3_185_088 + 1024 * 1000 + 1000 + 21_888 == 4_231_976


@pytest.mark.parametrize("resolution, million_macs", [(192, 418), (160, 290), (128, 186)])
def test_v1_mult_adds_follow_the_papers_table_7(resolution, million_macs):
    # The table rounds inconsistently (160 gives 290.7M, printed 290), hence "within 1M".
    assert abs(v1_macs(mobilenet_v1(), resolution) / 1e6 - million_macs) < 1


def test_v1_hand_count_agrees_with_the_forward_pass(models, at_224):
    assert at_224["mobilenet_v1"][1] == v1_macs(models["mobilenet_v1"], 224)


def test_v1_follows_table_1():
    model = mobilenet_v1()
    convs = [layer[0] for layer in model.features]
    assert len(convs) == 27 and all(isinstance(layer[2], nn.ReLU) for layer in model.features)
    depthwise = convs[1::2]
    assert all(c.groups == c.in_channels == c.out_channels and c.kernel_size == (3, 3) for c in depthwise)
    assert all(c.kernel_size == (1, 1) and c.groups == 1 for c in convs[2::2])
    assert [c.out_channels for c in convs[2::2]] == [64, 128, 128, 256, 256] + [512] * 6 + [1024, 1024]
    # Five stride-2 layers: the stem and four depthwise convs (the last one is stride 1 despite the table).
    assert [i for i, c in enumerate(convs) if c.stride == (2, 2)] == [0, 3, 7, 11, 23]
    keys = list(model.state_dict())
    assert keys[:3] == ["features.0.0.weight", "features.0.1.weight", "features.0.1.bias"]
    assert keys[-2:] == ["classifier.1.weight", "classifier.1.bias"]


def test_v1_width_multiplier_thins_every_layer():
    convs = [m for m in mobilenet_v1(width_mult=0.25).modules() if isinstance(m, nn.Conv2d)]
    full = [m for m in mobilenet_v1().modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels * 4 for c in convs] == [c.out_channels for c in full]


# --- forward shapes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(BUILDERS))
def test_forward_at_224_gives_one_row_of_1000_logits(at_224, name):
    logits, _ = at_224[name]
    assert logits.shape == (1, 1000) and logits.dtype == np.float32


@pytest.mark.parametrize("name", list(BUILDERS))
def test_forward_at_32x32_works_for_every_model(models, name):
    with minicnn.no_grad():
        logits = models[name](minicnn.randn(2, 3, 32, 32))
    assert logits.shape == (2, 1000) and np.isfinite(logits.data).all()


@pytest.mark.parametrize("size", [(40, 56), (7, 7)])
def test_v1_takes_any_resolution(size):
    model = mobilenet_v1(num_classes=5, width_mult=0.25).eval()
    with minicnn.no_grad():
        features = model.features(minicnn.randn(1, 3, *size))
    # Five stride-2 "same" convs: ceil(size / 32) (the resolution multiplier ρ is just the input size).
    assert features.shape == (1, 256, -(-size[0] // 32), -(-size[1] // 32))
    assert model(minicnn.randn(1, 3, *size)).shape == (1, 5)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_num_classes_sets_the_last_layer(name):
    model = BUILDERS[name](num_classes=7, width_mult=0.25)
    assert model.classifier[-1].out_features == 7


# --- blocks ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(16 // 4, 8), (72 // 4, 24), (240 // 4, 64), (144 // 4, 40),
                                             (120 // 4, 32), (32 * 0.75, 24), (24 * 0.35, 8), (1280 * 1.4, 1792),
                                             (96 * 0.5, 48), (10, 16)])
def test_make_divisible_matches_torchvision(value, expected):
    assert make_divisible(value) == expected


def test_squeeze_excitation_matches_numpy():
    rng = np.random.default_rng(3)
    se = SqueezeExcitation(16, 8)
    for conv in (se.fc1, se.fc2):  # biases matter, and a spread that reaches both hardsigmoid clamps
        conv.weight.data[...] = rng.normal(0, 1.5, conv.weight.shape)
        conv.bias.data[...] = rng.normal(0, 1.0, conv.bias.shape)
    x = rng.normal(0, 1, (2, 16, 5, 4)).astype(np.float32)

    pooled = x.mean(axis=(2, 3))                                                    # (N, 16)
    hidden = np.maximum(pooled @ se.fc1.weight.data[:, :, 0, 0].T + se.fc1.bias.data, 0)
    gate = np.clip(hidden @ se.fc2.weight.data[:, :, 0, 0].T + se.fc2.bias.data + 3, 0, 6) / 6
    assert (gate == 0).any() and (gate == 1).any() and ((gate > 0) & (gate < 1)).any()

    np.testing.assert_allclose(se.gate(minicnn.Tensor(x)).data[:, :, 0, 0], gate, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(se(minicnn.Tensor(x)).data, x * gate[:, :, None, None], rtol=1e-5, atol=1e-6)
    assert [k for k in se.state_dict()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def randomise_batch_norms(module, rng):
    """Give every BN non-trivial γ, β and running statistics, so an eval-mode comparison exercises them."""
    for bn in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.weight.data[...] = rng.uniform(0.5, 1.5, bn.weight.shape)
        bn.bias.data[...] = rng.normal(0, 0.5, bn.bias.shape)
        bn.running_mean.data[...] = rng.normal(0, 0.5, bn.running_mean.shape)
        bn.running_var.data[...] = rng.uniform(0.5, 2, bn.running_var.shape)


def torch_conv_bn(torch, state, prefix, x, groups=1, stride=1, eps=1e-5):
    """Conv (no bias) + eval-mode BN in PyTorch, read from our state_dict: the independent reference."""
    weight = torch.from_numpy(state[prefix[0] + ".weight"])
    x = torch.nn.functional.conv2d(x, weight, stride=stride, padding=(weight.shape[-1] - 1) // 2, groups=groups)
    bn = {name: torch.from_numpy(state[f"{prefix[1]}.{name}"]) for name in ("weight", "bias", "running_mean",
                                                                             "running_var")}
    return torch.nn.functional.batch_norm(x, bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"],
                                          training=False, eps=eps)


@pytest.mark.parametrize("expand_ratio, stride, in_channels, out_channels", [(6, 1, 16, 16), (1, 1, 16, 8),
                                                                             (6, 2, 8, 16)])
def test_v2_inverted_residual_matches_pytorch(expand_ratio, stride, in_channels, out_channels):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    block = InvertedResidual(in_channels, out_channels, stride, expand_ratio).eval()
    randomise_batch_norms(block, rng)
    state = block.state_dict()  # NumPy copies
    x = rng.normal(0, 1, (2, in_channels, 9, 9)).astype(np.float32)

    t = torch.from_numpy(x)
    hidden = in_channels * expand_ratio
    if expand_ratio != 1:
        t = torch.nn.functional.relu6(torch_conv_bn(torch, state, ("conv.0.0", "conv.0.1"), t))
    dw = "conv.1" if expand_ratio != 1 else "conv.0"
    t = torch.nn.functional.relu6(torch_conv_bn(torch, state, (f"{dw}.0", f"{dw}.1"), t, groups=hidden,
                                                stride=stride))
    project = ("conv.2", "conv.3") if expand_ratio != 1 else ("conv.1", "conv.2")
    t = torch_conv_bn(torch, state, project, t)  # linear bottleneck: no activation
    if stride == 1 and in_channels == out_channels:
        t = t + torch.from_numpy(x)
    np.testing.assert_allclose(block(minicnn.Tensor(x)).data, t.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("row", [(40, 5, 120, 40, True, "HS", 1), (16, 3, 16, 16, True, "RE", 2),
                                 (24, 3, 72, 24, False, "RE", 1)])
def test_v3_block_matches_pytorch(row):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    config = BlockConfig(*row, width_mult=1.0)
    block = InvertedResidualV3(config).eval()
    randomise_batch_norms(block, rng)
    state = block.state_dict()  # NumPy copies
    x = rng.normal(0, 1, (2, config.input_channels, 8, 8)).astype(np.float32)
    act = F.hardswish if row[5] == "HS" else F.relu

    t, index = torch.from_numpy(x), 0
    if config.expanded_channels != config.input_channels:
        t = act(torch_conv_bn(torch, state, ("block.0.0", "block.0.1"), t, eps=1e-3))
        index = 1
    t = act(torch_conv_bn(torch, state, (f"block.{index}.0", f"block.{index}.1"), t,
                          groups=config.expanded_channels, stride=config.stride, eps=1e-3))
    if config.use_se:
        index += 1
        se = {k: torch.from_numpy(state[f"block.{index}.{k}"]) for k in ("fc1.weight", "fc1.bias", "fc2.weight",
                                                                          "fc2.bias")}
        gate = F.adaptive_avg_pool2d(t, 1)
        gate = F.hardsigmoid(F.conv2d(F.relu(F.conv2d(gate, se["fc1.weight"], se["fc1.bias"])), se["fc2.weight"],
                                      se["fc2.bias"]))
        t = t * gate
    index += 1
    t = torch_conv_bn(torch, state, (f"block.{index}.0", f"block.{index}.1"), t, eps=1e-3)
    if config.stride == 1 and config.input_channels == config.out_channels:
        t = t + torch.from_numpy(x)
    np.testing.assert_allclose(block(minicnn.Tensor(x)).data, t.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, residual_blocks", [("mobilenet_v2", 10), ("mobilenet_v3_large", 10),
                                                   ("mobilenet_v3_small", 6)])
def test_residual_only_where_shapes_agree(models, name, residual_blocks):
    blocks = [m for m in models[name].features if hasattr(m, "use_res_connect")]
    assert sum(block.use_res_connect for block in blocks) == residual_blocks


def test_initialisation_follows_torchvision(models):
    model = models["mobilenet_v2"]
    pointwise = model.features[18][0]  # 320 → 1280, fan_out = 1280
    assert pointwise.weight.data.std() == pytest.approx(np.sqrt(2 / 1280), rel=0.05)
    assert model.classifier[1].weight.data.std() == pytest.approx(0.01, rel=0.05)
    assert not model.classifier[1].bias.data.any()
    se = models["mobilenet_v3_large"].features[4].block[2]
    assert isinstance(se, SqueezeExcitation) and not se.fc1.bias.data.any()
    assert all(w.dtype == np.float32 for w in model.parameters())


# --- training ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(BUILDERS))
def test_a_few_training_steps_lower_the_loss_of_a_thin_variant(name):
    # Adam, not plain SGD: with torchvision's init the depthwise weights start tiny (fan_out counts C·k·k), and
    # batch norm over 8 samples at the 1×1 end of a 32×32 input makes the loss far more sensitive to some
    # layers than others (gradient norms² in the 10⁵ for mobilenet_v2 against 0.5 for v3); no single SGD
    # learning rate suits them all, while Adam scales each parameter's step to its own gradient.
    minicnn.manual_seed(6)
    model = BUILDERS[name](num_classes=4, width_mult=0.25).train()
    images, labels = minicnn.randn(8, 3, 32, 32), minicnn.Tensor(np.arange(8) % 4)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.data))
    assert all(p.grad is not None for p in model.parameters())  # every layer is wired into the loss
    assert losses[-1] < losses[0] - 0.02, losses
    first_bn = model.features[0][1]
    assert int(first_bn.num_batches_tracked.data) == 4 and first_bn.running_mean.data.any()


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small"])
def test_input_gradient_of_the_whole_model_matches_finite_differences(name):
    # float64, train-mode batch norm, no dropout (so the loss is a deterministic function of the input).
    minicnn.manual_seed(7)
    model = BUILDERS[name](num_classes=3, width_mult=0.25, dropout=0.0).double().train()
    labels = minicnn.Tensor(np.array([0, 1, 2, 0]))
    images = np.random.default_rng(8).normal(0, 1, (4, 3, 32, 32))
    assert minicnn.gradcheck_directional(lambda x: nn.functional.cross_entropy(model(x), labels), [images],
                                         eps=1e-7, rtol=1e-4)


# --- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("width_mult", [0, -0.5, float("nan"), float("inf")])
def test_width_mult_must_be_positive_and_finite(name, width_mult):
    with pytest.raises(ValueError, match=f"{name}: width_mult must be a positive finite number, got {width_mult}"):
        BUILDERS[name](width_mult=width_mult)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_width_mult_must_be_a_number(name):
    with pytest.raises(TypeError, match=f"{name}: width_mult must be a number, got str '1.0'"):
        BUILDERS[name](width_mult="1.0")


@pytest.mark.parametrize("name", list(BUILDERS))
def test_num_classes_must_be_a_positive_int(name):
    with pytest.raises(ValueError, match=f"{name}: num_classes must be positive, got 0"):
        BUILDERS[name](num_classes=0)
    with pytest.raises(TypeError, match=f"{name}: num_classes must be an int"):
        BUILDERS[name](num_classes=10.0)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_wrong_input_is_rejected_with_the_models_name(models, name):
    model = models[name]
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape \(N, 3, H, W\), got \(1, 1, 32, 32\)"):
        model(minicnn.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape \(N, 3, H, W\), got \(3, 32, 32\)"):
        model(minicnn.randn(3, 32, 32))
    with pytest.raises(TypeError, match=f"{name}: input must be a Tensor, got ndarray"):
        model(np.zeros((1, 3, 32, 32), dtype=np.float32))
