"""gradcheck itself, then every op's backward against finite differences over hypothesis-drawn shapes."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import minicnn
from minicnn import Function, GradcheckError, gradcheck, gradcheck_directional
from minicnn.functions import cat

FEW = settings(max_examples=25, deadline=None)
SHAPES = array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4)
SEEDS = st.integers(0, 2**16)


def normal(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def positive(shape, seed):
    return np.random.default_rng(seed).uniform(0.5, 2.0, size=shape)


def away_from_zero(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 2.0, size=shape)


def distinct(shape, seed):
    """No ties and gaps of 0.25 ≫ eps, so max has one well-defined derivative."""
    size = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(size).reshape(shape) * 0.25


class SquareWithHalfGradient(Function):
    """x² whose backward forgets the factor 2: analytic is exactly half of numeric."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return gy * self.x


class SquareWrongAtOneElement(Function):
    """x² with a correct backward except at one element, where it is tripled."""

    def __init__(self, wrong_index):
        self.wrong_index = wrong_index

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        grad = 2 * gy * self.x
        grad[self.wrong_index] *= 3
        return grad


class ScaleWithNanGradient(Function):
    """2x whose backward is nan at the last element only."""

    def forward(self, x):
        return 2 * x

    def backward(self, gy):
        grad = 2 * gy
        grad.reshape(-1)[-1] = np.nan
        return grad


# --- gradcheck itself -----------------------------------------------------------------
def test_gradcheck_passes_a_correct_op():
    assert gradcheck(lambda x: (x * x).sum(), [np.array([1.0, 2.0])]) is True
    assert gradcheck(lambda a, b: a @ b, [normal((3, 4), 0), normal((4, 2), 1)]) is True


def test_gradcheck_works_in_float64_whatever_the_input_dtype():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return x.exp()

    gradcheck(fn, [minicnn.randn(3)])
    assert seen and all(dtype == np.float64 for dtype in seen)


def test_gradcheck_names_input_index_analytic_numeric_and_relative_error():
    x = np.array([[1.0, -2.0, 0.5], [3.0, 1.5, -1.0]])
    with pytest.raises(GradcheckError) as caught:
        gradcheck(lambda t: SquareWithHalfGradient()(t), [x])
    message = str(caught.value)
    match = re.fullmatch(r"gradcheck: input 0 at index \((\d+), (\d+)\): analytic (\S+), numeric (\S+), "
                         r"relative error (\S+) \(atol=1e-05, rtol=0\.0001\)", message)
    assert match, message
    analytic, numeric, relative = (float(match.group(i)) for i in (3, 4, 5))
    np.testing.assert_allclose(analytic, numeric / 2, rtol=1e-5)
    np.testing.assert_allclose(relative, 0.5, rtol=1e-5)


def test_gradcheck_points_at_the_one_wrong_element():
    expected = r"gradcheck: input 0 at index \(1, 2\): analytic .* relative error 2"
    with pytest.raises(GradcheckError, match=expected):
        gradcheck(lambda t: SquareWrongAtOneElement((1, 2))(t), [positive((3, 4), 0)])


def test_gradcheck_names_the_second_input_when_its_gradient_is_wrong():
    def fn(a, b):
        return a * SquareWithHalfGradient()(b)

    with pytest.raises(GradcheckError, match=r"gradcheck: input 1 at index \(\d+,\)"):
        gradcheck(fn, [positive(3, 0), positive(3, 1)])


def test_gradcheck_catches_a_nan_gradient_anywhere():
    with pytest.raises(GradcheckError, match=r"input 0 at index \(2, 3\): analytic nan"):
        gradcheck(lambda t: ScaleWithNanGradient()(t), [normal((3, 4), 0)])


def test_gradcheck_can_return_false_instead_of_raising():
    assert gradcheck(lambda t: SquareWithHalfGradient()(t), [normal(3, 0)], raise_exception=False) is False


def test_gradcheck_accepts_an_input_the_output_ignores():
    assert gradcheck(lambda a, b: a * 2, [normal(3, 0), normal(2, 1)])


def test_gradcheck_directional_passes_a_correct_op_on_a_big_input():
    x, weight = normal((200, 300), 0), normal((300, 8), 1)
    assert gradcheck_directional(lambda a, w: ((a @ w).exp() * 0.1).sum(axis=0), [x, weight]) is True


def test_gradcheck_directional_catches_a_wrong_backward_on_a_big_input():
    expected = r"gradcheck_directional: analytic (\S+), numeric (\S+), relative error 0\.5"
    with pytest.raises(GradcheckError, match=expected):
        gradcheck_directional(lambda t: SquareWithHalfGradient()(t), [normal((200, 300), 0)])


def test_gradcheck_directional_catches_a_single_wrong_element():
    # One element out of 60 000 wrong still moves the directional derivative past tolerance.
    with pytest.raises(GradcheckError, match=r"gradcheck_directional: analytic"):
        gradcheck_directional(lambda t: SquareWrongAtOneElement((7, 11))(t), [positive((200, 300), 0) * 50])


# --- every op over drawn shapes ------------------------------------------------------------
UNARY = {
    "neg": (lambda x: -x, normal),
    "exp": (lambda x: x.exp(), normal),
    "log": (lambda x: x.log(), positive),
    "sqrt": (lambda x: x.sqrt(), positive),
    "abs": (lambda x: x.abs(), away_from_zero),
    "clip": (lambda x: x.clip(-0.25, 0.25), lambda shape, seed: away_from_zero(shape, seed) * 0.2 + 0.025),
    "pow_2": (lambda x: x**2, normal),
    "pow_half": (lambda x: x**0.5, positive),
    "pow_negative": (lambda x: x**-1.5, positive),
    "two_to_the_x": (lambda x: 2**x, normal),
    "x_to_the_x": (lambda x: x**x, positive),
    "scalar_mul_div": (lambda x: 0.5 * x / 3 - 1, normal),
    "scalar_over_x": (lambda x: 3 / x, away_from_zero),
    "reshape_flat": (lambda x: x.reshape(-1), normal),
    "transpose_all": (lambda x: x.T, normal),
    "flatten": (lambda x: x.flatten(), normal),
    "square_via_mul": (lambda x: x * x, normal),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@FEW
@given(shape=SHAPES, seed=SEEDS)
def test_gradcheck_unary_ops(name, shape, seed):
    op, values = UNARY[name]
    assert gradcheck(op, [values(shape, seed)])


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@FEW
@given(shape=SHAPES, seed=SEEDS, data=st.data())
def test_gradcheck_reductions(name, shape, seed, data):
    ndim = len(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-max(ndim, 1), max(ndim, 1) - 1),
                               st.lists(st.integers(0, max(ndim - 1, 0)), unique=True, max_size=ndim)
                               .map(tuple)))
    keepdims = data.draw(st.booleans())
    x = distinct(shape, seed) if name == "max" else normal(shape, seed)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x])


@FEW
@given(shape=SHAPES.filter(lambda s: len(s) >= 1), seed=SEEDS, data=st.data())
def test_gradcheck_shape_ops(shape, seed, data):
    ndim = len(shape)
    order = tuple(data.draw(st.permutations(range(ndim))))
    start = data.draw(st.integers(0, ndim - 1))
    end = data.draw(st.integers(start, ndim - 1))
    dim0, dim1 = data.draw(st.integers(-ndim, ndim - 1)), data.draw(st.integers(-ndim, ndim - 1))
    ops = [
        lambda t: t.reshape(tuple(reversed(shape))),
        lambda t: t.permute(order),
        lambda t: t.transpose(dim0, dim1),
        lambda t: t.flatten(start, end),
    ]
    x = normal(shape, seed)
    for op in ops:
        assert gradcheck(op, [x])


@FEW
@given(shape=SHAPES.filter(lambda s: len(s) >= 1), seed=SEEDS, data=st.data())
def test_gradcheck_indexing(shape, seed, data):
    # Repeats allowed: a row picked twice must get its gradient twice.
    picks = data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6))
    row = data.draw(st.integers(-shape[0], shape[0] - 1))
    start = data.draw(st.integers(0, shape[0] - 1))
    x = normal(shape, seed)
    mask = normal(shape, seed + 1) > 0
    last = shape[-1] - 1
    for index in (picks, row, slice(start, None), (None, Ellipsis), mask, (Ellipsis, [last, 0, last])):
        assert gradcheck(lambda t, index=index: t[index], [x])


@FEW
@given(shape=SHAPES.filter(lambda s: len(s) >= 1), seed=SEEDS, data=st.data())
def test_gradcheck_cat(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    other_shape = list(shape)
    other_shape[axis] = data.draw(st.integers(1, 3))
    inputs = [normal(shape, seed), normal(other_shape, seed + 1)]
    assert gradcheck(lambda a, b: cat([a, b * 2, a], dim=axis), inputs)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
@FEW
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=4),
       seed=SEEDS)
def test_gradcheck_broadcasting_binary_ops(name, shapes, seed):
    a_shape, b_shape = shapes.input_shapes
    op = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b, "pow": lambda a, b: a**b}[name]
    a = positive(a_shape, seed) if name == "pow" else normal(a_shape, seed)
    assert gradcheck(op, [a, away_from_zero(b_shape, seed + 1)])


@FEW
@given(batch=array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3),
       sizes=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
       form=st.sampled_from(["matrix", "vector_left", "vector_right", "vectors", "batch_left_only"]),
       seed=SEEDS)
def test_gradcheck_matmul(batch, sizes, form, seed):
    n, k, m = sizes
    shapes = {"matrix": (batch + (n, k), batch + (k, m)), "vector_left": ((k,), batch + (k, m)),
              "vector_right": (batch + (n, k), (k,)), "vectors": ((k,), (k,)),
              "batch_left_only": (batch + (n, k), (k, m))}[form]
    assert gradcheck(lambda a, b: a @ b, [normal(shapes[0], seed), normal(shapes[1], seed + 1)])
