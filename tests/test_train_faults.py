"""Training under faults: killed, interrupted, or handed bad inputs, it fails cleanly and resumes.

* Runs in a subprocess are killed (SIGKILL) or interrupted (SIGINT, Ctrl-C) at
  random moments, over and over in the same folder: after each, every checkpoint
  there loads, the next run resumes from the last one, and the temporary file a
  killed write leaves is gone once the next run trains.  An interrupted run
  always ends with KeyboardInterrupt, within seconds: never one that keeps going.
* In this process, Ctrl-C is sent at chosen lines of ``fit`` (inside ``savez``,
  inside a ``__del__`` ...): it must always come out as KeyboardInterrupt.
* A sweep of bad inputs to fit, evaluate, the optimizers, the schedulers and the
  checkpoint functions: each a typed error whose message names what was wrong
  (and, where PyTorch accepts an input, minicnn accepts it too).
"""
import os
import random
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from test_checkpoint import PatternImages, training_objects

import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.checkpoint import load_checkpoint, read_checkpoint_extra, save_checkpoint
from minicnn.data import DataLoader
from minicnn.train import evaluate, fit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(minicnn.__file__)))
TEMPORARY = re.compile(r"^\..+\.\d+\.[a-z0-9_]+\.tmp$")  # save_checkpoint's temporary names

# A run resuming from <folder>/last.npz when there is one; prints "resumed <epoch>", then "training" at its
# first step (stale temporary files are gone by then), then "done".  Tiny steps, an 80k-parameter model:
# checkpoint writes are a good part of its time (about a fifth), so kills often land inside one.  With a
# third argument "pause", the first write stops half way, says "writing" and waits there.
CHILD = '''
import os, sys, time
import numpy as np
import minicnn
import minicnn.nn.functional as F
from minicnn import nn, optim
from minicnn.checkpoint import load_checkpoint
from minicnn.data import DataLoader
from minicnn.train import fit

if sys.argv[3:] == ["pause"]:
    real_savez = np.savez

    def savez_that_pauses(file, **arrays):
        file.write(b"PK half an archive")
        print("writing", flush=True)
        time.sleep(3)
        file.seek(0)
        real_savez(file, **arrays)

    np.savez = savez_that_pauses

class Arrays:
    def __init__(self, count):
        rng = np.random.default_rng(0)
        self.images = rng.standard_normal((count, 1, 6, 6)).astype(np.float32)
        self.labels = rng.integers(0, 3, count)
    def __len__(self):
        return len(self.labels)
    def get_batch(self, indices, rng):
        return self.images[indices], self.labels[indices]

folder, epochs = sys.argv[1], int(sys.argv[2])
minicnn.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2048), nn.ReLU(), nn.Linear(2048, 3))
optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)
loader = DataLoader(Arrays(32), batch_size=8, shuffle=True, seed=1)
start, history = 0, None
if os.path.exists(os.path.join(folder, "last.npz")):
    info = load_checkpoint(os.path.join(folder, "last.npz"), model, optimizer, scheduler, loader=loader)
    start, history = info["epoch"], info["history"]
print("resumed", start, flush=True)
announced = []

def loss_fn(outputs, labels):
    if not announced:
        announced.append(print("training", flush=True))
    return F.cross_entropy(outputs, labels)

fit(model, loader, optimizer=optimizer, scheduler=scheduler, epochs=epochs, start_epoch=start, history=history,
    loss_fn=loss_fn, checkpoint_dir=folder, progress=False)
print("done", flush=True)
'''


def child_objects():
    """The child's model, optimizer, scheduler and loader, to load its checkpoints here."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2048), nn.ReLU(), nn.Linear(2048, 3))
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)
    return model, optimizer, scheduler, DataLoader(PatternImages(32, seed=0), batch_size=8, seed=1)


def temporary_files(folder):
    return {name for name in os.listdir(folder) if TEMPORARY.match(name)}


def start_child(script, folder, epochs, *options):
    environment = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, script, str(folder), str(epochs), *options], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment)


def expect_line(process, prefix):
    line = process.stdout.readline()
    if not line.startswith(prefix):
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"expected {prefix!r} from the child, got {line!r}; stderr:\n{err[-3000:]}")
    return line.split()


def killed_run(script, folder, kind, delay, expected_epoch):
    """One run resumed in ``folder``, sent ``kind`` after ``delay`` s of training; returns what it left."""
    stale = temporary_files(folder)
    process = start_child(script, folder, 10**6)
    assert int(expect_line(process, "resumed")[1]) == expected_epoch, "did not resume from last.npz"
    expect_line(process, "training")
    assert not stale & temporary_files(folder), "the temporary files of a killed write were not removed"
    time.sleep(delay)
    process.send_signal(kind)
    try:
        out, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{kind.name} at {delay:.2f} s: the run was still going 15 s later (an interrupt swallowed)")
    assert process.returncode == -kind, (kind.name, process.returncode, err[-3000:])
    assert "done" not in out
    if kind == signal.SIGINT:
        assert err.rstrip().endswith("KeyboardInterrupt"), err[-3000:]
    epoch = expected_epoch
    for name in sorted(os.listdir(folder)):
        if name.endswith(".npz"):  # every checkpoint present loads, with every component
            info = load_checkpoint(os.path.join(folder, name), *child_objects()[:3], loader=child_objects()[3])
            assert len(info["history"]) == info["epoch"]
            if name == "last.npz":
                epoch = info["epoch"]
    assert epoch >= expected_epoch
    return epoch, len(temporary_files(folder))


def kill_chain(script, folder, kinds, seed):
    """Runs in one folder, each resumed from the last and killed in turn; then one that finishes."""
    rng = random.Random(seed)
    epoch, left = 0, 0
    for kind in kinds:
        epoch, temporary = killed_run(script, folder, kind, rng.uniform(0.0, 0.3), epoch)
        left += temporary
    process = start_child(script, folder, epoch + 2)
    assert int(expect_line(process, "resumed")[1]) == epoch
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and out.endswith("done\n"), err[-3000:]
    assert not temporary_files(folder)
    assert load_checkpoint(os.path.join(folder, "last.npz"), child_objects()[0])["epoch"] == epoch + 2
    return left


@pytest.mark.cpu_only("subprocess runs of a CPU model")
def test_runs_killed_or_interrupted_at_random_moments_always_resume_from_a_whole_checkpoint(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    kinds = [signal.SIGKILL, signal.SIGINT] * 8  # 16 of each over two chains
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(2) as pool:  # two cores: one chain each
        runs = [pool.submit(kill_chain, script, folder, kinds, seed) for seed, folder in enumerate(folders)]
        temporary_left = sum(run.result() for run in runs)
    print(f"{len(kinds) * 2} runs killed or interrupted; {temporary_left} SIGKILLs landed inside a write")


@pytest.mark.cpu_only("subprocess runs of a CPU model")
@pytest.mark.parametrize("kind", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_run_stopped_half_way_through_a_write_keeps_a_whole_checkpoint(tmp_path, kind):
    script, folder = tmp_path / "child.py", tmp_path / "run"
    script.write_text(CHILD)
    folder.mkdir()
    process = start_child(script, folder, 5, "pause")
    expect_line(process, "resumed")
    expect_line(process, "training")
    expect_line(process, "writing")  # half an archive in a temporary file; no checkpoint yet
    assert len(temporary_files(folder)) == 1
    process.send_signal(kind)
    _, err = process.communicate(timeout=30)
    assert process.returncode == -kind, err[-3000:]
    if kind == signal.SIGKILL:  # the write died with it: its temporary file is left, no checkpoint
        assert os.listdir(folder) == list(temporary_files(folder))
        epoch = 0
    else:  # Ctrl-C waited for the write to finish, then stopped the run
        assert err.rstrip().endswith("KeyboardInterrupt") and os.listdir(folder) == ["last.npz"]
        epoch = 1
    killed_run(script, folder, signal.SIGINT, 0.1, epoch)  # resumes from it; the temporary file is gone


# --- Ctrl-C in this process, at chosen moments -----------------------------------------------------------
class SigintAtLine:
    """A trace function that sends this process SIGINT at its ``at``-th line event (and records them all)."""

    def __init__(self, at=None):
        self.at, self.count, self.lines = at, 0, []

    def __call__(self, frame, event, arg):
        if event != "line":
            return self
        self.count += 1
        if self.at is None:
            self.lines.append(frame.f_code.co_filename)
        elif self.count == self.at:
            sys.settrace(None)
            os.kill(os.getpid(), signal.SIGINT)
            return None
        return self


def resumed_fit(folder):
    model, optimizer, scheduler, loader = training_objects()
    info = load_checkpoint(folder / "last.npz", model, optimizer, scheduler, loader=loader)
    fit(model, loader, DataLoader(PatternImages(30, seed=2), 15), optimizer=optimizer, scheduler=scheduler,
        epochs=3, start_epoch=info["epoch"], history=info["history"], checkpoint_dir=folder, progress=False)


def traced(tracer, function, *args):
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        return function(*args)
    finally:
        sys.settrace(previous)


def test_ctrl_c_at_any_line_of_fit_stops_it_and_leaves_whole_checkpoints(tmp_path):
    model, optimizer, scheduler, loader = training_objects()
    fit(model, loader, optimizer=optimizer, scheduler=scheduler, epochs=1, checkpoint_dir=tmp_path / "first",
        progress=False)
    first = (tmp_path / "first" / "last.npz").read_bytes()
    survey = SigintAtLine()
    (tmp_path / "survey").mkdir()
    (tmp_path / "survey" / "last.npz").write_bytes(first)
    traced(survey, resumed_fit, tmp_path / "survey")
    # Half the moments inside a checkpoint write or a zip file's code (its __del__ included), half anywhere.
    writing = [index + 1 for index, name in enumerate(survey.lines)
               if name.endswith(("zipfile.py", "_npyio_impl.py", "checkpoint.py", "atomic_files.py",
                                 "interrupts.py", "format.py"))]
    rng = random.Random(0)
    moments = rng.sample(writing, 30) + rng.sample(range(1, survey.count + 1), 30)
    for at in moments:
        folder = tmp_path / f"at{at}"
        folder.mkdir()
        (folder / "last.npz").write_bytes(first)
        with pytest.raises(KeyboardInterrupt):
            traced(SigintAtLine(at), resumed_fit, folder)
        assert not temporary_files(folder)
        for name in os.listdir(folder):
            load_checkpoint(folder / name, training_objects()[0])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_that_a_finalizer_swallows_still_stops_fit_at_the_next_step(monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", lambda report: unraisable.append(report.exc_type))
    model, optimizer, _, loader = training_objects()
    steps = []

    class InterruptedWhileDeleted:
        def __del__(self):  # Ctrl-C arriving while a __del__ runs: Python prints "Exception ignored"
            os.kill(os.getpid(), signal.SIGINT)

    def loss_fn(outputs, labels):
        steps.append(len(steps) + 1)
        if len(steps) == 3:
            InterruptedWhileDeleted()  # deleted at once
        return F.cross_entropy(outputs, labels)

    with pytest.raises(KeyboardInterrupt):
        fit(model, loader, optimizer=optimizer, epochs=5, loss_fn=loss_fn, progress=False)
    assert unraisable == [KeyboardInterrupt]  # the interrupt was swallowed where it landed ...
    assert steps == [1, 2, 3]  # ... and fit stopped anyway, at the step it came in


# --- bad inputs --------------------------------------------------------------------------------------------
class Kit:
    """What the sweep's calls are made of: a tiny model, its optimizer and loaders."""

    def __init__(self, tmp_path):
        minicnn.manual_seed(0)
        self.tmp_path = tmp_path
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
        self.optimizer = optim.SGD(self.model.parameters(), lr=0.1)
        self.loader = DataLoader(PatternImages(20, seed=1), batch_size=10)
        self.checkpoint = save_checkpoint(tmp_path / "ok.npz", self.model, self.optimizer, epoch=1)
        self.checkpoint_bytes = (tmp_path / "ok.npz").read_bytes()

    def fit(self, **changes):
        call = {"model": self.model, "train_loader": self.loader, "optimizer": self.optimizer, "epochs": 1,
                "progress": False, **changes}
        return fit(**call)

    def used_up(self):
        parameters = self.model.parameters()
        list(parameters)
        return parameters

    def half_a_checkpoint(self):
        path = self.tmp_path / "half.npz"
        path.write_bytes(self.checkpoint_bytes[:300])
        return path


def _labels(*values):
    return minicnn.tensor(np.array(values, np.int64))


def _scheduler_state_of(make):
    return make(optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)).state_dict()


BAD_INPUTS = [
    # fit
    ("fit-optimizer-generator", lambda k: k.fit(optimizer=k.model.parameters()), TypeError,
     "fit: optimizer must be a minicnn.optim.Optimizer, got generator; e.g. minicnn.optim.SGD(model.parameters()"),
    ("fit-foreign-optimizer", lambda k: k.fit(optimizer=optim.SGD(nn.Linear(36, 3).parameters(), lr=0.1)),
     ValueError, "fit: none of the optimizer's 2 parameters belong to the model"),
    ("fit-divergence-factor-1", lambda k: k.fit(divergence_factor=1), ValueError,
     "fit: divergence_factor must be a finite number > 1"),
    ("fit-divergence-factor-str", lambda k: k.fit(divergence_factor="big"), TypeError,
     "fit: divergence_factor must be a number or None"),
    ("fit-divergence-factor-nan", lambda k: k.fit(divergence_factor=float("nan")), ValueError,
     "got nan"),
    ("fit-scheduler-of-another-optimizer",
     lambda k: k.fit(scheduler=optim.lr_scheduler.StepLR(optim.SGD(k.model.parameters(), lr=1), 2)),
     ValueError, "fit: the scheduler drives another optimizer than the one given"),
    ("fit-scheduler-int", lambda k: k.fit(scheduler=5), TypeError, "fit: scheduler must have a step() method"),
    ("fit-history-list", lambda k: k.fit(history=[1, 2]), TypeError,
     "fit: history must be a History, its dict or None, got list"),
    ("fit-history-incomplete", lambda k: k.fit(history={"train_loss": []}), ValueError,
     "History.from_dict: missing metrics train_accuracy"),
    ("fit-epochs-bool", lambda k: k.fit(epochs=True), TypeError, "fit: epochs must be an int, got bool"),
    ("fit-start-epoch-negative", lambda k: k.fit(start_epoch=-1), ValueError,
     "fit: start_epoch must be >= 0, got -1"),
    ("fit-batch-not-a-pair", lambda k: k.fit(train_loader=[np.zeros((2, 1, 6, 6), np.float32)]), TypeError,
     "fit: each batch must be a pair (images, labels), got ndarray"),
    ("fit-loss-a-float", lambda k: k.fit(loss_fn=lambda outputs, labels: 1.0), TypeError,
     "fit: loss_fn must return a one-element Tensor, got float"),
    ("fit-empty-loader", lambda k: k.fit(train_loader=[]), ValueError, "fit: train_loader yielded no batches"),
    ("fit-checkpoint-dir-a-file", lambda k: k.fit(checkpoint_dir=k.checkpoint), NotADirectoryError,
     "fit: checkpoint_dir"),
    ("fit-model-a-string", lambda k: k.fit(model="vgg11"), TypeError,
     "fit: model must be a minicnn.nn.Module, got str"),
    # evaluate
    ("evaluate-loader-none", lambda k: evaluate(k.model, None), TypeError,
     "evaluate: loader must be an iterable of (images, labels) batches, got NoneType"),
    ("evaluate-loss-fn-int", lambda k: evaluate(k.model, k.loader, loss_fn=3), TypeError,
     "evaluate: loss_fn must be callable, got int"),
    ("evaluate-label-out-of-range", lambda k: evaluate(k.model, [(minicnn.zeros(2, 1, 6, 6), _labels(0, 3))]),
     ValueError, "evaluate: labels must lie in [0, 3) for a model with 3 outputs, got 0..3"),
    ("evaluate-batch-a-triple", lambda k: evaluate(k.model, [(1, 2, 3)]), TypeError,
     "evaluate: each batch must be a pair (images, labels), got tuple"),
    # optimizers
    ("sgd-of-the-model", lambda k: optim.SGD(k.model, lr=0.1), TypeError,
     "SGD: params should be an iterable of Tensors, but got the model (Sequential) itself"),
    ("sgd-used-up-generator", lambda k: optim.SGD(k.used_up(), lr=0.1), ValueError,
     "SGD: got an empty parameter list: the iterator passed was already used up"),
    ("adam-empty-list", lambda k: optim.Adam([]), ValueError,
     "Adam: got an empty parameter list; pass model.parameters() of a model with parameters"),
    ("sgd-an-array", lambda k: optim.SGD([np.zeros(3, np.float32)], lr=0.1), TypeError,
     "SGD: can only optimize Tensors, but one of the params is ndarray (item 0, not a Tensor"),
    ("sgd-a-module-in-the-list", lambda k: optim.SGD([*k.model.parameters(), k.model], lr=0.1), TypeError,
     "one of the params is Sequential (item 2, a module: pass its .parameters())"),
    ("sgd-an-int", lambda k: optim.SGD(5, lr=0.1), TypeError,
     "SGD: params should be an iterable of Tensors or dicts (e.g. model.parameters()), but got int"),
    ("sgd-lr-string", lambda k: optim.SGD(k.model.parameters(), lr="0.1"), TypeError,
     "SGD: learning rate must be a real number, got str '0.1'"),
    ("sgd-lr-nan", lambda k: optim.SGD(k.model.parameters(), lr=float("nan")), ValueError,
     "SGD: invalid learning rate nan (expected a finite number)"),
    ("adam-lr-inf", lambda k: optim.Adam(k.model.parameters(), lr=float("inf")), ValueError,
     "Adam: invalid learning rate inf (expected a finite number)"),
    ("rmsprop-lr-negative", lambda k: optim.RMSprop(k.model.parameters(), lr=-0.01), ValueError,
     "RMSprop: invalid learning rate -0.01 (expected >= 0)"),
    ("adam-beta-string", lambda k: optim.Adam(k.model.parameters(), betas=(0.9, "x")), TypeError,
     "Adam: beta parameter at index 1: must be a real number, got str 'x'"),
    ("sgd-nesterov-string", lambda k: optim.SGD(k.model.parameters(), lr=0.1, momentum=0.9, nesterov="yes"),
     TypeError, "SGD: nesterov must be True or False, got str 'yes'"),
    ("sgd-group-params-int", lambda k: k.optimizer.add_param_group({"params": 5}), TypeError,
     "SGD: a param group's 'params' must be an iterable of Tensors, got int"),
    ("sgd-load-a-string", lambda k: k.optimizer.load_state_dict("state"), TypeError,
     "SGD.load_state_dict: expected a dict with 'state' and 'param_groups'"),
    ("adam-load-sgd-state", lambda k: optim.Adam(k.model.parameters()).load_state_dict(k.optimizer.state_dict()),
     ValueError, "Adam: parameter group 0 of the loaded state lacks betas, eps, amsgrad"),
    # schedulers
    ("steplr-gamma-string", lambda k: optim.lr_scheduler.StepLR(k.optimizer, 2, gamma="0.1"), TypeError,
     "StepLR: gamma must be a number, got str '0.1'"),
    ("steplr-gamma-negative", lambda k: optim.lr_scheduler.StepLR(k.optimizer, 2, gamma=-0.5), ValueError,
     "StepLR: invalid gamma -0.5 (expected a finite number >= 0)"),
    ("multisteplr-milestones-int", lambda k: optim.lr_scheduler.MultiStepLR(k.optimizer, 5), TypeError,
     "MultiStepLR: milestones must be a list of epochs (ints), got int"),
    ("cosine-eta-min-nan", lambda k: optim.lr_scheduler.CosineAnnealingLR(k.optimizer, 5, eta_min=float("nan")),
     ValueError, "CosineAnnealingLR: invalid eta_min nan"),
    ("linearlr-start-factor-string", lambda k: optim.lr_scheduler.LinearLR(k.optimizer, start_factor="a"),
     TypeError, "LinearLR: start_factor must be a number, got str 'a'"),
    ("steplr-last-epoch", lambda k: optim.lr_scheduler.StepLR(k.optimizer, 2, last_epoch=-2), ValueError,
     "StepLR: last_epoch must be an int >= -1"),
    ("steplr-load-cosine-state", lambda k: optim.lr_scheduler.StepLR(k.optimizer, 2).load_state_dict(
        _scheduler_state_of(lambda opt: optim.lr_scheduler.CosineAnnealingLR(opt, 5))), ValueError,
     "StepLR.load_state_dict: the saved state lacks gamma, step_size and has T_max, eta_min that StepLR"),
    ("sequentiallr-load-one-state", lambda k: optim.lr_scheduler.SequentialLR(
        k.optimizer, [optim.lr_scheduler.StepLR(k.optimizer, 2), optim.lr_scheduler.StepLR(k.optimizer, 3)],
        milestones=[2]).load_state_dict({"last_epoch": 1}), ValueError,
     "SequentialLR.load_state_dict: expected the state of 2 schedulers under '_schedulers'"),
    # checkpoints
    ("save-path-int", lambda k: save_checkpoint(5, k.model), TypeError,
     "save_checkpoint: path must be a str or os.PathLike, got int"),
    ("save-path-a-folder", lambda k: save_checkpoint(k.tmp_path, k.model), IsADirectoryError,
     "save_checkpoint: "),
    ("load-path-a-folder", lambda k: load_checkpoint(k.tmp_path, k.model), IsADirectoryError,
     "is a folder; a checkpoint is a file, e.g."),
    ("load-model-a-string", lambda k: load_checkpoint(k.checkpoint, "model"), TypeError,
     "load_checkpoint: model must be a minicnn.nn.Module, got str"),
    ("load-optimizer-an-object", lambda k: load_checkpoint(k.checkpoint, k.model, object()), TypeError,
     "load_checkpoint: optimizer must have state_dict() and load_state_dict(), got object"),
    ("load-half-a-file", lambda k: load_checkpoint(k.half_a_checkpoint(), k.model), ValueError,
     "is not a readable .npz checkpoint"),
    ("load-missing-file", lambda k: load_checkpoint(k.tmp_path / "none.npz", k.model), FileNotFoundError,
     "load_checkpoint: no checkpoint at"),
    ("extra-path-a-list", lambda k: read_checkpoint_extra([k.checkpoint]), TypeError,
     "read_checkpoint_extra: path must be a str or os.PathLike, got list"),
]


@pytest.mark.parametrize("call, error, fragment", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_a_bad_input_gets_a_typed_error_that_names_it(tmp_path, call, error, fragment):
    kit = Kit(tmp_path)
    with pytest.raises(error) as caught:
        call(kit)
    assert fragment in str(caught.value)


# Inputs PyTorch accepts: minicnn accepts them too, with the same learning rates after a few epochs.
ACCEPTED = [
    ("sgd-lr-zero", lambda module, params: module.SGD(params, lr=0.0), None),
    ("sgd-lr-numpy-float", lambda module, params: module.SGD(params, lr=np.float32(0.5)), None),
    ("sgd-params-a-tuple", lambda module, params: module.SGD(tuple(params), lr=0.1), None),
    ("steplr-gamma-zero", lambda module, params: module.SGD(params, lr=0.1),
     lambda schedulers, opt: schedulers.StepLR(opt, 2, gamma=0.0)),
    ("steplr-gamma-above-one", lambda module, params: module.SGD(params, lr=0.1),
     lambda schedulers, opt: schedulers.StepLR(opt, 2, gamma=3.0)),
    ("multisteplr-unsorted-repeated", lambda module, params: module.SGD(params, lr=0.1),
     lambda schedulers, opt: schedulers.MultiStepLR(opt, [5, 1, 1])),
]


@pytest.mark.parametrize("make_optimizer, make_scheduler", [case[1:] for case in ACCEPTED],
                         ids=[case[0] for case in ACCEPTED])
def test_inputs_pytorch_accepts_are_accepted_alike(make_optimizer, make_scheduler):
    torch = pytest.importorskip("torch")
    ours = make_optimizer(optim, list(nn.Linear(3, 2).parameters()))
    theirs = make_optimizer(torch.optim, list(torch.nn.Linear(3, 2).parameters()))
    if make_scheduler is not None:
        our_scheduler = make_scheduler(optim.lr_scheduler, ours)
        their_scheduler = make_scheduler(torch.optim.lr_scheduler, theirs)
        for _ in range(6):
            theirs.step()
            our_scheduler.step()
            their_scheduler.step()
    assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"])
