"""softmax, log_softmax, cross_entropy, mse_loss: against PyTorch, finite differences, stability, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import compare_with_torch, require_torch

import minicnn
from minicnn.functions.loss import cross_entropy, log_softmax, mse_loss, softmax

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


@st.composite
def shape_and_dim(draw):
    shape = draw(shapes)
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


# --- softmax / log_softmax -------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(shape_and_dim())
def test_softmax_and_log_softmax_match_torch_float32_and_float64(case):

    TF = require_torch().nn.functional
    shape, dim = case
    x = 3 * np.random.default_rng(21).standard_normal(shape)
    for dtype in (np.float32, np.float64):
        compare_with_torch(lambda t: softmax(t, dim), lambda t: TF.softmax(t, dim), [x], dtype=dtype, seed=1)
        compare_with_torch(lambda t: log_softmax(t, dim), lambda t: TF.log_softmax(t, dim), [x], dtype=dtype, seed=1)


@settings(max_examples=15, deadline=None)
@given(shape_and_dim())
def test_softmax_and_log_softmax_gradcheck(case):
    shape, dim = case
    x = np.random.default_rng(22).standard_normal(shape)
    assert minicnn.gradcheck(lambda t: softmax(t, dim), [x])
    assert minicnn.gradcheck(lambda t: log_softmax(t, dim), [x])


def test_softmax_of_huge_logits_is_finite_and_matches_torch():

    TF = require_torch().nn.functional
    x = np.array([[1e4, -1e4, 0.0, 9999.0], [-5e3, -5e3, -5e3, -5e3]])
    compare_with_torch(lambda t: softmax(t, 1), lambda t: TF.softmax(t, 1), [x], dtype=np.float32)
    compare_with_torch(lambda t: log_softmax(t, 1), lambda t: TF.log_softmax(t, 1), [x], dtype=np.float32)


# --- cross entropy ---------------------------------------------------------------
@st.composite
def cross_entropy_cases(draw):
    n, classes = draw(st.integers(1, 5)), draw(st.integers(2, 6))  # one class: the gradient is exactly 0
    rest = draw(st.lists(st.integers(1, 3), max_size=2).map(tuple))
    return {"logits": (n, classes) + rest, "target": (n,) + rest,
                "weighted": draw(st.booleans()), "ignore": draw(st.booleans()),
                "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
                "label_smoothing": draw(st.sampled_from([0.0, 0.1, 0.5]))}


def _ce_inputs(case, seed):
    rng = np.random.default_rng(seed)
    classes = case["logits"][1]
    logits = 2 * rng.standard_normal(case["logits"])
    target = rng.integers(0, classes, case["target"])
    if case["ignore"] and target.size > 1:
        target.flat[0] = -100  # at least one label stays counted, so the mean is defined
    weight = rng.random(classes) + 0.5 if case["weighted"] else None
    return logits, target, weight


def _ce_pair(case, weight, dtype):
    torch = require_torch()
    TF = torch.nn.functional

    kwargs = {"reduction": case["reduction"], "label_smoothing": case["label_smoothing"]}
    ours_weight = None if weight is None else minicnn.tensor(weight.astype(dtype))
    theirs_weight = None if weight is None else torch.tensor(weight.astype(dtype))
    return (lambda x, t: cross_entropy(x, t, ours_weight, **kwargs),
            lambda x, t: TF.cross_entropy(x, t, theirs_weight, **kwargs))


@settings(max_examples=20, deadline=None)
@given(cross_entropy_cases())
def test_cross_entropy_matches_torch_float32_and_float64(case):
    require_torch()
    logits, target, weight = _ce_inputs(case, seed=23)
    for dtype in (np.float32, np.float64):
        ours, theirs = _ce_pair(case, weight, dtype)
        compare_with_torch(ours, theirs, [logits, target], dtype=dtype, seed=2)


@settings(max_examples=15, deadline=None)
@given(cross_entropy_cases())
def test_cross_entropy_gradcheck(case):
    logits, target, weight = _ce_inputs(case, seed=24)
    target_tensor = minicnn.tensor(target)
    weight_tensor = None if weight is None else minicnn.tensor(weight)
    assert minicnn.gradcheck(lambda x: cross_entropy(x, target_tensor, weight_tensor, reduction=case["reduction"],
                                                     label_smoothing=case["label_smoothing"]), [logits])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_of_logits_of_magnitude_1e4_is_finite_and_matches_torch(label_smoothing):
    require_torch()
    rng = np.random.default_rng(25)
    logits = 1e4 * rng.standard_normal((6, 5))
    target = rng.integers(0, 5, 6)
    case = {"reduction": "mean", "label_smoothing": label_smoothing}
    for dtype in (np.float32, np.float64):
        ours, theirs = _ce_pair(case, None, dtype)
        compare_with_torch(ours, theirs, [logits, target], dtype=dtype)
    x = minicnn.tensor(logits.astype(np.float32), requires_grad=True)
    loss = cross_entropy(x, minicnn.tensor(target), label_smoothing=label_smoothing)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.numpy()).all()


def test_cross_entropy_of_one_unbatched_sample_matches_torch():
    torch = require_torch()
    logits = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    for reduction in ("mean", "none"):
        ours = cross_entropy(minicnn.tensor(logits), minicnn.tensor(np.array(2)), reduction=reduction)
        theirs = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(2), reduction=reduction)
        assert ours.shape == () and abs(ours.item() - theirs.item()) < 1e-6


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    logits = np.random.default_rng(26).standard_normal((4, 3))
    target = np.array([0, 2, 1, 2])
    x = minicnn.tensor(logits, requires_grad=True)
    cross_entropy(x, minicnn.tensor(target), reduction="sum").backward()
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad.numpy(), probabilities - np.eye(3)[target], atol=1e-12)


# --- mse ---------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(shapes, st.sampled_from(["mean", "sum", "none"]))
def test_mse_loss_matches_torch_and_gradcheck(shape, reduction):

    TF = require_torch().nn.functional
    rng = np.random.default_rng(27)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    for dtype in (np.float32, np.float64):
        compare_with_torch(lambda x, y: mse_loss(x, y, reduction), lambda x, y: TF.mse_loss(x, y, reduction=reduction),
                           [a, b], dtype=dtype)
    assert minicnn.gradcheck(lambda x, y: mse_loss(x, y, reduction), [a, b])


# --- bad input ----------------------------------------------------------------
def _logits(n=4, classes=5):
    return minicnn.zeros(n, classes)


def _labels(values):
    return minicnn.tensor(np.array(values))


@pytest.mark.parametrize("call, error, message", [
    (lambda: cross_entropy(_logits(), minicnn.tensor(np.zeros(4, dtype=np.float32))), TypeError,
     r"cross_entropy: target must hold integer class indices, got dtype float32"),
    (lambda: cross_entropy(_logits(), _labels([0, 1, 5, 2])), ValueError,
     r"cross_entropy: target holds class 5 but input has 5 classes \(valid labels are 0..4\)"),
    (lambda: cross_entropy(_logits(), _labels([0, -3, 1, 2])), ValueError,
     r"cross_entropy: target holds class -3 but input has 5 classes"),
    (lambda: cross_entropy(_logits(), _labels([0, 1, 2])), ValueError,
     r"cross_entropy: target has shape \(3,\) but input of shape \(4, 5\) needs target shape \(4,\)"),
    (lambda: cross_entropy(_logits(), _labels([0, 1, 2, 3]), reduction="avg"), ValueError,
     r"cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: cross_entropy(_logits(), _labels([0, 1, 2, 3]), label_smoothing=1.5), ValueError,
     r"cross_entropy: label_smoothing must be between 0.0 and 1.0, got 1.5"),
    (lambda: cross_entropy(_logits(), _labels([0, 1, 2, 3]), minicnn.ones(4)), ValueError,
     r"cross_entropy: weight has shape \(4,\) but input has 5 classes"),
    (lambda: cross_entropy(np.zeros((4, 5)), _labels([0, 1, 2, 3])), TypeError,
     r"cross_entropy: input must be a Tensor, got ndarray"),
    (lambda: cross_entropy(minicnn.zeros(5), _labels([1, 2])), ValueError,
     r"cross_entropy: unbatched input of shape \(5,\) needs a scalar target, got shape \(2,\)"),
    (lambda: softmax(minicnn.zeros(2, 3)), ValueError, r"softmax: dim must be given"),
    (lambda: log_softmax(minicnn.zeros(2, 3), 2), ValueError,
     r"log_softmax: dim 2 is out of range for a tensor with 2 dimensions"),
    (lambda: mse_loss(minicnn.zeros(3, 1), minicnn.zeros(3)), ValueError,
     r"mse_loss: input has shape \(3, 1\) but target has shape \(3,\)"),
    (lambda: mse_loss(minicnn.zeros(3), minicnn.zeros(3), reduction="mean "), ValueError,
     r"mse_loss: reduction must be 'mean', 'sum' or 'none', got 'mean '"),
])
def test_losses_reject_bad_input_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()
