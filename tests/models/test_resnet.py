"""ResNet / ResNeXt (torchvision-compatible) and the CIFAR ResNets and plain nets of the paper's section 4.2."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_facts import load_reference, param_count, state_dict_spec

import minicnn
from minicnn import nn, optim
from minicnn.models.resnet import (
    MODELS,
    RESNET_CFGS,
    BasicBlock,
    Bottleneck,
    ResNet,
    resnet,
    resnet18,
    resnet50,
    resnext101_32x8d,
)
from minicnn.models.resnet_cifar import MODELS as CIFAR_MODELS
from minicnn.models.resnet_cifar import CifarResNet, PlainBlock, ShortcutA, cifar_plain, cifar_resnet

REFERENCE_MODELS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d"]

# Parameter counts as the paper prints them (Table 6 and section 4.2), in millions.
CIFAR_PAPER_PARAMS_M = {20: "0.27", 32: "0.46", 44: "0.66", 56: "0.85", 110: "1.7", 1202: "19.4"}


@pytest.fixture(scope="module")
def reference_model(request):
    """One build per torchvision model per module (pytest groups the tests by parameter)."""
    return request.param, MODELS[request.param]()


def weighted_main_path_layers(model):
    """Convs and fcs outside the shortcuts: the layers the paper counts in "ResNet-50"."""
    return [m for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and ".downsample." not in name]


# --- weight compatibility with torchvision (reference.json) -----------------------------------------
@pytest.mark.parametrize("reference_model", REFERENCE_MODELS, indirect=True)
def test_state_dict_keys_order_and_shapes_match_torchvision(reference_model):
    name, model = reference_model
    ours = [(key, tuple(value.shape)) for key, value in model.state_dict().items()]
    expected = state_dict_spec(name)
    assert len(ours) == len(expected) == load_reference()[name]["num_state_dict_keys"]
    mismatches = [(i, a, b) for i, (a, b) in enumerate(zip(ours, expected)) if a != b]
    assert not mismatches, f"{name}: first mismatches (index, ours, torchvision): {mismatches[:3]}"


@pytest.mark.parametrize("reference_model", REFERENCE_MODELS, indirect=True)
def test_parameter_buffer_and_bn_facts_match_torchvision(reference_model):
    name, model = reference_model
    facts = load_reference()[name]
    assert param_count(model) == facts["params"] == facts["trainable"]
    buffers = [buffer for _, buffer in model.named_buffers()]
    assert len(buffers) == facts["buffers"]["count"]
    assert sum(buffer.numel() for buffer in buffers) == facts["buffers"]["elements"]
    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(batch_norms) == facts["buffers"]["num_bn_layers"]
    assert {(bn.eps, bn.momentum) for bn in batch_norms} == {tuple(pair) for pair in facts["bn_eps_momentum"]}
    assert all(bn.num_batches_tracked.dtype == np.int64 for bn in batch_norms)
    assert all(p.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("reference_model", REFERENCE_MODELS, indirect=True)
def test_depth_counts_weighted_layers_as_in_table_1(reference_model):
    name, model = reference_model
    depth = int(name.removeprefix("resnet").removeprefix("resnext").split("_")[0])
    block, blocks_per_stage = RESNET_CFGS[depth]
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert [len(stage) for stage in stages] == blocks_per_stage
    assert all(isinstance(b, block) for stage in stages for b in stage)
    assert len(weighted_main_path_layers(model)) == depth


def test_resnext101_32x8d_has_torchvision_parameter_count():
    model = resnext101_32x8d()
    assert param_count(model) == 88_791_336  # torchvision's documented figure (not in reference.json)
    assert len(model.state_dict()) == load_reference()["resnet101"]["num_state_dict_keys"]
    first_grouped = model.layer1[0].conv2  # width = int(64 · 8/64) · 32 = 256, in 32 groups of 8
    assert first_grouped.groups == 32 and first_grouped.weight.shape == (256, 8, 3, 3)


# --- architecture details that keys alone do not show --------------------------------------------
@pytest.mark.parametrize("reference_model", ["resnet18", "resnet50", "resnext50_32x4d"], indirect=True)
def test_stride_sits_where_torchvision_puts_it(reference_model):
    name, model = reference_model
    for stage, stride in zip([model.layer1, model.layer2, model.layer3, model.layer4], (1, 2, 2, 2)):
        first = stage[0]
        if isinstance(first, Bottleneck):  # v1.5: on the 3×3 conv, never on the first 1×1
            assert first.conv1.stride == (1, 1) and first.conv2.stride == (stride, stride)
        else:
            assert first.conv1.stride == (stride, stride) and first.conv2.stride == (1, 1)
        if first.downsample is not None:
            assert first.downsample[0].stride == (stride, stride)
            assert first.downsample[0].kernel_size == (1, 1)
        assert all(block.conv2.stride == (1, 1) and block.downsample is None for block in list(stage)[1:])
    expected_groups = 32 if name.startswith("resnext") else 1
    assert {block.conv2.groups for stage in (model.layer1, model.layer4) for block in stage} == {expected_groups}


@pytest.mark.parametrize("reference_model", ["resnet18", "resnet50"], indirect=True)
def test_init_is_kaiming_fan_out_and_unit_batch_norm(reference_model):
    _, model = reference_model
    conv = model.layer4[0].conv1  # fan_out ≠ fan_in here (512·k·k against 256·9 or 1024), ≥ 0.5M samples
    out_channels, in_channels, kernel_h, kernel_w = conv.weight.shape
    assert out_channels != in_channels
    expected_std = np.sqrt(2.0 / (out_channels * kernel_h * kernel_w))
    assert abs(conv.weight.data.std() / expected_std - 1) < 0.02
    assert abs(conv.weight.data.mean()) < 0.05 * expected_std
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert np.all(bn.weight.data == 1) and np.all(bn.bias.data == 0)


@pytest.mark.parametrize("reference_model", ["resnet18", "resnet50"], indirect=True)
def test_forward_at_224_goes_through_table_1_sizes(reference_model):
    name, model = reference_model
    model.eval()
    x = minicnn.randn(1, 3, 224, 224)
    with minicnn.no_grad():
        features = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        assert features.shape == (1, 64, 56, 56)
        expansion = 4 if name == "resnet50" else 1
        for stage, (planes, size) in zip([model.layer1, model.layer2, model.layer3, model.layer4],
                                         [(64, 56), (128, 28), (256, 14), (512, 7)]):
            features = stage(features)
            assert features.shape == (1, planes * expansion, size, size)
        logits = model(x)
    assert logits.shape == (1, 1000) and logits.dtype == np.float32
    assert np.all(np.isfinite(logits.data))
    assert np.allclose(logits.data, model.fc(minicnn.flatten(model.avgpool(features), 1)).data, atol=1e-5)


@pytest.mark.parametrize("builder", [resnet18, resnet50])
def test_small_32x32_inputs_work_with_any_num_classes(builder):
    model = builder(num_classes=10)
    model.eval()
    with minicnn.no_grad():
        logits = model(minicnn.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and np.all(np.isfinite(logits.data))


@pytest.mark.parametrize("size", [1, 7, 33])
def test_any_input_size_from_one_pixel_works_in_eval(size):
    model = resnet18(num_classes=3)
    model.eval()
    with minicnn.no_grad():
        assert model(minicnn.randn(1, 3, size, size)).shape == (1, 3)


def test_in_channels_option_changes_only_the_stem():
    grey = resnet18(in_channels=1, num_classes=10)
    assert grey.conv1.weight.shape == (64, 1, 7, 7)
    assert grey(minicnn.randn(2, 1, 16, 16)).shape == (2, 10)


# --- residual sanity: zero_init_residual makes every block relu(shortcut(x)) ----------------------------
@pytest.fixture(scope="module")
def zero_init_nets():
    minicnn.manual_seed(3)
    nets = [resnet18(zero_init_residual=True), ResNet(Bottleneck, [1, 2, 1, 1], groups=4, width_per_group=16,
                                                      zero_init_residual=True, num_classes=10)]
    for net in nets:
        net.eval()
    return nets


def test_zero_init_residual_zeroes_exactly_the_last_bn_of_each_block(zero_init_nets):
    for net in zero_init_nets:
        for block in (b for stage in (net.layer1, net.layer2, net.layer3, net.layer4) for b in stage):
            last = block.bn3 if isinstance(block, Bottleneck) else block.bn2
            others = [block.bn1] + ([block.bn2] if isinstance(block, Bottleneck) else [])
            assert np.all(last.weight.data == 0)
            assert all(np.all(bn.weight.data == 1) for bn in others)
        assert np.all(net.bn1.weight.data == 1)


@settings(max_examples=8, deadline=None)
@given(net_index=st.integers(0, 1), stage_index=st.integers(0, 3), block_index=st.integers(0, 1),
       batch=st.integers(1, 2), size=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_zero_init_residual_block_in_eval_is_relu_of_its_shortcut(zero_init_nets, net_index, stage_index,
                                                                  block_index, batch, size, seed):
    net = zero_init_nets[net_index]
    stage = [net.layer1, net.layer2, net.layer3, net.layer4][stage_index]
    block = stage[min(block_index, len(stage) - 1)]
    in_channels = block.conv1.in_channels
    x = minicnn.Tensor(np.random.default_rng(seed).standard_normal((batch, in_channels, size, size)),
                       dtype=np.float32)
    with minicnn.no_grad():
        out = block(x)
        shortcut = x if block.downsample is None else block.downsample(x)
    assert out.shape == shortcut.shape
    np.testing.assert_array_equal(out.data, np.maximum(shortcut.data, 0))
    # and without zero init the residual branch does contribute
    assert block.conv1.weight.data.std() > 0


# --- a Bottleneck and an option-A block computed independently by torch ------------------------------
def _torch_bn(torch, x, bn):
    to_torch = lambda t: torch.tensor(t.data)
    return torch.nn.functional.batch_norm(x, to_torch(bn.running_mean), to_torch(bn.running_var),
                                          to_torch(bn.weight), to_torch(bn.bias), False, 0.0, bn.eps)


def _randomise_bn_statistics(module, rng):
    for bn in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
        for tensor in (bn.weight, bn.bias, bn.running_mean):
            tensor.data[...] = rng.standard_normal(tensor.shape).astype(np.float32) * 0.5
        bn.running_var.data[...] = rng.uniform(0.5, 2.0, bn.running_var.shape).astype(np.float32)


def test_grouped_v1_5_bottleneck_matches_torch_functional():
    torch = pytest.importorskip("torch")
    conv = torch.nn.functional.conv2d
    relu = torch.relu
    rng = np.random.default_rng(0)
    net = ResNet(Bottleneck, [1, 1, 1, 1], groups=8, width_per_group=8, num_classes=10)
    block = net.layer2[0]  # stride 2, projection shortcut, grouped 3×3
    _randomise_bn_statistics(block, rng)
    block.eval()
    x_np = rng.standard_normal((2, block.conv1.in_channels, 9, 9)).astype(np.float32)
    w = {name: torch.tensor(p.data) for name, p in block.named_parameters()}
    x = torch.tensor(x_np)
    out = relu(_torch_bn(torch, conv(x, w["conv1.weight"]), block.bn1))
    out = relu(_torch_bn(torch, conv(out, w["conv2.weight"], stride=2, padding=1, groups=8), block.bn2))
    out = _torch_bn(torch, conv(out, w["conv3.weight"]), block.bn3)
    shortcut = _torch_bn(torch, conv(x, w["downsample.0.weight"], stride=2), block.downsample[1])
    expected = relu(out + shortcut).numpy()
    with minicnn.no_grad():
        ours = block(minicnn.Tensor(x_np)).data
    assert ours.shape == expected.shape == (2, 512, 5, 5)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


def test_option_a_block_matches_torch_subsample_and_zero_pad():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    block = cifar_resnet(20).layer2[0]  # 16 → 32 channels, 32×32 → 16×16
    assert isinstance(block.downsample, ShortcutA)
    _randomise_bn_statistics(block, rng)
    block.eval()
    x_np = rng.standard_normal((2, 16, 7, 7)).astype(np.float32)  # odd size: ⌈7/2⌉ = 4
    x = torch.tensor(x_np)
    w = {name: torch.tensor(p.data) for name, p in block.named_parameters()}
    conv = torch.nn.functional.conv2d
    out = torch.relu(_torch_bn(torch, conv(x, w["conv1.weight"], stride=2, padding=1), block.bn1))
    out = _torch_bn(torch, conv(out, w["conv2.weight"], padding=1), block.bn2)
    shortcut = torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 0, 16))  # zeros after the 16 channels
    expected = torch.relu(out + shortcut).numpy()
    with minicnn.no_grad():
        ours = block(minicnn.Tensor(x_np)).data
    assert ours.shape == (2, 32, 4, 4)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)


# --- the CIFAR nets of section 4.2 --------------------------------------------------------------------
@pytest.mark.parametrize("depth", sorted(CIFAR_PAPER_PARAMS_M))
def test_cifar_resnet_parameters_match_the_paper(depth):
    model = cifar_resnet(depth)
    paper = CIFAR_PAPER_PARAMS_M[depth]
    decimals = len(paper.split(".")[1])
    assert f"{param_count(model) / 1e6:.{decimals}f}" == paper
    assert len(weighted_main_path_layers(model)) == depth  # 6n + 2
    assert [len(stage) for stage in (model.layer1, model.layer2, model.layer3)] == [(depth - 2) // 6] * 3
    # Option A adds nothing: the plain net of the same depth has the same parameters (and keys) —
    # skipped for 1202, the paper has no plain 1202 and it is the slowest build.
    if depth != 1202:
        plain = cifar_plain(depth)
        assert param_count(plain) == param_count(model)
        assert list(plain.state_dict()) == list(model.state_dict())


def test_registry_names_do_not_clash_and_build_what_they_say():
    assert not set(MODELS) & set(CIFAR_MODELS)
    assert set(CIFAR_MODELS) == {f"cifar_resnet{d}" for d in (20, 32, 44, 56, 110, 1202)} | {
        f"cifar_plain{d}" for d in (20, 32, 44, 56, 110)}
    for name in ("cifar_resnet32", "cifar_plain32"):
        model = CIFAR_MODELS[name]()
        residual = name.startswith("cifar_resnet")
        assert model.depth == 32 and model.residual == residual
        assert all(isinstance(b, BasicBlock if residual else PlainBlock) for b in model.layer1)


def test_plain_weights_load_into_the_resnet_of_the_same_depth():
    plain, residual = cifar_plain(20), cifar_resnet(20)
    residual.load_state_dict(plain.state_dict())
    assert np.array_equal(residual.layer3[2].conv2.weight.data, plain.layer3[2].conv2.weight.data)


def test_cifar_resnet20_goes_32_16_8_and_outputs_10_classes():
    model = cifar_resnet(20)
    model.eval()
    x = minicnn.randn(4, 3, 32, 32)
    with minicnn.no_grad():
        features = model.relu(model.bn1(model.conv1(x)))
        for stage, expected in zip((model.layer1, model.layer2, model.layer3),
                                   [(4, 16, 32, 32), (4, 32, 16, 16), (4, 64, 8, 8)]):
            features = stage(features)
            assert features.shape == expected
        assert model(x).shape == (4, 10)
    # He init on fan_out, as for the ImageNet nets: 64 filters of 3×3 over 32 channels here
    weight = model.layer3[0].conv1.weight.data
    assert abs(weight.std() / np.sqrt(2.0 / (64 * 9)) - 1) < 0.05


def test_shortcut_b_adds_projections_only_where_the_shape_changes():
    model_b = cifar_resnet(20, shortcut="B")
    projections = [name for name, m in model_b.named_modules() if name.endswith("downsample")]
    assert projections == ["layer2.0.downsample", "layer3.0.downsample"]
    # 1×1 convs 16→32 and 32→64 plus their BNs' γ and β
    assert param_count(model_b) - param_count(cifar_resnet(20)) == 16 * 32 + 32 * 2 + 32 * 64 + 64 * 2
    assert model_b(minicnn.randn(2, 3, 8, 8)).shape == (2, 10)


def test_zero_init_cifar_resnet_reduces_to_stem_plus_shortcuts():
    model = cifar_resnet(20, zero_init_residual=True)
    model.eval()
    x = minicnn.randn(2, 3, 12, 12)
    with minicnn.no_grad():
        stem = model.relu(model.bn1(model.conv1(x)))
        through_blocks = model.layer3(model.layer2(model.layer1(stem)))
        # relu(shortcut) of a non-negative map is the shortcut itself
        expected = model.layer3[0].downsample(model.layer2[0].downsample(stem))
    np.testing.assert_array_equal(through_blocks.data, expected.data)


# --- training: the loss falls over a few SGD steps on a fixed batch -------------------------------------
def _losses_over_sgd_steps(model, images, labels, steps=5, lr=0.05):
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        if not losses:
            missing = [name for name, p in model.named_parameters() if p.grad is None]
            assert not missing, f"no gradient for {missing[:3]}"
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("builder", [cifar_resnet, cifar_plain])
def test_cifar_net_training_steps_lower_the_loss(builder):
    minicnn.manual_seed(0)
    model = builder(20)
    images = minicnn.randn(8, 3, 32, 32)
    labels = minicnn.tensor(np.arange(8) % 10)
    losses = _losses_over_sgd_steps(model, images, labels)
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.95 * losses[0], losses


@pytest.mark.parametrize("block, layers", [(BasicBlock, [1, 1, 1, 1]), (Bottleneck, [1, 1, 1, 1])])
def test_imagenet_style_net_training_steps_lower_the_loss(block, layers):
    minicnn.manual_seed(1)
    groups = 4 if block is Bottleneck else 1
    width = 16 if block is Bottleneck else 64
    model = ResNet(block, layers, num_classes=5, groups=groups, width_per_group=width)
    images = minicnn.randn(4, 3, 32, 32)
    labels = minicnn.tensor(np.arange(4) % 5)
    losses = _losses_over_sgd_steps(model, images, labels, steps=4, lr=0.02)
    assert losses[-1] < 0.95 * losses[0], losses


# --- bad inputs: clear errors that name the model ----------------------------------------------------
@pytest.mark.parametrize("depth", [42, 0, 20, 200])
def test_resnet_depth_not_in_table_1_is_rejected(depth):
    with pytest.raises(ValueError, match=rf"resnet: depth {depth} is not in Table 1.*18, 34, 50, 101, 152"):
        resnet(depth)


@pytest.mark.parametrize("depth", ["50", 50.0, True, None])
def test_resnet_depth_must_be_an_int(depth):
    with pytest.raises(TypeError, match="resnet: depth must be an int"):
        resnet(depth)


@pytest.mark.parametrize("builder, name", [(cifar_resnet, "cifar_resnet"), (cifar_plain, "cifar_plain")])
@pytest.mark.parametrize("depth", [21, 2, 18, -4])
def test_cifar_depth_must_be_6n_plus_2(builder, name, depth):
    with pytest.raises(ValueError, match=rf"{name}{depth}: depth must be 6n \+ 2 .* got {depth}"):
        builder(depth)


@pytest.mark.parametrize("build, name, channels", [
    (lambda: resnet18(num_classes=10), "resnet18", 3),
    (lambda: cifar_resnet(20), "cifar_resnet20", 3),
    (lambda: cifar_plain(20, in_channels=1), "cifar_plain20", 1),
])
def test_wrong_channel_count_names_the_model_and_both_shapes(build, name, channels):
    model = build()
    wrong = minicnn.randn(2, channels + 1, 16, 16)
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape \(N, {channels}, H, W\), "
                                         rf"got \(2, {channels + 1}, 16, 16\)"):
        model(wrong)
    with pytest.raises(ValueError, match=rf"{name}: .* got \({channels}, 16, 16\)"):
        model(minicnn.randn(channels, 16, 16))  # unbatched
    with pytest.raises(TypeError, match=rf"{name}: input must be a Tensor, got ndarray"):
        model(np.zeros((2, channels, 16, 16), dtype=np.float32))


def test_bad_constructor_options_are_rejected_with_the_model_name():
    with pytest.raises(ValueError, match="resnet50: num_classes must be positive, got 0"):
        resnet50(num_classes=0)
    with pytest.raises(TypeError, match="resnet18: num_classes must be an int"):
        resnet18(num_classes=10.5)
    with pytest.raises(ValueError, match="BasicBlock: groups and width_per_group only apply to Bottleneck"):
        resnet18(groups=32, width_per_group=4)
    with pytest.raises(ValueError, match="ResNet: layers must list the blocks of the 4 stages"):
        ResNet(BasicBlock, [2, 2, 2])
    with pytest.raises(ValueError, match="ResNet: each stage's block count must be positive, got 0"):
        ResNet(BasicBlock, [2, 0, 2, 2])
    with pytest.raises(TypeError, match="ResNet: block must be BasicBlock or Bottleneck"):
        ResNet(PlainBlock, [2, 2, 2, 2])
    with pytest.raises(ValueError, match="cifar_resnet20: shortcut must be 'A' .* or 'B' .*, got 'C'"):
        cifar_resnet(20, shortcut="C")
    with pytest.raises(ValueError, match="cifar_plain20: zero_init_residual needs shortcuts"):
        cifar_plain(20, zero_init_residual=True)
    with pytest.raises(ValueError, match="cifar_resnet20: num_classes must be positive"):
        CifarResNet(20, num_classes=-1, name="cifar_resnet20")
