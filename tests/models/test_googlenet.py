"""GoogLeNet: torchvision's keys, shapes, counts; train/eval outputs; aux loss; loading; paper variant."""
import numpy as np
import pytest
from oracle import rel_error, require_torch
from reference_facts import load_reference, param_count, state_dict_spec

import minicnn
from minicnn import nn
from minicnn.models.googlenet import (
    MODELS,
    GoogLeNetOutputs,
    googlenet,
    googlenet_loss,
    googlenet_paper,
    load_torchvision_state_dict,
)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)


@pytest.fixture(scope="module")
def tv_model():
    minicnn.manual_seed(0)
    return googlenet()


@pytest.fixture(scope="module")
def tv_model_noaux():
    minicnn.manual_seed(0)
    return googlenet(aux_logits=False)


@pytest.fixture(scope="module")
def paper_model():
    minicnn.manual_seed(0)
    return googlenet_paper()


def small_model(**options):
    minicnn.manual_seed(1)
    return googlenet(num_classes=10, **options)


def spec_of(model):
    return [(key, tuple(value.shape)) for key, value in model.state_dict().items()]


def randomise_state(model, seed=0):
    """Random weights and BN statistics, so that an eval forward exercises every number."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = value
        elif key.endswith(("running_var", "bn.weight")):
            state[key] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
        elif key.endswith(("running_mean", "bias")):  # small, so the input still matters
            state[key] = (0.1 * rng.standard_normal(value.shape)).astype(np.float32)
        else:
            fan_in = int(np.prod(value.shape[1:])) if value.ndim > 1 else 1
            state[key] = (rng.standard_normal(value.shape) / np.sqrt(fan_in)).astype(np.float32)
    model.load_state_dict(state)
    return state


def cross_entropy_numpy(logits, target):
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(target)), target].mean())


# --- torchvision compatibility ---------------------------------------------------------------------
@pytest.mark.parametrize("name, fixture", [("googlenet", "tv_model"), ("googlenet_noaux", "tv_model_noaux")])
def test_state_dict_keys_order_and_shapes_equal_torchvision(name, fixture, request):
    model = request.getfixturevalue(fixture)
    assert spec_of(model) == state_dict_spec(name)
    assert len(model.state_dict()) == load_reference()[name]["num_state_dict_keys"]


@pytest.mark.parametrize("name, fixture", [("googlenet", "tv_model"), ("googlenet_noaux", "tv_model_noaux")])
def test_parameter_and_buffer_counts_equal_torchvision(name, fixture, request):
    model = request.getfixturevalue(fixture)
    facts = load_reference()[name]
    assert param_count(model) == facts["params"]  # 13,004,888 with aux heads, 6,624,904 without
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == facts["buffers"]["num_bn_layers"]
    assert {(bn.eps, bn.momentum) for bn in bns} == {tuple(pair) for pair in facts["bn_eps_momentum"]}


def test_every_trunk_pool_uses_ceil_mode_and_branch3_is_torchvisions_3x3(tv_model):
    pools = [m for m in tv_model.modules() if isinstance(m, nn.MaxPool2d)]
    assert pools and all(pool.ceil_mode for pool in pools)
    assert tv_model.maxpool4.kernel_size == 2
    assert tv_model.inception3a.branch3[1].conv.kernel_size == (3, 3)
    assert not any(isinstance(m, (nn.ReLU, nn.LocalResponseNorm)) for m in tv_model.modules())


def test_init_is_normal_with_std_0_01_and_bn_is_identity(tv_model):
    weight = tv_model.inception5b.branch2[1].conv.weight.numpy()  # 192·384·9 samples
    assert abs(weight.std() - 0.01) < 2e-4 and abs(weight.mean()) < 1e-4
    assert np.all(tv_model.conv1.bn.weight.numpy() == 1) and np.all(tv_model.conv1.bn.bias.numpy() == 0)
    default = googlenet(num_classes=10, init_weights=False).inception5b.branch2[1].conv.weight.numpy()
    assert default.std() > 0.004 and abs(default.std() - 0.01) > 1e-3  # PyTorch's default init differs


# --- outputs ----------------------------------------------------------------------------------------
def test_outputs_at_224_eval_logits_and_train_three_heads(tv_model):
    x = minicnn.randn(1, 3, 224, 224)
    logits = tv_model.eval()(x)
    assert isinstance(logits, minicnn.Tensor) and logits.shape == (1, 1000)
    outputs = tv_model.train()(x)
    assert isinstance(outputs, GoogLeNetOutputs) and len(outputs) == 3
    assert outputs._fields == tuple(load_reference()["googlenet"]["train_output"])
    assert [o.shape for o in outputs] == [(1, 1000)] * 3


def test_train_output_order_is_logits_aux2_aux1():
    model = small_model()
    # Each head made to answer a constant of its own: the tuple then shows who is where.
    for head, value in ((model.aux1.fc2, 1.0), (model.aux2.fc2, 2.0), (model.fc, 3.0)):
        head.weight.data[...] = 0
        head.bias.data[...] = value
    logits, aux_logits2, aux_logits1 = model.train()(minicnn.randn(2, 3, 32, 32))
    assert np.all(logits.numpy() == 3.0)
    assert np.all(aux_logits2.numpy() == 2.0)
    assert np.all(aux_logits1.numpy() == 1.0)


def test_no_aux_model_returns_plain_logits_even_in_training():
    output = small_model(aux_logits=False).train()(minicnn.randn(2, 3, 32, 32))
    assert isinstance(output, minicnn.Tensor) and output.shape == (2, 10)


def test_eval_forward_matches_torch_reimplementation_at_an_odd_size():
    torch = require_torch()
    model = small_model(transform_input=True).eval()
    state = randomise_state(model)
    x = np.random.default_rng(1).standard_normal((2, 3, 45, 45)).astype(np.float32)
    expected = torch_googlenet_eval(torch, state, x, transform_input=True)
    assert rel_error(model(minicnn.Tensor(x)).numpy(), expected) < 1e-4


# --- input sizes -------------------------------------------------------------------------------------
def test_small_inputs_work_down_to_the_minimum_and_below_it_the_error_says_so():
    model = small_model().eval()
    assert model(minicnn.randn(1, 3, 32, 32)).shape == (1, 10)
    assert model(minicnn.randn(1, 3, 15, 15)).shape == (1, 10)  # torch's limit for this pool chain too
    with pytest.raises(ValueError, match=r"googlenet: input 14x14 is too small, the minimum is 15x15"):
        model(minicnn.randn(1, 3, 14, 14))
    with pytest.raises(ValueError, match=r"googlenet: input 15x14 is too small"):
        model(minicnn.randn(1, 3, 15, 14))


def test_bad_inputs_and_options_raise_naming_the_model():
    model = small_model().eval()
    with pytest.raises(TypeError, match="googlenet: input must be a Tensor"):
        model(np.zeros((1, 3, 32, 32), dtype=np.float32))
    with pytest.raises(ValueError, match=r"googlenet: expected input of shape \(N, 3, H, W\)"):
        model(minicnn.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="googlenet: num_classes must be a positive int"):
        googlenet(num_classes=0)
    with pytest.raises(ValueError, match="googlenet_paper: dropout must be a probability"):
        googlenet_paper(dropout=1.0)


# --- the loss ------------------------------------------------------------------------------------------
def test_googlenet_loss_weights_the_aux_heads_0_3_in_training_and_is_plain_ce_on_logits():
    rng = np.random.default_rng(0)
    logits, aux2, aux1 = (rng.standard_normal((4, 6)).astype(np.float32) for _ in range(3))
    target = np.array([0, 5, 2, 2])
    outputs = GoogLeNetOutputs(minicnn.Tensor(logits), minicnn.Tensor(aux2), minicnn.Tensor(aux1))
    main, a1, a2 = (cross_entropy_numpy(z, target) for z in (logits, aux1, aux2))
    target_tensor = minicnn.Tensor(target)
    assert googlenet_loss(outputs, target_tensor).item() == pytest.approx(main + 0.3 * (a1 + a2), rel=1e-5)
    unweighted = googlenet_loss(outputs, target_tensor, aux_weight=1.0).item()
    assert unweighted == pytest.approx(main + a1 + a2, rel=1e-5)
    assert googlenet_loss(minicnn.Tensor(logits), target_tensor).item() == pytest.approx(main, rel=1e-5)
    with pytest.raises(TypeError, match="googlenet_loss: expected logits"):
        googlenet_loss([logits], target)


def test_a_few_training_steps_on_a_fixed_batch_lower_the_loss_and_reach_the_aux_heads():
    minicnn.manual_seed(0)
    model = googlenet(num_classes=5).train()
    x, target = minicnn.randn(4, 3, 32, 32), minicnn.Tensor(np.array([0, 1, 2, 3]))
    optimizer = minicnn.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        loss = googlenet_loss(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        for head in (model.aux1.fc2, model.aux2.fc2, model.conv1.conv):
            assert head.weight.grad is not None and np.abs(head.weight.grad.numpy()).sum() > 0
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


# --- loading ---------------------------------------------------------------------------------------------
def test_a_checkpoint_with_aux_heads_loads_into_the_no_aux_model():
    with_aux = small_model()
    state = randomise_state(with_aux)
    assert any(key.startswith("aux1.") for key in state)
    no_aux = small_model(aux_logits=False)
    result = no_aux.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    loaded = no_aux.state_dict()
    assert all(np.array_equal(loaded[key], state[key]) for key in loaded)
    x = minicnn.randn(1, 3, 32, 32)
    assert np.allclose(no_aux.eval()(x).numpy(), with_aux.eval()(x).numpy(), rtol=1e-5, atol=1e-6)

    # Only the aux heads are forgiven: a missing trunk key is still an error, and so is a no-aux
    # checkpoint for a model that has aux heads.
    broken = {key: value for key, value in state.items() if key != "fc.bias"}
    with pytest.raises(nn.StateDictError, match="fc.bias"):
        load_torchvision_state_dict(small_model(aux_logits=False), broken)
    with pytest.raises(nn.StateDictError, match="aux1.fc1.weight"):
        small_model().load_state_dict(no_aux.state_dict())


def test_transform_input_maps_imagenet_normalised_input_back_to_minus_one_one():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 1, (2, 3, 32, 32)).astype(np.float32)
    normalised = (image - IMAGENET_MEAN) / IMAGENET_STD
    transforming = small_model(transform_input=True).eval()
    plain = small_model(transform_input=False).eval()
    state = randomise_state(transforming)
    plain.load_state_dict(state)
    expected = plain(minicnn.Tensor((image - 0.5) / 0.5)).numpy()
    assert rel_error(transforming(minicnn.Tensor(normalised)).numpy(), expected) < 1e-4
    assert rel_error(plain(minicnn.Tensor(normalised)).numpy(), expected) > 1e-2  # the transform matters
    # The transform itself: x_c·(std_c/0.5) + (mean_c − 0.5)/0.5, torchvision's formula.
    assert np.allclose(transforming._transform_input(minicnn.Tensor(normalised)).numpy(), (image - 0.5) / 0.5,
                       atol=1e-5)
    assert np.array_equal(plain._transform_input(minicnn.Tensor(normalised)).numpy(), normalised)


# --- the paper's variant ------------------------------------------------------------------------------------
# The paper's Table 1: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj) for 3a … 5b.
PAPER_TABLE_1 = [(64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64),
                 (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
                 (256, 160, 320, 32, 128, 128), (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128)]


def count_by_formula(classes=1000, aux=True, five=5, bn=False):
    """Parameters from the table alone: conv k·k·Cin·Cout + (2·Cout for BN, or Cout for a bias)."""
    def conv(c_in, c_out, k):
        return k * k * c_in * c_out + (2 * c_out if bn else c_out)

    total = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    c_in, outs = 192, []
    for n1, r3, n3, r5, n5, proj in PAPER_TABLE_1:
        total += conv(c_in, n1, 1) + conv(c_in, r3, 1) + conv(r3, n3, 3)
        total += conv(c_in, r5, 1) + conv(r5, n5, five) + conv(c_in, proj, 1)
        c_in = n1 + n3 + n5 + proj
        outs.append(c_in)
    total += c_in * classes + classes
    if aux:  # after 4a and 4d: 1×1 conv 128, fc 2048 → 1024, fc 1024 → classes
        for c in (outs[2], outs[5]):
            total += conv(c, 128, 1) + (2048 * 1024 + 1024) + (1024 * classes + classes)
    return total


def test_the_counting_formula_reproduces_torchvisions_counts():
    facts = load_reference()
    assert count_by_formula(five=3, bn=True) == facts["googlenet"]["params"]
    assert count_by_formula(five=3, bn=True, aux=False) == facts["googlenet_noaux"]["params"]


def test_paper_variant_has_5x5_lrn_no_bn_and_the_papers_parameter_count(paper_model):
    assert param_count(paper_model) == count_by_formula(five=5, bn=False)
    assert param_count(googlenet_paper(aux_logits=False)) == count_by_formula(five=5, bn=False, aux=False)
    assert paper_model.inception4e.branch3[1].conv.weight.shape == (128, 32, 5, 5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in paper_model.modules())
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in paper_model.modules()) == 2
    assert paper_model.maxpool4.kernel_size == 3 and paper_model.dropout.p == 0.4


def test_paper_variant_forward_shapes_and_input_sizes(paper_model):
    assert paper_model.eval()(minicnn.randn(1, 3, 31, 31)).shape == (1, 1000)  # its 3×3 maxpool4 needs 31
    with pytest.raises(ValueError, match="googlenet_paper: input 30x30 is too small, the minimum is 31x31"):
        paper_model.eval()(minicnn.randn(1, 3, 30, 30))
    # The aux heads' 5×5/3 average pool yields the 4×4 that fc1 (2048 inputs) needs only around 224.
    assert paper_model.paper_aux_input_range() == (191, 238)
    outputs = paper_model.train()(minicnn.randn(1, 3, 191, 191))
    assert isinstance(outputs, GoogLeNetOutputs) and [o.shape for o in outputs] == [(1, 1000)] * 3
    for side in (64, 190, 239):
        with pytest.raises(ValueError, match=rf"googlenet_paper: input {side}x{side} does not fit the aux "
                                             r"heads in training mode.* from 191x191 to 238x238"):
            paper_model.train()(minicnn.randn(1, 3, side, side))
    no_aux = googlenet_paper(num_classes=10, aux_logits=False).train()
    assert no_aux(minicnn.randn(2, 3, 64, 64)).shape == (2, 10)


def test_paper_eval_forward_matches_torch_reimplementation():
    torch = require_torch()
    minicnn.manual_seed(3)
    model = googlenet_paper(num_classes=10, aux_logits=False).eval()
    state = randomise_state(model)
    x = np.random.default_rng(3).standard_normal((1, 3, 64, 64)).astype(np.float32)
    expected = torch_googlenet_eval(torch, state, x, paper=True)
    assert rel_error(model(minicnn.Tensor(x)).numpy(), expected) < 1e-4


def test_registry_lists_both_builders():
    assert set(MODELS) == {"googlenet", "googlenet_paper"}
    assert MODELS["googlenet"] is googlenet and MODELS["googlenet_paper"] is googlenet_paper


# --- an independent forward in PyTorch, from the state_dict alone ---------------------------------------
def torch_googlenet_eval(torch, state, x, transform_input=False, paper=False):
    F = torch.nn.functional
    weights = {key: torch.from_numpy(np.asarray(value)) for key, value in state.items()}

    def unit(prefix, x, stride=1, padding=0):
        if paper:
            x = F.conv2d(x, weights[prefix + ".conv.weight"], weights[prefix + ".conv.bias"], stride, padding)
            return F.relu(x)
        x = F.conv2d(x, weights[prefix + ".conv.weight"], None, stride, padding)
        x = F.batch_norm(x, weights[prefix + ".bn.running_mean"], weights[prefix + ".bn.running_var"],
                         weights[prefix + ".bn.weight"], weights[prefix + ".bn.bias"], False, 0.1, 0.001)
        return F.relu(x)

    def inception(name, x):
        p, k = "inception" + name, 5 if paper else 3
        b1 = unit(p + ".branch1", x)
        b2 = unit(p + ".branch2.1", unit(p + ".branch2.0", x), padding=1)
        b3 = unit(p + ".branch3.1", unit(p + ".branch3.0", x), padding=k // 2)
        b4 = unit(p + ".branch4.1", F.max_pool2d(x, 3, 1, 1, ceil_mode=True))
        return torch.cat([b1, b2, b3, b4], 1)

    def lrn(x):
        return F.local_response_norm(x, 5, 1e-4, 0.75, 1.0) if paper else x

    x = torch.from_numpy(x)
    if transform_input:
        x = torch.cat([x[:, c:c + 1] * (s / 0.5) + (m - 0.5) / 0.5
                       for c, (m, s) in enumerate(zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))], 1)
    with torch.no_grad():
        x = lrn(F.max_pool2d(unit("conv1", x, 2, 3), 3, 2, ceil_mode=True))
        x = F.max_pool2d(lrn(unit("conv3", unit("conv2", x), padding=1)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(inception("3b", inception("3a", x)), 3, 2, ceil_mode=True)
        for name in ("4a", "4b", "4c", "4d"):
            x = inception(name, x)
        x = F.max_pool2d(inception("4e", x), 3 if paper else 2, 2, ceil_mode=True)
        x = inception("5b", inception("5a", x)).mean(dim=(2, 3))
        return F.linear(x, weights["fc.weight"], weights["fc.bias"]).numpy()
