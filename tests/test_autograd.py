"""backward(): graph order, accumulation, grad modes, retain_grad and its errors."""
import numpy as np
import pytest

import minicnn
from minicnn import Function, Tensor


def leaf(values, dtype=np.float32):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# --- order and accumulation within one backward ----------------------------------------
def test_diamond_graph_adds_both_paths():
    # y = (x*2) * (x+3): dy/dx = 2(x+3) + 2x = 4x + 6
    x = leaf([1.0, -2.0, 0.5])
    left, right = x * 2, x + 3
    (left * right).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.numpy() + 6, rtol=1e-6)


def test_a_tensor_used_many_times_collects_every_use():
    x = leaf([2.0])
    y = x * x * x + x + x  # 3x² + 2
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 * 4.0 + 2.0])


def test_nested_diamonds_visit_each_function_once():
    # Each level doubles the number of paths; counting calls shows nothing is revisited.
    calls = []

    class Twice(Function):
        def forward(self, x):
            return 2 * x

        def backward(self, gy):
            calls.append(1)
            return 2 * gy

    x = leaf([1.0])
    y = x
    for _ in range(20):
        y = Twice()(y)
        y = y + y  # 2^20 paths if the graph were walked per path
    y.backward()
    assert len(calls) == 20
    np.testing.assert_allclose(x.grad.numpy(), [4.0**20], rtol=1e-6)


def test_gradient_waits_until_every_consumer_has_contributed():
    # b is used by c directly and through a long detour; b's backward must see both.
    a = leaf([1.0])
    b = a * 3
    detour = b
    for _ in range(10):
        detour = detour * 1.0
    c = b * 2 + detour
    c.backward()
    np.testing.assert_allclose(a.grad.numpy(), [9.0])


def test_a_deep_chain_of_3000_ops_runs_without_recursion_error():
    x = leaf([1.0], dtype=np.float64)
    y = x
    for _ in range(3000):
        y = y * 1.001
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.001**3000], rtol=1e-9)


def test_backward_on_a_leaf_sets_its_own_grad():
    x = leaf([3.0])
    x.backward()
    assert x.grad.numpy().tolist() == [1.0]


def test_backward_with_an_explicit_gradient_for_a_non_scalar():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * x
    y.backward(np.array([[1.0, 0.0], [0.5, 2.0]]))
    np.testing.assert_allclose(x.grad.numpy(), [[2.0, 0.0], [3.0, 16.0]])
    assert x.grad.dtype == np.float32  # the float64 upstream gradient was cast to y's dtype


def test_backward_accepts_a_tensor_as_gradient():
    x = leaf([1.0, 2.0])
    (x * 3).backward(Tensor([1.0, -1.0]))
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -3.0])


def test_grad_is_a_tensor_with_the_leaf_shape_and_dtype():
    x = leaf(np.ones((2, 3)))
    (x * 2).sum().backward()
    assert isinstance(x.grad, Tensor)
    assert x.grad.shape == (2, 3) and x.grad.dtype == np.float32
    assert x.grad.requires_grad is False


def test_inputs_that_do_not_require_grad_get_none():
    x, constant = leaf([1.0]), Tensor([5.0])
    (x * constant).backward()
    assert constant.grad is None and x.grad.numpy().tolist() == [5.0]


def test_needs_input_grad_lets_backward_skip_inputs():
    seen = {}

    class Record(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            seen["needs"] = self.needs_input_grad
            return gy, None

    x, constant = leaf([1.0]), Tensor([2.0])
    Record()(x, constant).backward()
    assert seen["needs"] == (True, False)


# --- accumulation across calls ------------------------------------------------------
def test_gradients_accumulate_across_backward_calls_until_zero_grad():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2.0, 3 + 4.0])
    x.zero_grad()
    assert x.grad is None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_backward_twice_on_one_graph_adds_the_same_gradient_again():
    assert "twice" in Tensor.backward.__doc__  # the behaviour below is a documented promise
    x = leaf([1.0, -2.0])
    y = (x * x * x).sum()
    y.backward()
    once = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * once)
    np.testing.assert_allclose(once, 3 * x.numpy() ** 2)


def test_backward_does_not_write_into_the_callers_gradient_array():
    x = leaf([1.0, 2.0])
    upstream = np.ones(2, dtype=np.float32)
    (x + x).backward(upstream)
    (x + x).backward(upstream)
    assert upstream.tolist() == [1.0, 1.0]
    assert x.grad.numpy().tolist() == [4.0, 4.0]


def test_retain_grad_keeps_the_gradient_of_a_non_leaf():
    x = leaf([1.0, 2.0])
    hidden = x * 3
    kept = x * 2
    kept.retain_grad()
    (hidden * kept).sum().backward()
    assert hidden.grad is None  # non-leaves drop theirs by default
    np.testing.assert_allclose(kept.grad.numpy(), hidden.numpy())
    np.testing.assert_allclose(x.grad.numpy(), 12 * x.numpy())
    assert not hidden.is_leaf and x.is_leaf


# --- grad modes and detach ------------------------------------------------------------
def test_no_grad_records_no_graph():
    x = leaf([1.0])
    with minicnn.no_grad():
        assert not minicnn.is_grad_enabled()
        y = x * 2 + 1
    assert y.requires_grad is False and y.creator is None
    assert minicnn.is_grad_enabled()
    with pytest.raises(RuntimeError, match=r"backward: this tensor does not require grad"):
        y.backward()


def test_enable_grad_nests_inside_no_grad_and_restores_it():
    x = leaf([1.0])
    with minicnn.no_grad():
        with minicnn.enable_grad():
            assert minicnn.is_grad_enabled()
            y = x * 2
        assert not minicnn.is_grad_enabled()
        z = x * 2
    assert y.requires_grad and not z.requires_grad
    y.backward()
    assert x.grad.numpy().tolist() == [2.0]


def test_no_grad_restores_grad_mode_after_an_exception():
    with pytest.raises(KeyError), minicnn.no_grad():
        raise KeyError("boom")
    assert minicnn.is_grad_enabled()


def test_no_grad_works_as_a_decorator():
    @minicnn.no_grad()
    def evaluate(x):
        return x * 2

    assert evaluate(leaf([1.0])).requires_grad is False


def test_detach_cuts_the_gradient_path():
    x = leaf([2.0])
    y = x * x.detach()  # only the first factor carries gradient
    y.backward()
    assert x.grad.numpy().tolist() == [2.0]


def test_comparisons_build_no_graph():
    x = leaf([1.0, -1.0])
    mask = x > 0
    assert mask.dtype == np.bool_ and mask.requires_grad is False


# --- errors -----------------------------------------------------------------------------
def test_backward_on_a_non_scalar_without_grad_is_a_value_error():
    x = leaf([1.0, 2.0])
    expected = r"backward: grad may only be omitted for a one-element tensor, got shape \(2,\)"
    with pytest.raises(ValueError, match=expected):
        (x * 2).backward()


def test_backward_on_a_tensor_that_does_not_require_grad_is_a_runtime_error():
    expected = r"backward: this tensor does not require grad and has no graph to walk"
    with pytest.raises(RuntimeError, match=expected):
        Tensor([1.0]).backward()


def test_backward_with_a_gradient_of_the_wrong_shape_is_a_value_error():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"backward: grad has shape \(3,\) but the tensor has shape \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_a_backward_returning_the_wrong_shape_is_reported():
    class Broken(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy[:1]

    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"gradient of shape \(1,\) for a tensor of shape \(2,\)"):
        Broken()(x).sum().backward()
