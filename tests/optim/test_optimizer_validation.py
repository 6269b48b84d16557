"""Bad hyper-parameters and bad parameter lists fail early, with the optimizer's name in the message."""

import numpy as np
import pytest

import minicnn
from minicnn.optim import SGD, Adam, AdamW, RMSprop


def weights():
    return [minicnn.Tensor(np.ones((2, 2), np.float32), requires_grad=True)]


BAD_HYPER_PARAMETERS = [
    (lambda: SGD(weights(), lr=-0.1), ValueError, r"SGD: invalid learning rate -0.1 \(expected >= 0\)"),
    (
        lambda: SGD(weights(), lr=0.1, momentum=-0.5),
        ValueError,
        r"SGD: invalid momentum -0.5 \(expected >= 0\)",
    ),
    (
        lambda: SGD(weights(), lr=0.1, weight_decay=-1e-4),
        ValueError,
        r"SGD: invalid weight_decay -0.0001 \(expected >= 0\)",
    ),
    (
        lambda: SGD(weights(), lr=0.1, nesterov=True),
        ValueError,
        r"SGD: nesterov momentum requires momentum > 0 and dampening 0, got momentum=0.0 and dampening=0.0",
    ),
    (
        lambda: SGD(weights(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
        ValueError,
        r"SGD: nesterov momentum requires momentum > 0 and dampening 0, got momentum=0.9 and dampening=0.1",
    ),
    (lambda: SGD(weights(), lr="0.1"), TypeError, r"SGD: learning rate must be a real number, got str"),
    (lambda: Adam(weights(), lr=-1e-3), ValueError, r"Adam: invalid learning rate -0.001 \(expected >= 0\)"),
    (
        lambda: Adam(weights(), betas=(1.0, 0.999)),
        ValueError,
        r"Adam: invalid beta parameter at index 0: 1.0 \(expected in \[0, 1\)\)",
    ),
    (
        lambda: Adam(weights(), betas=(0.9, -0.1)),
        ValueError,
        r"Adam: invalid beta parameter at index 1: -0.1 \(expected in \[0, 1\)\)",
    ),
    (lambda: Adam(weights(), betas=(0.9,)), ValueError, r"Adam: betas must be a pair \(beta1, beta2\)"),
    (lambda: Adam(weights(), eps=-1e-8), ValueError, r"Adam: invalid epsilon value -1e-08 \(expected >= 0\)"),
    (
        lambda: Adam(weights(), weight_decay=-0.1),
        ValueError,
        r"Adam: invalid weight_decay -0.1 \(expected >= 0\)",
    ),
    (
        lambda: AdamW(weights(), betas=(0.9, 1.5)),
        ValueError,
        r"AdamW: invalid beta parameter at index 1: 1.5 \(expected in \[0, 1\)\)",
    ),
    (
        lambda: AdamW(weights(), weight_decay=-0.01),
        ValueError,
        r"AdamW: invalid weight_decay -0.01 \(expected >= 0\)",
    ),
    (lambda: RMSprop(weights(), alpha=-0.5), ValueError, r"RMSprop: invalid alpha -0.5 \(expected >= 0\)"),
    (
        lambda: RMSprop(weights(), eps=-1.0),
        ValueError,
        r"RMSprop: invalid epsilon value -1.0 \(expected >= 0\)",
    ),
    (
        lambda: RMSprop(weights(), momentum=-0.9),
        ValueError,
        r"RMSprop: invalid momentum -0.9 \(expected >= 0\)",
    ),
    (
        lambda: RMSprop(weights(), lr=float("nan")),
        ValueError,
        r"RMSprop: invalid learning rate nan \(expected a finite number\)",
    ),
    (
        lambda: SGD([{"params": weights(), "lr": -2.0}], lr=0.1),
        ValueError,
        r"SGD: invalid learning rate -2.0 \(expected >= 0\)",
    ),
]


@pytest.mark.parametrize(
    "make, error, message", BAD_HYPER_PARAMETERS, ids=[f"case{i}" for i in range(len(BAD_HYPER_PARAMETERS))]
)
def test_bad_hyper_parameter_is_rejected_with_a_clear_message(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_empty_parameter_list_is_rejected():
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Adam: got an empty parameter list"):
        Adam(iter([]))


def test_a_parameter_that_is_not_a_tensor_is_rejected():
    with pytest.raises(TypeError, match="SGD: can only optimize Tensors, but one of the params is ndarray"):
        SGD([np.ones(3, np.float32)], lr=0.1)
    with pytest.raises(TypeError, match="RMSprop: can only optimize Tensors, but one of the params is list"):
        RMSprop([{"params": [[1.0, 2.0]]}])


def test_a_single_tensor_or_a_set_is_rejected():
    weight = weights()[0]
    with pytest.raises(
        TypeError, match="SGD: params should be an iterable of Tensors or dicts, but got a single"
    ):
        SGD(weight, lr=0.1)
    with pytest.raises(TypeError, match="Adam: parameters must be in an ordered collection"):
        Adam({weight})


def test_the_same_parameter_twice_is_rejected():
    weight = weights()[0]
    with pytest.raises(ValueError, match="SGD: the same parameter appears twice in a param group"):
        SGD([weight, weight], lr=0.1)
    with pytest.raises(ValueError, match="Adam: some parameters appear in more than one parameter group"):
        Adam([{"params": [weight]}, {"params": [weight], "lr": 0.1}])


def test_a_non_leaf_tensor_is_rejected():
    weight = weights()[0]
    with pytest.raises(ValueError, match="SGD: can't optimize a non-leaf Tensor"):
        SGD([weight * 2.0], lr=0.1)


def test_a_gradient_of_the_wrong_shape_is_rejected_at_step():
    weight = weights()[0]
    optimizer = SGD([weight], lr=0.1)
    weight.grad = minicnn.Tensor(np.ones(3, np.float32))
    with pytest.raises(
        ValueError, match=r"SGD: a parameter of shape \(2, 2\) has a gradient of shape \(3,\)"
    ):
        optimizer.step()
