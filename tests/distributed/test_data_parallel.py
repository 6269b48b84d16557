"""DataParallel: broadcast at start, gradients averaged over the ranks (bucketed, weighted by batch size)."""
import numpy as np
import pytest
from shares import gathered_checksums, rank_rows

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.distributed import (
    DataParallel,
    SyncBatchNorm,
    average_buffers,
    broadcast_module,
    broadcast_optimizer_state,
)
from minicnn.distributed.communicator import SingleProcess


def small_net(seed=0, batch_norm=False):
    minicnn.manual_seed(seed)
    # No conv bias before batch norm: its gradient is 0 up to round-off, which Adam would blow up to lr.
    layers = [nn.Conv2d(3, 6, 3, padding=1, bias=not batch_norm)]
    layers += [nn.BatchNorm2d(6)] if batch_norm else []
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 5)]
    return nn.Sequential(*layers)


def global_data(batches, batch_size, seed=1):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batches * batch_size, 3, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 5, batches * batch_size)
    return images, labels


def train(model, optimizer, images, labels, batch_size, world=None):
    """k steps over consecutive global batches; with ``world``, each rank takes its rows of every batch.

    Returns, for each step, every rank's parameter checksums (gathered after the step) when ``world`` is given.
    """
    checksums = []
    for start in range(0, len(images), batch_size):
        x, y = images[start:start + batch_size], labels[start:start + batch_size]
        if world is not None:
            x, y = rank_rows(x, world), rank_rows(y, world)
        optimizer.zero_grad()
        F.cross_entropy(model(minicnn.Tensor(x)), minicnn.Tensor(y)).backward()
        optimizer.step()
        if world is not None:
            checksums.append(gathered_checksums([p.data for p in model.parameters()], world))
    return checksums


def differences(model_a, model_b):
    pairs = zip(model_a.parameters(), model_b.parameters())
    return max(float(np.abs(a.data - b.data).max()) for a, b in pairs)


def test_parameters_start_as_rank_0s_on_every_rank(world):
    model = small_net(seed=world.rank)  # each rank initialises differently ...
    DataParallel(model)                 # ... and takes rank 0's
    checksums = gathered_checksums([p.data for p in model.parameters()], world)
    assert (checksums == checksums[0]).all()
    assert np.allclose(checksums[0], gathered_checksums([p.data for p in small_net(seed=0).parameters()],
                                                        world)[0])


@pytest.mark.parametrize("make_optimizer", [
    lambda params: optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3),
    lambda params: optim.Adam(params, lr=0.01),
], ids=["sgd", "adam"])
@pytest.mark.parametrize("batch_norm", ["none", "synchronised"])
def test_ranks_sharing_a_batch_take_the_single_process_steps(world, make_optimizer, batch_norm):
    """B/ranks images on each rank = B images in one process; with SyncBatchNorm against BatchNorm2d."""
    with_bn = batch_norm == "synchronised"
    images, labels = global_data(batches=4, batch_size=8)
    alone = small_net(batch_norm=with_bn)
    train(alone, make_optimizer(alone.parameters()), images, labels, batch_size=8)
    model = small_net(batch_norm=with_bn)
    together = DataParallel(SyncBatchNorm.convert_sync_batchnorm(model) if with_bn else model)
    checksums = train(together, make_optimizer(together.parameters()), images, labels, batch_size=8,
                      world=world)
    assert differences(alone, together.module) < 2e-6  # float32 round-off after 4 steps
    assert all((step == step[0]).all() for step in checksums)  # bit-identical on every rank, every step
    assert together.synchronized_steps == (4 if world.size > 1 else 0)
    if with_bn:
        assert np.allclose(alone[1].running_var.data, together.module[1].running_var.data, atol=1e-6)


def test_uneven_batches_are_weighted_by_their_size(world):
    """Rank r holds r + 2 images: the average must be the gradient of the union, not the mean of means."""
    sizes = [rank + 2 for rank in range(world.size)]
    images, labels = global_data(batches=1, batch_size=sum(sizes))
    alone = small_net()
    F.cross_entropy(alone(minicnn.Tensor(images)), minicnn.Tensor(labels)).backward()
    together = DataParallel(small_net())
    start = sum(sizes[:world.rank])
    mine = slice(start, start + sizes[world.rank])
    F.cross_entropy(together(minicnn.Tensor(images[mine])), minicnn.Tensor(labels[mine])).backward()
    errors = [float(np.abs(a.grad.data - b.grad.data).max())
              for a, b in zip(alone.parameters(), together.parameters())]
    assert max(errors) < 1e-6


def test_bucketed_averaging_equals_one_bucket_per_parameter_and_one_for_all(world):
    images, labels = global_data(batches=1, batch_size=6)
    grads = []
    for cap in (1e-6, 0.001, 1000.0):  # a bucket per parameter, a few, one
        model = DataParallel(small_net(), bucket_cap_mb=cap)
        F.cross_entropy(model(minicnn.Tensor(rank_rows(images, world))),
                        minicnn.Tensor(rank_rows(labels, world))).backward()
        grads.append([p.grad.data.copy() for p in model.parameters()])
        buckets = len(model.buckets)
        if cap == 1e-6:
            assert buckets == len(list(model.parameters()))
        if cap == 1000.0:
            assert buckets == 1
    for per_parameter, few, one in zip(*grads):
        assert np.array_equal(per_parameter, one) and np.array_equal(few, one)


class CountingWorld:
    """The world, counting the allreduces that pass through it."""

    def __init__(self, communicator):
        self.communicator, self.allreduces = communicator, 0

    def __getattr__(self, name):
        return getattr(self.communicator, name)

    def allreduce(self, array):
        self.allreduces += 1
        return self.communicator.allreduce(array)


def test_one_allreduce_per_bucket_per_backward_and_none_under_no_sync(world):
    counting = CountingWorld(world)
    model = DataParallel(small_net(), communicator=counting, bucket_cap_mb=0.001)
    images, labels = global_data(batches=1, batch_size=4)
    x, y = minicnn.Tensor(rank_rows(images, world)), minicnn.Tensor(rank_rows(labels, world))
    outputs = model(x)
    (F.cross_entropy(outputs, y) + outputs.sum() * 0.0).backward()  # the outputs reached twice: one averaging
    after_one = counting.allreduces
    with model.no_sync():
        F.cross_entropy(model(x), y).backward()
    after_no_sync = counting.allreduces
    with minicnn.no_grad():
        model(x)
    model.eval()
    F.cross_entropy(model(x), y).backward()  # eval mode: nothing to average either
    expected = len(model.buckets) if world.size > 1 else 0
    assert (after_one, after_no_sync, counting.allreduces) == (expected, expected, expected)


class WithUnusedHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.unused = small_net(), nn.Linear(2, 2)

    def forward(self, x):
        return self.body(x)


def test_a_parameter_no_rank_used_keeps_no_gradient(world):
    model = WithUnusedHead()
    parallel = DataParallel(model)
    images, labels = global_data(batches=1, batch_size=4)
    F.cross_entropy(parallel(minicnn.Tensor(rank_rows(images, world))),
                    minicnn.Tensor(rank_rows(labels, world))).backward()
    assert model.unused.weight.grad is None
    assert all(p.grad is not None for p in model.body.parameters())


def test_average_buffers_leaves_every_rank_with_the_mean(world):
    model = small_net(batch_norm=True)
    bn = model[1]
    bn.running_mean.data[...] = world.rank + 1.0
    bn.num_batches_tracked.data[...] = 7
    average_buffers(model)
    means = world.allgather(bn.running_mean.data.copy())
    assert np.allclose(means, (world.size + 1) / 2)
    assert int(bn.num_batches_tracked.data) == 7


def test_broadcast_optimizer_state_gives_every_rank_rank_0s_moments(world):
    model = small_net()
    broadcast_module(model)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    if world.rank == 0:  # only rank 0 has stepped: the others have no state at all yet
        for param in model.parameters():
            param.grad = minicnn.Tensor(np.full(param.shape, 0.5, dtype=np.float32))
        optimizer.step()
    else:
        optimizer.param_groups[0]["lr"] = 0.5
    broadcast_optimizer_state(optimizer)
    state = optimizer.state_dict()
    checksums = gathered_checksums([state["state"][0]["exp_avg"], state["state"][0]["step"]], world)
    lrs = world.allgather(np.array([optimizer.param_groups[0]["lr"]]))
    assert (checksums == checksums[0]).all() and state["state"][0]["step"] == 1
    assert (lrs == 0.01).all()


def test_ranks_that_built_different_models_are_refused_together(world):
    model = small_net() if world.rank == 0 else nn.Sequential(nn.Linear(3, 3))
    if world.size == 1:
        pytest.skip("one rank always agrees with itself; this runs under mpiexec -n 2 (test_launch.py)")
    with pytest.raises(ValueError, match="differ"):
        DataParallel(model)


def test_data_parallel_at_one_rank_is_the_model_itself():
    model = small_net()
    before = [p.data.copy() for p in model.parameters()]
    parallel = DataParallel(model, communicator=SingleProcess())
    images, labels = global_data(batches=1, batch_size=4)
    out = parallel(minicnn.Tensor(images))
    assert np.array_equal(out.data, model(minicnn.Tensor(images)).data)
    F.cross_entropy(out, minicnn.Tensor(labels)).backward()
    assert parallel.synchronized_steps == 0
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))
    assert list(parallel.state_dict()) == ["module." + key for key in model.state_dict()]


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="DataParallel: module must be a minicnn.nn.Module"):
        DataParallel(lambda x: x)
    with pytest.raises(ValueError, match="bucket_cap_mb must be a positive number"):
        DataParallel(small_net(), bucket_cap_mb=0)


class TwoHeads(nn.Module):
    """Returns a namedtuple of logits, as GoogLeNet does in training."""

    def __init__(self):
        super().__init__()
        self.body, self.aux = small_net(), nn.Linear(3 * 8 * 8, 5)

    def forward(self, x):
        from minicnn.models.googlenet import GoogLeNetOutputs

        aux = self.aux(x.reshape(x.shape[0], -1))
        return GoogLeNetOutputs(self.body(x), aux, aux)


def test_models_with_several_outputs_average_once_and_keep_their_output_type(world):
    counting = CountingWorld(world)
    model = DataParallel(TwoHeads(), communicator=counting, bucket_cap_mb=1000.0)
    images, labels = global_data(batches=1, batch_size=4)
    outputs = model(minicnn.Tensor(rank_rows(images, world)))
    y = minicnn.Tensor(rank_rows(labels, world))
    (F.cross_entropy(outputs.logits, y) + 0.3 * F.cross_entropy(outputs.aux_logits1, y)).backward()
    assert type(outputs).__name__ == "GoogLeNetOutputs"
    assert counting.allreduces == (1 if world.size > 1 else 0)
    assert all(p.grad is not None for p in model.parameters())
