"""Module: registration order, state_dict keys (against torch.nn), loading, modes, printing."""
from collections import OrderedDict

import numpy as np
import pytest
from oracle import require_torch

import minicnn
from minicnn import nn


def small_vgg(nn_module):
    """The same VGG-ish network built from minicnn.nn or torch.nn (identical code)."""
    return nn_module.Sequential(OrderedDict([
        ("features", nn_module.Sequential(
            nn_module.Conv2d(3, 8, 3, padding=1), nn_module.BatchNorm2d(8), nn_module.ReLU(inplace=True),
            nn_module.MaxPool2d(2),
            nn_module.Conv2d(8, 16, 3, padding=1, bias=False), nn_module.BatchNorm2d(16), nn_module.ReLU(),
            nn_module.AdaptiveAvgPool2d((1, 1)),
        )),
        ("flatten", nn_module.Flatten()),
        ("classifier", nn_module.Sequential(
            nn_module.Dropout(0.5), nn_module.Linear(16, 32), nn_module.ReLU(), nn_module.Linear(32, 10),
        )),
    ]))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.scale = nn.Parameter(minicnn.ones(2))
        self.register_buffer("step", minicnn.zeros(1))
        self.register_buffer("cache", minicnn.zeros(3), persistent=False)
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Linear(2, 3)
        self.note = "plain attribute"

    def forward(self, x):
        return self.head(self.bn(self.conv(x) * self.scale.reshape(1, 2, 1, 1)).mean(axis=(2, 3)))


# --- registration and key names ---------------------------------------------------
def test_state_dict_keys_and_shapes_match_torch_for_a_vgg_like_model():
    torch = require_torch()
    ours = small_vgg(nn).state_dict()
    theirs = small_vgg(torch.nn).state_dict()
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key].shape == tuple(theirs[key].shape), key
    assert ours["features.1.num_batches_tracked"].dtype == np.int64
    assert ours["features.0.weight"].dtype == np.float32


def test_named_parameters_and_buffers_match_torch_order():
    torch = require_torch()
    ours, theirs = small_vgg(nn), small_vgg(torch.nn)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == ["features", "flatten", "classifier"]
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())


def test_repr_prints_like_torch():
    torch = require_torch()
    assert repr(small_vgg(nn)) == repr(small_vgg(torch.nn))


def test_registration_order_and_kinds_in_a_custom_module():
    net = Net()
    assert list(net.state_dict()) == [
        "scale", "step", "conv.weight", "conv.bias",
        "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
        "head.weight", "head.bias",
    ]
    assert [n for n, _ in net.named_buffers()][:2] == ["step", "cache"]  # non-persistent still a buffer
    assert "cache" not in net.state_dict()
    assert isinstance(net.scale, nn.Parameter) and net.scale.requires_grad
    assert not net.step.requires_grad
    assert net.note == "plain attribute" and "note" not in net.state_dict()
    assert net(minicnn.randn(2, 1, 5, 5)).shape == (2, 3)


def test_reassigning_a_name_moves_it_between_registries():
    net = Net()
    net.head = nn.Parameter(minicnn.zeros(4))  # module -> parameter
    assert "head" not in dict(net.named_children()) and "head" in dict(net.named_parameters())
    net.head = None  # a registered parameter may be set to None: it vanishes from state_dict
    assert "head" not in net.state_dict()
    del net.scale
    assert "scale" not in net.state_dict()
    with pytest.raises(AttributeError, match="no attribute 'scale'"):
        _ = net.scale


def test_shared_parameter_is_listed_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert len(list(model.modules())) == 3  # Sequential, Linear once, ReLU
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_parameters_non_recursive_and_children():
    net = Net()
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert [type(m).__name__ for m in net.children()] == ["Conv2d", "BatchNorm2d", "Linear"]
    assert len(list(net.buffers())) == 2 + 3


# --- state_dict round trip and loading ----------------------------------------------
def test_state_dict_is_a_copy():
    model = nn.Linear(2, 2)
    state = model.state_dict()
    state["weight"][...] = 123.0
    assert not np.any(model.weight.data == 123.0)


def test_state_dict_round_trip_into_a_fresh_model_gives_the_same_outputs():
    minicnn.manual_seed(0)
    source = small_vgg(nn)
    source.train()
    source(minicnn.randn(4, 3, 8, 8))  # move the BN running stats off their defaults
    source.eval()
    minicnn.manual_seed(1)
    target = small_vgg(nn).eval()
    x = minicnn.randn(2, 3, 8, 8)
    assert not np.allclose(source(x).data, target(x).data)
    result = target.load_state_dict(source.state_dict())
    assert result == ([], []) and result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(source(x).data, target(x).data)
    for (key, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=key)
    assert target.state_dict()["features.1.num_batches_tracked"] == 1


def test_load_state_dict_from_torch_keeps_our_dtypes():
    torch = require_torch()
    theirs = small_vgg(torch.nn).double()
    ours = small_vgg(nn)
    weight_before = ours.features[0].weight
    ours.load_state_dict(theirs.state_dict())
    assert ours.features[0].weight is weight_before  # copied in place
    assert ours.features[0].weight.dtype == np.float32
    assert ours.features[1].num_batches_tracked.dtype == np.int64
    np.testing.assert_allclose(ours.classifier[1].weight.data, theirs.classifier[1].weight.detach().numpy(),
                               rtol=1e-6)


def test_load_state_dict_reports_every_problem_at_once_and_changes_nothing():
    model = small_vgg(nn)
    before = model.state_dict()
    bad = model.state_dict()
    del bad["features.0.bias"], bad["classifier.3.weight"]
    bad["features.9.weight"] = np.zeros(3, dtype=np.float32)
    bad["extra"] = np.zeros(1, dtype=np.float32)
    bad["features.1.weight"] = np.zeros(9, dtype=np.float32)
    bad["classifier.1.bias"] = np.zeros((1, 32), dtype=np.float32)
    bad["features.0.weight"] = bad["features.0.weight"] + 1  # a good entry: must not be written
    with pytest.raises(nn.StateDictError) as caught:
        model.load_state_dict(bad)
    message = str(caught.value)
    for fragment in ('Missing key(s) in state_dict: "features.0.bias", "classifier.3.weight"',
                     'Unexpected key(s) in state_dict: "features.9.weight", "extra"',
                     "size mismatch for features.1.weight: copying a param with shape (9,)",
                     "the shape in current model is (8,)",
                     "size mismatch for classifier.1.bias"):
        assert fragment in message
    assert message.startswith("Error(s) in loading state_dict for Sequential")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_state_dict_error_is_both_value_error_and_runtime_error():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="Missing key"):
        model.load_state_dict({})
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict({})


def test_non_strict_load_returns_missing_and_unexpected_but_still_rejects_shapes():
    model = nn.Linear(2, 3)
    new_bias = np.array([1.0, 2.0, 3.0])
    result = model.load_state_dict({"bias": new_bias, "other": np.zeros(1)}, strict=False)
    assert result.missing_keys == ["weight"] and result.unexpected_keys == ["other"]
    np.testing.assert_array_equal(model.bias.data, new_bias.astype(np.float32))
    with pytest.raises(nn.StateDictError, match=r"size mismatch for bias.*\(2,\).*\(3,\)"):
        model.load_state_dict({"bias": np.zeros(2)}, strict=False)


def test_load_state_dict_rejects_a_non_mapping_and_non_numeric_values():
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="load_state_dict: expected a mapping"):
        model.load_state_dict([("weight", np.zeros((2, 2)))])
    state = model.state_dict()
    state["bias"] = np.array(["a", "b"])
    with pytest.raises(nn.StateDictError, match="bias has dtype <U1, expected numbers"):
        model.load_state_dict(state)


# --- modes, gradients, apply -----------------------------------------------------------
def test_train_and_eval_propagate_to_every_descendant_and_return_self():
    model = small_vgg(nn)
    assert model.eval() is model
    assert all(not m.training for m in model.modules())
    assert model.train() is model
    assert all(m.training for m in model.modules())
    model.classifier.train(False)
    assert model.training and model.features[0].training and not model.classifier[0].training


def test_train_rejects_a_non_bool_mode():
    with pytest.raises(ValueError, match="Sequential.train: mode must be a bool, got 'eval'"):
        nn.Sequential().train("eval")


def test_zero_grad_sets_grads_to_none():
    model = nn.Linear(3, 2)
    model(minicnn.randn(4, 3)).sum().backward()
    assert model.weight.grad is not None and model.bias.grad is not None
    model.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None


def test_requires_grad_false_freezes_parameters():
    model = nn.Linear(3, 2).requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    assert model.num_parameters(trainable_only=True) == 0 and model.num_parameters() == 8


def test_apply_visits_children_before_parent():
    visited = []
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
    assert model.apply(lambda m: visited.append(type(m).__name__)) is model
    assert visited == ["Linear", "ReLU", "Sequential", "Sequential"]
    model.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert not model[0].weight.data.any()


def test_forward_missing_raises():
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required "forward"'):
        nn.Module()(1)


# --- bad registrations --------------------------------------------------------------------
def test_assigning_a_plain_tensor_to_a_parameter_name_is_a_type_error():
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"Linear: cannot assign 'Tensor' as parameter 'weight' \(Parameter or None"):
        model.weight = minicnn.zeros(2, 2)


def test_register_buffer_rejects_non_tensor_and_dotted_names():
    module = nn.Module()
    with pytest.raises(TypeError, match=r"cannot assign 'ndarray' as buffer 'stats' \(Tensor or None expected\)"):
        module.register_buffer("stats", np.zeros(2))
    with pytest.raises(ValueError, match=r"buffer name must be non-empty and contain no '\.', got 'a\.b'"):
        module.register_buffer("a.b", minicnn.zeros(1))
    with pytest.raises(TypeError, match="buffer name must be a str, got int"):
        module.register_buffer(3, minicnn.zeros(1))


def test_add_module_rejects_non_modules_and_existing_attributes():
    module = nn.Module()
    with pytest.raises(TypeError, match="Module: int is not a Module subclass"):
        module.add_module("child", 3)
    with pytest.raises(KeyError, match="attribute 'train' already exists"):
        module.add_module("train", nn.ReLU())
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        module.register_parameter("w", minicnn.zeros(1))


def test_assigning_before_init_is_an_attribute_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"Forgetful: cannot assign child module before Module.__init__\(\)"):
        Forgetful()


def test_parameter_wraps_a_tensor_without_copying():
    data = minicnn.randn(3)
    param = nn.Parameter(data)
    assert param.data is data.data and param.requires_grad
    assert repr(param).startswith("Parameter containing:\nTensor(")
    assert not nn.Parameter(data, requires_grad=False).requires_grad


def test_double_casts_float_parameters_and_buffers_in_place():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    weight = model[0].weight
    model(minicnn.randn(4, 2)).sum().backward()
    assert model.double() is model
    assert model[0].weight is weight and weight.dtype == np.float64 and weight.grad.dtype == np.float64
    assert model[1].running_var.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64
    assert model(minicnn.randn(4, 2, dtype=np.float64)).dtype == np.float64
    assert model.float()[0].weight.dtype == np.float32


def test_to_rejects_unknown_devices_and_integer_dtypes():
    with pytest.raises(ValueError, match="Linear.to: device must be 'cpu' or 'cuda', got 'tpu'"):
        nn.Linear(2, 2).to("tpu")
    with pytest.raises(TypeError, match="Linear.to: dtype must be floating-point, got int32"):
        nn.Linear(2, 2).to(np.int32)


def test_deepcopy_and_pickle_give_independent_equal_models():
    import copy
    import pickle

    model = small_vgg(nn)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert repr(clone) == repr(model)
        for (key, a), b in zip(model.state_dict().items(), clone.state_dict().values()):
            np.testing.assert_array_equal(a, b, err_msg=key)
        clone.features[0].weight.data[...] = 0
        assert model.features[0].weight.data.any()
