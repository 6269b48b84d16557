"""SyncBatchNorm against BatchNorm2d on the whole batch, at one rank or several.

    pytest tests/distributed/test_sync_batchnorm.py
    mpiexec -n 2 python -m mpi4py -m pytest tests/distributed/test_sync_batchnorm.py

Every rank builds the same full batch from one seed, runs SyncBatchNorm on its own rows and BatchNorm2d on
all of them in the same process, and compares.  ``ranks="replayed"`` also runs three ranks one after
another in this process (ReplayRanks below), so plain pytest exercises the synchronised path too.
Every collective of a test runs before its first assert: a failure on one rank never leaves another
waiting in an allreduce.
"""
import numpy as np
import pytest

import minicnn
from minicnn import nn
from minicnn.distributed.communicator import SingleProcess
from minicnn.distributed.sync_batchnorm import SyncBatchNorm
from minicnn.distributed.world import world

CHANNELS = 3


class ReplayRanks:
    """``size`` ranks run one after another in this process, so plain pytest reaches the synchronised path.

    A rank cannot wait here for the others (and minicnn's autograd state is global to the process, so
    they cannot be threads): rank r's k-th allreduce is answered with its own array plus what every other
    rank gave at call k in the previous round.  Call 0's arrays need no answer, so they are right from
    round 1, call 1's from round 2, and so on; the rounds repeat until no rank's arrays change.  ``work``
    must therefore be deterministic (data from a fixed seed); every rank then sums in the same order.
    """

    def __init__(self, size, max_rounds=10):
        self.size, self.max_rounds = size, max_rounds

    def run(self, work):
        """[work(communicator of rank r) for each r], once every allreduce's answer is the true sum."""
        given = [[] for _ in range(self.size)]  # given[r][k]: rank r's array at its k-th allreduce
        for _ in range(self.max_rounds):
            previous, given = given, [[] for _ in range(self.size)]
            results = [work(_ReplayCommunicator(rank, self.size, given, previous))
                       for rank in range(self.size)]
            if all(len(now) == len(before) and all(map(np.array_equal, now, before))
                   for now, before in zip(given, previous)):
                return results
        raise AssertionError(f"ReplayRanks: allreduce arrays still changing after {self.max_rounds} rounds")


class _ReplayCommunicator:
    def __init__(self, rank, size, given, previous):
        self.rank, self.size, self.given, self.previous = rank, size, given, previous

    def allreduce(self, array):
        call = len(self.given[self.rank])
        self.given[self.rank].append(array.copy())
        parts = [array.copy() if rank == self.rank else
                 self.previous[rank][call] if call < len(self.previous[rank]) else np.zeros_like(array)
                 for rank in range(self.size)]
        array[...] = sum(parts[1:], parts[0])  # in rank order on every rank
        return array


class CountingCommunicator:
    """Another communicator, counting its allreduce calls."""

    def __init__(self, inner):
        self.inner, self.rank, self.size, self.allreduce_calls = inner, inner.rank, inner.size, 0

    def allreduce(self, array):
        self.allreduce_calls += 1
        return self.inner.allreduce(array)


def full_batch(shard_sizes, dtype):
    """The same batch on every rank: x with per-channel shift and scale, the loss weights w, γ and β."""
    rng = np.random.default_rng(0)
    shape = (sum(shard_sizes), CHANNELS, 4, 5)
    channel_scale, channel_shift = rng.uniform(0.5, 3, (2, 1, CHANNELS, 1, 1))
    x = rng.standard_normal(shape) * channel_scale + channel_shift - 1.5
    w = rng.standard_normal(shape)
    return x.astype(dtype), w.astype(dtype), rng.uniform(0.5, 1.5, CHANNELS), rng.standard_normal(CHANNELS)


def rows_of(rank, shard_sizes):
    start = sum(shard_sizes[:rank])
    return slice(start, start + shard_sizes[rank])


def train_step(bn, x, w, weight, bias):
    """Loss: mean over rows of (y·w).sum(axis=(1, 2, 3)), backward; bn in x's dtype, γ and β set first."""
    bn.to(x.dtype)
    bn.weight.data[...], bn.bias.data[...] = weight, bias
    x = minicnn.Tensor(x, requires_grad=True)
    y = bn(x)
    y.backward(w / max(len(w), 1))
    return y, x


def sync_step(communicator, shard_sizes, dtype):
    """This rank's SyncBatchNorm step, put on the single-process scale: dx·n_r/N and Σ_r n_r·g_r/N."""
    x, w, weight, bias = full_batch(shard_sizes, dtype)
    rows, n_r, n = rows_of(communicator.rank, shard_sizes), shard_sizes[communicator.rank], len(x)
    bn = SyncBatchNorm(CHANNELS, process_group=communicator)
    y, x_rank = train_step(bn, x[rows], w[rows], weight, bias)
    # DataParallel's average, weighted by batch size: the gradient of the single-process loss.
    grads = np.concatenate([bn.weight.grad.data, bn.bias.grad.data]).astype(np.float64) * n_r / n
    communicator.allreduce(grads)
    return {"y": y.data, "dx": x_rank.grad.data * n_r / n, "grad_weight": grads[:CHANNELS],
            "grad_bias": grads[CHANNELS:], "running_mean": bn.running_mean.data.copy(),
            "running_var": bn.running_var.data.copy(),
            "num_batches_tracked": int(bn.num_batches_tracked.data)}


def reference_step(rank, shard_sizes, dtype):
    """BatchNorm2d on the whole batch, cut to rank ``rank``'s rows."""
    x, w, weight, bias = full_batch(shard_sizes, dtype)
    rows = rows_of(rank, shard_sizes)
    bn = nn.BatchNorm2d(CHANNELS)
    y, x_all = train_step(bn, x, w, weight, bias)
    return {"y": y.data[rows], "dx": x_all.grad.data[rows], "grad_weight": bn.weight.grad.data,
            "grad_bias": bn.bias.grad.data, "running_mean": bn.running_mean.data,
            "running_var": bn.running_var.data, "num_batches_tracked": int(bn.num_batches_tracked.data)}


def shards(size, equal):
    """Rows per rank: 4 each, or 3, 5, 7, 3, … (one rank: all of them)."""
    return [4] * size if equal else [3 + 2 * (rank % 3) for rank in range(size)]


def run_everywhere(ranks, work):
    """work(communicator) on this process's rank of the MPI world, or on each of three replayed ranks."""
    if ranks == "world":
        return [work(world())]
    return ReplayRanks(3).run(work)


@pytest.mark.parametrize("ranks", ["world", "replayed"])
@pytest.mark.parametrize("equal", [True, False], ids=["equal_shards", "unequal_shards"])
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-10), (np.float32, 2e-5)],
                         ids=["float64", "float32"])
def test_each_rank_matches_batchnorm2d_on_the_whole_batch(ranks, equal, dtype, tolerance):
    def work(communicator):
        sizes = shards(communicator.size, equal)
        return sync_step(communicator, sizes, dtype), reference_step(communicator.rank, sizes, dtype)

    for ours, expected in run_everywhere(ranks, work):
        assert ours["num_batches_tracked"] == expected["num_batches_tracked"] == 1
        for key in ("y", "dx", "grad_weight", "grad_bias", "running_mean", "running_var"):
            scale = np.abs(expected[key]).max()
            np.testing.assert_allclose(ours[key], expected[key], rtol=tolerance, atol=tolerance * scale,
                                       err_msg=key)


@pytest.mark.parametrize("ranks", ["world", "replayed"])
def test_one_allreduce_per_forward_and_one_per_backward(ranks):
    def work(communicator):
        counting = CountingCommunicator(communicator)
        bn = SyncBatchNorm(CHANNELS, process_group=counting)
        x = minicnn.Tensor(np.random.default_rng(0).standard_normal((4, CHANNELS, 2, 2)), requires_grad=True)
        y = bn(x)
        after_forward = counting.allreduce_calls
        y.backward(np.ones(y.shape))
        return communicator.size, after_forward, counting.allreduce_calls - after_forward

    for size, forward_calls, backward_calls in run_everywhere(ranks, work):
        expected = 1 if size > 1 else 0  # one rank takes BatchNorm2d's path, with no communication
        assert (forward_calls, backward_calls) == (expected, expected)


def test_at_one_rank_it_is_batchnorm2d_bit_for_bit():
    x, w, weight, bias = full_batch([6], np.float32)
    ours, theirs = SyncBatchNorm(CHANNELS, process_group=SingleProcess()), nn.BatchNorm2d(CHANNELS)
    (y_ours, x_ours), (y_theirs, x_theirs) = (train_step(bn, x, w, weight, bias) for bn in (ours, theirs))
    np.testing.assert_array_equal(y_ours.data, y_theirs.data)
    np.testing.assert_array_equal(x_ours.grad.data, x_theirs.grad.data)
    for name in ("weight", "bias"):
        np.testing.assert_array_equal(getattr(ours, name).grad.data, getattr(theirs, name).grad.data)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value)


def test_eval_mode_uses_the_running_statistics_without_communicating():
    counting = CountingCommunicator(world())
    bn = SyncBatchNorm(CHANNELS, process_group=counting).eval()
    bn.running_mean.data[...], bn.running_var.data[...] = 2.0, 4.0
    y = bn(minicnn.Tensor(np.full((2, CHANNELS, 2, 2), 6.0, dtype=np.float32)))
    assert counting.allreduce_calls == 0
    np.testing.assert_allclose(y.data, (6.0 - 2.0) / np.sqrt(4.0 + 1e-5), rtol=1e-6)


def test_convert_keeps_the_same_parameters_state_dict_keys_and_eval_output():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4, momentum=None)))
    model(minicnn.randn(2, 3, 5, 5))  # move the running statistics away from 0 and 1
    model.eval()
    x = minicnn.randn(2, 3, 5, 5)
    before_output, before_state = model(x).data.copy(), model.state_dict()
    parameters = list(model.parameters())
    converted = SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model and [type(m).__name__ for m in (model[1], model[3][1])] == ["SyncBatchNorm"] * 2
    assert all(a is b for a, b in zip(converted.parameters(), parameters, strict=True))
    assert model[3][1].momentum is None and not model[1].training
    state = converted.state_dict()
    assert list(state) == list(before_state)
    for key, value in before_state.items():
        np.testing.assert_array_equal(state[key], value)
    np.testing.assert_array_equal(converted(x).data, before_output)  # eval: no communication at any size


def test_convert_a_bare_batchnorm_and_a_shared_one():
    bn = nn.BatchNorm1d(5, eps=1e-3, affine=False)
    sync = SyncBatchNorm.convert_sync_batchnorm(bn, process_group=SingleProcess())
    assert isinstance(sync, SyncBatchNorm) and sync.weight is None and sync.eps == 1e-3
    assert sync.running_mean is bn.running_mean and list(sync.state_dict()) == list(bn.state_dict())
    shared = nn.BatchNorm2d(2)
    model = SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(shared, nn.ReLU(), shared))
    assert model[0] is model[2] and model[0].weight is shared.weight


def test_bad_inputs_are_named_like_batchnorm2d():
    bn = SyncBatchNorm(CHANNELS, process_group=SingleProcess())
    with pytest.raises(ValueError, match="SyncBatchNorm: input has 2 channels but num_features is 3"):
        bn(minicnn.randn(4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"SyncBatchNorm: expected input of shape \(N, C, \.\.\.\)"):
        bn(minicnn.randn(3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(minicnn.randn(1, CHANNELS))
    with pytest.raises(TypeError, match="SyncBatchNorm: input must be a Tensor"):
        bn(np.zeros((4, CHANNELS)))
    with pytest.raises(TypeError, match="process_group must be None or a communicator"):
        SyncBatchNorm(CHANNELS, process_group="world")
    assert int(bn.num_batches_tracked.data) == 0


@pytest.mark.parametrize("ranks", ["world", "replayed"])
def test_one_value_per_channel_over_all_ranks_raises_on_every_rank(ranks):
    def work(communicator):
        bn = SyncBatchNorm(CHANNELS, process_group=communicator)
        rows = 1 if communicator.rank == 0 else 0  # one value in all: rank 0's one row
        try:
            bn(minicnn.Tensor(np.ones((rows, CHANNELS), dtype=np.float32)))
        except ValueError as error:
            return str(error), int(bn.num_batches_tracked.data)
        return None, int(bn.num_batches_tracked.data)

    for message, batches in run_everywhere(ranks, work):
        assert message is not None and "more than 1 value per channel" in message
        assert batches == 0
