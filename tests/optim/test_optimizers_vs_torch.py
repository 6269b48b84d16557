"""Every optimizer and option combination against torch.optim over 20 steps of the same gradients."""

import numpy as np
import pytest
from optim_replay import replay_against_torch
from oracle import require_torch

from minicnn.optim import SGD, Adam, AdamW, RMSprop

torch = require_torch()
DTYPES = [np.float32, np.float64]

SGD_OPTIONS = [
    {},
    {"weight_decay": 0.05},
    {"maximize": True},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.3},
    {"momentum": 0.9, "weight_decay": 0.01},
    {"momentum": 0.8, "nesterov": True},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    {"momentum": 0.5, "dampening": 0.5, "weight_decay": 0.02, "maximize": True},
    {"momentum": 0.9, "nesterov": True, "maximize": True},
]

ADAM_OPTIONS = [
    {"amsgrad": amsgrad, "weight_decay": weight_decay, "maximize": maximize}
    for amsgrad in (False, True)
    for weight_decay in (0.0, 0.1)
    for maximize in (False, True)
] + [{"betas": (0.5, 0.9), "eps": 1e-3}]

RMSPROP_OPTIONS = [
    {"centered": centered, "momentum": momentum, "weight_decay": weight_decay, "maximize": maximize}
    for centered in (False, True)
    for momentum in (0.0, 0.9)
    for weight_decay in (0.0, 0.05)
    for maximize in (False, True)
] + [{"alpha": 0.9, "eps": 1e-4}]


def option_id(options):
    return ",".join(f"{key}={value}" for key, value in options.items()) or "defaults"


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("options", SGD_OPTIONS, ids=option_id)
def test_sgd_matches_torch(options, dtype):
    replay_against_torch(
        lambda params: SGD(params, lr=0.05, **options),
        lambda params: torch.optim.SGD(params, lr=0.05, foreach=False, **options),
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=option_id)
def test_adam_matches_torch(options, dtype):
    replay_against_torch(
        lambda params: Adam(params, lr=0.05, **options),
        lambda params: torch.optim.Adam(params, lr=0.05, foreach=False, **options),
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("options", ADAM_OPTIONS + [{}], ids=option_id)
def test_adamw_matches_torch(options, dtype):
    # dict() keeps AdamW's own default weight_decay=1e-2; the rest set it explicitly (0 or 0.1)
    replay_against_torch(
        lambda params: AdamW(params, lr=0.05, **options),
        lambda params: torch.optim.AdamW(params, lr=0.05, foreach=False, **options),
        dtype,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("options", RMSPROP_OPTIONS, ids=option_id)
def test_rmsprop_matches_torch(options, dtype):
    replay_against_torch(
        lambda params: RMSprop(params, lr=0.01, **options),
        lambda params: torch.optim.RMSprop(params, lr=0.01, foreach=False, **options),
        dtype,
    )


@pytest.mark.parametrize(
    "make, make_torch",
    [
        (lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
        (lambda p: Adam(p, lr=0.05, amsgrad=True), lambda p: torch.optim.Adam(p, lr=0.05, amsgrad=True)),
        (lambda p: AdamW(p, lr=0.05), lambda p: torch.optim.AdamW(p, lr=0.05)),
        (
            lambda p: RMSprop(p, momentum=0.5, centered=True),
            lambda p: torch.optim.RMSprop(p, momentum=0.5, centered=True),
        ),
    ],
    ids=["sgd", "adam", "adamw", "rmsprop"],
)
def test_parameters_without_grad_are_skipped_like_torch(make, make_torch):
    # The last parameter gets no gradient every third step: no update, and its state (step count,
    # moments) must not advance either, or later steps would diverge from torch.
    replay_against_torch(make, make_torch, np.float64, none_every=3)


def groups(params, options_per_group):
    return [dict(params=[param], **options) for param, options in zip(params, options_per_group)]


MULTI_GROUP_CASES = {
    "sgd": (
        SGD,
        torch.optim.SGD,
        {"lr": 0.1},
        [
            {},
            {"lr": 0.01, "momentum": 0.9},
            {"lr": 0.3, "momentum": 0.5, "nesterov": True, "weight_decay": 0.1},
        ],
    ),
    "adam": (
        Adam,
        torch.optim.Adam,
        {"lr": 0.05},
        [{}, {"lr": 0.001, "betas": (0.8, 0.99)}, {"lr": 0.2, "amsgrad": True, "weight_decay": 0.1}],
    ),
    "adamw": (
        AdamW,
        torch.optim.AdamW,
        {"lr": 0.05},
        [{"weight_decay": 0.5}, {"lr": 0.001}, {"lr": 0.2, "amsgrad": True}],
    ),
    "rmsprop": (
        RMSprop,
        torch.optim.RMSprop,
        {"lr": 0.01},
        [{"centered": True}, {"lr": 0.001, "momentum": 0.9}, {"alpha": 0.5}],
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", MULTI_GROUP_CASES, ids=str)
def test_param_groups_with_different_hyper_parameters_match_torch(case, dtype):
    minicnn_class, torch_class, defaults, per_group = MULTI_GROUP_CASES[case]
    optimizer, _ = replay_against_torch(
        lambda params: minicnn_class(groups(params, per_group), **defaults),
        lambda params: torch_class(groups(params, per_group), **defaults),
        dtype,
    )
    assert [group["lr"] for group in optimizer.param_groups] == [
        options.get("lr", defaults["lr"]) for options in per_group
    ]


def test_scheduler_driven_lr_moves_params_like_torch():
    from minicnn.optim.lr_scheduler import StepLR

    schedulers = []

    def make(params):
        optimizer = SGD(params, lr=0.2, momentum=0.9)
        schedulers.append(StepLR(optimizer, step_size=4, gamma=0.5))
        return optimizer

    def make_torch(params):
        optimizer = torch.optim.SGD(params, lr=0.2, momentum=0.9)
        schedulers.append(torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5))
        return optimizer

    def step_schedulers(optimizer, torch_optimizer):
        for scheduler in schedulers:
            scheduler.step()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            torch_optimizer.param_groups[0]["lr"], rel=1e-12
        )

    replay_against_torch(make, make_torch, np.float64, after_step=step_schedulers)
