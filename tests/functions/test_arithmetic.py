"""+ - * / ** @, unary minus, reflected forms, broadcasting and comparisons, checked against PyTorch."""
import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes
from oracle import compare_with_torch, require_torch

import minicnn
from minicnn import Tensor
from minicnn.functions import add, div, matmul, mul, sub
from minicnn.functions.arithmetic import sum_to

DTYPES = [np.float32, np.float64]


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def away_from_zero(*shape, seed=0):
    """Values in ±[0.5, 2]: safe divisors, safe bases for fractional powers after abs."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)


def positive(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, size=shape)


# name: (minicnn fn, torch fn, inputs)
BINARY_CASES = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, [normal(3, 4), normal(3, 4, seed=1)]),
    "add_broadcast": (lambda a, b: a + b, lambda a, b: a + b, [normal(3, 1, 5), normal(4, 1, seed=1)]),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [normal(2, 3), normal(3, seed=1)]),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [normal(2, 3, 4), normal(1, 3, 1, seed=1)]),
    "mul_same_tensor": (lambda a: a * a, lambda a: a * a, [normal(5)]),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [normal(4, 3), away_from_zero(3, seed=1)]),
    "pow_tensors": (lambda a, b: a**b, lambda a, b: a**b, [positive(3, 4), normal(4, seed=1)]),
    "neg": (lambda a: -a, lambda a: -a, [normal(3, 2)]),
    "pos": (lambda a: +a * 1, lambda a: +a * 1, [normal(3)]),
    "pow_2": (lambda a: a**2, lambda a: a**2, [normal(3, 4)]),
    "pow_3_int": (lambda a: a**3, lambda a: a**3, [normal(6)]),
    "pow_half": (lambda a: a**0.5, lambda a: a**0.5, [positive(3, 4)]),
    "pow_negative": (lambda a: a**-1.5, lambda a: a**-1.5, [positive(5)]),
    "pow_numpy_scalar": (lambda a: a ** np.float64(2.0), lambda a: a**2.0, [normal(4)]),
    "matmul_2d": (lambda a, b: a @ b, lambda a, b: a @ b, [normal(3, 4), normal(4, 5, seed=1)]),
    "matmul_vec_mat": (lambda a, b: a @ b, lambda a, b: a @ b, [normal(4), normal(4, 5, seed=1)]),
    "matmul_mat_vec": (lambda a, b: a @ b, lambda a, b: a @ b, [normal(3, 4), normal(4, seed=1)]),
    "matmul_vec_vec": (lambda a, b: a @ b, lambda a, b: a @ b, [normal(4), normal(4, seed=1)]),
    "matmul_batched": (lambda a, b: a @ b, lambda a, b: a @ b, [normal(2, 3, 4), normal(4, 5, seed=1)]),
    "matmul_batch_broadcast": (lambda a, b: a @ b, lambda a, b: a @ b,
                               [normal(2, 1, 3, 4), normal(5, 4, 2, seed=1)]),
    "matmul_vec_batch": (lambda a, b: a @ b, lambda a, b: a @ b, [normal(4), normal(2, 4, 3, seed=1)]),
    "matmul_function": (matmul, lambda a, b: a @ b, [normal(2, 3), normal(3, 2, seed=1)]),
}

# Python numbers on either side of every operator.
SCALAR_CASES = {
    "x + 2": (lambda x: x + 2, normal(3, 2)),
    "2 + x": (lambda x: 2 + x, normal(3, 2)),
    "x - 0.5": (lambda x: x - 0.5, normal(3, 2)),
    "0.5 - x": (lambda x: 0.5 - x, normal(3, 2)),
    "x * 0.5": (lambda x: x * 0.5, normal(3, 2)),
    "3 * x": (lambda x: 3 * x, normal(3, 2)),
    "x / 3": (lambda x: x / 3, normal(3, 2)),
    "2.5 / x": (lambda x: 2.5 / x, away_from_zero(3, 2)),
    "x ** 2": (lambda x: x**2, normal(3, 2)),
    "2 ** x": (lambda x: 2**x, normal(3, 2)),
    "1.5 ** x": (lambda x: 1.5**x, normal(3, 2)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(BINARY_CASES))
def test_operator_matches_torch(name, dtype):
    ours, theirs, inputs = BINARY_CASES[name]
    compare_with_torch(ours, theirs, inputs, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(SCALAR_CASES))
def test_operator_with_a_python_number_matches_torch(name, dtype):
    expression, x = SCALAR_CASES[name]
    compare_with_torch(expression, expression, [x], dtype=dtype)


@pytest.mark.cpu_only("a NumPy array operand lives on the CPU; mixing it with a GPU tensor is refused")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow])
def test_reflected_operator_with_a_numpy_array_matches_torch(op, dtype):
    torch = require_torch()
    constant = positive(3, 4, seed=7).astype(dtype)
    x = positive(4)
    # ndarray on the left: NumPy must hand the operation to Tensor's reflected method.
    compare_with_torch(lambda t: op(constant, t), lambda t: op(torch.tensor(constant), t), [x], dtype=dtype)
    compare_with_torch(lambda t: op(t, constant), lambda t: op(t, torch.tensor(constant)), [x], dtype=dtype)
    assert isinstance(op(constant, minicnn.tensor(x.astype(dtype))), Tensor)


@pytest.mark.cpu_only("a NumPy array operand lives on the CPU; mixing it with a GPU tensor is refused")
def test_reflected_matmul_with_a_numpy_array_matches_torch():
    torch = require_torch()
    weight = normal(5, 3, seed=3).astype(np.float32)
    compare_with_torch(lambda t: weight @ t, lambda t: torch.tensor(weight) @ t, [normal(3, 2)])


def test_numpy_scalars_on_the_left_give_tensors():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = np.float32(3.0) * x + np.float64(1.0)
    assert isinstance(y, Tensor) and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.numpy().tolist() == [3.0, 3.0]


# --- broadcasting ----------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=4),
       which=st.sampled_from(["add", "sub", "mul", "div", "pow"]), seed=st.integers(0, 2**16))
def test_broadcast_gradients_reduce_to_each_operand_shape(shapes, which, seed):
    a_shape, b_shape = shapes.input_shapes
    op = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
          "div": operator.truediv, "pow": operator.pow}[which]
    a = positive(*a_shape, seed=seed) if which == "pow" else normal(*a_shape, seed=seed)
    b = away_from_zero(*b_shape, seed=seed + 1)
    compare_with_torch(op, op, [a, b], dtype=np.float64)
    ours = [minicnn.tensor(a, requires_grad=True), minicnn.tensor(b, requires_grad=True)]
    out = op(*ours)
    assert out.shape == shapes.result_shape
    out.backward(minicnn.ones_like(out))
    assert ours[0].grad.shape == a_shape and ours[1].grad.shape == b_shape


def test_sum_to_adds_over_broadcast_axes():
    grad = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(sum_to(grad, (3, 1)), grad.sum(axis=(0, 2)).reshape(3, 1))
    np.testing.assert_array_equal(sum_to(grad, (4,)), grad.sum(axis=(0, 1)))
    np.testing.assert_array_equal(sum_to(grad, ()), grad.sum())
    assert sum_to(grad, (2, 3, 4)) is grad


# --- dtypes --------------------------------------------------------------------------
@pytest.mark.parametrize("expression", [
    pytest.param(lambda x: x * np.arange(3), marks=pytest.mark.cpu_only("a NumPy operand lives on the CPU")),
    pytest.param(lambda x: np.arange(3) * x, marks=pytest.mark.cpu_only("a NumPy operand lives on the CPU")),
    lambda x: x + [1, 2, 3], lambda x: x * minicnn.arange(3),
    lambda x: x / minicnn.tensor([1, 2, 3]), lambda x: x ** minicnn.tensor([1, 2, 3]), lambda x: x * True,
])
def test_an_integer_operand_takes_the_float_dtype(expression):
    x = minicnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = expression(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_integer_tensors_with_python_floats_give_float32():
    assert (minicnn.arange(3) * 0.5).dtype == np.float32
    assert (minicnn.arange(3) * 0.5).numpy().tolist() == [0.0, 0.5, 1.0]
    assert (minicnn.arange(3) + 1).dtype == np.int64
    assert (minicnn.arange(3) / 2).dtype == np.float32  # true division, as in PyTorch
    assert (minicnn.arange(3) / 2).numpy().tolist() == [0.0, 0.5, 1.0]


def test_a_float64_operand_promotes_like_in_pytorch():
    x = minicnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * minicnn.tensor(np.array([1.0, 2.0]))  # a float64 array makes a float64 tensor
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_zero_power_has_zero_gradient_even_at_zero():
    x = minicnn.tensor([0.0, 2.0], requires_grad=True)
    (x**0).sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.0]


def test_power_of_zero_base_with_tensor_exponent_has_finite_gradient():
    torch = require_torch()
    base, exponent = minicnn.tensor([0.0, 2.0], requires_grad=True), minicnn.tensor([2.0, 3.0], requires_grad=True)
    (base**exponent).sum().backward()
    tb, te = torch.tensor([0.0, 2.0], requires_grad=True), torch.tensor([2.0, 3.0], requires_grad=True)
    (tb**te).sum().backward()
    np.testing.assert_allclose(base.grad.numpy(), tb.grad.numpy())
    np.testing.assert_allclose(exponent.grad.numpy(), te.grad.numpy(), rtol=1e-6)


# --- comparisons ----------------------------------------------------------------------------
COMPARISONS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]


@pytest.mark.parametrize("op", COMPARISONS)
def test_comparisons_give_bool_tensors_without_grad(op):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    b = np.array([2.0, 2.0, 2.0], dtype=np.float32)
    x = minicnn.tensor(a, requires_grad=True)
    for result, expected in [(op(x, minicnn.tensor(b)), op(a, b)), (op(x, 2.0), op(a, 2.0)), (op(x, 2), op(a, 2)),
                             (op(minicnn.tensor(b), x), op(b, a))]:
        assert isinstance(result, Tensor)
        assert result.dtype == np.bool_ and result.requires_grad is False and result.creator is None
        np.testing.assert_array_equal(result.numpy(), expected)


@pytest.mark.cpu_only("a NumPy array operand lives on the CPU; mixing it with a GPU tensor is refused")
@pytest.mark.parametrize("op", COMPARISONS)
def test_comparisons_with_a_numpy_array_on_the_left_give_bool_tensors(op):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    b = np.array([2.0, 2.0, 2.0], dtype=np.float32)
    result = op(b, minicnn.tensor(a, requires_grad=True))  # NumPy hands it to Tensor's reflected comparison
    assert isinstance(result, Tensor) and result.dtype == np.bool_ and result.creator is None
    np.testing.assert_array_equal(result.numpy(), op(b, a))


def test_comparison_with_unbroadcastable_shapes_is_a_value_error():
    with pytest.raises(ValueError, match=r"lt: shapes \(2, 3\) and \(4,\) cannot be broadcast together"):
        _ = minicnn.zeros(2, 3) < minicnn.zeros(4)


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, op", [("add", add), ("sub", sub), ("mul", mul), ("div", div)])
def test_binary_op_with_unbroadcastable_shapes_names_op_and_shapes(name, op):
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) cannot be broadcast together"):
        op(minicnn.zeros(2, 3), minicnn.zeros(4))


def test_operator_syntax_reports_the_op_name():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast together"):
        minicnn.zeros(2, 3) + minicnn.zeros(4)
    with pytest.raises(ValueError, match=r"mul: shapes \(4,\) and \(2, 3\) cannot be broadcast together"):
        np.zeros(4, dtype=np.float32) * minicnn.zeros(2, 3)


def test_matmul_with_mismatched_inner_dimensions_is_a_value_error():
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ, \(2, 3\) @ \(4, 2\) \(3 != 4\)"):
        minicnn.zeros(2, 3) @ minicnn.zeros(4, 2)
    with pytest.raises(ValueError, match=r"matmul: inner dimensions differ, \(3,\) @ \(4,\) \(3 != 4\)"):
        minicnn.zeros(3) @ minicnn.zeros(4)


def test_matmul_with_unbroadcastable_batch_dimensions_is_a_value_error():
    expected = r"matmul: batch dimensions \(2,\) and \(5,\) cannot be broadcast together"
    with pytest.raises(ValueError, match=expected):
        minicnn.zeros(2, 3, 4) @ minicnn.zeros(5, 4, 6)


def test_matmul_of_a_0d_tensor_is_a_value_error():
    expected = r"matmul: both operands need at least one dimension, got shapes \(\) and \(3,\)"
    with pytest.raises(ValueError, match=expected):
        matmul(minicnn.tensor(2.0), minicnn.zeros(3))


def test_binary_op_without_any_tensor_is_a_type_error():
    with pytest.raises(TypeError, match=r"add: expected at least one Tensor, got int and float"):
        add(1, 2.0)
