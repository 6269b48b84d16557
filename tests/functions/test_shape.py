"""reshape, transpose/permute, flatten, indexing and cat: forward and backward against PyTorch."""
import numpy as np
import pytest
from oracle import compare_with_torch, require_torch

import minicnn
from minicnn import Tensor
from minicnn.functions import cat

DTYPES = [np.float32, np.float64]


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


RESHAPES = {
    "reshape_sizes": (lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6)),
    "reshape_tuple": (lambda x: x.reshape((6, 4)), lambda x: x.reshape((6, 4))),
    "reshape_minus_one_last": (lambda x: x.reshape(3, -1), lambda x: x.reshape(3, -1)),
    "reshape_minus_one_first": (lambda x: x.reshape(-1, 2, 2), lambda x: x.reshape(-1, 2, 2)),
    "reshape_flat": (lambda x: x.reshape(-1), lambda x: x.reshape(-1)),
    "view": (lambda x: x.view(2, 12), lambda x: x.view(2, 12)),
    "transpose_pair": (lambda x: x.transpose(0, 2), lambda x: x.transpose(0, 2)),
    "transpose_negative": (lambda x: x.transpose(-1, -2), lambda x: x.transpose(-1, -2)),
    "transpose_all": (lambda x: x.T, lambda x: x.permute(2, 1, 0)),
    "permute_args": (lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1)),
    "permute_tuple_negative": (lambda x: x.permute((-1, 1, 0)), lambda x: x.permute((-1, 1, 0))),
    "flatten_all": (lambda x: x.flatten(), lambda x: x.flatten()),
    "flatten_from_1": (lambda x: x.flatten(1), lambda x: x.flatten(1)),
    "flatten_middle": (lambda x: x.flatten(0, 1), lambda x: x.flatten(0, 1)),
    "flatten_negative": (lambda x: x.flatten(-2, -1), lambda x: x.flatten(-2, -1)),
    "reshape_then_transpose": (lambda x: x.reshape(6, 4).T * 2, lambda x: x.reshape(6, 4).T * 2),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(RESHAPES))
def test_rearrangement_matches_torch(name, dtype):
    ours, theirs = RESHAPES[name]
    compare_with_torch(ours, theirs, [normal(2, 3, 4)], dtype=dtype)


def test_flatten_of_a_0d_tensor_gives_one_element():
    x = minicnn.tensor(3.0, requires_grad=True)
    y = x.flatten()
    assert y.shape == (1,)
    y.sum().backward()
    assert x.grad.shape == () and x.grad.item() == 1.0


def test_reshape_and_transpose_share_no_state_between_calls():
    x = minicnn.tensor(normal(2, 3), requires_grad=True)
    (x.reshape(3, 2) * minicnn.tensor(normal(3, 2, seed=1))).sum().backward()
    (x.T * minicnn.tensor(normal(3, 2, seed=2))).sum().backward()
    expected = normal(3, 2, seed=1).reshape(2, 3) + normal(3, 2, seed=2).T
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


# --- indexing ----------------------------------------------------------------------------
def index_cases(torch):
    mask = normal(3, 4, 5, seed=3) > 0
    row_mask = np.array([True, False, True])
    return {
        "int": (1, 1),
        "negative_int": (-1, -1),
        "int_pair": ((0, 2), (0, 2)),
        "slice": (slice(1, None), slice(1, None)),
        "slice_step": ((slice(None), slice(None, None, 2)), (slice(None), slice(None, None, 2))),
        "negative_slice": ((slice(None), slice(-3, -1)), (slice(None), slice(-3, -1))),
        "none": ((None, slice(None)), (None, slice(None))),
        "ellipsis": ((Ellipsis, 0), (Ellipsis, 0)),
        "ellipsis_none": ((0, Ellipsis, None), (0, Ellipsis, None)),
        "int_array_repeats": ([0, 0, 2, 0], torch.tensor([0, 0, 2, 0])),
        "int_array_second_axis": ((slice(None), [1, 1, 3]), (slice(None), torch.tensor([1, 1, 3]))),
        "int_arrays_paired": (([0, 2, 2], [1, 1, 1]), (torch.tensor([0, 2, 2]), torch.tensor([1, 1, 1]))),
        "numpy_int_array": (np.array([2, 2]), torch.tensor([2, 2])),
        "bool_mask_full": (mask, torch.tensor(mask)),
        "bool_mask_rows": (row_mask, torch.tensor(row_mask)),
        "tensor_mask": (minicnn.tensor(mask), torch.tensor(mask)),
        "tensor_int_index": (minicnn.tensor(np.array([1, 1, 0])), torch.tensor([1, 1, 0])),
        "mixed": ((slice(None), 1, slice(None, 3)), (slice(None), 1, slice(None, 3))),
    }


INDEX_NAMES = ["int", "negative_int", "int_pair", "slice", "slice_step", "negative_slice", "none", "ellipsis",
               "ellipsis_none", "int_array_repeats", "int_array_second_axis", "int_arrays_paired",
               "numpy_int_array", "bool_mask_full", "bool_mask_rows", "tensor_mask", "tensor_int_index",
               "mixed"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", INDEX_NAMES)
def test_indexing_matches_torch(name, dtype):
    torch = require_torch()
    ours, theirs = index_cases(torch)[name]
    compare_with_torch(lambda x: x[ours], lambda x: x[theirs], [normal(3, 4, 5)], dtype=dtype)


def test_an_index_picked_twice_gets_the_gradient_twice():
    x = minicnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 0, 2]].sum().backward()
    assert x.grad.numpy().tolist() == [3.0, 0.0, 1.0]


def test_a_boolean_mask_selects_and_routes_gradient_to_the_selected():
    x = minicnn.tensor([[1.0, -2.0], [-3.0, 4.0]], requires_grad=True)
    positives = x[x > 0]
    assert positives.numpy().tolist() == [1.0, 4.0]
    (positives * minicnn.tensor([10.0, 20.0])).sum().backward()
    assert x.grad.numpy().tolist() == [[10.0, 0.0], [0.0, 20.0]]


def test_indexing_a_tensor_is_iterable_row_by_row():
    x = minicnn.tensor(normal(3, 2))
    rows = list(x)
    assert len(rows) == 3 and all(isinstance(row, Tensor) and row.shape == (2,) for row in rows)


# --- cat -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_cat_matches_torch(dim, dtype):
    torch = require_torch()
    shapes = {0: [(1, 3, 4), (2, 3, 4), (3, 3, 4)], 1: [(2, 1, 4), (2, 3, 4), (2, 2, 4)],
              2: [(2, 3, 1), (2, 3, 4), (2, 3, 2)]}[dim % 3]
    inputs = [normal(*shape, seed=i) for i, shape in enumerate(shapes)]
    compare_with_torch(lambda *xs: cat(xs, dim=dim), lambda *xs: torch.cat(xs, dim=dim), inputs, dtype=dtype)


def test_cat_gives_gradient_only_to_inputs_that_want_it():
    a, b = minicnn.tensor([1.0, 2.0], requires_grad=True), minicnn.tensor([3.0])
    joined = cat([a, b])
    assert joined.numpy().tolist() == [1.0, 2.0, 3.0]
    (joined * minicnn.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert a.grad.numpy().tolist() == [1.0, 2.0] and b.grad is None


# --- bad input -------------------------------------------------------------------------------
def test_reshape_to_an_impossible_shape_is_a_value_error():
    expected = r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)"
    with pytest.raises(ValueError, match=expected):
        minicnn.zeros(2, 3).reshape(4, 2)
    expected = r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, -1\)"
    with pytest.raises(ValueError, match=expected):
        minicnn.zeros(2, 3).reshape(4, -1)


def test_reshape_with_two_unknown_or_negative_sizes_is_a_value_error():
    with pytest.raises(ValueError, match=r"reshape: invalid shape \(-1, -1\)"):
        minicnn.zeros(2, 3).reshape(-1, -1)
    with pytest.raises(ValueError, match=r"reshape: invalid shape \(-2, -3\)"):
        minicnn.zeros(2, 3).reshape(-2, -3)


@pytest.mark.parametrize("axes", [(0, 0, 1), (0, 1), (0, 1, 3), (0, 1, -4), (0, 1, 2, 3)])
def test_permute_with_a_bad_axis_list_is_a_value_error(axes):
    expected = r"permute: \(.*\) is not a permutation of the 3 axes of a tensor of shape \(2, 3, 4\)"
    with pytest.raises(ValueError, match=expected):
        minicnn.zeros(2, 3, 4).permute(*axes)


def test_transpose_with_an_out_of_range_axis_is_a_value_error():
    with pytest.raises(ValueError, match=r"transpose: axis 2 is out of range for a tensor with 2 dimensions"):
        minicnn.zeros(2, 3).transpose(0, 2)


def test_transpose_with_only_one_axis_is_a_value_error():
    with pytest.raises(ValueError, match=r"transpose: give both dim0 and dim1 or neither, got 0 and None"):
        minicnn.zeros(2, 3).transpose(0)


def test_flatten_with_bad_dims_is_a_value_error():
    with pytest.raises(ValueError, match=r"flatten: dim 5 is out of range for a tensor with 3 dimensions"):
        minicnn.zeros(2, 3, 4).flatten(5)
    with pytest.raises(ValueError, match=r"flatten: start_dim 2 comes after end_dim 1 for shape \(2, 3, 4\)"):
        minicnn.zeros(2, 3, 4).flatten(2, 1)


def test_cat_with_mismatched_shapes_is_a_value_error():
    expected = r"cat: tensor 1 has shape \(2, 4\) but tensor 0 has shape \(2, 3\); only dim 0 may differ"
    with pytest.raises(ValueError, match=expected):
        cat([minicnn.zeros(2, 3), minicnn.zeros(2, 4)])
    expected = r"cat: tensor 2 has shape \(2, 3, 1\) but tensor 0 has shape \(2, 3\)"
    with pytest.raises(ValueError, match=expected):
        cat([minicnn.zeros(2, 3), minicnn.zeros(1, 3), minicnn.zeros(2, 3, 1)])


def test_cat_of_nothing_or_along_a_missing_dim_is_a_value_error():
    with pytest.raises(ValueError, match=r"cat: expected a non-empty sequence of tensors"):
        cat([])
    with pytest.raises(ValueError, match=r"cat: dim 2 is out of range for tensors with 2 dimensions"):
        cat([minicnn.zeros(2, 3), minicnn.zeros(2, 3)], dim=2)
