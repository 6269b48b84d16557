"""minicnn.checkpoint: one atomic, pickle-free .npz that resumes a run bit for bit."""
import json
import os

import numpy as np
import pytest

import minicnn
import minicnn.checkpoint as checkpoint_module
from minicnn import nn, optim
from minicnn.checkpoint import load_checkpoint, read_checkpoint_extra, save_checkpoint
from minicnn.data import DataLoader
from minicnn.models import save_npz_state_dict
from minicnn.nn import StateDictError
from minicnn.train import History, fit


class PatternImages:
    """Three classes of 1x6x6 float images (row, column, diagonal) plus noise; the dataset contract's API."""

    def __init__(self, count, seed):
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 3, count).astype(np.int64)
        patterns = np.zeros((3, 1, 6, 6), np.float32)
        patterns[0, 0, 2, :] = 1.0
        patterns[1, 0, :, 3] = 1.0
        patterns[2, 0, np.arange(6), np.arange(6)] = 1.0
        self.images = patterns[self.labels] + 0.5 * rng.standard_normal((count, 1, 6, 6)).astype(np.float32)

    def __len__(self):
        return len(self.labels)

    def get_batch(self, indices, rng):
        return self.images[indices], self.labels[indices]


def dropout_bn_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(0.5), nn.Linear(36, 3))


def training_objects(seed=0):
    """A model with dropout and batch norm, SGD with momentum, StepLR and a shuffling loader."""
    minicnn.manual_seed(seed)
    model = dropout_bn_model()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loader = DataLoader(PatternImages(100, seed=1), batch_size=16, shuffle=True, seed=7)
    return model, optimizer, scheduler, loader


def assert_same_state(first, second):
    assert list(first) == list(second)
    for key in first:
        assert first[key].dtype == second[key].dtype, key
        assert np.array_equal(first[key], second[key]), key


# --- exact resume --------------------------------------------------------------------------------
def _resumed_run(tmp_path, reseed_after_load=None):
    model, optimizer, scheduler, loader = training_objects()
    val_loader = DataLoader(PatternImages(30, seed=2), batch_size=15)
    history = fit(model, loader, val_loader, optimizer=optimizer, scheduler=scheduler, epochs=1,
                  checkpoint_dir=tmp_path, progress=False)
    assert len(history) == 1
    minicnn.manual_seed(999)  # the fresh objects' own initialisation must not matter
    model, optimizer, scheduler, loader = training_objects(seed=1234)
    info = load_checkpoint(tmp_path / "last.npz", model, optimizer, scheduler, loader=loader)
    if reseed_after_load is not None:
        minicnn.manual_seed(reseed_after_load)
    history = fit(model, loader, val_loader, optimizer=optimizer, scheduler=scheduler, epochs=2,
                  start_epoch=info["epoch"], history=info["history"], progress=False)
    return model, optimizer, history


def test_resuming_gives_bit_identical_parameters_to_an_uninterrupted_run(tmp_path):
    model, optimizer, scheduler, loader = training_objects()
    val_loader = DataLoader(PatternImages(30, seed=2), batch_size=15)
    straight = fit(model, loader, val_loader, optimizer=optimizer, scheduler=scheduler, epochs=2, progress=False)
    resumed_model, resumed_optimizer, resumed = _resumed_run(tmp_path)

    assert_same_state(model.state_dict(), resumed_model.state_dict())  # parameters and BN buffers
    assert int(model.state_dict()["1.num_batches_tracked"]) == 14
    for index, state in optimizer.state_dict()["state"].items():
        assert np.array_equal(state["momentum_buffer"], resumed_optimizer.state_dict()["state"][index]
                              ["momentum_buffer"])
    assert resumed_optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] == 0.0125
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
        assert getattr(resumed, key) == getattr(straight, key), key


def test_the_resume_test_notices_a_lost_random_state(tmp_path):
    model, optimizer, scheduler, loader = training_objects()
    fit(model, loader, optimizer=optimizer, scheduler=scheduler, epochs=2, progress=False)
    resumed_model, _, _ = _resumed_run(tmp_path, reseed_after_load=5)  # other dropout masks in epoch 2
    assert not np.array_equal(model.state_dict()["6.weight"], resumed_model.state_dict()["6.weight"])


# --- round trip and file format --------------------------------------------------------------------
def test_round_trip_restores_every_component(tmp_path):
    model, _, _, loader = training_objects()
    optimizer = optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.99))
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    history = fit(model, loader, optimizer=optimizer, scheduler=scheduler, epochs=2, progress=False)
    rng_state = minicnn.get_rng_state()
    path = save_checkpoint(tmp_path / "run" / "ckpt.npz", model, optimizer, scheduler, epoch=2, history=history,
                           loader=loader, extra={"model": "tiny", "width": 0.25})
    assert path == os.fspath(tmp_path / "run" / "ckpt.npz")

    minicnn.randn(10)  # move the random state on
    fresh_model, _, _, fresh_loader = training_objects(seed=3)
    fresh_optimizer = optim.Adam(fresh_model.parameters(), lr=0.5)
    fresh_scheduler = optim.lr_scheduler.CosineAnnealingLR(fresh_optimizer, T_max=4)
    info = load_checkpoint(path, fresh_model, fresh_optimizer, fresh_scheduler, loader=fresh_loader)

    assert info["epoch"] == 2 and info["extra"] == {"model": "tiny", "width": 0.25}
    assert isinstance(info["history"], History) and info["history"].to_dict() == history.to_dict()
    assert_same_state(model.state_dict(), fresh_model.state_dict())
    saved, restored = optimizer.state_dict(), fresh_optimizer.state_dict()
    assert restored["param_groups"] == saved["param_groups"]
    assert restored["param_groups"][0]["betas"] == [0.8, 0.99]
    for index in saved["state"]:
        assert restored["state"][index]["step"] == saved["state"][index]["step"] == 14
        for name in ("exp_avg", "exp_avg_sq"):
            assert np.array_equal(restored["state"][index][name], saved["state"][index][name])
    assert fresh_scheduler.state_dict() == scheduler.state_dict()
    assert fresh_loader.state_dict() == loader.state_dict() == {"epoch": 2, "seed": 7, "batch": 0}
    assert minicnn.get_rng_state() == rng_state


def test_the_file_is_one_npz_of_plain_arrays_loadable_without_pickle(tmp_path):
    model, optimizer, scheduler, loader = training_objects()
    fit(model, loader, optimizer=optimizer, scheduler=scheduler, epochs=1, progress=False)
    path = save_checkpoint(tmp_path / "c.npz", model, optimizer, scheduler, epoch=1, loader=loader)
    assert os.listdir(tmp_path) == ["c.npz"]
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    assert all(array.dtype != object for array in arrays.values())
    assert int(arrays["format"]) == 1 and int(arrays["epoch"]) == 1
    assert np.array_equal(arrays["model/0.weight"], model.state_dict()["0.weight"])
    assert arrays["model/1.num_batches_tracked"].dtype == np.int64
    assert arrays["model/0.weight"].dtype == np.float32
    assert np.array_equal(arrays["optimizer/state/0/momentum_buffer"],
                          optimizer.state_dict()["state"][0]["momentum_buffer"])
    for key in ("optimizer/param_groups", "scheduler", "loader", "rng"):
        assert arrays[key].dtype.kind == "U" and arrays[key].shape == (), key
    assert json.loads(str(arrays["loader"][()])) == {"epoch": 1, "seed": 7, "batch": 0}
    assert json.loads(str(arrays["rng"][()])) == minicnn.get_rng_state()
    assert "history" not in arrays and "extra" not in arrays


def test_fit_writes_last_every_epoch_and_best_on_the_best_validation_accuracy(tmp_path):
    model, optimizer, scheduler, loader = training_objects()
    val_loader = DataLoader(PatternImages(30, seed=2), batch_size=15)
    history = fit(model, loader, val_loader, optimizer=optimizer, scheduler=scheduler, epochs=3,
                  checkpoint_dir=tmp_path / "out", progress=False, checkpoint_extra={"dataset": "patterns"})
    assert sorted(os.listdir(tmp_path / "out")) == ["best.npz", "last.npz"]
    last = load_checkpoint(tmp_path / "out" / "last.npz", dropout_bn_model())
    assert last["epoch"] == 3 and last["extra"] == {"dataset": "patterns"}
    assert last["history"].to_dict() == history.to_dict()
    assert read_checkpoint_extra(tmp_path / "out" / "best.npz") == {"dataset": "patterns"}
    best = load_checkpoint(tmp_path / "out" / "best.npz", dropout_bn_model())
    assert best["epoch"] == 1 + int(np.argmax(history.val_accuracy))  # the first epoch with the top accuracy


# --- atomic writes ---------------------------------------------------------------------------------
def test_a_failed_write_keeps_the_old_checkpoint_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    model = dropout_bn_model()
    path = save_checkpoint(tmp_path / "last.npz", model, epoch=1)
    before = (tmp_path / "last.npz").read_bytes()

    def savez_that_dies_half_way(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.np, "savez", savez_that_dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    assert os.listdir(tmp_path) == ["last.npz"]
    assert (tmp_path / "last.npz").read_bytes() == before


def test_the_new_file_is_synced_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(checkpoint_module.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(checkpoint_module.os, "replace",
                        lambda source, target: (events.append(("replace", os.path.dirname(source) ==
                                                               os.path.dirname(target))),
                                                real_replace(source, target))[1])
    save_checkpoint(tmp_path / "last.npz", dropout_bn_model())
    assert events[:2] == ["fsync", ("replace", True)]  # same folder: the rename is atomic


# --- errors --------------------------------------------------------------------------------------
def test_loading_reports_missing_and_foreign_files(tmp_path):
    model = dropout_bn_model()
    with pytest.raises(FileNotFoundError, match="load_checkpoint: no checkpoint at .*nowhere.npz"):
        load_checkpoint(tmp_path / "nowhere.npz", model)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="load_checkpoint: .*junk.npz.* is not a readable .npz checkpoint"):
        load_checkpoint(tmp_path / "junk.npz", model)
    weights = save_npz_state_dict(model, tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="is an .npz but not a minicnn checkpoint"):
        load_checkpoint(weights, model)
    with pytest.raises(ValueError, match="read_checkpoint_extra: .* is an .npz but not a minicnn checkpoint"):
        read_checkpoint_extra(weights)
    assert read_checkpoint_extra(save_checkpoint(tmp_path / "plain.npz", model)) is None
    np.savez(tmp_path / "pickled.npz", format=np.array(1), epoch=np.array(0),
             rng=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="holds pickled objects, which are never loaded"):
        load_checkpoint(tmp_path / "pickled.npz", model)


def test_a_failed_load_leaves_every_object_as_it_was(tmp_path):
    model, optimizer, _, _ = training_objects()
    path = save_checkpoint(tmp_path / "model_only.npz", model)
    other, other_optimizer, _, _ = training_objects(seed=5)
    before = other.state_dict()
    with pytest.raises(ValueError, match="load_checkpoint: an optimizer was given but .* holds no optimizer"):
        load_checkpoint(path, other, other_optimizer)
    assert_same_state(other.state_dict(), before)

    path = save_checkpoint(tmp_path / "with_optimizer.npz", model, optimizer)
    two_groups = optim.SGD([{"params": list(other.parameters())[:2]}, {"params": list(other.parameters())[2:]}],
                           lr=0.1)
    with pytest.raises(ValueError, match="SGD: the loaded state dict has 1 parameter groups"):
        load_checkpoint(path, other, two_groups)
    assert_same_state(other.state_dict(), before)  # the model was put back

    wrong_shape = nn.Sequential(nn.Conv2d(1, 8, 3))
    with pytest.raises(StateDictError):
        load_checkpoint(path, wrong_shape)


@pytest.mark.parametrize("arguments, error, message", [
    ({"model": "net"}, TypeError, "save_checkpoint: model must be a minicnn.nn.Module, got str"),
    ({"epoch": -1}, ValueError, "save_checkpoint: epoch must be a non-negative int"),
    ({"epoch": 1.5}, ValueError, "save_checkpoint: epoch must be a non-negative int"),
    ({"extra": {"array": np.zeros(2)}}, TypeError, "save_checkpoint: extra must be JSON-serialisable"),
    ({"history": [1, 2]}, TypeError, "save_checkpoint: history must be a History, a dict or None, got list"),
    ({"loader": object()}, TypeError, "save_checkpoint: loader must have state_dict"),
])
def test_save_rejects_bad_arguments(tmp_path, arguments, error, message):
    call = {"path": tmp_path / "c.npz", "model": dropout_bn_model()}
    call.update(arguments)
    with pytest.raises(error, match=message):
        save_checkpoint(**call)
    assert not (tmp_path / "c.npz").exists()
