"""exp, log, sqrt, abs and clip: forward and backward against PyTorch."""
import numpy as np
import pytest
from oracle import compare_with_torch, require_torch

import minicnn
from minicnn import functions as F

DTYPES = [np.float32, np.float64]


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def positive(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.2, 3.0, size=shape)


def away_from(points, *shape, seed=0):
    """Normal samples moved at least 0.05 from each point, where the derivative jumps."""
    values = normal(*shape, seed=seed)
    for point in points:
        near = np.abs(values - point) < 0.05
        values[near] = point + 0.1 * np.sign(values[near] - point + 1e-12)
    return values


CASES = {
    "exp": (lambda x: x.exp(), lambda x: x.exp(), normal(3, 4)),
    "exp_function": (F.exp, lambda x: x.exp(), normal(5)),
    "log": (lambda x: x.log(), lambda x: x.log(), positive(3, 4)),
    "sqrt": (lambda x: x.sqrt(), lambda x: x.sqrt(), positive(3, 4)),
    "abs": (lambda x: x.abs(), lambda x: x.abs(), away_from([0.0], 3, 4)),
    "abs_builtin": (lambda x: abs(x), lambda x: abs(x), away_from([0.0], 6)),
    "clip_both": (lambda x: x.clip(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5), away_from([-0.5, 0.5], 4, 5)),
    "clip_min": (lambda x: x.clip(min=0.0), lambda x: x.clamp(min=0.0), away_from([0.0], 4, 5)),
    "clip_max": (lambda x: x.clamp(max=0.3), lambda x: x.clamp(max=0.3), away_from([0.3], 4, 5)),
    "clip_function": (lambda x: F.clip(x, -1, 1), lambda x: x.clamp(-1, 1), away_from([-1.0, 1.0], 10)),
    "chain": (lambda x: (x.exp() + 1).log().sqrt(), lambda x: (x.exp() + 1).log().sqrt(), normal(3, 3)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_elementwise_op_matches_torch(name, dtype):
    ours, theirs, x = CASES[name]
    compare_with_torch(ours, theirs, [x], dtype=dtype)


def test_values_at_the_kinks_match_torch():
    torch = require_torch()
    values = [-1.0, -0.5, 0.0, 0.5, 1.0]
    for ours, theirs in [(lambda x: x.abs(), lambda x: x.abs()),
                         (lambda x: x.clip(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5))]:
        x, t = minicnn.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
        ours(x).sum().backward()
        theirs(t).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_clip_passes_gradient_only_inside_the_range():
    x = minicnn.tensor([-2.0, 0.0, 2.0], requires_grad=True)
    y = x.clip(-1.0, 1.0)
    assert y.numpy().tolist() == [-1.0, 0.0, 1.0]
    y.sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 1.0, 0.0]


def test_clip_keeps_integer_tensors_integer():
    clipped = minicnn.arange(5).clip(1, 3)
    assert clipped.dtype == np.int64 and clipped.numpy().tolist() == [1, 1, 2, 3, 3]


def test_exp_of_large_values_overflows_to_inf_like_numpy():
    with np.errstate(over="ignore"):
        assert np.isinf(minicnn.tensor([100.0]).exp().item())


def test_clip_with_min_above_max_is_a_value_error():
    with pytest.raises(ValueError, match=r"clip: min \(1\.0\) is greater than max \(0\.0\)"):
        minicnn.zeros(3).clip(1.0, 0.0)


def test_clip_without_bounds_is_a_value_error():
    with pytest.raises(ValueError, match=r"clip: at least one of min and max must be given"):
        minicnn.zeros(3).clip()
