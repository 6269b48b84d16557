"""In-place updates (+=, -=, *=, /=, x[i] = v, add_, zero_ ...) and assignable .data, as PyTorch users write them.

The silently wrong cases of old: ``p -= lr * p.grad`` rebinding the name and
leaving the model untouched, ``p.data -= ...`` turning ``.data`` into a
Tensor.  And the graph-corrupting cases PyTorch refuses: a leaf that requires
grad changed while autograd records, a tensor changed after an op saved it.
"""
import numpy as np
import pytest

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.checkpoint import load_checkpoint, save_checkpoint
from tests.oracle import require_torch


def _model_and_batch():
    minicnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    x = minicnn.randn(4, 1, 6, 6)
    labels = minicnn.Tensor(np.array([0, 2, 1, 0]))
    return model, x, labels


def _weights(model):
    return {name: value.copy() for name, value in model.state_dict().items()}


# --- the PyTorch habits that used to do nothing ------------------------------------------------
def test_manual_sgd_step_with_in_place_minus_equals_updates_the_model_like_optim_sgd():
    model, x, labels = _model_and_batch()
    reference, _, _ = _model_and_batch()
    F.cross_entropy(model(x), labels).backward()
    with minicnn.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad

    optimizer = optim.SGD(reference.parameters(), lr=0.1)
    F.cross_entropy(reference(x), labels).backward()
    optimizer.step()
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(value, reference.state_dict()[name], rtol=1e-6, atol=1e-7)
    assert any(not np.array_equal(v, w) for v, w in zip(_weights(model).values(), _weights(_model_and_batch()[0])
                                                         .values()))


def test_in_place_operators_keep_the_same_tensor_object_and_array():
    p = minicnn.Tensor([1.0, 2.0, 3.0])
    array = p.data
    before = id(p)
    p += 1
    p -= minicnn.Tensor([0.5, 0.5, 0.5])
    p *= 2
    p /= np.float32(4)
    assert id(p) == before and p.data is array
    np.testing.assert_allclose(p.numpy(), ((np.array([1, 2, 3]) + 1 - 0.5) * 2) / 4)
    assert p.dtype == np.float32


def test_data_minus_equals_keeps_data_an_array_and_state_dict_and_checkpoints_work(tmp_path):
    model, x, labels = _model_and_batch()
    F.cross_entropy(model(x), labels).backward()
    expected = {name: p.numpy() - 0.1 * p.grad.numpy() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.data -= 0.1 * p.grad
    for name, p in model.named_parameters():
        assert isinstance(p.data, np.ndarray)
        np.testing.assert_allclose(p.numpy(), expected[name], rtol=1e-6)
    state = model.state_dict()
    assert all(isinstance(value, np.ndarray) for value in state.values())
    save_checkpoint(tmp_path / "c.npz", model, epoch=1)
    fresh, _, _ = _model_and_batch()
    load_checkpoint(tmp_path / "c.npz", fresh)
    for name, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, state[name])


@pytest.mark.parametrize("value", [minicnn.Tensor([5.0, 6.0]), np.array([5.0, 6.0], dtype=np.float32), [5.0, 6.0]])
def test_data_is_assignable_with_a_tensor_an_array_or_a_list(value):
    p = nn.Parameter(minicnn.zeros(2))
    p.data = value
    assert isinstance(p.data, np.ndarray)
    np.testing.assert_array_equal(p.numpy(), [5.0, 6.0])


def test_data_assignment_refuses_strings_and_integers_for_a_tensor_that_requires_grad():
    p = nn.Parameter(minicnn.zeros(2))
    with pytest.raises(TypeError, match=r"Tensor\.data: expected numbers.*str"):
        p.data = "1.0"
    with pytest.raises(TypeError, match=r"Tensor\.data: this tensor requires grad.*int64"):
        p.data = np.array([1, 2])
    np.testing.assert_array_equal(p.numpy(), [0.0, 0.0])


def test_each_in_place_write_counts_one_version_shared_by_views_and_detached_tensors():
    x = minicnn.zeros(2, 3)
    view, detached = x.reshape(-1), x.detach()
    assert x._version == 0
    x += 1
    view[0] = 5.0
    detached.zero_()
    assert x._version == view._version == detached._version == 3
    x.data = np.ones((2, 3), dtype=np.float32)  # a new array starts its own count, as .data does in PyTorch
    assert x._version == 0 and view._version == 3


def test_in_place_methods_add_sub_mul_div_copy_fill_zero():
    x = minicnn.Tensor([1.0, 2.0])
    assert x.add_(minicnn.Tensor([1.0, 1.0]), alpha=-2) is x
    np.testing.assert_array_equal(x.numpy(), [-1.0, 0.0])
    x.sub_(1).mul_(3).div_(2)
    np.testing.assert_array_equal(x.numpy(), [-3.0, -1.5])
    x.copy_(np.array([7.0, 8.0]))
    np.testing.assert_array_equal(x.numpy(), [7.0, 8.0])
    x.fill_(2.5)
    np.testing.assert_array_equal(x.numpy(), [2.5, 2.5])
    x.zero_()
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.0])


def test_zeroing_a_gradient_in_place_as_pytorch_users_do():
    model, x, labels = _model_and_batch()
    F.cross_entropy(model(x), labels).backward()
    for p in model.parameters():
        p.grad.zero_()
    assert all(not p.grad.numpy().any() for p in model.parameters())


def test_setitem_writes_into_the_tensor_and_casts_to_its_dtype():
    x = minicnn.zeros(2, 3)
    x[0] = 5
    x[1, 1:] = minicnn.Tensor([1.5, 2.5])
    np.testing.assert_array_equal(x.numpy(), [[5, 5, 5], [0, 1.5, 2.5]])
    labels = minicnn.Tensor(np.array([1, 2, 3]))
    labels[0] = 9.7  # copied in and truncated, as torch's x[i] = v does
    assert labels.dtype == np.int64 and labels.tolist() == [9, 2, 3]


def test_index_plus_equals_under_no_grad_changes_the_parameter():
    layer = nn.Linear(2, 2)
    before = layer.weight.numpy().copy()
    with minicnn.no_grad():
        layer.weight[0] += 1
    np.testing.assert_allclose(layer.weight.numpy()[0], before[0] + 1)
    np.testing.assert_array_equal(layer.weight.numpy()[1], before[1])


def test_a_view_made_under_no_grad_writes_through_to_the_parameter():
    layer = nn.Linear(2, 2)
    with minicnn.no_grad():
        flat = layer.weight.reshape(-1)
        flat[0] = 100.0
    assert layer.weight.numpy()[0, 0] == 100.0


# --- bad in-place updates are refused, and change nothing -------------------------------------
def test_a_leaf_that_requires_grad_cannot_change_in_place_while_autograd_records():
    p = nn.Parameter(minicnn.Tensor([1.0, 2.0]))
    for update in (lambda: p.__iadd__(1), lambda: p.__setitem__(0, 3.0), lambda: p.zero_(),
                   lambda: p.mul_(minicnn.Tensor([2.0, 2.0]))):
        with pytest.raises(RuntimeError, match=r"leaf tensor that requires grad.*no_grad"):
            update()
    np.testing.assert_array_equal(p.numpy(), [1.0, 2.0])
    assert p.is_leaf and p.creator is None


def test_a_view_of_a_parameter_cannot_change_it_behind_autograd():
    p = nn.Parameter(minicnn.Tensor([[1.0, 2.0]]))
    with minicnn.no_grad():
        view = p.reshape(-1)
    with pytest.raises(RuntimeError, match=r"view of a leaf that requires grad"):
        view += 1
    row = p[0]
    with pytest.raises(RuntimeError, match=r"view of a leaf that requires grad"):
        row *= 2
    np.testing.assert_array_equal(p.numpy(), [[1.0, 2.0]])


def test_in_place_on_a_view_inside_a_graph_is_refused_with_the_way_out():
    a = minicnn.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = a * 2
    with pytest.raises(RuntimeError, match=r"views another tensor's array.*x\[index\] = new_value"):
        y[:2] += 1
    with pytest.raises(RuntimeError, match=r"views another tensor's array"):
        y.reshape(3, 1).mul_(2)
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0, 6.0])


def test_float_result_into_an_integer_tensor_is_refused_and_nothing_changes():
    labels = minicnn.Tensor(np.array([1, 2, 3]))
    for update in (lambda: labels.__iadd__(0.5), lambda: labels.__itruediv__(2),
                   lambda: labels.__imul__(minicnn.Tensor([1.5, 1.0, 1.0]))):
        with pytest.raises(TypeError, match=r"in-place .*dtype float.*cannot be stored in place.*int64"):
            update()
    assert labels.tolist() == [1, 2, 3]


def test_broadcasting_cannot_grow_a_tensor_in_place():
    x = minicnn.zeros(3)
    with pytest.raises(ValueError, match=r"in-place \+=: the result has shape \(2, 3\).*\(3,\)"):
        x += minicnn.ones(2, 3)
    with pytest.raises(ValueError, match=r"in-place -=: shapes \(3,\) and \(4,\) cannot be broadcast"):
        x -= minicnn.ones(4)
    np.testing.assert_array_equal(x.numpy(), [0, 0, 0])


def test_setitem_with_a_value_that_does_not_fit_names_both_shapes():
    x = minicnn.zeros(2, 3)
    with pytest.raises(ValueError, match=r"setitem: a value of shape \(2,\) does not fit x\[index\].*\(3,\)"):
        x[0] = minicnn.Tensor([1.0, 2.0])
    assert not x.numpy().any()


# --- inside a graph: rebased like PyTorch, or refused where a saved value changed ---------------
def _torch_grads(build, values):
    torch = require_torch()
    leaves = [torch.tensor(v, requires_grad=True) for v in values]
    build(torch, *leaves).sum().backward()
    return [leaf.grad.numpy() for leaf in leaves]


def _minicnn_grads(build, values):
    leaves = [minicnn.Tensor(np.array(v), requires_grad=True) for v in values]
    build(minicnn, *leaves).sum().backward()
    return [leaf.grad.numpy() for leaf in leaves]


def _chain(lib, a, b, c):
    y = a * 2
    y += b          # Add saves nothing
    y *= c          # Mul saves its inputs: the old y (a copy) and c
    y -= a
    y /= c + 3
    return y * y


def _residual(lib, x, w):
    out = x * w
    identity = x
    out += identity  # ResNet's `out += identity`
    return out.exp()


def _consumed_before_update(lib, a):
    y = a * 2
    w = y + 2       # uses y before the update; Add saved nothing
    y *= 3
    return w + y


def _setitem_in_graph(lib, a, b):
    q = a * 1
    q[0] = b[2] * 10
    q[1:] = q[1:] + a[1:] * b[1:]  # the right side is computed before q changes
    q[2] += b[0]           # an element is a new tensor, then set back: q.__setitem__(2, q[2] + b[0])
    return q


@pytest.mark.parametrize("build, values", [
    (_chain, [[0.5, -1.0, 2.0], [1.0, 2.0, 3.0], [0.3, 0.7, -0.2]]),
    (_residual, [[0.5, -1.0, 0.2], [1.5, 0.5, -0.5]]),
    (_consumed_before_update, [[0.5, -1.0, 2.0]]),
    (_setitem_in_graph, [[0.5, -1.0, 2.0], [1.0, 2.0, 3.0]]),
])
def test_in_place_updates_inside_a_graph_give_pytorchs_gradients(build, values):
    values = [np.array(v, dtype=np.float64) for v in values]
    for ours, theirs in zip(_minicnn_grads(build, values), _torch_grads(build, values)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_a_constant_updated_in_place_with_a_tensor_that_requires_grad_joins_the_graph():
    w = minicnn.Tensor([2.0, 3.0], requires_grad=True)
    x = minicnn.Tensor([1.0, 1.0])
    x *= w
    assert x.requires_grad and not x.is_leaf
    (x * x).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * w.numpy())


def _exp_then_add(lib, a):
    y = a.exp()     # Exp saves its output
    y += 1
    return y


def _mul_then_scale(lib, a):
    y = a * 1.0
    w = y * y       # Mul saves y
    y *= 3
    return w


def _detached_write(lib, a):
    y = a.exp()
    y.detach().add_(1)  # shares y's array and version count, as in PyTorch
    return y


@pytest.mark.parametrize("build, what", [
    (_exp_then_add, r"the output \(shape \(3,\)\) of Exp"),
    (_mul_then_scale, r"the input 0 \(shape \(3,\)\) of Mul"),
    (_detached_write, r"the output \(shape \(3,\)\) of Exp"),
])
def test_changing_a_value_an_op_saved_for_backward_is_an_error_in_backward_as_in_pytorch(build, what):
    torch = require_torch()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        _torch_grads(build, [np.array([0.5, -1.0, 2.0])])
    with pytest.raises(RuntimeError, match=what + r" was changed by an in-place operation.*version 0, now 1"):
        _minicnn_grads(build, [np.array([0.5, -1.0, 2.0])])
    assert torch  # the oracle ran


def test_clone_gives_a_copy_to_change_and_keeps_the_gradient_flowing():
    a = minicnn.Tensor([0.5, -1.0], requires_grad=True)
    y = a.exp()
    z = y.clone()
    z += 1
    (y * z).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * np.exp(2 * a.numpy()) + np.exp(a.numpy()), rtol=1e-6)


def test_a_manual_update_between_two_steps_trains_like_the_optimizer():
    model, x, labels = _model_and_batch()
    reference, _, _ = _model_and_batch()
    optimizer = optim.SGD(reference.parameters(), lr=0.05, momentum=0.0)
    for _ in range(3):
        model.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        with minicnn.no_grad():
            for p in model.parameters():
                p.sub_(p.grad, alpha=0.05)
        optimizer.zero_grad()
        F.cross_entropy(reference(x), labels).backward()
        optimizer.step()
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(value, reference.state_dict()[name], rtol=1e-5, atol=1e-6)


def test_backward_through_a_graph_built_before_an_optimizer_step_is_refused_as_in_pytorch():
    torch = require_torch()
    model, x, labels = _model_and_batch()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(x), labels)
    loss.backward()
    optimizer.step()  # changes the weights the graph's conv and linear saved
    with pytest.raises(RuntimeError, match=r"backward: the input 1 .* of (Linear|Conv2d) was changed by an in-place"):
        loss.backward()

    layer = torch.nn.Linear(3, 2)
    torch_optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    torch_loss = layer(torch.ones(1, 3, requires_grad=True)).sum()  # d(input) needs the weight: saved
    torch_loss.backward(retain_graph=True)
    torch_optimizer.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch_loss.backward()
