"""Empty batches (N = 0) through every layer and through whole models, as PyTorch runs them.

Each layer is compared with its torch.nn twin holding the same weights: output,
d(input), d(every parameter) and the state after the call (batch norm counts the
empty batch in ``num_batches_tracked`` but leaves its running statistics alone).
For the models, torch gives an empty (0, num_classes) output, a nan mean loss,
and zero gradients of every parameter's shape; an empty batch must not disturb
what the model computes for the next, real one.
"""
import warnings

import numpy as np
import pytest
from oracle import require_torch

import minicnn
import minicnn.nn.functional as F
from minicnn import models, nn


def build(namespace, expression):
    """The layer ``expression`` (e.g. "Conv2d(3, 8, 3)") made from minicnn.nn or torch.nn."""
    return eval("nn." + expression, {"nn": namespace})  # test-only: our own strings


def run_both(ours, theirs, x, loss=None, seed=0):
    """Same weights, same input: compare output, d(input), d(parameters) and the state afterwards."""
    torch = require_torch()
    ours.load_state_dict(theirs.state_dict())
    x_ours, x_theirs = minicnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no NumPy 0/0 or empty-mean warnings
        y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
        assert y_ours.shape == tuple(y_theirs.shape)
        np.testing.assert_array_equal(y_ours.numpy(), y_theirs.detach().numpy())  # both empty
        if loss is not None:
            y_ours, y_theirs = loss(y_ours, F, minicnn), loss(y_theirs, torch.nn.functional, torch)
            np.testing.assert_allclose(y_ours.numpy(), y_theirs.detach().numpy())  # nan meets nan
        upstream = np.random.default_rng(seed).standard_normal(y_ours.shape).astype(np.float32)
        y_ours.backward(upstream)
        y_theirs.backward(torch.tensor(upstream))
    assert x_ours.grad.shape == tuple(x_theirs.grad.shape) == x.shape
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        expected = theirs_params[name].grad
        assert param.grad is not None and expected is not None, f"{name} got no gradient"
        assert param.grad.shape == tuple(expected.shape) == param.shape, name
        np.testing.assert_array_equal(param.grad.numpy(), expected.numpy(), err_msg=f"d({name})")
        assert not np.any(param.grad.numpy()), f"d({name}) of an empty batch must be zero"
    theirs_state = theirs.state_dict()
    for key, value in ours.state_dict().items():  # running statistics and batch counters alike
        np.testing.assert_allclose(value, theirs_state[key].numpy(), rtol=1e-6, err_msg=key)
    return y_ours


LAYER_CASES = [
    ("Conv2d(3, 6, 3, stride=2, padding=1)", (0, 3, 9, 8)),
    ("Conv2d(4, 6, (3, 2), padding=(2, 1), dilation=2, groups=2, bias=False)", (0, 4, 8, 7)),
    ("Conv2d(4, 4, 3, groups=4, padding='same')", (0, 4, 6, 6)),
    ("Linear(5, 3)", (0, 5)),
    ("Linear(5, 3, bias=False)", (0, 4, 5)),
    ("Identity()", (0, 5)),
    ("MaxPool2d(3, stride=2, padding=1)", (0, 3, 9, 9)),
    ("MaxPool2d(2, ceil_mode=True)", (0, 3, 7, 7)),
    ("AvgPool2d(3, stride=2, padding=1, count_include_pad=False)", (0, 3, 8, 8)),
    ("AvgPool2d(3, stride=2, ceil_mode=True)", (0, 3, 8, 8)),
    ("AdaptiveAvgPool2d((2, 3))", (0, 3, 7, 8)),
    ("AdaptiveAvgPool2d(1)", (0, 3, 5, 5)),
    ("ReLU()", (0, 4, 5)),
    ("ReLU6()", (0, 4, 5)),
    ("LeakyReLU(0.2)", (0, 4, 5)),
    ("Sigmoid()", (0, 4, 5)),
    ("Tanh()", (0, 4, 5)),
    ("Hardswish()", (0, 4, 5)),
    ("Hardsigmoid()", (0, 4, 5)),
    ("Softmax(dim=1)", (0, 4, 5)),
    ("LogSoftmax(dim=0)", (0, 4, 5)),
    ("Flatten()", (0, 3, 4, 5)),
    ("LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0)", (0, 7, 4, 4)),
    ("BatchNorm2d(3)", (0, 3, 5, 5)),
    ("BatchNorm2d(3, affine=False, track_running_stats=False)", (0, 3, 5, 5)),
    ("BatchNorm1d(6)", (0, 6)),
    ("BatchNorm1d(3, momentum=None)", (0, 3, 5)),
    ("Dropout(0.3)", (0, 4, 5)),
]
MODE_CASES = [(*case, train) for case in LAYER_CASES for train in (True, False)]


@pytest.mark.parametrize("expression, x_shape, train", MODE_CASES,
                         ids=[f"{case[0]}-{'train' if case[2] else 'eval'}" for case in MODE_CASES])
def test_layer_on_an_empty_batch_matches_torch(expression, x_shape, train):
    torch = require_torch()
    theirs, ours = build(torch.nn, expression), build(nn, expression)
    if getattr(theirs, "running_mean", None) is not None:
        theirs.running_mean.uniform_(-1, 1)  # non-default statistics: an update would show
        theirs.running_var.uniform_(0.5, 2)
    theirs.train(train)
    ours.train(train)
    x = np.random.default_rng(0).standard_normal(x_shape).astype(np.float32)
    y = run_both(ours, theirs, x)
    assert y.size == 0
    if train and getattr(ours, "num_batches_tracked", None) is not None:
        assert int(ours.num_batches_tracked.numpy()) == 1  # PyTorch counts the empty batch


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_cross_entropy_loss_module_on_an_empty_batch_matches_torch(reduction, label_smoothing, weighted):
    torch = require_torch()
    weight = np.linspace(0.5, 2.0, 5).astype(np.float32) if weighted else None
    ours = nn.CrossEntropyLoss(None if weight is None else minicnn.tensor(weight), reduction=reduction,
                               label_smoothing=label_smoothing)
    theirs = torch.nn.CrossEntropyLoss(None if weight is None else torch.tensor(weight), reduction=reduction,
                                       label_smoothing=label_smoothing)
    logits = np.zeros((0, 5), dtype=np.float32)
    logits_ours = minicnn.tensor(logits, requires_grad=True)
    logits_theirs = torch.tensor(logits, requires_grad=True)
    target = np.zeros((0,), dtype=np.int64)
    loss_ours = ours(logits_ours, minicnn.tensor(target))
    loss_theirs = theirs(logits_theirs, torch.tensor(target))
    assert loss_ours.shape == tuple(loss_theirs.shape)
    np.testing.assert_allclose(loss_ours.numpy(), loss_theirs.detach().numpy())
    expected = {"mean": np.nan, "sum": 0.0, "none": np.zeros((0,), np.float32)}[reduction]
    np.testing.assert_array_equal(loss_ours.numpy(), expected)  # nan for 'mean', as in PyTorch
    loss_ours.sum().backward()
    loss_theirs.sum().backward()
    assert logits_ours.grad.shape == tuple(logits_theirs.grad.shape) == (0, 5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_module_on_an_empty_batch_matches_torch(reduction):
    torch = require_torch()
    a = np.zeros((0, 3), dtype=np.float32)
    a_ours, a_theirs = minicnn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    loss_ours = nn.MSELoss(reduction=reduction)(a_ours, minicnn.tensor(a))
    loss_theirs = torch.nn.MSELoss(reduction=reduction)(a_theirs, torch.tensor(a))
    assert loss_ours.shape == tuple(loss_theirs.shape)
    np.testing.assert_allclose(loss_ours.numpy(), loss_theirs.detach().numpy())
    loss_ours.sum().backward()
    loss_theirs.sum().backward()
    assert a_ours.grad.shape == tuple(a_theirs.grad.shape) == (0, 3)


SMALL_CNN = [
    "Conv2d(3, 8, 3, padding=1)", "BatchNorm2d(8)", "ReLU()", "MaxPool2d(2)",
    "Conv2d(8, 8, 3, padding=1, groups=8, bias=False)", "BatchNorm2d(8)", "ReLU6()",
    "Conv2d(8, 6, 1, stride=2)", "LocalResponseNorm(3)", "Hardswish()", "AvgPool2d(2, ceil_mode=True)",
    "AdaptiveAvgPool2d(1)", "Flatten()", "Linear(6, 16)", "BatchNorm1d(16)", "Tanh()", "Dropout(0.5)",
    "Linear(16, 4)",
]


@pytest.mark.parametrize("train", [True, False])
def test_a_sequential_cnn_trains_on_an_empty_batch_as_torch_does(train):
    torch = require_torch()
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(*(build(torch.nn, layer) for layer in SMALL_CNN)).train(train)
    ours = nn.Sequential(*(build(nn, layer) for layer in SMALL_CNN)).train(train)
    x = np.zeros((0, 3, 12, 12), dtype=np.float32)

    def mean_cross_entropy(logits, functional, library):
        return functional.cross_entropy(logits, library.tensor(np.zeros((0,), dtype=np.int64)))

    loss = run_both(ours, theirs, x, loss=mean_cross_entropy)
    assert np.isnan(loss.numpy())  # the mean over no samples, as in PyTorch
    if train:
        counts = [int(m.num_batches_tracked.numpy()) for m in ours if hasattr(m, "num_batches_tracked")]
        assert counts == [1, 1, 1]


# --- models ----------------------------------------------------------------------
MODEL_CASES = [
    # (builder name, keyword arguments, image size, train mode)
    ("cifar_resnet20", dict(num_classes=10), 32, True),
    ("resnet18", dict(num_classes=10), 32, True),
    ("mobilenet_v2", dict(num_classes=10, width_mult=0.25), 32, True),
    ("vgg11_bn", dict(num_classes=10, width_mult=0.125), 32, True),
    ("googlenet", dict(num_classes=10), 64, False),
]


@pytest.mark.parametrize("name, kwargs, size, train", MODEL_CASES, ids=[case[0] for case in MODEL_CASES])
def test_model_on_an_empty_batch_gives_an_empty_output_zero_gradients_and_keeps_its_state(
        name, kwargs, size, train):
    minicnn.manual_seed(0)
    model = models.get_model(name, **kwargs)
    probe = minicnn.tensor(np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32))
    before_state = {key: np.array(value, copy=True) for key, value in model.state_dict().items()}
    with minicnn.no_grad():
        before_output = model.eval()(probe).numpy()

    model.train(train)
    x = minicnn.tensor(np.zeros((0, 3, size, size), dtype=np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        logits = model(x)
        assert logits.shape == (0, kwargs["num_classes"])
        loss = F.cross_entropy(logits, minicnn.tensor(np.zeros((0,), dtype=np.int64)))
        assert np.isnan(loss.numpy())  # PyTorch: the mean over no samples
        loss.backward()
    assert x.grad.shape == x.shape
    for param_name, param in model.named_parameters():
        if not train and param_name.startswith(("aux1.", "aux2.")):
            assert param.grad is None  # the auxiliary heads only run in training, in torch too
            continue
        assert param.grad is not None, f"{param_name} got no gradient"
        assert param.grad.shape == param.shape, param_name
        assert not np.any(param.grad.numpy()), f"d({param_name}) of an empty batch must be zero, not nan"

    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert int(value) == int(before_state[key]) + train, key  # counted, as torch.nn.BatchNorm does
        else:
            np.testing.assert_array_equal(value, before_state[key], err_msg=key)
    with minicnn.no_grad():
        np.testing.assert_array_equal(model.eval()(probe).numpy(), before_output)
