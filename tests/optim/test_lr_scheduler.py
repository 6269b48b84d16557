"""Learning-rate schedules against torch.optim.lr_scheduler over 30 steps, two param groups."""

import json

import numpy as np
import pytest
from oracle import require_torch

import minicnn
from minicnn.optim import SGD, lr_scheduler

torch = require_torch()
STEPS = 30
GROUP_LRS = (0.1, 0.025)


def minicnn_optimizer():
    return SGD(
        [
            {"params": [minicnn.Tensor(np.zeros(2, np.float32), requires_grad=True)], "lr": lr}
            for lr in GROUP_LRS
        ],
        lr=1.0,
        momentum=0.9,
    )


def torch_optimizer():
    return torch.optim.SGD(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in GROUP_LRS], lr=1.0, momentum=0.9
    )


SCHEDULES = {
    "step": lambda m, opt: m.StepLR(opt, step_size=7, gamma=0.5),
    "step-defaults": lambda m, opt: m.StepLR(opt, step_size=3),
    "multistep": lambda m, opt: m.MultiStepLR(opt, milestones=[4, 10, 10, 22], gamma=0.3),
    "cosine": lambda m, opt: m.CosineAnnealingLR(opt, T_max=10, eta_min=0.001),
    "cosine-long": lambda m, opt: m.CosineAnnealingLR(opt, T_max=30),
    "linear-defaults": lambda m, opt: m.LinearLR(opt),
    "linear-decay": lambda m, opt: m.LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=12),
    "linear-warmup": lambda m, opt: m.LinearLR(opt, start_factor=0.05, end_factor=0.9, total_iters=8),
    "sequential": lambda m, opt: m.SequentialLR(
        opt,
        [m.LinearLR(opt, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(opt, T_max=20)],
        milestones=[5],
    ),
    "sequential-three": lambda m, opt: m.SequentialLR(
        opt,
        [
            m.LinearLR(opt, start_factor=0.2, total_iters=4),
            m.StepLR(opt, step_size=5, gamma=0.5),
            m.CosineAnnealingLR(opt, T_max=8, eta_min=1e-3),
        ],
        milestones=[6, 18],
    ),
    "chained": lambda m, opt: m.ChainedScheduler(
        [m.LinearLR(opt, start_factor=0.25, total_iters=6), m.MultiStepLR(opt, milestones=[5, 15], gamma=0.5)]
    ),
}


def assert_lrs_close(actual, expected, where):
    np.testing.assert_allclose(actual, expected, rtol=1e-7, atol=1e-12, err_msg=where)


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_matches_torch_over_30_steps(name):
    optimizer, reference_optimizer = minicnn_optimizer(), torch_optimizer()
    scheduler = SCHEDULES[name](lr_scheduler, optimizer)
    reference = SCHEDULES[name](torch.optim.lr_scheduler, reference_optimizer)
    assert_lrs_close(scheduler.get_last_lr(), reference.get_last_lr(), "after construction")
    for step in range(STEPS):
        reference_optimizer.step()  # silences torch's "scheduler.step() before optimizer.step()" warning
        scheduler.step()
        reference.step()
        assert_lrs_close(scheduler.get_last_lr(), reference.get_last_lr(), f"step {step}")
        assert_lrs_close(
            [group["lr"] for group in optimizer.param_groups],
            [group["lr"] for group in reference_optimizer.param_groups],
            f"group lr, step {step}",
        )
        assert getattr(scheduler, "last_epoch", None) == getattr(reference, "last_epoch", None)


@pytest.mark.parametrize("name", ["step", "cosine", "linear-defaults", "multistep"])
def test_closed_forms_agree_with_the_recursion(name):
    optimizer = minicnn_optimizer()
    scheduler = SCHEDULES[name](lr_scheduler, optimizer)
    for _ in range(STEPS):
        scheduler.step()
        assert_lrs_close(
            scheduler._closed_form_lr(), scheduler.get_last_lr(), f"epoch {scheduler.last_epoch}"
        )


def test_schedulers_record_initial_lr_like_torch():
    optimizer = minicnn_optimizer()
    scheduler = lr_scheduler.StepLR(optimizer, step_size=2)
    assert [group["initial_lr"] for group in optimizer.param_groups] == list(GROUP_LRS)
    assert scheduler.base_lrs == list(GROUP_LRS) and scheduler.last_epoch == 0
    for _ in range(4):
        scheduler.step()
    assert [group["initial_lr"] for group in optimizer.param_groups] == list(GROUP_LRS)
    assert scheduler.get_last_lr() == pytest.approx([lr * 0.01 for lr in GROUP_LRS], rel=1e-12)


@pytest.mark.parametrize("name", ["step", "multistep", "cosine", "linear-warmup", "sequential", "chained"])
def test_a_scheduler_resumed_from_state_dict_continues_identically(name):
    optimizer = minicnn_optimizer()
    scheduler = SCHEDULES[name](lr_scheduler, optimizer)
    for _ in range(12):
        scheduler.step()
    optimizer_state = json.loads(json.dumps(optimizer.state_dict()))
    scheduler_state = json.loads(json.dumps(scheduler.state_dict()))  # plain JSON, no pickle

    resumed_optimizer = minicnn_optimizer()
    resumed = SCHEDULES[name](lr_scheduler, resumed_optimizer)  # make the scheduler first, as in torch
    resumed_optimizer.load_state_dict(optimizer_state)
    resumed.load_state_dict(scheduler_state)
    assert resumed.get_last_lr() == scheduler.get_last_lr()
    for step in range(STEPS - 12):
        scheduler.step()
        resumed.step()
        assert resumed.get_last_lr() == scheduler.get_last_lr(), f"step {step} after resuming"


def test_resuming_with_last_epoch_needs_initial_lr():
    optimizer = minicnn_optimizer()
    with pytest.raises(ValueError, match=r"StepLR: param_groups\[0\] has no 'initial_lr' but last_epoch=5"):
        lr_scheduler.StepLR(optimizer, step_size=2, last_epoch=5)


def test_cosine_resumed_with_last_epoch_starts_from_the_closed_form_like_torch():
    optimizer, reference_optimizer = minicnn_optimizer(), torch_optimizer()
    for group in optimizer.param_groups + reference_optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=10, last_epoch=4)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(reference_optimizer, T_max=10, last_epoch=4)
    for step in range(10):
        reference_optimizer.step()
        scheduler.step()
        reference.step()
        assert_lrs_close(scheduler.get_last_lr(), reference.get_last_lr(), f"step {step}")


BAD_SCHEDULERS = [
    (
        lambda opt: lr_scheduler.StepLR("not an optimizer", step_size=2),
        TypeError,
        "StepLR: expected an Optimizer, got str",
    ),
    (
        lambda opt: lr_scheduler.StepLR(opt, step_size=0),
        ValueError,
        r"StepLR: invalid step_size 0 \(expected > 0\)",
    ),
    (
        lambda opt: lr_scheduler.StepLR(opt, step_size=2.5),
        TypeError,
        "StepLR: step_size must be an int, got float",
    ),
    (
        lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=-3),
        ValueError,
        r"CosineAnnealingLR: invalid T_max -3 \(expected > 0\)",
    ),
    (
        lambda opt: lr_scheduler.LinearLR(opt, start_factor=0.0),
        ValueError,
        r"LinearLR: invalid start_factor 0.0 \(expected in \(0, 1\]\)",
    ),
    (
        lambda opt: lr_scheduler.LinearLR(opt, end_factor=1.5),
        ValueError,
        r"LinearLR: invalid end_factor 1.5 \(expected in \[0, 1\]\)",
    ),
    (
        lambda opt: lr_scheduler.MultiStepLR(opt, milestones=[2, "5"]),
        TypeError,
        "MultiStepLR: milestones must be ints, got str",
    ),
    (
        lambda opt: lr_scheduler.SequentialLR(opt, [lr_scheduler.StepLR(opt, 2)], milestones=[3]),
        ValueError,
        "SequentialLR: expects one milestone fewer than schedulers, got 1 schedulers and 1 milestones",
    ),
    (
        lambda opt: lr_scheduler.ChainedScheduler([]),
        ValueError,
        "ChainedScheduler: expects at least one scheduler",
    ),
    (
        lambda opt: lr_scheduler.ChainedScheduler([lr_scheduler.StepLR(opt, 2), "x"]),
        TypeError,
        "ChainedScheduler: item 1 is a str, not an LRScheduler",
    ),
    (
        lambda opt: lr_scheduler.ChainedScheduler(
            [lr_scheduler.StepLR(opt, 2), lr_scheduler.StepLR(minicnn_optimizer(), 2)]
        ),
        ValueError,
        r"ChainedScheduler: scheduler 1 \(StepLR\) drives a different optimizer",
    ),
]


@pytest.mark.parametrize(
    "make, error, message", BAD_SCHEDULERS, ids=[f"case{i}" for i in range(len(BAD_SCHEDULERS))]
)
def test_bad_scheduler_arguments_are_rejected(make, error, message):
    with pytest.raises(error, match=message):
        make(minicnn_optimizer())
