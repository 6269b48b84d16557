"""A float32 graph stays float32 (and float64 stays float64) through every op, forward and backward.

Leaf gradients are cast to the leaf's dtype on arrival, so checking ``x.grad``
alone would hide a backward that drifted to float64 on the way; these tests
also call every Function's backward in the graph and check what it returns.
"""
import numpy as np
import pytest

import minicnn
from minicnn.functions import cat

W = np.linspace(-1.0, 1.0, 12).reshape(3, 4)

# Each expression takes x of shape (2, 3) with values in [0.5, 1.5].
EXPRESSIONS = {
    "x + 1": lambda x: x + 1,
    "1 + x": lambda x: 1 + x,
    "x + 0.5": lambda x: x + 0.5,
    "x - 2.5": lambda x: x - 2.5,
    "2.5 - x": lambda x: 2.5 - x,
    "x * 0.5": lambda x: x * 0.5,
    "0.5 * x": lambda x: 0.5 * x,
    "x * 2": lambda x: x * 2,
    "x / 3": lambda x: x / 3,
    "3 / x": lambda x: 3 / x,
    "x / 0.3": lambda x: x / 0.3,
    "x ** 2": lambda x: x**2,
    "x ** 0.5": lambda x: x**0.5,
    "x ** -1.5": lambda x: x**-1.5,
    "2 ** x": lambda x: 2**x,
    "0.5 ** x": lambda x: 0.5**x,
    "x ** x": lambda x: x**x,
    "x ** np.float64(2)": lambda x: x ** np.float64(2.0),
    "x * np.float64(0.5)": lambda x: x * np.float64(0.5),
    "np.float64(0.5) - x": lambda x: np.float64(0.5) - x,
    "-x": lambda x: -x,
    "x @ W": lambda x: x @ minicnn.tensor(W.astype(x.dtype)),
    "x[0] @ x[1]": lambda x: x[0] @ x[1],
    "x.sum()": lambda x: x.sum(),
    "x.sum(axis=0)": lambda x: x.sum(axis=0),
    "x.mean()": lambda x: x.mean(),
    "x.mean(axis=(0, 1), keepdims=True)": lambda x: x.mean(axis=(0, 1), keepdims=True),
    "x.max()": lambda x: x.max(),
    "x.max(axis=-1)": lambda x: x.max(axis=-1),
    "x.exp()": lambda x: x.exp(),
    "x.log()": lambda x: x.log(),
    "x.sqrt()": lambda x: x.sqrt(),
    "x.abs()": lambda x: x.abs(),
    "x.clip(0.7, 1.2)": lambda x: x.clip(0.7, 1.2),
    "x.clip(min=1)": lambda x: x.clip(min=1),
    "x.reshape(-1)": lambda x: x.reshape(-1),
    "x.T": lambda x: x.T,
    "x.permute(1, 0)": lambda x: x.permute(1, 0),
    "x.flatten()": lambda x: x.flatten(),
    "x[[0, 0], 1:]": lambda x: x[[0, 0], 1:],
    "x[x > 1]": lambda x: x[x > 1],
    "cat([x, x * 2], 1)": lambda x: cat([x, x * 2], dim=1),
    "x + [1, 2, 3]": lambda x: x + [1, 2, 3],
    "x * arange(3)": lambda x: x * minicnn.arange(3),
}


def functions_with_outputs(output):
    """(function, output tensor) for every Function in the graph below ``output``."""
    found, stack, seen = [], [output], set()
    while stack:
        tensor = stack.pop()
        if tensor.creator is None or id(tensor) in seen:
            continue
        seen.add(id(tensor))
        found.append((tensor.creator, tensor))
        stack.extend(tensor.creator.inputs)
    return found


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(EXPRESSIONS))
def test_output_every_backward_result_and_grad_keep_the_input_dtype(name, dtype):
    values = np.random.default_rng(0).uniform(0.5, 1.5, size=(2, 3)).astype(dtype)
    x = minicnn.tensor(values, requires_grad=True)
    y = EXPRESSIONS[name](x)
    assert y.dtype == dtype, f"{name}: output dtype {y.dtype}"
    functions = functions_with_outputs(y)
    assert functions, f"{name}: recorded no graph"
    for function, output in functions:
        upstream = minicnn.ones(output.shape, dtype=dtype, device=output.device).data
        grads = function.backward(upstream)
        grads = grads if isinstance(grads, tuple) else (grads,)
        for grad in grads:
            if grad is not None:
                returned = f"{type(function).__name__}.backward returned {grad.dtype}"
                assert grad.dtype == dtype, f"{name}: {returned}"
    y.backward(minicnn.ones_like(y))
    assert x.grad.dtype == dtype


def test_factories_default_to_float32():
    tensors = [minicnn.zeros(2), minicnn.ones(2), minicnn.full((2,), 0.5), minicnn.randn(2), minicnn.rand(2),
               minicnn.arange(0.0, 1.0, 0.5), minicnn.zeros_like(minicnn.zeros(2))]
    for made in tensors:
        assert made.dtype == np.float32


def test_mean_of_integers_or_booleans_is_float32():
    assert minicnn.arange(4).mean().dtype == np.float32
    assert minicnn.arange(4).mean().item() == 1.5
    accuracy = (minicnn.tensor([1, 2, 3]) == minicnn.tensor([1, 0, 3])).mean()
    assert accuracy.dtype == np.float32 and abs(accuracy.item() - 2 / 3) < 1e-6
