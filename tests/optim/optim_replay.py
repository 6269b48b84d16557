"""Replay one sequence of gradients through a minicnn optimizer and a torch.optim one.

Both start from the same parameters; each step the test feeds both the same
random gradients (``None`` for a parameter now and then, to check it is
skipped), steps both, and compares every parameter after every step.
"""

import numpy as np
from oracle import rel_error, require_torch

import minicnn

PARAM_TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}
SHAPES = [(3, 4), (5,), (2, 3, 2)]


def make_params(shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def gradient_sequence(shapes, dtype, steps, seed=1, none_every=0):
    """``steps`` lists of gradients; with ``none_every=k`` the last parameter has no grad every k-th step."""
    rng = np.random.default_rng(seed)
    sequence = []
    for step in range(steps):
        grads = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
        if none_every and step % none_every == none_every - 1:
            grads[-1] = None
        sequence.append(grads)
    return sequence


def to_torch_params(arrays):
    torch = require_torch()
    return [torch.tensor(array.copy(), requires_grad=True) for array in arrays]


def to_minicnn_params(arrays):
    return [minicnn.Tensor(array.copy(), requires_grad=True) for array in arrays]


def feed(minicnn_params, torch_params, grads):
    torch = require_torch()
    for param, torch_param, grad in zip(minicnn_params, torch_params, grads):
        param.grad = None if grad is None else minicnn.Tensor(grad.copy())
        torch_param.grad = None if grad is None else torch.from_numpy(grad.copy())


def assert_params_match(minicnn_params, torch_params, dtype, step):
    tolerance = PARAM_TOLERANCE[np.dtype(dtype).type]
    for index, (param, torch_param) in enumerate(zip(minicnn_params, torch_params)):
        assert param.dtype == np.dtype(dtype), f"parameter {index} changed dtype to {param.dtype}"
        error = rel_error(param.data, torch_param.detach().numpy())
        assert error <= tolerance, f"step {step}, parameter {index}: rel error {error:.3g} > {tolerance}"


def replay_against_torch(
    make_minicnn, make_torch, dtype, steps=20, shapes=SHAPES, none_every=0, after_step=None
):
    """Run both optimizers for ``steps`` steps; ``make_*(params)`` build them, ``after_step(i)`` hooks in."""
    arrays = make_params(shapes, dtype)
    minicnn_params, torch_params = to_minicnn_params(arrays), to_torch_params(arrays)
    optimizer, torch_optimizer = make_minicnn(minicnn_params), make_torch(torch_params)
    for step, grads in enumerate(gradient_sequence(shapes, dtype, steps, none_every=none_every)):
        feed(minicnn_params, torch_params, grads)
        optimizer.step()
        torch_optimizer.step()
        assert_params_match(minicnn_params, torch_params, dtype, step)
        if after_step is not None:
            after_step(optimizer, torch_optimizer)
    return optimizer, minicnn_params
