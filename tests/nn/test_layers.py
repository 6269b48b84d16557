"""Every layer against torch.nn with the same weights: forward, d(input) and d(parameters)."""
import numpy as np
import pytest
from oracle import rel_error, require_torch

import minicnn
from minicnn import nn

FORWARD_TOL, GRAD_TOL = 1e-5, 1e-4  # float32, the project's promise


def build(namespace, expression):
    """The layer ``expression`` (e.g. "Conv2d(3, 8, 3)") made from minicnn.nn or torch.nn."""
    return eval("nn." + expression, {"nn": namespace})  # test-only: our own strings


def check_against_torch(ours, theirs, x_shape, scale=1.0, seed=0):
    """Copy torch's weights into ``ours``, run both on one input, compare outputs and every gradient."""
    torch = require_torch()
    ours.load_state_dict(theirs.state_dict())
    rng = np.random.default_rng(seed)
    x = (scale * rng.standard_normal(x_shape)).astype(np.float32)
    x_ours, x_theirs = minicnn.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
    assert y_ours.shape == tuple(y_theirs.shape)
    assert y_ours.dtype == np.float32
    assert rel_error(y_ours.data, y_theirs.detach().numpy()) <= FORWARD_TOL
    upstream = rng.standard_normal(y_ours.shape).astype(np.float32)
    y_ours.backward(upstream)
    y_theirs.backward(torch.tensor(upstream))
    assert rel_error(x_ours.grad.data, x_theirs.grad.numpy()) <= GRAD_TOL, "d(input)"
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert rel_error(param.grad.data, theirs_params[name].grad.numpy()) <= GRAD_TOL, f"d({name})"
    return y_ours


CASES = [
    ("Conv2d(3, 6, 3, stride=2, padding=1)", (2, 3, 9, 8), 1.0),
    ("Conv2d(4, 6, (3, 2), padding=(2, 1), dilation=2, groups=2, bias=False)", (2, 4, 8, 7), 1.0),
    ("Conv2d(4, 4, 3, groups=4, padding='same')", (2, 4, 6, 6), 1.0),
    ("Conv2d(3, 5, 3, padding='valid')", (3, 7, 7), 1.0),
    ("Linear(5, 3)", (4, 5), 1.0),
    ("Linear(5, 3, bias=False)", (2, 4, 5), 1.0),
    ("MaxPool2d(3, stride=2, padding=1)", (2, 3, 9, 9), 1.0),
    ("MaxPool2d(2, ceil_mode=True)", (2, 3, 7, 7), 1.0),
    ("AvgPool2d(3, stride=2, padding=1, count_include_pad=False)", (2, 3, 8, 8), 1.0),
    ("AvgPool2d(2)", (2, 3, 6, 6), 1.0),
    ("AdaptiveAvgPool2d((2, 3))", (2, 3, 7, 8), 1.0),
    ("AdaptiveAvgPool2d(1)", (2, 3, 5, 5), 1.0),
    ("ReLU()", (3, 4, 5), 3.0),
    ("ReLU6()", (3, 4, 5), 5.0),
    ("LeakyReLU(0.2)", (3, 4, 5), 3.0),
    ("Sigmoid()", (3, 4, 5), 3.0),
    ("Tanh()", (3, 4, 5), 3.0),
    ("Hardswish()", (3, 4, 5), 4.0),
    ("Hardsigmoid()", (3, 4, 5), 4.0),
    ("Softmax(dim=1)", (3, 4, 5), 3.0),
    ("LogSoftmax(dim=-1)", (3, 4, 5), 3.0),
    ("Flatten()", (2, 3, 4, 5), 1.0),
    ("Flatten(0, 2)", (2, 3, 4, 5), 1.0),
    ("LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0)", (2, 7, 4, 4), 2.0),
    ("BatchNorm2d(3)", (4, 3, 5, 5), 1.0),
    ("BatchNorm2d(3, affine=False, track_running_stats=False)", (4, 3, 5, 5), 1.0),
    ("BatchNorm1d(6)", (8, 6), 1.0),
    ("BatchNorm1d(3, momentum=None)", (4, 3, 5), 1.0),
    ("Dropout(0.3)", (4, 5), 1.0),  # in eval mode below: the identity
]


# Training-mode dropout is random: its statistics are tested on their own below.
MODE_CASES = [(*case, train) for case in CASES for train in (True, False)
              if not (train and case[0].startswith("Dropout"))]


@pytest.mark.parametrize("expression, x_shape, scale, train", MODE_CASES,
                         ids=[f"{case[0]}-{'train' if case[3] else 'eval'}" for case in MODE_CASES])
def test_layer_matches_torch(expression, x_shape, scale, train):
    torch = require_torch()
    minicnn.manual_seed(0)
    torch.manual_seed(0)
    theirs = build(torch.nn, expression)
    ours = build(nn, expression)
    if hasattr(theirs, "running_mean") and theirs.running_mean is not None:
        # Non-default running statistics, so eval mode really uses them.
        theirs.running_mean.uniform_(-1, 1)
        theirs.running_var.uniform_(0.5, 2)
    theirs.train(train)
    ours.train(train)
    check_against_torch(ours, theirs, x_shape, scale)
    for key, value in theirs.state_dict().items():  # running statistics updated alike
        assert rel_error(ours.state_dict()[key], value.numpy()) <= FORWARD_TOL, key


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_cross_entropy_loss_matches_torch(reduction, label_smoothing, weighted):
    torch = require_torch()
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((6, 5)).astype(np.float32) * 3
    target = rng.integers(0, 5, size=6)
    target[2] = -100  # ignored
    weight = rng.uniform(0.5, 2.0, size=5).astype(np.float32) if weighted else None
    ours = nn.CrossEntropyLoss(weight, reduction=reduction, label_smoothing=label_smoothing)
    theirs = torch.nn.CrossEntropyLoss(None if weight is None else torch.tensor(weight),
                                       reduction=reduction, label_smoothing=label_smoothing)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    logits_ours = minicnn.Tensor(logits, requires_grad=True)
    logits_theirs = torch.tensor(logits, requires_grad=True)
    loss_ours = ours(logits_ours, minicnn.Tensor(target))
    loss_theirs = theirs(logits_theirs, torch.tensor(target))
    assert rel_error(loss_ours.data, loss_theirs.detach().numpy()) <= FORWARD_TOL
    upstream = rng.standard_normal(loss_ours.shape).astype(np.float32)
    loss_ours.backward(upstream)
    loss_theirs.backward(torch.tensor(upstream))
    assert rel_error(logits_ours.grad.data, logits_theirs.grad.numpy()) <= GRAD_TOL


def test_dropout_in_training_zeroes_about_p_and_scales_the_rest():
    minicnn.manual_seed(0)
    dropout = nn.Dropout(0.25)
    x = minicnn.Tensor(np.ones((200, 200), dtype=np.float32), requires_grad=True)
    y = dropout(x)
    kept = y.data != 0
    assert kept.mean() == pytest.approx(0.75, abs=0.01)
    np.testing.assert_allclose(y.data[kept], 1 / 0.75, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, y.data, rtol=1e-6)  # same mask, same scale
    np.testing.assert_array_equal(dropout.eval()(x).data, x.data)


def test_dropout_is_reproducible_with_manual_seed():
    x = minicnn.ones(50, 50)
    minicnn.manual_seed(3)
    first = nn.Dropout()(x).data
    minicnn.manual_seed(3)
    second = nn.Dropout()(x).data
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(second, nn.Dropout()(x).data)


def test_max_pool_can_return_indices():
    torch = require_torch()
    x = np.random.default_rng(2).standard_normal((1, 2, 6, 6)).astype(np.float32)
    _, indices = nn.MaxPool2d(2, return_indices=True)(minicnn.Tensor(x))
    _, torch_indices = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(indices.data, torch_indices.numpy())


def test_layer_reprs_match_torch():
    torch = require_torch()
    for expression, _, _ in CASES + [("CrossEntropyLoss()", None, None), ("Identity()", None, None),
                                     ("ReLU(inplace=True)", None, None), ("LeakyReLU(0.1, True)", None, None),
                                     ("BatchNorm2d(4, bias=False, momentum=None, eps=1e-3)", None, None),
                                     ("Conv2d(4, 4, 3, dilation=2, padding='same', groups=2)", None, None)]:
        assert repr(build(nn, expression)) == repr(build(torch.nn, expression)), expression


def test_parameter_names_and_shapes_match_torch():
    torch = require_torch()
    for expression in ["Conv2d(6, 12, (3, 5), groups=3)", "Linear(7, 2)", "BatchNorm2d(4)", "BatchNorm1d(4)",
                       "BatchNorm2d(4, affine=False)", "Conv2d(2, 2, 1, bias=False)"]:
        ours = build(nn, expression).state_dict()
        theirs = build(torch.nn, expression).state_dict()
        assert [(k, v.shape) for k, v in ours.items()] == [(k, tuple(v.shape)) for k, v in theirs.items()]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction):
    torch = require_torch()
    rng = np.random.default_rng(2)
    prediction, target = rng.standard_normal((2, 4, 3)).astype(np.float32)
    ours = nn.MSELoss(reduction=reduction)(minicnn.Tensor(prediction, requires_grad=True), minicnn.Tensor(target))
    theirs = torch.nn.MSELoss(reduction=reduction)(torch.tensor(prediction), torch.tensor(target))
    assert rel_error(ours.data, theirs.numpy()) <= FORWARD_TOL
