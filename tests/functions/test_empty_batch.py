"""Empty batches (N = 0) through every differentiable op, against PyTorch on the same inputs.

PyTorch's rules for an empty batch, pinned down here: every output is empty with
the shape the formulas give (N = 0, the other axes as usual); weights and biases
get gradients of their own shape, all zeros (a sum over no samples); batch norm
in training returns the empty output and leaves the running statistics alone;
a mean over no elements is 0/0 = nan (cross_entropy and mse_loss with
reduction='mean'), a sum is 0.  The suite is device-neutral: inputs are made
with ``minicnn.tensor``, so ``MINICNN_TEST_DEVICE=emulated`` runs it on the
CUDA kernels, where a kernel over zero elements must not be launched at all.
"""
import warnings

import numpy as np
import pytest
from oracle import TOLERANCES, require_torch

import minicnn
from minicnn.backend.cuda import matmul as cuda_matmul
from minicnn.functions import activation
from minicnn.functions.conv import conv2d
from minicnn.functions.dropout import dropout
from minicnn.functions.linear import linear
from minicnn.functions.loss import cross_entropy, log_softmax, mse_loss, softmax
from minicnn.functions.normalization import batch_norm, local_response_norm
from minicnn.functions.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from minicnn.functions.shape import cat, flatten


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def check_against_torch(minicnn_fn, torch_fn, inputs, dtype=np.float32, grad_inputs=None, seed=0):
    """Run both on ``inputs`` (NumPy arrays, float ones cast to ``dtype``); compare output and every gradient.

    Stricter than ``oracle.compare_with_torch`` where empty arrays make a relative error
    vacuous: output and gradient *shapes* must equal torch's, nan must meet nan, and no
    NumPy RuntimeWarning (0/0, mean of an empty slice) may escape.  Returns (output, grads).
    """
    torch = require_torch()
    forward_tol, grad_tol = TOLERANCES[np.dtype(dtype).type]
    arrays = [np.asarray(a, dtype=dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in inputs]
    if grad_inputs is None:
        grad_inputs = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    ours = [minicnn.tensor(a, requires_grad=i in grad_inputs) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a.copy(), requires_grad=i in grad_inputs) for i, a in enumerate(arrays)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = minicnn_fn(*ours)
        expected = torch_fn(*theirs)
        assert out.shape == tuple(expected.shape), f"shape {out.shape} vs torch {tuple(expected.shape)}"
        assert out.dtype == np.dtype(dtype) and out.device == minicnn.get_default_device()
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=forward_tol, atol=forward_tol)
        upstream = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
        out.backward(minicnn.tensor(upstream).data)
        expected.backward(torch.tensor(upstream))
    grads = []
    for i in grad_inputs:
        grad, expected_grad = ours[i].grad, theirs[i].grad.numpy()
        assert grad is not None, f"input {i} got no gradient"
        assert grad.shape == expected_grad.shape, f"input {i}: gradient {grad.shape} vs {expected_grad.shape}"
        assert grad.dtype == np.dtype(dtype) and grad.device == minicnn.get_default_device()
        np.testing.assert_allclose(grad.numpy(), expected_grad, rtol=grad_tol, atol=grad_tol,
                                   err_msg=f"gradient of input {i}")
        grads.append(grad.numpy())
    return out, grads


def assert_all_zero(*arrays):
    for array in arrays:
        assert array.size > 0 and not np.any(array), f"expected zeros, got {array}"


# --- convolution -----------------------------------------------------------------
CONV_CASES = [
    # (input (0, C, H, W), weight shape, keyword arguments)
    ((0, 3, 7, 6), (5, 3, 3, 3), dict(stride=2, padding=1)),
    ((0, 4, 9, 9), (6, 4, 3, 2), dict(padding=(2, 1), dilation=2)),
    ((0, 4, 7, 7), (6, 2, 3, 3), dict(stride=(1, 2), groups=2)),
    ((0, 4, 8, 8), (4, 1, 3, 3), dict(padding=1, groups=4)),  # depthwise: the direct kernel
    ((0, 4, 9, 8), (4, 1, 3, 3), dict(stride=2, padding=2, dilation=2, groups=4)),
    ((0, 3, 5, 5), (8, 3, 1, 1), dict()),
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV_CASES)
def test_conv2d_on_an_empty_batch_gives_an_empty_output_and_zero_weight_gradients(
        x_shape, w_shape, kwargs, bias):
    TF = require_torch().nn.functional
    inputs = [random(x_shape), random(w_shape, 1)] + ([random(w_shape[:1], 2)] if bias else [])
    out, grads = check_against_torch(lambda *t: conv2d(*t, **kwargs), lambda *t: TF.conv2d(*t, **kwargs),
                                     inputs)
    assert out.shape[:2] == (0, w_shape[0])
    assert grads[0].shape == x_shape
    assert_all_zero(*grads[1:])


def test_conv2d_on_an_empty_batch_in_float64():
    TF = require_torch().nn.functional
    inputs = [random((0, 4, 6, 6)), random((6, 2, 3, 3), 1), random((6,), 2)]
    check_against_torch(lambda x, w, b: conv2d(x, w, b, padding=1, groups=2),
                        lambda x, w, b: TF.conv2d(x, w, b, padding=1, groups=2), inputs, dtype=np.float64)


def test_conv2d_and_linear_on_an_empty_batch_through_the_teaching_gemm():
    # On a GPU device the tiled GEMM (kernels/gemm.cu) would get a grid of 0 row or column tiles.
    TF = require_torch().nn.functional
    cuda_matmul.use_teaching_gemm(True)
    try:
        check_against_torch(lambda x, w: conv2d(x, w, padding=1), lambda x, w: TF.conv2d(x, w, padding=1),
                            [random((0, 3, 5, 5)), random((4, 3, 3, 3), 1)])
        check_against_torch(linear, TF.linear, [random((0, 5)), random((3, 5), 1), random((3,), 2)])
    finally:
        cuda_matmul.use_teaching_gemm(False)


# --- linear ----------------------------------------------------------------------
@pytest.mark.parametrize("x_shape", [(0, 5), (0, 3, 5), (2, 0, 5)])
def test_linear_on_an_empty_batch_gives_zero_weight_and_bias_gradients(x_shape):
    TF = require_torch().nn.functional
    out, grads = check_against_torch(linear, TF.linear, [random(x_shape), random((4, 5), 1), random((4,), 2)])
    assert out.shape == x_shape[:-1] + (4,)
    assert_all_zero(grads[1], grads[2])


# --- pooling ---------------------------------------------------------------------
POOL_CASES = [
    ("max", dict(kernel_size=2)),
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=2, ceil_mode=True)),
    ("max", dict(kernel_size=3, stride=2, dilation=2, ceil_mode=True)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg", dict(kernel_size=2, divisor_override=3)),
]


@pytest.mark.parametrize("kind, kwargs", POOL_CASES)
def test_pooling_on_an_empty_batch_matches_torch(kind, kwargs):
    TF = require_torch().nn.functional
    ours, theirs = {"max": (max_pool2d, TF.max_pool2d), "avg": (avg_pool2d, TF.avg_pool2d)}[kind]
    out, (grad,) = check_against_torch(lambda x: ours(x, **kwargs), lambda x: theirs(x, **kwargs),
                                       [random((0, 3, 7, 7))])
    assert out.shape[:2] == (0, 3) and grad.shape == (0, 3, 7, 7)


def test_max_pool2d_return_indices_on_an_empty_batch():
    torch = require_torch()
    x = random((0, 3, 7, 7)).astype(np.float32)
    out, indices = max_pool2d(minicnn.tensor(x), 3, stride=2, ceil_mode=True, return_indices=True)
    expected, expected_indices = torch.nn.functional.max_pool2d(torch.tensor(x), 3, stride=2, ceil_mode=True,
                                                                return_indices=True)
    assert out.shape == indices.shape == (0, 3, 3, 3)
    assert tuple(expected.shape) == tuple(expected_indices.shape) == (0, 3, 3, 3)
    assert indices.dtype == np.int64


@pytest.mark.parametrize("output_size", [1, (2, 3), (None, 4), 9])
def test_adaptive_avg_pool2d_on_an_empty_batch_matches_torch(output_size):
    TF = require_torch().nn.functional
    check_against_torch(lambda x: adaptive_avg_pool2d(x, output_size),
                        lambda x: TF.adaptive_avg_pool2d(x, output_size), [random((0, 3, 5, 6))])


# --- activations and dropout -----------------------------------------------------
ACTIVATIONS = {  # name in both libraries -> keyword arguments
    "relu": {}, "relu6": {}, "sigmoid": {}, "tanh": {}, "hardswish": {}, "hardsigmoid": {},
    "leaky_relu": {"negative_slope": 0.2},
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (0, 5)])
def test_activations_on_an_empty_batch_match_torch(name, shape):
    torch = require_torch()
    kwargs = ACTIVATIONS[name]
    ours, theirs = getattr(activation, name), getattr(torch.nn.functional, name)
    out, (grad,) = check_against_torch(lambda x: ours(x, **kwargs), lambda x: theirs(x, **kwargs), [random(shape)])
    assert out.shape == grad.shape == shape


@pytest.mark.parametrize("training", [True, False])
def test_dropout_on_an_empty_batch_is_empty(training):
    TF = require_torch().nn.functional
    out, (grad,) = check_against_torch(lambda x: dropout(x, 0.5, training),
                                       lambda x: TF.dropout(x, 0.5, training), [random((0, 3, 4))])
    assert out.shape == grad.shape == (0, 3, 4)


# --- batch norm ------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 5), (0, 3, 4, 4)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_on_an_empty_batch_matches_torch_and_leaves_running_statistics_alone(
        shape, affine, training):
    torch = require_torch()
    running_mean = random((3,), 5).astype(np.float32)
    running_var = (1 + random((3,), 6) ** 2).astype(np.float32)
    ours_stats = [minicnn.tensor(running_mean.copy()), minicnn.tensor(running_var.copy())]
    theirs_stats = [torch.tensor(running_mean.copy()), torch.tensor(running_var.copy())]
    inputs = [random(shape)] + ([random((3,), 1), random((3,), 2)] if affine else [])
    out, grads = check_against_torch(
        lambda x, *wb: batch_norm(x, *ours_stats, *wb, training=training, momentum=0.3),
        lambda x, *wb: torch.nn.functional.batch_norm(x, *theirs_stats, *wb, training=training, momentum=0.3),
        inputs)
    assert out.shape == shape
    assert_all_zero(*grads[1:])
    for ours, theirs, before in zip(ours_stats, theirs_stats, (running_mean, running_var)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        np.testing.assert_array_equal(ours.numpy(), before)  # PyTorch does not move them either


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_without_running_statistics_on_an_empty_batch(dtype):
    TF = require_torch().nn.functional
    _, grads = check_against_torch(lambda x, w, b: batch_norm(x, None, None, w, b, training=True),
                                   lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
                                   [random((0, 4, 3, 3)), random((4,), 1), random((4,), 2)], dtype=dtype)
    assert_all_zero(grads[1], grads[2])


def test_batch_norm_after_an_empty_batch_still_tracks_the_next_one_as_torch_does():
    torch = require_torch()
    ours_stats = [minicnn.zeros(3), minicnn.ones(3)]
    theirs_stats = [torch.zeros(3), torch.ones(3)]
    for x in (random((0, 3, 2, 2)), random((4, 3, 2, 2), 7), random((0, 3, 2, 2))):
        x = x.astype(np.float32)
        batch_norm(minicnn.tensor(x), *ours_stats, training=True)
        torch.nn.functional.batch_norm(torch.tensor(x), *theirs_stats, training=True)
        for ours, theirs in zip(ours_stats, theirs_stats):
            assert np.all(np.isfinite(ours.numpy()))
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)


def test_batch_norm_still_refuses_one_value_per_channel_in_training_like_torch():
    torch = require_torch()
    with pytest.raises(ValueError, match="xpected more than 1 value per channel when training"):
        torch.nn.functional.batch_norm(torch.zeros(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel when training"):
        batch_norm(minicnn.tensor(np.zeros((1, 3, 1, 1), dtype=np.float32)), None, None, training=True)


# --- local response norm, shape ops ----------------------------------------------
@pytest.mark.parametrize("shape, size", [((0, 6, 4, 4), 3), ((0, 5, 7), 2)])
def test_local_response_norm_on_an_empty_batch_matches_torch(shape, size):
    TF = require_torch().nn.functional
    out, (grad,) = check_against_torch(lambda x: local_response_norm(x, size, alpha=1e-2, k=2.0),
                                       lambda x: TF.local_response_norm(x, size, alpha=1e-2, k=2.0),
                                       [random(shape)])
    assert out.shape == grad.shape == shape


def test_cat_of_empty_batches_along_channels_and_of_an_empty_with_a_full_batch():
    torch = require_torch()
    out, grads = check_against_torch(lambda a, b: cat([a, b], dim=1), lambda a, b: torch.cat([a, b], dim=1),
                                     [random((0, 3, 2, 2)), random((0, 5, 2, 2), 1)])
    assert out.shape == (0, 8, 2, 2) and [g.shape for g in grads] == [(0, 3, 2, 2), (0, 5, 2, 2)]
    out, grads = check_against_torch(lambda a, b: cat([a, b], dim=0), lambda a, b: torch.cat([a, b], dim=0),
                                     [random((0, 3)), random((2, 3), 1)])
    assert out.shape == (2, 3) and [g.shape for g in grads] == [(0, 3), (2, 3)]


@pytest.mark.parametrize("start_dim, end_dim", [(1, -1), (0, -1), (2, 3)])
def test_flatten_of_an_empty_batch_matches_torch(start_dim, end_dim):
    torch = require_torch()
    out, _ = check_against_torch(lambda x: flatten(x, start_dim, end_dim),
                                 lambda x: torch.flatten(x, start_dim, end_dim), [random((0, 3, 2, 2))])
    assert out.size == 0


# --- softmax and the losses ------------------------------------------------------
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, dim", [((0, 4), 1), ((0, 4), 0), ((0, 3, 2), -1), ((0, 3, 2), 0)])
def test_softmax_and_log_softmax_on_an_empty_batch_match_torch(op, shape, dim):
    torch = require_torch()
    ours = {"softmax": softmax, "log_softmax": log_softmax}[op]
    theirs = getattr(torch.nn.functional, op)
    out, (grad,) = check_against_torch(lambda x: ours(x, dim), lambda x: theirs(x, dim), [random(shape)])
    assert out.shape == grad.shape == shape


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("logits_shape", [(0, 5), (0, 5, 3, 2)])
def test_cross_entropy_on_an_empty_batch_matches_torch(logits_shape, reduction, label_smoothing, weighted):
    torch = require_torch()
    target = np.zeros((0,) + logits_shape[2:], dtype=np.int64)
    weight = (1 + random((5,), 3) ** 2).astype(np.float32) if weighted else None
    out, (grad,) = check_against_torch(
        lambda x, t: cross_entropy(x, t, None if weight is None else minicnn.tensor(weight),
                                   reduction=reduction, label_smoothing=label_smoothing),
        lambda x, t: torch.nn.functional.cross_entropy(x, t, None if weight is None else torch.tensor(weight),
                                                       reduction=reduction, label_smoothing=label_smoothing),
        [random(logits_shape), target], grad_inputs=[0])
    assert grad.shape == logits_shape
    loss = out.numpy()
    if reduction == "mean":
        assert out.shape == () and np.isnan(loss)  # PyTorch: 0/0 over no targets
    elif reduction == "sum":
        assert out.shape == () and loss == 0
    else:
        assert out.shape == target.shape


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4, 4)])
def test_mse_loss_on_an_empty_batch_matches_torch(shape, reduction):
    TF = require_torch().nn.functional
    out, grads = check_against_torch(lambda a, b: mse_loss(a, b, reduction=reduction),
                                     lambda a, b: TF.mse_loss(a, b, reduction=reduction),
                                     [random(shape), random(shape, 1)])
    assert [g.shape for g in grads] == [shape, shape]
    if reduction == "mean":
        assert np.isnan(out.numpy())  # PyTorch: the mean of no elements is nan
    elif reduction == "sum":
        assert out.numpy() == 0
