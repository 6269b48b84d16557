"""Training checkpoints: one ``.npz`` file that resumes a run exactly, written atomically, read without pickle.

A checkpoint holds everything a run needs to continue as if it had never
stopped: the model's parameters and buffers, the optimizer's state (momentum
buffers, Adam's moments, step counts, hyper-parameters), the scheduler's
counters, the data loader's epoch counter and seed, minicnn's random state
(parameter init and dropout streams), the number of epochs done and the
history of metrics.

Layout of the archive (every entry a plain array, so ``np.load(path,
allow_pickle=False)`` opens it and loading can never run code)::

    format                        0-d int64: the checkpoint layout version (1)
    epoch                         0-d int64: epochs completed; resume with fit(start_epoch=epoch)
    model/<state_dict key>        the model's arrays, e.g. model/features.0.weight
    optimizer/state/<i>/<name>    per-parameter state arrays (0-d int64 for "step")
    optimizer/param_groups        JSON text: hyper-parameters per group
    scheduler                     JSON text: the scheduler's state_dict()
    loader                        JSON text: the loader's state_dict()
    rng                           JSON text: minicnn.get_rng_state()
    history                       JSON text: History.to_dict()
    extra                         JSON text: anything JSON-serialisable the caller adds
    types                         JSON text: class names of the optimizer and scheduler saved

JSON text is stored as a 0-d unicode array (``np.array('{"a": 1}')``), which
NumPy saves natively.  Entries for objects that were not given are absent.

Two promises, whatever happens: a checkpoint on disk is always a whole one
(written to ``.<name>.<pid>.<random>.tmp`` beside it, then renamed over it, with
Ctrl-C held until the rename is done; the next write into the folder removes
what a killed process left; see ``minicnn.atomic_files``), and a load that
fails changes nothing (every entry is checked before any object is touched).

>>> save_checkpoint("runs/last.npz", model, optimizer, scheduler, epoch=3, history=history, loader=loader)
>>> info = load_checkpoint("runs/last.npz", model, optimizer, scheduler, loader=loader)
>>> fit(model, loader, optimizer=optimizer, scheduler=scheduler, epochs=10,
...     start_epoch=info["epoch"], history=info["history"])
"""
import json
import numbers
import os

import numpy as np

from minicnn.atomic_files import remove_stale_temporary_files, write_atomically
from minicnn.history import History
from minicnn.interrupts import InterruptGuard
from minicnn.nn import Module
from minicnn.npz import read_npz
from minicnn.random import get_rng_state, set_rng_state

FORMAT_VERSION = 1

_MODEL_PREFIX = "model/"
_OPTIMIZER_STATE_PREFIX = "optimizer/state/"
_OPTIMIZER_GROUPS_KEY = "optimizer/param_groups"


# --- writing ---------------------------------------------------------------------------------
def _json_entry(function, what, value):
    """``value`` as JSON text in a 0-d unicode array; TypeError naming ``what`` if it is not JSON-able."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{function}: {what} must be JSON-serialisable (numbers, strings, lists, dicts), "
                        f"but {error}") from None
    return np.array(text)


def _history_as_dict(history):
    if history is None or isinstance(history, dict):
        return history
    if hasattr(history, "to_dict"):
        return history.to_dict()
    raise TypeError(f"save_checkpoint: history must be a History, a dict or None, got {type(history).__name__}")


def _check_stateful(function, what, value):
    for method in ("state_dict", "load_state_dict"):
        if not callable(getattr(value, method, None)):
            raise TypeError(f"{function}: {what} must have state_dict() and load_state_dict(), "
                            f"got {type(value).__name__}")


def _collect_arrays(model, optimizer, scheduler, epoch, history, loader, extra):
    """Every entry of the archive, keyed as in the module docstring."""
    function = "save_checkpoint"
    arrays = {"format": np.array(FORMAT_VERSION, dtype=np.int64), "epoch": np.array(epoch, dtype=np.int64)}
    for key, array in model.state_dict().items():
        arrays[_MODEL_PREFIX + key] = array
    types = {}
    if optimizer is not None:
        _check_stateful(function, "optimizer", optimizer)
        optimizer_state = optimizer.state_dict()
        for index, param_state in optimizer_state["state"].items():
            for name, value in param_state.items():
                array = np.asarray(value)
                if array.dtype == object:
                    raise TypeError(f"{function}: optimizer state {name!r} of parameter {index} is a "
                                    f"{type(value).__name__}, not an array or number")
                arrays[f"{_OPTIMIZER_STATE_PREFIX}{index}/{name}"] = array
        arrays[_OPTIMIZER_GROUPS_KEY] = _json_entry(function, "the optimizer's param_groups",
                                                    optimizer_state["param_groups"])
        types["optimizer"] = type(optimizer).__name__
    if scheduler is not None:
        _check_stateful(function, "scheduler", scheduler)
        arrays["scheduler"] = _json_entry(function, "the scheduler's state_dict()", scheduler.state_dict())
        types["scheduler"] = type(scheduler).__name__
    if loader is not None:
        _check_stateful(function, "loader", loader)
        arrays["loader"] = _json_entry(function, "the loader's state_dict()", loader.state_dict())
    arrays["rng"] = _json_entry(function, "minicnn.get_rng_state()", get_rng_state())
    if history is not None:
        arrays["history"] = _json_entry(function, "history", _history_as_dict(history))
    if extra is not None:
        arrays["extra"] = _json_entry(function, "extra", extra)
    arrays["types"] = _json_entry(function, "types", types)
    return arrays


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=0, history=None, loader=None,
                    extra=None):
    """Write a checkpoint to ``path`` (one ``.npz``) atomically; returns the path.

    ``epoch`` is the number of epochs completed.  The file is written to a
    temporary file in the same folder, flushed to disk (fsync) and then renamed
    over ``path`` (``os.replace``), so a crash mid-write leaves either the old
    checkpoint or the new one, never half of one.  Ctrl-C during the write takes
    effect once the new file is in place.  Temporary files that killed writers
    left in the folder are removed first.  Missing parent folders are created.

    >>> save_checkpoint("runs/last.npz", model, optimizer, epoch=1)
    'runs/last.npz'
    """
    function = "save_checkpoint"
    if not isinstance(model, Module):
        raise TypeError(f"{function}: model must be a minicnn.nn.Module, got {type(model).__name__}")
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
        raise ValueError(f"{function}: epoch must be a non-negative int (epochs completed), got {epoch!r}")
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"{function}: path must be a str or os.PathLike, got {type(path).__name__}") from None
    _refuse_folder(function, path)
    arrays = _collect_arrays(model, optimizer, scheduler, int(epoch), history, loader, extra)

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # A file object: NumPy appends no ".npz" to the name.
    write_atomically(path, lambda file: np.savez(file, **arrays))
    return path


def _refuse_folder(function, path):
    if os.path.isdir(path):
        raise IsADirectoryError(f"{function}: {path!r} is a folder; a checkpoint is a file, e.g. "
                                f"{os.path.join(path, 'last.npz')!r}")


# --- reading and checking ------------------------------------------------------------------------
def _read_archive(path, function="load_checkpoint", keys=None):
    """The archive's arrays (only ``keys`` and the format entries, when given), after checking it is ours."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{function}: no checkpoint at {path!r}")
    _refuse_folder(function, path)
    wanted = None if keys is None else {"format", "epoch", *keys}
    arrays = read_npz(path, function, "a readable .npz checkpoint", wanted)
    if "format" not in arrays or "epoch" not in arrays:
        raise ValueError(f"{function}: {path!r} is an .npz but not a minicnn checkpoint (no 'format'/'epoch' "
                         f"entries); for plain model weights use minicnn.models.load_npz_state_dict")
    version = _read_int(arrays, "format", path, function)
    if version != FORMAT_VERSION:
        raise ValueError(f"{function}: {path!r} has checkpoint format {version}, this minicnn reads format "
                         f"{FORMAT_VERSION}")
    return arrays


def _malformed(function, path, key, expected, array):
    shape = "" if array.ndim == 0 else f" of shape {array.shape}"
    return ValueError(f"{function}: entry {key!r} of {path!r} must be {expected}, got a {array.dtype} "
                      f"array{shape}")


def _read_int(arrays, key, path, function="load_checkpoint"):
    array = arrays[key]
    if array.ndim != 0 or array.dtype.kind not in "iu":
        raise _malformed(function, path, key, "a 0-d integer array", array)
    return int(array)


def _read_json(arrays, key, path, function="load_checkpoint"):
    array = arrays[key]
    if array.ndim != 0 or array.dtype.kind != "U":
        raise _malformed(function, path, key, "JSON text (a 0-d unicode array)", array)
    try:
        return json.loads(str(array[()]))
    except ValueError as error:
        raise ValueError(f"{function}: entry {key!r} of {path!r} is not valid JSON ({error})") from None


def _expect(condition, path, key, message):
    if not condition:
        raise ValueError(f"load_checkpoint: entry {key!r} of {path!r} {message}")


def _check_type(arrays, path, what, given):
    """A checkpoint names the class of optimizer and scheduler it saved: another class cannot resume it."""
    types = _read_json(arrays, "types", path) if "types" in arrays else {}  # none before it was added
    _expect(isinstance(types, dict), path, "types", f"must be a JSON object, got {type(types).__name__}")
    saved, given = types.get(what), type(given).__name__
    if saved is not None and saved != given:
        raise ValueError(f"load_checkpoint: {path!r} holds {what} state of type {saved}, but the {what} "
                         f"given is of type {given}; resume with {saved}, or start a new run")


def _optimizer_state_dict(arrays, path):
    if _OPTIMIZER_GROUPS_KEY not in arrays:
        raise ValueError(f"load_checkpoint: an optimizer was given but {path!r} holds no optimizer state")
    state = {}
    for key, array in arrays.items():
        if key.startswith(_OPTIMIZER_STATE_PREFIX):
            index, _, name = key[len(_OPTIMIZER_STATE_PREFIX):].partition("/")
            _expect(index.isdigit() and name, path, key, "is not named optimizer/state/<index>/<name>")
            state.setdefault(int(index), {})[name] = array
    groups = _read_json(arrays, _OPTIMIZER_GROUPS_KEY, path)
    _expect(isinstance(groups, list) and all(isinstance(group, dict) for group in groups), path,
            _OPTIMIZER_GROUPS_KEY, f"must be a list of dicts, got {type(groups).__name__}")
    return {"state": state, "param_groups": groups}


def _rng_state(arrays, path):
    """The saved random state, checked the way set_rng_state will use it (a bad one fails here, not later)."""
    state = _read_json(arrays, "rng", path)
    _expect(isinstance(state, dict) and set(state) == {"seed", "generator", "philox_offset"}, path, "rng",
            "must be a dict with 'seed', 'generator' and 'philox_offset' (minicnn.get_rng_state())")
    for name in ("seed", "philox_offset"):
        value = state[name]
        _expect(isinstance(value, int) and not isinstance(value, bool) and value >= 0, path, "rng",
                f"has {name} {value!r}, expected an int >= 0")
    try:
        np.random.default_rng().bit_generator.state = state["generator"]  # a throw-away generator
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise ValueError(f"load_checkpoint: entry 'rng' of {path!r} holds no valid NumPy generator state "
                         f"({type(error).__name__}: {error})") from None
    return state


def _history(arrays, path, epoch):
    if "history" not in arrays:
        return None
    try:
        history = History.from_dict(_read_json(arrays, "history", path))
    except (TypeError, ValueError) as error:
        raise ValueError(f"load_checkpoint: entry 'history' of {path!r} is malformed: {error}") from None
    _expect(len(history) == epoch, path, "history", f"holds {len(history)} epochs but entry 'epoch' says "
                                                     f"{epoch} were completed")
    return history


def _load_all(path, targets, rng_state):
    """Load each (name, object, state) in turn; if one refuses its state, put back those already loaded."""
    loaded = []  # (object, its state before)
    with InterruptGuard(hold=True):  # a few copies: Ctrl-C waits for them, so nothing is left half done
        try:
            for what, target, state in targets:
                before = target.state_dict()
                try:
                    target.load_state_dict(state)
                except (KeyError, TypeError, ValueError) as error:
                    if what == "model":  # StateDictError already lists every key that does not fit
                        raise
                    raise ValueError(f"load_checkpoint: the {what} state in {path!r} does not fit the {what} "
                                     f"given: {error}") from error
                loaded.append((target, before))
        except BaseException:
            for target, before in reversed(loaded):
                target.load_state_dict(before)
            raise
        set_rng_state(rng_state)


def read_checkpoint_extra(path):
    """The ``extra`` saved with a checkpoint (None if none was), read without building any model.

    Lets a tool learn what a checkpoint holds (``fit(checkpoint_extra=...)``
    can store the model's name and width) before it builds the model to load.

    >>> read_checkpoint_extra("runs/last.npz")
    {'model': 'vgg11_bn', 'width': 0.25, ...}
    """
    function = "read_checkpoint_extra"
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"{function}: path must be a str or os.PathLike, got {type(path).__name__}") from None
    arrays = _read_archive(path, function, keys=("extra",))
    return _read_json(arrays, "extra", path, function) if "extra" in arrays else None


def load_checkpoint(path, model, optimizer=None, scheduler=None, loader=None):
    """Restore a checkpoint into ``model`` (and the optimizer, scheduler and loader given) in place.

    Also restores minicnn's random state, so dropout and shuffling continue
    exactly where the saved run stopped.  Returns ``dict(epoch, history,
    extra)``: ``epoch`` the epochs completed, ``history`` a ``History`` (None if
    none was saved), ``extra`` what was passed to ``save_checkpoint``.

    A load that fails leaves every object and the random state as they were.
    Every entry is checked before anything changes: a checkpoint without the
    optimizer/scheduler/loader state asked for, one saved with another type of
    optimizer or scheduler, or a malformed entry raise ValueError naming the
    entry; a model whose keys or shapes differ raises
    ``minicnn.nn.StateDictError`` (a ValueError).  Then the objects load in turn
    (each checks its own state first), and if one still refuses, those already
    loaded are put back.
    """
    function = "load_checkpoint"
    if not isinstance(model, Module):
        raise TypeError(f"{function}: model must be a minicnn.nn.Module, got {type(model).__name__}")
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"{function}: path must be a str or os.PathLike, got {type(path).__name__}") from None
    arrays = _read_archive(path)

    epoch = _read_int(arrays, "epoch", path)
    _expect(epoch >= 0, path, "epoch", f"is {epoch}, expected the number of epochs completed (>= 0)")
    targets = [("model", model, {key[len(_MODEL_PREFIX):]: array for key, array in arrays.items()
                                 if key.startswith(_MODEL_PREFIX)})]
    if optimizer is not None:
        _check_stateful(function, "optimizer", optimizer)
        _check_type(arrays, path, "optimizer", optimizer)
        targets.append(("optimizer", optimizer, _optimizer_state_dict(arrays, path)))
    for what, given in (("scheduler", scheduler), ("loader", loader)):
        if given is not None:
            _check_stateful(function, what, given)
            if what not in arrays:
                raise ValueError(f"{function}: a {what} was given but {path!r} holds no {what} state")
            _check_type(arrays, path, what, given)
            state = _read_json(arrays, what, path)
            _expect(isinstance(state, dict), path, what, f"must be a JSON object, got {type(state).__name__}")
            targets.append((what, given, state))
    rng_state = _rng_state(arrays, path)
    history = _history(arrays, path, epoch)
    extra = _read_json(arrays, "extra", path) if "extra" in arrays else None

    _load_all(path, targets, rng_state)
    return {"epoch": epoch, "history": history, "extra": extra}


__all__ = ["FORMAT_VERSION", "InterruptGuard", "load_checkpoint", "read_checkpoint_extra",
           "remove_stale_temporary_files", "save_checkpoint"]
