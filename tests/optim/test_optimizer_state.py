"""Optimizer bookkeeping: state_dict round trips, zero_grad, param groups, dtypes, in-place updates."""

import io
import json

import numpy as np
import pytest
from optim_replay import SHAPES, gradient_sequence, make_params, to_minicnn_params

import minicnn
from minicnn.optim import SGD, Adam, AdamW, RMSprop

FULL_OPTIONS = {
    "sgd": lambda params: SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda params: Adam(params, lr=0.05, amsgrad=True, weight_decay=0.1),
    "adamw": lambda params: AdamW(params, lr=0.05, amsgrad=True),
    "rmsprop": lambda params: RMSprop(params, lr=0.01, momentum=0.9, centered=True, weight_decay=0.1),
}


def run(optimizer, params, grads_sequence):
    for grads in grads_sequence:
        for param, grad in zip(params, grads):
            param.grad = None if grad is None else minicnn.Tensor(grad.copy())
        optimizer.step()


def save_without_pickle(state_dict):
    """What a checkpoint does: arrays into .npz (allow_pickle=False), everything else into JSON."""
    arrays, scalars = {}, {"state": {}, "param_groups": state_dict["param_groups"]}
    for index, param_state in state_dict["state"].items():
        scalars["state"][index] = {}
        for name, value in param_state.items():
            if isinstance(value, np.ndarray):
                arrays[f"{index}/{name}"] = value
            else:
                scalars["state"][index][name] = value
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue(), json.dumps(scalars)


def load_without_pickle(npz_bytes, json_text):
    restored = json.loads(json_text)  # state keys come back as strings, betas as lists
    with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as arrays:
        for key in arrays.files:
            index, name = key.split("/")
            restored["state"][index][name] = arrays[key]
    return restored


@pytest.mark.parametrize("name", FULL_OPTIONS)
@pytest.mark.parametrize("through_files", [False, True], ids=["in-memory", "npz+json"])
def test_a_fresh_optimizer_loaded_from_state_dict_continues_identically(name, through_files):
    make = FULL_OPTIONS[name]
    arrays = make_params(SHAPES, np.float32)
    grads = gradient_sequence(SHAPES, np.float32, 16, none_every=5)
    params = to_minicnn_params(arrays)
    optimizer = make(params)
    run(optimizer, params, grads[:8])

    state_dict = optimizer.state_dict()
    if through_files:
        state_dict = load_without_pickle(*save_without_pickle(state_dict))
    resumed_params = to_minicnn_params([param.data for param in params])
    resumed = make(resumed_params)
    resumed.load_state_dict(state_dict)

    run(optimizer, params, grads[8:])
    run(resumed, resumed_params, grads[8:])
    for param, resumed_param in zip(params, resumed_params):
        np.testing.assert_array_equal(resumed_param.data, param.data)
        assert resumed_param.dtype == np.float32
    for param, resumed_param in zip(params, resumed_params):
        for key, value in optimizer.state[param].items():
            np.testing.assert_array_equal(resumed.state[resumed_param][key], value)


@pytest.mark.parametrize("name", FULL_OPTIONS)
def test_state_dict_holds_only_numpy_arrays_and_json_scalars(name):
    params = to_minicnn_params(make_params(SHAPES, np.float32))
    optimizer = FULL_OPTIONS[name](params)
    run(optimizer, params, gradient_sequence(SHAPES, np.float32, 2))
    state_dict = optimizer.state_dict()
    json.dumps(state_dict["param_groups"])  # raises on anything JSON cannot hold
    assert sorted(state_dict["state"]) == [0, 1, 2]
    for index, param_state in state_dict["state"].items():
        if name == "sgd":
            assert sorted(param_state) == ["momentum_buffer"]
        else:
            assert param_state["step"] == 2
        for key, value in param_state.items():
            if key == "step":
                assert type(value) is int
            else:
                assert (
                    type(value) is np.ndarray and value.shape == SHAPES[index] and value.dtype == np.float32
                )
    assert state_dict["param_groups"][0]["params"] == [0, 1, 2]


def test_state_dict_arrays_are_copies_not_live_buffers():
    params = to_minicnn_params(make_params(SHAPES, np.float64))
    optimizer = Adam(params, lr=0.1)
    grads = gradient_sequence(SHAPES, np.float64, 2)
    run(optimizer, params, grads[:1])
    saved = optimizer.state_dict()["state"][0]["exp_avg"].copy()
    snapshot = optimizer.state_dict()
    run(optimizer, params, grads[1:])
    np.testing.assert_array_equal(snapshot["state"][0]["exp_avg"], saved)
    assert not np.array_equal(optimizer.state[params[0]]["exp_avg"], saved)


def test_load_state_dict_restores_hyper_parameters_per_group():
    params = to_minicnn_params(make_params(SHAPES, np.float64))
    source = Adam([{"params": params[:1], "lr": 0.3, "betas": (0.5, 0.6)}, {"params": params[1:]}], lr=0.01)
    target_params = to_minicnn_params(make_params(SHAPES, np.float64))
    target = Adam([{"params": target_params[:1]}, {"params": target_params[1:]}], lr=0.02)
    target.load_state_dict(json.loads(json.dumps(source.state_dict())))
    assert target.param_groups[0]["lr"] == 0.3 and target.param_groups[0]["betas"] == (0.5, 0.6)
    assert target.param_groups[1]["lr"] == 0.01
    assert target.param_groups[0]["params"][0] is target_params[0]


def test_load_state_dict_rejects_a_mismatched_layout():
    params = to_minicnn_params(make_params(SHAPES, np.float64))
    optimizer = SGD(params, lr=0.1, momentum=0.9)
    run(optimizer, params, gradient_sequence(SHAPES, np.float64, 1))
    state_dict = optimizer.state_dict()
    two_groups = SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1)
    with pytest.raises(
        ValueError, match="SGD: the loaded state dict has 1 parameter groups but the optimizer has 2"
    ):
        two_groups.load_state_dict(state_dict)
    with pytest.raises(ValueError, match="SGD: parameter group 0 has 2 parameters but the loaded one has 3"):
        SGD(params[:2], lr=0.1).load_state_dict(state_dict)
    swapped = to_minicnn_params(make_params([SHAPES[1], SHAPES[0], SHAPES[2]], np.float64))
    with pytest.raises(
        ValueError,
        match=r"SGD: loaded state 'momentum_buffer' of parameter 0 has shape \(3, 4\) but its "
        r"parameter has shape \(5,\)",
    ):
        SGD(swapped, lr=0.1).load_state_dict(state_dict)


def test_zero_grad_sets_grads_to_none_or_to_zero():
    params = to_minicnn_params(make_params(SHAPES, np.float32))
    optimizer = SGD(params, lr=0.1)
    for param in params:
        param.grad = minicnn.Tensor(np.ones(param.shape, np.float32))
    optimizer.zero_grad(set_to_none=False)
    assert all(param.grad is not None and not param.grad.data.any() for param in params)
    optimizer.zero_grad()
    assert all(param.grad is None for param in params)
    before = [param.data.copy() for param in params]
    optimizer.step()  # no gradients: nothing moves
    for param, old in zip(params, before):
        np.testing.assert_array_equal(param.data, old)


def test_step_after_backward_trains_a_real_graph():
    weight = minicnn.Tensor(np.array([1.0, -2.0], np.float32), requires_grad=True)
    optimizer = SGD([weight], lr=0.25)
    (weight * weight).sum().backward()  # d/dw = 2w
    optimizer.step()
    np.testing.assert_allclose(weight.data, [0.5, -1.0])
    assert weight.is_leaf and weight.requires_grad


def test_step_returns_the_closure_loss_computed_with_grad_enabled():
    weight = minicnn.Tensor(np.array([3.0], np.float64), requires_grad=True)
    optimizer = SGD([weight], lr=0.1)

    def closure():
        optimizer.zero_grad()
        loss = (weight * weight).sum()
        loss.backward()
        return loss

    with minicnn.no_grad():
        loss = optimizer.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(weight.data, [3.0 - 0.1 * 6.0])


def test_add_param_group_fills_defaults_and_refuses_shared_params():
    params = to_minicnn_params(make_params(SHAPES, np.float32))
    optimizer = SGD(params[:2], lr=0.1, momentum=0.9)
    optimizer.add_param_group({"params": params[2], "lr": 0.01})
    assert optimizer.param_groups[1]["lr"] == 0.01 and optimizer.param_groups[1]["momentum"] == 0.9
    assert (
        len(optimizer.param_groups[1]["params"]) == 1 and optimizer.param_groups[1]["params"][0] is params[2]
    )
    with pytest.raises(ValueError, match="SGD: some parameters appear in more than one parameter group"):
        optimizer.add_param_group({"params": [params[0]]})
    with pytest.raises(ValueError, match=r"SGD: invalid learning rate -1 \(expected >= 0\)"):
        optimizer.add_param_group({"params": [minicnn.Tensor(np.ones(2, np.float32))], "lr": -1})


@pytest.mark.parametrize("name", FULL_OPTIONS)
def test_float32_parameters_stay_float32_and_are_updated_in_place(name):
    params = to_minicnn_params(make_params(SHAPES, np.float32))
    buffers = [param.data for param in params]
    optimizer = FULL_OPTIONS[name](params)
    # A NumPy float64 learning rate and float64 gradients must not promote anything.
    optimizer.param_groups[0]["lr"] = np.float64(optimizer.param_groups[0]["lr"])
    for grads in gradient_sequence(SHAPES, np.float64, 3):
        for param, grad in zip(params, grads):
            param.grad = minicnn.Tensor(grad, dtype=np.float64)
        optimizer.step()
    for param, buffer in zip(params, buffers):
        assert param.data is buffer, "the update must change the module's array in place"
        assert param.dtype == np.float32
        assert param.is_leaf and param.creator is None
        assert all(
            value.dtype == np.float32 for key, value in optimizer.state[param].items() if key != "step"
        )
    assert not np.array_equal(params[0].data, make_params(SHAPES, np.float32)[0])


def test_maximize_does_not_modify_the_gradient_it_reads():
    params = to_minicnn_params(make_params(SHAPES, np.float32))
    optimizer = SGD(params, lr=0.1, maximize=True)
    grads = gradient_sequence(SHAPES, np.float32, 1)[0]
    for param, grad in zip(params, grads):
        param.grad = minicnn.Tensor(grad.copy())
    optimizer.step()
    for param, grad in zip(params, grads):
        np.testing.assert_array_equal(param.grad.data, grad)
