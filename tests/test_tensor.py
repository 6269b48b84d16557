"""Tensor as a container: construction, dtypes, factories, the seed, and conversions out."""
import numpy as np
import pytest

import minicnn


# --- construction and the float32 default ---------------------------------------
def test_python_floats_and_lists_become_float32():
    assert minicnn.Tensor(2.5).dtype == np.float32
    assert minicnn.Tensor([1.0, 2.0]).dtype == np.float32
    assert minicnn.Tensor([[1, 2.5], [3, 4]]).dtype == np.float32
    assert minicnn.tensor([0.5]).dtype == np.float32
    assert minicnn.DEFAULT_DTYPE == np.float32


def test_python_ints_stay_integers_and_bools_stay_bool():
    assert minicnn.Tensor([1, 2, 3]).dtype == np.int64
    assert minicnn.Tensor([True, False]).dtype == np.bool_


def test_arrays_keep_their_dtype_so_float64_is_allowed():
    assert minicnn.Tensor(np.zeros(3, dtype=np.float64)).dtype == np.float64
    assert minicnn.Tensor(np.zeros(3, dtype=np.float32)).dtype == np.float32
    assert minicnn.Tensor([1.0, 2.0], dtype=np.float64).dtype == np.float64
    x = minicnn.Tensor(np.ones(2), requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.dtype == np.float64


def test_a_python_float_asked_for_as_float64_keeps_full_precision():
    # 0.1 must not pass through float32 (0.100000001490...) on its way to float64.
    assert minicnn.Tensor(0.1, dtype=np.float64).item() == 0.1
    assert minicnn.tensor([0.1, 1 / 3], dtype=np.float64).numpy().tolist() == [0.1, 1 / 3]


def test_tensor_constructor_shares_an_array_but_tensor_function_copies_it():
    array = np.arange(3, dtype=np.float32)
    shared = minicnn.Tensor(array)
    copied = minicnn.tensor(array)
    array[0] = 42.0
    assert shared.numpy()[0] == 42.0
    assert copied.numpy()[0] == 0.0
    assert copied.numpy() is not array


def test_tensor_function_copies_a_tensor_and_leaves_its_graph():
    source = minicnn.Tensor([1.0, 2.0], requires_grad=True)
    copy = minicnn.tensor(source)
    source.data[0] = 7.0
    assert copy.numpy().tolist() == [1.0, 2.0]
    assert copy.requires_grad is False and copy.is_leaf
    assert minicnn.tensor(source, requires_grad=True).requires_grad


def test_requires_grad_on_an_integer_tensor_is_a_type_error():
    expected = r"Tensor: only floating-point tensors can require gradients, got dtype int64"
    with pytest.raises(TypeError, match=expected):
        minicnn.Tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match=r"requires_grad_: dtype int64 cannot require gradients"):
        minicnn.Tensor([1, 2]).requires_grad_()
    with pytest.raises(TypeError, match=r"only floating-point"):
        minicnn.tensor([1, 2], requires_grad=True)


def test_requires_grad_underscore_switches_a_float_tensor_on_and_returns_it():
    x = minicnn.Tensor([1.0])
    assert x.requires_grad_() is x and x.requires_grad
    assert x.requires_grad_(False).requires_grad is False


# --- properties and conversions -------------------------------------------------
def test_shape_dtype_ndim_size_and_len():
    x = minicnn.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4)
    assert x.dtype == np.float32
    assert x.ndim == 3
    assert x.size == 24 and x.numel() == 24
    assert len(x) == 2
    assert minicnn.Tensor(3.0).ndim == 0 and minicnn.Tensor(3.0).shape == ()


def test_numpy_returns_the_data_and_item_a_python_number():
    x = minicnn.Tensor([[1.5]])
    assert isinstance(x.numpy(), np.ndarray)
    np.testing.assert_array_equal(x.numpy(), [[1.5]])
    assert x.item() == 1.5 and type(x.item()) is float
    assert type(minicnn.Tensor(np.array([7])).item()) is int
    assert minicnn.Tensor([[1.0, 2.0]]).tolist() == [[1.0, 2.0]]


def test_item_on_a_tensor_with_several_elements_is_a_value_error():
    expected = r"item: only a one-element tensor converts to a Python number, got shape \(2, 3\)"
    with pytest.raises(ValueError, match=expected):
        minicnn.zeros(2, 3).item()


def test_truth_value_of_one_element_tensors_follows_the_value():
    assert not minicnn.Tensor([0.0])
    assert minicnn.Tensor(2.0)
    assert bool(minicnn.Tensor([1.0]) > 0.5) is True
    assert bool(minicnn.Tensor([1.0]) > 1.5) is False


def test_truth_value_of_a_tensor_with_several_elements_is_ambiguous():
    with pytest.raises(ValueError, match=r"bool: the truth value of a tensor with shape \(2,\) is ambiguous"):
        bool(minicnn.zeros(2))


def test_detach_shares_data_and_leaves_the_graph():
    x = minicnn.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    detached = y.detach()
    assert detached.requires_grad is False and detached.is_leaf
    assert detached.data is y.data
    np.testing.assert_array_equal(detached.numpy(), [2.0, 4.0])


def test_astype_converts_and_keeps_requires_grad():
    x = minicnn.Tensor([1.0, 2.0], requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64 and y.requires_grad and y.is_leaf


def test_repr_shows_values_dtype_and_requires_grad():
    assert repr(minicnn.Tensor([1.0, 2.0])) == "Tensor([1. 2.])"
    assert "requires_grad=True" in repr(minicnn.Tensor([1.0], requires_grad=True))
    assert "dtype=float64" in repr(minicnn.Tensor(np.ones(1)))


def test_tensors_hash_by_identity():
    a, b = minicnn.Tensor([1.0]), minicnn.Tensor([1.0])
    assert len({a, b, a}) == 2


# --- factories ---------------------------------------------------------------------
@pytest.mark.parametrize("factory, value", [(minicnn.zeros, 0.0), (minicnn.ones, 1.0)])
def test_zeros_and_ones_take_sizes_or_a_tuple(factory, value):
    for made in (factory(2, 3), factory((2, 3)), factory([2, 3])):
        assert made.shape == (2, 3) and made.dtype == np.float32
        assert np.all(made.numpy() == value)
    assert factory(2, dtype=np.float64).dtype == np.float64
    assert factory(3, requires_grad=True).requires_grad
    assert factory().shape == ()


def test_full_fills_with_the_value_in_float32():
    x = minicnn.full((2, 2), 1.5)
    assert x.dtype == np.float32 and np.all(x.numpy() == 1.5) and x.shape == (2, 2)
    assert minicnn.full(3, 2.0).shape == (3,)
    assert minicnn.full((2,), 7, dtype=np.int64).dtype == np.int64


def test_like_factories_follow_shape_and_dtype():
    source = minicnn.Tensor(np.ones((2, 5), dtype=np.float64))
    assert minicnn.zeros_like(source).shape == (2, 5)
    assert minicnn.zeros_like(source).dtype == np.float64
    assert np.all(minicnn.ones_like(source).numpy() == 1.0)
    assert minicnn.ones_like(source, dtype=np.float32).dtype == np.float32
    assert minicnn.zeros_like(minicnn.zeros(3), dtype=np.dtype("float64")).dtype == np.float64
    assert minicnn.zeros_like(source, requires_grad=True).requires_grad


def test_randn_and_rand_have_the_right_shape_dtype_and_range():
    minicnn.manual_seed(0)
    normal = minicnn.randn(200, 50)
    uniform = minicnn.rand(200, 50)
    assert normal.shape == (200, 50) and normal.dtype == np.float32
    assert uniform.dtype == np.float32
    assert abs(normal.numpy().mean()) < 0.05 and abs(normal.numpy().std() - 1) < 0.05
    assert uniform.numpy().min() >= 0.0 and uniform.numpy().max() < 1.0
    assert abs(uniform.numpy().mean() - 0.5) < 0.02
    assert minicnn.randn(3, dtype=np.float64).dtype == np.float64
    assert minicnn.randn((2, 2), requires_grad=True).requires_grad


def test_arange_gives_int64_for_integers_and_float32_for_floats():
    assert minicnn.arange(5).numpy().tolist() == [0, 1, 2, 3, 4]
    assert minicnn.arange(5).dtype == np.int64
    assert minicnn.arange(2, 8, 3).numpy().tolist() == [2, 5]
    assert minicnn.arange(5, 0, -2).numpy().tolist() == [5, 3, 1]
    halves = minicnn.arange(0, 2, 0.5)
    assert halves.dtype == np.float32 and halves.numpy().tolist() == [0.0, 0.5, 1.0, 1.5]
    assert minicnn.arange(3, dtype=np.float64).dtype == np.float64


def test_arange_with_zero_step_is_a_value_error():
    with pytest.raises(ValueError, match=r"arange: step must not be zero"):
        minicnn.arange(0, 5, 0)


@pytest.mark.parametrize("factory", [minicnn.zeros, minicnn.ones, minicnn.randn, minicnn.rand])
def test_factories_reject_negative_or_fractional_sizes(factory):
    name = factory.__name__
    with pytest.raises(ValueError, match=rf"{name}: sizes must be non-negative integers, got \(2, -1\)"):
        factory(2, -1)
    with pytest.raises(ValueError, match=rf"{name}: sizes must be non-negative integers"):
        factory(2.5)


# --- the seed ----------------------------------------------------------------------
def test_manual_seed_makes_randn_and_rand_reproducible():
    minicnn.manual_seed(1234)
    first = minicnn.randn(4, 5).numpy().copy(), minicnn.rand(3).numpy().copy()
    minicnn.manual_seed(1234)
    second = minicnn.randn(4, 5).numpy(), minicnn.rand(3).numpy()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert minicnn.initial_seed() == 1234


def test_different_seeds_and_successive_draws_differ():
    minicnn.manual_seed(1)
    a, b = minicnn.randn(10).numpy(), minicnn.randn(10).numpy()
    minicnn.manual_seed(2)
    c = minicnn.randn(10).numpy()
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_rng_state_round_trip_continues_the_stream():
    minicnn.manual_seed(5)
    minicnn.randn(3)
    state = minicnn.get_rng_state()
    expected = minicnn.randn(4).numpy().copy()
    minicnn.manual_seed(99)
    minicnn.set_rng_state(state)
    np.testing.assert_array_equal(minicnn.randn(4).numpy(), expected)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True, None])
def test_manual_seed_rejects_negative_and_non_integer_seeds(seed):
    expected = r"manual_seed: expected a non-negative integer, got " + repr(seed).replace(".", r"\.")
    with pytest.raises(ValueError, match=expected):
        minicnn.manual_seed(seed)
