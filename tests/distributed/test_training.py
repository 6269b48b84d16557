"""fit and evaluate over the ranks: the same run as one process, rank 0's checkpoints, an exact resume."""
import os

import numpy as np
import pytest
from shares import gathered_checksums

import minicnn
from minicnn import nn, optim
from minicnn.checkpoint import load_checkpoint
from minicnn.data import DataLoader
from minicnn.distributed import DistributedSampler, single_process
from minicnn.train import evaluate, fit


class Blobs:
    """48 float images in 3 classes, each class a brighter corner: learnable in a few steps."""

    def __init__(self, length=48, seed=0):
        self.classes = ["a", "b", "c"]
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 3, length)
        self.images = rng.standard_normal((length, 1, 6, 6)).astype(np.float32)
        for index, label in enumerate(self.labels):
            self.images[index, 0, 2 * label:2 * label + 2, :2] += 2.0

    def __len__(self):
        return len(self.labels)

    def get_batch(self, indices, rng):
        return self.images[indices], self.labels[indices]


def net(batch_norm=False):
    minicnn.manual_seed(0)
    norm = [nn.BatchNorm2d(4)] if batch_norm else []
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), *norm, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))


def parts(world, global_batch=8, batch_norm=False, sharded=True):
    """model, optimizer, scheduler, train loader and test loader, split over the ranks when ``sharded``."""
    model = net(batch_norm)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = optim.lr_scheduler.StepLR(optimizer, 2, gamma=0.5)
    train_set, test_set = Blobs(48, seed=0), Blobs(21, seed=1)
    if not sharded:
        return (model, optimizer, scheduler, DataLoader(train_set, global_batch, shuffle=True, seed=5),
                DataLoader(test_set, 4))
    train = DataLoader(train_set, global_batch // world.size, sampler=DistributedSampler(train_set, seed=5))
    test = DataLoader(test_set, 4, sampler=DistributedSampler(test_set, shuffle=False, pad=False))
    return model, optimizer, scheduler, train, test


def shared_folder(tmp_path, world):
    """Rank 0's tmp_path, the folder every rank reads rank 0's checkpoints from."""
    return world.broadcast_json(os.fspath(tmp_path))


def test_fit_over_the_ranks_is_the_single_process_run(world):
    alone = parts(world, sharded=False)
    with single_process():
        alone_history = fit(alone[0], alone[3], alone[4], optimizer=alone[1], scheduler=alone[2], epochs=3,
                            progress=False)
    model, optimizer, scheduler, train, test = parts(world)
    history = fit(model, train, test, optimizer=optimizer, scheduler=scheduler, epochs=3, progress=False)
    difference = max(float(np.abs(a.data - b.data).max())
                     for a, b in zip(alone[0].parameters(), model.parameters()))
    checksums = gathered_checksums([p.data for p in model.parameters()], world)
    assert difference < 1e-5
    assert (checksums == checksums[0]).all()
    assert np.allclose(history.train_loss, alone_history.train_loss, atol=1e-5)
    assert history.train_accuracy == alone_history.train_accuracy
    assert history.val_accuracy == alone_history.val_accuracy
    assert np.allclose(history.val_loss, alone_history.val_loss, atol=1e-5)


def test_evaluate_on_a_split_loader_sums_the_ranks_shares(world):
    model, _, _, _, test = parts(world)
    with single_process():
        alone = evaluate(model, parts(world, sharded=False)[4])
    together = evaluate(model, test)
    assert together["confusion"].sum() == 21
    assert np.array_equal(together["confusion"], alone["confusion"])
    assert together["loss"] == pytest.approx(alone["loss"], abs=1e-6)


def test_running_statistics_are_the_ranks_mean_after_every_epoch(world):
    model, optimizer, scheduler, train, test = parts(world, batch_norm=True)
    fit(model, train, test, optimizer=optimizer, scheduler=scheduler, epochs=1, progress=False)
    bn = model[1]
    gathered = world.allgather(np.concatenate([bn.running_mean.data, bn.running_var.data]))
    assert (gathered == gathered[0]).all()


def test_rank_0_alone_writes_checkpoints_and_a_resumed_run_equals_an_uninterrupted_one(world, tmp_path):
    folder = shared_folder(tmp_path, world)
    model, optimizer, scheduler, train, test = parts(world)
    fit(model, train, test, optimizer=optimizer, scheduler=scheduler, epochs=4, progress=False,
        checkpoint_dir=os.path.join(folder, "whole"))
    model_b, optimizer_b, scheduler_b, train_b, test_b = parts(world)
    fit(model_b, train_b, test_b, optimizer=optimizer_b, scheduler=scheduler_b, epochs=2, progress=False,
        checkpoint_dir=os.path.join(folder, "first"))
    resumed = parts(world)
    state = load_checkpoint(os.path.join(folder, "first", "last.npz"), resumed[0], resumed[1], resumed[2],
                            loader=resumed[3])
    fit(resumed[0], resumed[3], resumed[4], optimizer=resumed[1], scheduler=resumed[2], epochs=4,
        start_epoch=state["epoch"], history=state["history"], progress=False,
        checkpoint_dir=os.path.join(folder, "resumed"))
    difference = max(float(np.abs(a.data - b.data).max()) for a, b in zip(model.parameters(),
                                                                          resumed[0].parameters()))
    own_files = sorted(os.listdir(tmp_path))  # what this rank wrote into its own tmp_path
    assert difference == 0.0
    assert own_files == (["first", "resumed", "whole"] if world.rank == 0 else [])


def test_fit_refuses_a_loader_that_does_not_split_the_data(world):
    if world.size == 1:
        pytest.skip("at one rank any loader is the whole data; this runs under mpiexec -n 2 (test_launch.py)")
    model, optimizer, _, train, _ = parts(world, sharded=False)
    with pytest.raises(ValueError, match="train_loader has no sampler"):
        fit(model, train, optimizer=optimizer, epochs=1, progress=False)


def test_fit_refuses_ranks_with_different_numbers_of_batches(world):
    if world.size == 1:
        pytest.skip("one rank cannot disagree with itself; this runs under mpiexec -n 2 (test_launch.py)")
    model, optimizer = net(), None
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    data = Blobs(48 if world.rank == 0 else 40)
    loader = DataLoader(data, 4, sampler=DistributedSampler(data, seed=0))
    with pytest.raises(ValueError, match="different numbers of batches per epoch"):
        fit(model, loader, optimizer=optimizer, epochs=1, progress=False)


def test_fit_takes_a_model_the_user_wrapped_and_checkpoints_the_inner_one(world, tmp_path):
    from minicnn.distributed import DataParallel

    folder = shared_folder(tmp_path, world)
    model, optimizer, scheduler, train, test = parts(world)
    fit(DataParallel(model), train, test, optimizer=optimizer, scheduler=scheduler, epochs=1, progress=False,
        checkpoint_dir=folder)
    with np.load(os.path.join(folder, "last.npz"), allow_pickle=False) as archive:
        keys = sorted(key for key in archive.files if key.startswith("model/"))
    assert keys == sorted("model/" + key for key in model.state_dict())


def test_only_rank_0_shows_progress(world, capsys):
    model, optimizer, scheduler, train, test = parts(world)
    fit(model, train, test, optimizer=optimizer, scheduler=scheduler, epochs=1, progress=True)
    shown = capsys.readouterr().err
    assert ("epoch 1/1" in shown) == (world.rank == 0)
