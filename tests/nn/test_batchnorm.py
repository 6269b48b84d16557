"""Batch norm's running statistics against torch.nn over several training steps, then eval."""
import numpy as np
import pytest
from oracle import rel_error, require_torch

import minicnn
from minicnn import nn


@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
@pytest.mark.parametrize("dims", ["2d", "1d"])
def test_running_statistics_follow_torch_for_three_steps_then_eval(momentum, dims):
    torch = require_torch()
    ours = (nn.BatchNorm2d if dims == "2d" else nn.BatchNorm1d)(4, momentum=momentum)
    theirs = (torch.nn.BatchNorm2d if dims == "2d" else torch.nn.BatchNorm1d)(4, momentum=momentum)
    shape = (6, 4, 3, 3) if dims == "2d" else (6, 4)
    rng = np.random.default_rng(0)
    for step in range(3):
        # Shifted and scaled per step so each batch has different statistics.
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
        ours(minicnn.Tensor(x))
        theirs(torch.tensor(x))
        assert int(ours.num_batches_tracked.data) == step + 1
        assert rel_error(ours.running_mean.data, theirs.running_mean.numpy()) <= 1e-6
        assert rel_error(ours.running_var.data, theirs.running_var.numpy()) <= 1e-6
    assert ours.running_mean.dtype == np.float32 and ours.num_batches_tracked.dtype == np.int64
    x = rng.standard_normal(shape).astype(np.float32)
    ours.eval(), theirs.eval()
    before = ours.state_dict()
    y = ours(minicnn.Tensor(x))
    assert rel_error(y.data, theirs(torch.tensor(x)).detach().numpy()) <= 1e-5
    for key, value in ours.state_dict().items():  # eval changes no statistic
        np.testing.assert_array_equal(value, before[key])


def test_cumulative_average_with_momentum_none_is_the_plain_mean_of_batch_means():
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0, 0.0], [7.0, 0.0]]),
               np.array([[0.0, 1.0], [2.0, 1.0]])]
    for batch in batches:
        bn(minicnn.Tensor(batch.astype(np.float32)))
    expected = np.mean([b.mean(axis=0) for b in batches], axis=0)
    np.testing.assert_allclose(bn.running_mean.data, expected, rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.data, np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0),
                               rtol=1e-6)


def test_eval_uses_running_statistics_not_the_batch():
    bn = nn.BatchNorm2d(1).eval()
    bn.running_mean.data[...] = 2.0
    bn.running_var.data[...] = 4.0
    x = minicnn.Tensor(np.full((2, 1, 2, 2), 6.0, dtype=np.float32))
    np.testing.assert_allclose(bn(x).data, (6.0 - 2.0) / np.sqrt(4.0 + 1e-5), rtol=1e-6)


def test_without_running_statistics_eval_still_uses_the_batch():
    bn = nn.BatchNorm2d(2, track_running_stats=False).eval()
    assert list(bn.state_dict()) == ["weight", "bias"]
    y = bn(minicnn.randn(4, 2, 3, 3) * 5 + 3)
    assert np.abs(y.data.mean(axis=(0, 2, 3))).max() < 1e-5


def test_state_dict_round_trip_restores_running_statistics():
    source = nn.BatchNorm2d(3)
    source(minicnn.randn(4, 3, 2, 2) * 2 + 1)
    target = nn.BatchNorm2d(3)
    target.load_state_dict(source.state_dict())
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key], value)
    assert target.num_batches_tracked.data == 1


def test_a_rejected_input_leaves_the_batch_count_alone():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(TypeError, match="batch_norm: expected a floating-point input"):
        bn(minicnn.zeros(2, 3, 2, 2, dtype=np.int64))
    with pytest.raises(ValueError, match="BatchNorm2d: input has 2 channels"):
        bn(minicnn.zeros(2, 2, 2, 2))
    assert int(bn.num_batches_tracked.data) == 0
    assert not bn.running_mean.data.any() and np.all(bn.running_var.data == 1)
