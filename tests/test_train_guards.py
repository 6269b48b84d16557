"""fit's guards: it refuses an optimizer over someone else's parameters, and stops a loss that runs away.

A run at lr=1e6 never produces a NaN: its loss goes from about 1.2 to 1e11 in one
step and stays between 1e5 and 1e34 at chance accuracy to the end.  The
divergence check (the first step's loss times 1e4) stops it at step 2; ordinary
runs, with their early spikes, must never trip it.
"""
import math

import numpy as np
import pytest
from test_train import BatchList, PatternImages, SmallConvNet, linear_model

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.checkpoint import load_checkpoint
from minicnn.data import DataLoader
from minicnn.train import LossDivergedError, NonFiniteLossError, fit


@pytest.fixture
def data():
    minicnn.manual_seed(0)
    return PatternImages(240, seed=1), PatternImages(90, seed=2)


def scripted_loss(values):
    """A loss_fn whose value at step i is ``values[i]`` (gradients zero: the weights never move)."""
    steps = iter(values)

    def loss_fn(outputs, labels):
        return F.cross_entropy(outputs, labels) * 0.0 + float(next(steps))

    return loss_fn


# --- whose parameters ------------------------------------------------------------------------------
def test_an_optimizer_over_another_models_parameters_is_refused_naming_what_is_missing(data):
    model, twin = SmallConvNet(), SmallConvNet()
    before = [p.numpy().copy() for p in model.parameters()]
    with pytest.raises(ValueError) as caught:
        fit(model, BatchList(data[0], 40), optimizer=optim.SGD(twin.parameters(), lr=0.1), progress=False)
    message = str(caught.value)
    assert message.startswith("fit: none of the optimizer's 6 parameters belong to the model")
    assert "'features.0.weight', 'features.0.bias', 'features.1.weight', 'features.1.bias' and 2 more" in message
    assert "optim.SGD(model.parameters(), lr=...)" in message
    assert all(np.array_equal(p.numpy(), b) for p, b in zip(model.parameters(), before))


def test_an_optimizer_with_a_few_foreign_parameters_is_refused(data):
    model = linear_model()
    stray = nn.Parameter(minicnn.zeros(5))
    optimizer = optim.Adam([*model.parameters(), stray])
    with pytest.raises(ValueError, match=r"fit: 1 of the optimizer's 3 parameters \(shapes \(5,\)\) do not "
                                         r"belong to the model; .*model.classifier.parameters\(\)"):
        fit(model, BatchList(data[0], 40), optimizer=optimizer, progress=False)
    with pytest.raises(ValueError, match="none of the optimizer's 1 parameters belong to the model"):
        fit(model, BatchList(data[0], 40), optimizer=optim.SGD([stray], lr=0.1), progress=False)


def test_an_optimizer_over_part_of_the_model_fine_tunes_only_that_part(data):
    model = SmallConvNet()
    features = [p.numpy().copy() for p in model.features.parameters()]
    head = [p.numpy().copy() for p in model.classifier.parameters()]
    fit(model, BatchList(data[0], 40), optimizer=optim.SGD(model.classifier.parameters(), lr=0.1),
        epochs=1, progress=False)
    assert all(np.array_equal(p.numpy(), b) for p, b in zip(model.features.parameters(), features))
    assert all(not np.array_equal(p.numpy(), b) for p, b in zip(model.classifier.parameters(), head))


def test_a_scheduler_over_another_optimizer_is_refused(data):
    model = linear_model()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    other = optim.lr_scheduler.StepLR(optim.SGD(model.parameters(), lr=0.1), step_size=1)
    with pytest.raises(ValueError, match="fit: the scheduler drives another optimizer than the one given"):
        fit(model, BatchList(data[0], 40), optimizer=optimizer, scheduler=other, progress=False)


# --- a loss that runs away -------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda params: optim.SGD(params, lr=1e6, momentum=0.9),
                                  lambda params: optim.Adam(params, lr=1e6)], ids=["sgd", "adam"])
def test_a_huge_learning_rate_stops_at_step_2_naming_the_parameter_and_the_learning_rate(data, tmp_path, make):
    train_set, _ = data
    model = SmallConvNet()
    optimizer = make(model.parameters())
    good_lr = optimizer.param_groups[0]["lr"]
    optimizer.param_groups[0]["lr"] = 1e-3
    loader = DataLoader(train_set, 16, shuffle=True, seed=3)
    history = fit(model, loader, optimizer=optimizer, epochs=1, checkpoint_dir=tmp_path, progress=False)
    optimizer.param_groups[0]["lr"] = good_lr
    with pytest.raises(LossDivergedError) as caught:
        fit(model, loader, optimizer=optimizer, epochs=3, start_epoch=1, history=history, checkpoint_dir=tmp_path,
            progress=False)
    error = caught.value
    assert isinstance(error, FloatingPointError) and not isinstance(error, NonFiniteLossError)
    assert (error.epoch, error.step) == (2, 2)
    assert error.loss > error.limit == 1e4 * max(error.start, 1.0) and error.start < 3
    assert error.parameter in dict(model.named_parameters()) and error.relative_update > 100
    message = str(error)
    assert message.startswith(f"fit: the loss ran away to {error.loss:.4g} at epoch 2, step 2 (global step 17)")
    assert "divergence_factor=10000 times its level at the first step" in message
    assert f"the last update moved {error.parameter!r} most" in message
    assert "The learning rate is 1e+06" in message and "divergence_factor=None turns this check off" in message
    assert f"{tmp_path / 'last.npz'} holds the last good epoch" in message
    assert load_checkpoint(tmp_path / "last.npz", SmallConvNet())["epoch"] == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_without_the_check_the_same_run_goes_on_at_chance_accuracy(data):
    train_set, val_set = data
    model = SmallConvNet()
    history = fit(model, DataLoader(train_set, 16, shuffle=True, seed=3), DataLoader(val_set, 30),
                  optimizer=optim.SGD(model.parameters(), lr=1e6), epochs=2, progress=False,
                  divergence_factor=None)
    assert history.train_loss[-1] > 1e4 and max(history.val_accuracy) < 0.6


def test_the_parameter_blamed_is_the_one_the_last_update_moved_most(data):
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = optim.SGD([{"params": model[1].parameters(), "lr": 1e-3},
                           {"params": model[3].parameters(), "lr": 1e8}], lr=0.1)
    with pytest.raises(LossDivergedError) as caught:
        fit(model, BatchList(data[0], 20), optimizer=optimizer, epochs=2, progress=False)
    blamed = caught.value.parameter
    assert caught.value.step == 2 and blamed in ("3.weight", "3.bias")  # not layer 1, at lr=1e-3
    assert f"The learning rate (of the param group holding {blamed!r}) is 1e+08" in str(caught.value)


def test_a_head_that_blows_up_over_two_steps_is_caught_though_an_average_would_follow_it(data):
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = optim.SGD([{"params": model[1].parameters(), "lr": 1e-3},  # 1.2, 8.7e3, 5.9e5, 1.2e6, ...
                           {"params": model[3].parameters(), "lr": 1e5}], lr=0.1)
    with pytest.raises(LossDivergedError) as caught:
        fit(model, BatchList(data[0], 20), optimizer=optimizer, epochs=2, progress=False)
    assert caught.value.step == 3


def test_the_limit_is_the_factor_times_the_first_steps_loss(data):
    model = linear_model()
    losses = [5.0, 49.0, 4.0, 50.0, 50.5]  # factor 10: the limit is 50, whatever came after step 1
    with pytest.raises(LossDivergedError) as caught:
        fit(model, BatchList(data[0], 8), optimizer=optim.SGD(model.parameters(), lr=0.1),
            loss_fn=scripted_loss(losses), progress=False, divergence_factor=10)
    assert (caught.value.step, caught.value.start, caught.value.limit) == (5, 5.0, 50.0)
    assert "more than divergence_factor=10 times its level at the first step, 5 (or 1 if lower)" in \
        str(caught.value)


def test_a_run_that_blows_up_gradually_is_caught_however_slow_the_climb(data):
    model = linear_model()  # an average of the first steps would have climbed with it
    climb = [1.0, 1.2, 2.0, 30.0, 800.0, 9000.0, 9900.0, 10001.0]
    with pytest.raises(LossDivergedError) as caught:
        fit(model, BatchList(data[0], 8), optimizer=optim.SGD(model.parameters(), lr=0.1),
            loss_fn=scripted_loss(climb), progress=False)
    assert caught.value.step == 8 and caught.value.start == 1.0


def test_a_run_that_starts_near_zero_may_climb_to_ordinary_loss_values(data):
    model = linear_model()  # fine-tuning: 1e-4 at first, then 5 (a new kind of batch): no alarm
    fit(model, BatchList(data[0], 8), optimizer=optim.SGD(model.parameters(), lr=0.1),
        loss_fn=scripted_loss([1e-4] * 10 + [5.0, -50.0] * 10), progress=False)


def test_a_non_finite_loss_is_still_a_non_finite_loss_error_with_the_check_off(data):
    model = linear_model()
    with pytest.raises(NonFiniteLossError, match="fit: the loss became inf at epoch 1, step 3"):
        fit(model, BatchList(data[0], 40), optimizer=optim.SGD(model.parameters(), lr=0.1),
            loss_fn=scripted_loss([1.0, 1.0, math.inf]), progress=False, divergence_factor=None)


@pytest.mark.parametrize("make, lr", [(optim.SGD, 0.1), (optim.SGD, 1e-4), (optim.Adam, 0.01),
                                      (optim.Adam, 1e-5), (optim.RMSprop, 0.01)])
def test_ordinary_runs_never_trip_the_check(data, make, lr):
    train_set, val_set = data
    model = SmallConvNet(dropout=0.2)
    kwargs = {"momentum": 0.9} if make is optim.SGD else {}
    history = fit(model, DataLoader(train_set, 16, shuffle=True, seed=3), DataLoader(val_set, 30),
                  optimizer=make(model.parameters(), lr=lr, **kwargs), epochs=3, progress=False)
    assert len(history) == 3


def test_early_spikes_of_ten_times_the_loss_do_not_trip_it(data):
    train_set, _ = data
    model = SmallConvNet()
    step = iter(range(10**6))

    def spiky_loss(outputs, labels):  # steps 2-6 at 2x, 5x, 10x, 10x, 3x the real loss, then normal
        factor = {1: 2.0, 2: 5.0, 3: 10.0, 4: 10.0, 5: 3.0}.get(next(step), 1.0)
        return F.cross_entropy(outputs, labels) * factor

    history = fit(model, DataLoader(train_set, 16, shuffle=True, seed=3), optimizer=optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9), loss_fn=spiky_loss, epochs=2, progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
