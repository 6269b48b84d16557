"""sum, mean and max over all axes, one axis, several, negative axes, with and without keepdims."""
import numpy as np
import pytest
from oracle import compare_with_torch
from pairwise import all_pairs

import minicnn

DTYPES = [np.float32, np.float64]
AXES = [None, 0, 1, -1, -3, (0, 2), (-1, 0), (0, 1, 2), ()]
# All pairs (tests/pairwise.py): every axis with and without keepdims, each of them in both dtypes; that
# every op keeps float32 and float64 through forward and backward is test_dtypes.py's own check.
CASES = all_pairs(AXES, [False, True], DTYPES)


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def distinct(*shape, seed=0):
    """Values without ties, so the maximum is unique along every axis."""
    size = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(size).reshape(shape) * 0.25 - size / 8


def torch_dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


@pytest.mark.parametrize("axis, keepdims, dtype", CASES)
def test_sum_matches_torch(axis, keepdims, dtype):
    compare_with_torch(lambda x: x.sum(axis=axis, keepdims=keepdims),
                       lambda x: x.sum(dim=torch_dims(axis, 3), keepdim=keepdims) if axis != () else x * 1,
                       [normal(2, 3, 4)], dtype=dtype)


@pytest.mark.parametrize("axis, keepdims, dtype", CASES)
def test_mean_matches_torch(axis, keepdims, dtype):
    compare_with_torch(lambda x: x.mean(axis=axis, keepdims=keepdims),
                       lambda x: x.mean(dim=torch_dims(axis, 3), keepdim=keepdims) if axis != () else x * 1,
                       [normal(2, 3, 4)], dtype=dtype)


@pytest.mark.parametrize("axis, keepdims, dtype", CASES)
def test_max_matches_torch(axis, keepdims, dtype):
    compare_with_torch(lambda x: x.max(axis=axis, keepdims=keepdims),
                       lambda x: x.amax(dim=torch_dims(axis, 3), keepdim=keepdims) if axis != () else x * 1,
                       [distinct(2, 3, 4)], dtype=dtype)


def test_reductions_as_functions_match_methods():
    x = minicnn.tensor(normal(3, 4))
    from minicnn import functions

    for name in ("sum", "mean", "max"):
        as_function, as_method = getattr(functions, name)(x, 1), getattr(x, name)(axis=1)
        np.testing.assert_array_equal(as_function.numpy(), as_method.numpy())


def test_output_shapes_with_and_without_keepdims():
    x = minicnn.zeros(2, 3, 4)
    assert x.sum().shape == ()
    assert x.sum(axis=1).shape == (2, 4)
    assert x.sum(axis=(0, -1), keepdims=True).shape == (1, 3, 1)
    assert x.mean(axis=-2, keepdims=True).shape == (2, 1, 4)
    assert x.max(axis=(1, 2)).shape == (2,)
    assert x.max(keepdims=True).shape == (1, 1, 1)


def test_max_splits_the_gradient_equally_between_ties_like_torch_amax():
    torch_values = [[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]
    compare_with_torch(lambda x: x.max(axis=1), lambda x: x.amax(dim=1), [np.array(torch_values)])
    x = minicnn.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)


def test_max_of_negative_values():
    x = minicnn.tensor([-3.0, -1.0, -2.0], requires_grad=True)
    assert x.max().item() == -1.0
    x.max().backward()
    assert x.grad.numpy().tolist() == [0.0, 1.0, 0.0]


def test_mean_gradient_is_one_over_the_count():
    x = minicnn.tensor(np.ones((4, 5), dtype=np.float32), requires_grad=True)
    x.mean(axis=0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((4, 5), 0.25))


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reducing_a_0d_tensor_over_axis_0_or_minus_1_keeps_it(name):
    x = minicnn.tensor(2.5, requires_grad=True)
    for axis in (0, -1, None):
        y = getattr(x, name)(axis=axis)
        assert y.shape == () and y.item() == 2.5
    getattr(x, name)(axis=0, keepdims=True).backward()
    assert x.grad.item() == 1.0


def test_numpy_integer_axes_are_accepted():
    x = minicnn.tensor(normal(2, 3))
    assert x.sum(axis=np.int64(1)).shape == (2,)
    assert x.mean(axis=(np.int64(0), -1)).shape == ()


# --- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis", [2, -3, (0, 5)])
def test_axis_out_of_range_names_op_axis_and_rank(name, axis):
    bad = axis[1] if isinstance(axis, tuple) else axis
    expected = rf"{name}: axis {bad} is out of range for a tensor with 2 dimensions"
    with pytest.raises(ValueError, match=expected):
        getattr(minicnn.zeros(2, 3), name)(axis=axis)


def test_repeated_axis_is_a_value_error():
    with pytest.raises(ValueError, match=r"sum: axis \(1, -1\) repeats an axis"):
        minicnn.zeros(2, 3).sum(axis=(1, -1))


def test_non_integer_axis_is_a_type_error():
    with pytest.raises(TypeError, match=r"mean: axis must be an integer or a tuple of integers, got 1\.0"):
        minicnn.zeros(2, 3).mean(axis=1.0)


def test_max_of_an_empty_tensor_is_a_value_error():
    with pytest.raises(ValueError, match=r"max: cannot take the maximum of an empty tensor"):
        minicnn.zeros(0, 3).max()
