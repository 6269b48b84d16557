"""Loading a state that does not fit: an error naming the entry, and the optimizer or scheduler unchanged.

PyTorch answers another optimizer's state with a bare ``KeyError: 'step'``;
minicnn names what is missing and says the state comes from another type.
"""
import numpy as np
import pytest
from optim_replay import SHAPES, gradient_sequence, make_params, to_minicnn_params

from minicnn.optim import SGD, Adam, RMSprop, lr_scheduler


def stepped(make, steps=2):
    params = to_minicnn_params(make_params(SHAPES, np.float32))
    optimizer = make(params)
    for grads in gradient_sequence(SHAPES, np.float32, steps):
        for param, grad in zip(params, grads):
            param.grad = type(param)(grad)
        optimizer.step()
    return optimizer


def snapshot(optimizer):
    state = optimizer.state_dict()
    return state["param_groups"], {index: {name: np.array(value) for name, value in entries.items()}
                                   for index, entries in state["state"].items()}


def assert_same(first, second):
    assert first[0] == second[0]
    assert first[1].keys() == second[1].keys()
    for index in first[1]:
        for name in first[1][index]:
            assert np.array_equal(first[1][index][name], second[1][index][name]), (index, name)


def tampered(state_dict, index, name, value):
    state = {"param_groups": state_dict["param_groups"], "state": {i: dict(s) for i, s in state_dict["state"].items()}}
    state["state"][index][name] = value
    return state


@pytest.mark.parametrize("make_state, message", [
    (lambda good: tampered(good, 2, "exp_avg", np.zeros(3, np.float32)),
     r"Adam: loaded state 'exp_avg' of parameter 2 has shape \(3,\) but its parameter has shape \(2, 3, 2\)"),
    (lambda good: tampered(good, 1, "step", -1), "Adam: loaded state 'step' of parameter 1 must be an int >= 0"),
    (lambda good: tampered(good, 1, "step", 2.5), "Adam: loaded state 'step' of parameter 1 must be an int >= 0"),
    (lambda good: tampered(good, 0, "momentum_buffer", np.zeros((3, 4), np.float32)),
     r"Adam: loaded state 'momentum_buffer' of parameter 0 is not state Adam keeps \(step, exp_avg"),
    (lambda good: tampered(good, 0, "exp_avg", np.full((3, 4), "x")),
     "Adam: loaded state 'exp_avg' of parameter 0 has dtype <U1, expected numbers"),
    (lambda good: {**good, "state": {"seven": {}}}, "Adam: the loaded state names parameter 'seven', which no group"),
    (lambda good: {**good, "param_groups": [{**good["param_groups"][0], "betas": [0.9]}]},
     r"Adam: betas must be a pair \(beta1, beta2\)"),
    (lambda good: {**good, "param_groups": [{**good["param_groups"][0], "params": "all"}]},
     "Adam: parameter group 0 of the loaded state needs 'params', a list of parameter indices"),
    (lambda good: stepped(lambda p: RMSprop(p)).state_dict(),
     "Adam: parameter group 0 of the loaded state lacks betas, amsgrad, decoupled_weight_decay, which Adam needs"),
], ids=["shape", "step-negative", "step-float", "foreign-state", "dtype", "index", "betas", "params", "rmsprop"])
def test_a_state_that_does_not_fit_is_refused_and_nothing_changes(make_state, message):
    good = stepped(lambda params: Adam(params, lr=0.01)).state_dict()
    optimizer = stepped(lambda params: Adam(params, lr=0.5), steps=3)
    before = snapshot(optimizer)
    with pytest.raises((ValueError, TypeError), match=message):
        optimizer.load_state_dict(make_state(good))
    assert_same(before, snapshot(optimizer))


def test_another_optimizers_state_is_a_bare_key_error_in_pytorch_and_a_named_one_here():
    torch = pytest.importorskip("torch")
    weight = torch.nn.Parameter(torch.ones(2))
    sgd = torch.optim.SGD([weight], lr=0.1, momentum=0.9)
    weight.grad = torch.ones(2)
    sgd.step()
    with pytest.raises(KeyError, match="step"):
        torch.optim.Adam([weight]).load_state_dict(sgd.state_dict())
    with pytest.raises(ValueError, match="which Adam needs .*saved by another optimizer type"):
        stepped(Adam).load_state_dict(stepped(lambda p: SGD(p, lr=0.1, momentum=0.9)).state_dict())


def test_a_sequential_schedule_with_one_bad_inner_state_loads_none_of_them():
    optimizer = SGD(to_minicnn_params(make_params(SHAPES, np.float32)), lr=0.1)
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=3)
    decay = lr_scheduler.StepLR(optimizer, step_size=2)
    schedule = lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[3])
    for _ in range(4):
        schedule.step()
    saved = schedule.state_dict()
    saved["_schedulers"][1]["step_size"] = "two"
    fresh = lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[3])
    before = (fresh.state_dict(), warmup.state_dict(), decay.state_dict())
    with pytest.raises(ValueError, match="StepLR.load_state_dict: 'step_size' is 'two', expected an int"):
        fresh.load_state_dict(saved)
    assert (fresh.state_dict(), warmup.state_dict(), decay.state_dict()) == before
