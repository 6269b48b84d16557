"""PyTorch as an oracle: run an op in minicnn and in torch on the same inputs.

``compare_with_torch`` checks the forward output and the gradient of every
input (for one random upstream gradient) in the chosen dtype, with the
tolerances the project promises: float32 forward ≤ 1e-5 and gradients ≤ 1e-4
relative error; float64 ≤ 1e-10.  Tests that call it skip visibly without torch.

minicnn's leaves are made on ``minicnn.get_default_device()``, so under
``MINICNN_TEST_DEVICE=cuda`` (see conftest.py) every comparison runs the op on
the GPU against torch on the CPU, with the same tolerances.
"""
import numpy as np
import pytest

import minicnn

TOLERANCES = {np.float32: (1e-5, 1e-4), np.float64: (1e-10, 1e-10)}


def require_torch():
    return pytest.importorskip("torch", reason="PyTorch (the test oracle) is not installed")


def rel_error(actual, expected):
    """max |a − e| / max(|e|), the cs231n measure, robust where e has zeros."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    scale = max(np.abs(expected).max(initial=0.0), 1e-30)
    return float(np.abs(actual - expected).max(initial=0.0) / scale)


def compare_with_torch(minicnn_fn, torch_fn, inputs, dtype=np.float32, grad_inputs=None,
                       forward_tol=None, grad_tol=None, seed=0):
    """Run ``minicnn_fn(*tensors)`` and ``torch_fn(*torch_tensors)`` and compare.

    ``inputs`` are NumPy arrays; float arrays are cast to ``dtype``, integer arrays
    (labels) are passed as they are.  ``grad_inputs`` lists the indices that get a
    gradient (default: every float input).  Returns (forward error, [grad errors]).
    """
    torch = require_torch()
    default_forward, default_grad = TOLERANCES[np.dtype(dtype).type]
    forward_tol = default_forward if forward_tol is None else forward_tol
    grad_tol = default_grad if grad_tol is None else grad_tol
    arrays = [np.asarray(a, dtype=dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a) for a in inputs]
    if grad_inputs is None:
        grad_inputs = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]

    ours = [minicnn.tensor(a, requires_grad=i in grad_inputs) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a.copy(), requires_grad=i in grad_inputs) for i, a in enumerate(arrays)]
    out_ours = minicnn_fn(*ours)
    out_theirs = torch_fn(*theirs)
    assert out_ours.dtype == np.dtype(dtype), f"output dtype {out_ours.dtype}, expected {np.dtype(dtype)}"
    assert out_ours.shape == tuple(out_theirs.shape), f"shape {out_ours.shape} vs torch {tuple(out_theirs.shape)}"
    assert out_ours.device == minicnn.get_default_device(), f"output on {out_ours.device}"
    forward_error = rel_error(out_ours.numpy(), out_theirs.detach().numpy())
    assert forward_error <= forward_tol, f"forward relative error {forward_error:.3g} > {forward_tol}"

    upstream = np.random.default_rng(seed).standard_normal(out_ours.shape).astype(dtype)
    out_ours.backward(minicnn.tensor(upstream).data)
    out_theirs.backward(torch.tensor(upstream))
    grad_errors = []
    for i in grad_inputs:
        assert ours[i].grad is not None, f"input {i} got no gradient"
        assert ours[i].grad.dtype == np.dtype(dtype), f"input {i} gradient dtype {ours[i].grad.dtype}"
        error = rel_error(ours[i].grad.numpy(), theirs[i].grad.numpy())
        assert error <= grad_tol, f"gradient of input {i}: relative error {error:.3g} > {grad_tol}"
        grad_errors.append(error)
    return forward_error, grad_errors
