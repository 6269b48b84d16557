"""minicnn.checkpoint under bad files and bad moments: a load that fails changes nothing, a write is whole.

Each malformed entry is made by rewriting one entry of a good checkpoint; the
load must raise a typed error naming the entry, and leave the model, the
optimizer, the scheduler, the loader and the random state exactly as they were.
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from test_checkpoint import assert_same_state, training_objects

import minicnn
import minicnn.checkpoint as checkpoint_module
from minicnn import optim
from minicnn.checkpoint import load_checkpoint, remove_stale_temporary_files, save_checkpoint
from minicnn.nn import StateDictError
from minicnn.train import fit


@pytest.fixture
def saved(tmp_path):
    """A checkpoint after one epoch of training, with every entry present."""
    model, optimizer, scheduler, loader = training_objects()
    history = fit(model, loader, optimizer=optimizer, scheduler=scheduler, epochs=1, progress=False)
    return save_checkpoint(tmp_path / "last.npz", model, optimizer, scheduler, epoch=1, history=history,
                           loader=loader, extra={"note": "good"})


def rewrite(path, change):
    """Apply ``change(arrays)`` to the archive's entries and write them back (as a tampered file would be)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    change(arrays)
    np.savez(path, **arrays)
    return path


def json_change(key, change):
    """A ``rewrite`` change that edits the JSON entry ``key`` with ``change(value) -> value``."""
    def edit(arrays):
        arrays[key] = np.array(json.dumps(change(json.loads(str(arrays[key][()])))))
    return edit


def set_entry(key, value):
    def edit(arrays):
        arrays[key] = np.asarray(value)
    return edit


def drop_entry(key):
    return lambda arrays: arrays.pop(key)


def with_item(key, value):
    """A JSON-object edit: the same dict with ``key`` set to ``value``."""
    return lambda state: {**state, key: value}


def snapshot(model, optimizer, scheduler, loader):
    return (model.state_dict(), optimizer.state_dict(), scheduler.state_dict(), loader.state_dict(),
            minicnn.get_rng_state())


def assert_unchanged(before, after):
    assert_same_state(before[0], after[0])
    saved, now = before[1], after[1]
    assert saved["param_groups"] == now["param_groups"]
    assert saved["state"].keys() == now["state"].keys()
    for index in saved["state"]:
        for name, value in saved["state"][index].items():
            assert np.array_equal(value, now["state"][index][name]), (index, name)
    assert before[2:] == after[2:]


BAD_ENTRIES = [
    ("epoch", set_entry("epoch", -1), ValueError, "entry 'epoch' .* is -1, expected the number of epochs"),
    ("epoch", set_entry("epoch", 2.5), ValueError, "entry 'epoch' .* must be a 0-d integer array"),
    ("epoch", set_entry("epoch", [1, 2]), ValueError, r"entry 'epoch' .* array of shape \(2,\)"),
    ("format", set_entry("format", 7), ValueError, "has checkpoint format 7, this minicnn reads format 1"),
    ("model", set_entry("model/0.weight", np.zeros((2, 2), np.float32)), StateDictError,
     "size mismatch for 0.weight"),
    ("model", set_entry("model/0.weight", np.full((4, 1, 3, 3), "x")), StateDictError,
     "0.weight has dtype <U1, expected numbers"),
    ("optimizer state", set_entry("optimizer/state/0/momentum_buffer", np.zeros(3, np.float32)), ValueError,
     r"optimizer state .* loaded state 'momentum_buffer' of parameter 0 has shape \(3,\)"),
    ("optimizer state", set_entry("optimizer/state/0/momentum_buffer", np.full((4, 1, 3, 3), "x")), ValueError,
     "'momentum_buffer' of parameter 0 has dtype <U1, expected numbers"),
    ("optimizer state", set_entry("optimizer/state/first/momentum_buffer", np.zeros(4, np.float32)), ValueError,
     "entry 'optimizer/state/first/momentum_buffer' .* is not named optimizer/state/<index>/<name>"),
    ("optimizer state", set_entry("optimizer/state/0/exp_avg", np.zeros((4, 1, 3, 3), np.float32)), ValueError,
     "'exp_avg' of parameter 0 is not state SGD keeps"),
    ("param_groups", json_change("optimizer/param_groups", lambda groups: [{**groups[0], "lr": "fast"}]),
     ValueError, "SGD: learning rate must be a real number, got str 'fast'"),
    ("param_groups", json_change("optimizer/param_groups", lambda groups: [{**groups[0], "nesterov": "no"}]),
     ValueError, "SGD: nesterov must be True or False, got str 'no'"),
    ("param_groups", json_change("optimizer/param_groups", lambda groups: groups[0]), ValueError,
     "entry 'optimizer/param_groups' .* must be a list of dicts, got dict"),
    ("param_groups", json_change("optimizer/param_groups",
                                 lambda groups: [{k: v for k, v in groups[0].items() if k != "momentum"}]),
     ValueError, "SGD: parameter group 0 of the loaded state lacks momentum, which SGD needs"),
    ("scheduler", json_change("scheduler", with_item("last_epoch", "3")), ValueError,
     "the scheduler state .* StepLR.load_state_dict: 'last_epoch' is '3', expected an int"),
    ("scheduler", json_change("scheduler", with_item("base_lrs", [0.1, 0.2])), ValueError,
     r"'base_lrs' is \[0.1, 0.2\], expected a list of 1 \(one per param group\)"),
    ("scheduler", json_change("scheduler", lambda state: {"T_max": 5, "eta_min": 0.0}), ValueError,
     "StepLR.load_state_dict: the saved state lacks .*step_size.* saved by another scheduler type"),
    ("scheduler", json_change("scheduler", lambda state: [state]), ValueError,
     "entry 'scheduler' .* must be a JSON object, got list"),
    ("loader", json_change("loader", with_item("epoch", -1)), ValueError,
     "the loader state .* DataLoader: epoch must be >= 0, got -1"),
    ("rng", json_change("rng", lambda state: {"seed": state["seed"]}), ValueError,
     "entry 'rng' .* must be a dict with 'seed', 'generator' and 'philox_offset'"),
    ("rng", json_change("rng", with_item("generator", {"bit_generator": "MT19937"})), ValueError,
     "entry 'rng' .* holds no valid NumPy generator state"),
    ("rng", json_change("rng", with_item("philox_offset", -5)), ValueError,
     "entry 'rng' .* has philox_offset -5, expected an int >= 0"),
    ("rng", set_entry("rng", np.array("{not json")), ValueError, "entry 'rng' .* is not valid JSON"),
    ("rng", set_entry("rng", 3.0), ValueError, r"entry 'rng' .* must be JSON text \(a 0-d unicode array\)"),
    ("history", json_change("history", lambda metrics: {**metrics, "lr": ["fast"]}), ValueError,
     "entry 'history' .* metric 'lr' of epoch 1 is 'fast', expected a number or None"),
    ("history", json_change("history", lambda metrics: {key: [] for key in metrics}), ValueError,
     "entry 'history' .* holds 0 epochs but entry 'epoch' says 1 were completed"),
    ("history", json_change("history", lambda metrics: {**metrics, "lr": 0.1}), ValueError,
     "entry 'history' .* metric 'lr' must be a list, got float"),
    ("optimizer", drop_entry("optimizer/param_groups"), ValueError,
     "an optimizer was given but .* holds no optimizer state"),
    ("scheduler", drop_entry("scheduler"), ValueError, "a scheduler was given but .* holds no scheduler state"),
]


@pytest.mark.parametrize("what, change, error, message", BAD_ENTRIES,
                         ids=[f"{case[0]}-{index}" for index, case in enumerate(BAD_ENTRIES)])
def test_a_malformed_entry_is_refused_by_name_and_nothing_changes(saved, what, change, error, message):
    rewrite(saved, change)
    fresh = training_objects(seed=3)
    minicnn.randn(3)  # a random state of its own, which the failed load must keep
    before = snapshot(*fresh)
    with pytest.raises(error, match=message):
        load_checkpoint(saved, fresh[0], fresh[1], fresh[2], loader=fresh[3])
    assert_unchanged(before, snapshot(*fresh))


def test_a_bad_random_state_fails_before_the_weights_are_replaced(saved):
    rewrite(saved, json_change("rng", with_item("generator", "garbage")))
    model, optimizer, _, _ = training_objects(seed=3)
    before = model.state_dict()
    with pytest.raises(ValueError, match="entry 'rng'"):
        load_checkpoint(saved, model, optimizer)
    assert_same_state(model.state_dict(), before)


def test_when_the_last_object_refuses_its_state_those_loaded_before_are_put_back(saved):
    fresh = training_objects(seed=3)

    class PickyLoader:  # valid JSON, but this loader's own check refuses it: the last of four to load
        def state_dict(self):
            return {"position": 0}

        def load_state_dict(self, state):
            raise ValueError("PickyLoader: wants a 'position'")

    before = snapshot(*fresh)
    with pytest.raises(ValueError, match="the loader state in .* does not fit the loader given: PickyLoader"):
        load_checkpoint(saved, fresh[0], fresh[1], fresh[2], loader=PickyLoader())
    assert_unchanged(before, snapshot(*fresh))


@pytest.mark.parametrize("saved_with, resumed_with", [
    (lambda params: optim.Adam(params, lr=1e-3), lambda params: optim.SGD(params, lr=0.1)),
    (lambda params: optim.SGD(params, lr=0.1, momentum=0.9), lambda params: optim.Adam(params)),
    (lambda params: optim.Adam(params), lambda params: optim.AdamW(params)),
    (lambda params: optim.RMSprop(params), lambda params: optim.Adam(params)),
], ids=["adam-to-sgd", "sgd-to-adam", "adam-to-adamw", "rmsprop-to-adam"])
def test_resuming_with_another_optimizer_type_names_both_types(tmp_path, saved_with, resumed_with):
    model, _, _, loader = training_objects()
    optimizer = saved_with(model.parameters())
    fit(model, loader, optimizer=optimizer, epochs=1, progress=False)
    path = save_checkpoint(tmp_path / "c.npz", model, optimizer, epoch=1)
    other = resumed_with(model.parameters())
    saved_type, given_type = type(optimizer).__name__, type(other).__name__
    with pytest.raises(ValueError, match=f"holds optimizer state of type {saved_type}, but the optimizer given is "
                                         f"of type {given_type}"):
        load_checkpoint(path, model, other)


def test_a_checkpoint_without_types_still_names_a_foreign_optimizer_state(tmp_path):
    model, _, _, loader = training_objects()
    adam = optim.Adam(model.parameters())
    fit(model, loader, optimizer=adam, epochs=1, progress=False)
    path = rewrite(save_checkpoint(tmp_path / "c.npz", model, adam, epoch=1), drop_entry("types"))
    with pytest.raises(ValueError, match="SGD: parameter group 0 of the loaded state lacks momentum, dampening, "
                                         "nesterov, which SGD needs .*saved by another optimizer type"):
        load_checkpoint(path, model, optim.SGD(model.parameters(), lr=0.1))


def test_a_scheduler_of_another_type_is_named(saved):
    model, optimizer, _, loader = training_objects(seed=3)
    cosine = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    with pytest.raises(ValueError, match="holds scheduler state of type StepLR, but the scheduler given is of "
                                         "type CosineAnnealingLR"):
        load_checkpoint(saved, model, optimizer, cosine, loader=loader)


def test_an_epoch_beyond_the_epochs_asked_for_is_refused_by_fit(saved):
    model, optimizer, scheduler, loader = training_objects(seed=3)
    info = load_checkpoint(saved, model, optimizer, scheduler, loader=loader)
    with pytest.raises(ValueError, match=r"fit: start_epoch \(1\) is past epochs \(0\)"):
        fit(model, loader, optimizer=optimizer, scheduler=scheduler, epochs=0, start_epoch=info["epoch"],
            history=info["history"], progress=False)


# --- temporary files ---------------------------------------------------------------------------------
def a_finished_pid():
    """The pid of a process that has exited (so none has it now, barring a reuse within milliseconds)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporary_files_of_dead_writers_are_removed_and_nothing_else(tmp_path):
    model = training_objects()[0]
    dead, alive = a_finished_pid(), os.getppid()
    stale = [f".last.npz.{dead}.k3j9x_q1.tmp", f".best.npz.{os.getpid()}.abcdefgh.tmp"]  # ours, not being written
    kept = [f".last.npz.{alive}.abcdefgh.tmp",  # another live run's write in progress
            ".tmp-abc.npz", "notes.tmp", "last.npz.1.abcdefgh.tmp", f".last.npz.{dead}.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"PK half")
    save_checkpoint(tmp_path / "last.npz", model)
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["last.npz"])
    assert remove_stale_temporary_files(tmp_path / "missing") == []


def test_fit_removes_stale_temporary_files_when_it_starts(tmp_path):
    model, optimizer, _, loader = training_objects()
    name = f".last.npz.{a_finished_pid()}.zzzzzzzz.tmp"
    (tmp_path / name).write_bytes(b"half")
    fit(model, loader, optimizer=optimizer, epochs=0, checkpoint_dir=tmp_path, progress=False)
    assert not (tmp_path / name).exists()


def test_fit_refuses_a_checkpoint_dir_that_is_a_file_before_training(tmp_path):
    model, optimizer, _, loader = training_objects()
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="fit: checkpoint_dir .*runs' is a file; pass a folder"):
        fit(model, loader, optimizer=optimizer, epochs=1, checkpoint_dir=tmp_path / "runs", progress=False)


# --- Ctrl-C during a write ---------------------------------------------------------------------------
def test_ctrl_c_in_the_middle_of_savez_waits_for_the_whole_file_then_propagates(tmp_path, monkeypatch):
    model = training_objects()[0]
    path = save_checkpoint(tmp_path / "last.npz", model, epoch=1)
    real_savez = np.savez

    def savez_interrupted_half_way(file, **arrays):
        first = dict(list(arrays.items())[:3])
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, with most of the archive still to write
        real_savez(file, **first, **{key: value for key, value in arrays.items() if key not in first})

    monkeypatch.setattr(checkpoint_module.np, "savez", savez_interrupted_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, epoch=2)
    assert os.listdir(tmp_path) == ["last.npz"]
    assert load_checkpoint(path, training_objects()[0])["epoch"] == 2  # the new file, whole
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_interrupt_guard_leaves_other_sigint_handlers_alone(tmp_path):
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        save_checkpoint(tmp_path / "last.npz", training_objects()[0])
        os.kill(os.getpid(), signal.SIGINT)
        assert received == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)
