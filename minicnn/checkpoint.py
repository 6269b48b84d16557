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

JSON text is stored as a 0-d unicode array (``np.array('{"a": 1}')``), which
NumPy saves natively.  Entries for objects that were not given are absent.

>>> save_checkpoint("runs/last.npz", model, optimizer, scheduler, epoch=3, history=history, loader=loader)
>>> info = load_checkpoint("runs/last.npz", model, optimizer, scheduler, loader=loader)
>>> fit(model, loader, optimizer=optimizer, scheduler=scheduler, epochs=10,
...     start_epoch=info["epoch"], history=info["history"])
"""
import json
import numbers
import os
import tempfile
import zipfile

import numpy as np

from minicnn.nn import Module
from minicnn.random import get_rng_state, set_rng_state

FORMAT_VERSION = 1

_MODEL_PREFIX = "model/"
_OPTIMIZER_STATE_PREFIX = "optimizer/state/"
_OPTIMIZER_GROUPS_KEY = "optimizer/param_groups"


def _json_entry(function, what, value):
    """``value`` as JSON text in a 0-d unicode array; TypeError naming ``what`` if it is not JSON-able."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{function}: {what} must be JSON-serialisable (numbers, strings, lists, dicts), "
                        f"but {error}") from None
    return np.array(text)


def _read_json(arrays, key):
    return json.loads(str(arrays[key][()]))


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
    if scheduler is not None:
        _check_stateful(function, "scheduler", scheduler)
        arrays["scheduler"] = _json_entry(function, "the scheduler's state_dict()", scheduler.state_dict())
    if loader is not None:
        _check_stateful(function, "loader", loader)
        arrays["loader"] = _json_entry(function, "the loader's state_dict()", loader.state_dict())
    arrays["rng"] = _json_entry(function, "minicnn.get_rng_state()", get_rng_state())
    if history is not None:
        arrays["history"] = _json_entry(function, "history", _history_as_dict(history))
    if extra is not None:
        arrays["extra"] = _json_entry(function, "extra", extra)
    return arrays


def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch=0, history=None, loader=None,
                    extra=None):
    """Write a checkpoint to ``path`` (one ``.npz``) atomically; returns the path.

    ``epoch`` is the number of epochs completed.  The file is written to a
    temporary file in the same folder, flushed to disk (fsync) and then renamed
    over ``path`` (``os.replace``), so a crash mid-write leaves either the old
    checkpoint or the new one, never half of one.  Missing parent folders are
    created.

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
    arrays = _collect_arrays(model, optimizer, scheduler, int(epoch), history, loader, extra)

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # Same folder as the target: os.replace is only atomic within one file system.
    handle, temporary_path = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)  # a file object: NumPy appends no ".npz" to the name
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary_path, path)
    except BaseException:
        if os.path.exists(temporary_path):
            os.remove(temporary_path)
        raise
    _fsync_folder(folder)
    return path


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _read_archive(path, function="load_checkpoint", keys=None):
    """The archive's arrays (only ``keys`` and the format entries, when given), after checking it is ours."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{function}: no checkpoint at {path!r}")
    with open(path, "rb") as file:
        if not file.read(4).startswith(b"PK"):  # np.load would try anything else as a pickle
            raise ValueError(f"{function}: {path!r} is not a readable .npz checkpoint (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            wanted = set(archive.files) if keys is None else {"format", "epoch", *keys}
            arrays = {key: archive[key] for key in archive.files if key in wanted}
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{function}: {path!r} is not a readable .npz checkpoint ({error})") from None
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(f"{function}: {path!r} holds pickled objects, which are never loaded") from None
        raise ValueError(f"{function}: {path!r} is not a readable .npz checkpoint ({error})") from None
    if "format" not in arrays or "epoch" not in arrays:
        raise ValueError(f"{function}: {path!r} is an .npz but not a minicnn checkpoint (no 'format'/'epoch' "
                         f"entries); for plain model weights use minicnn.models.load_npz_state_dict")
    version = int(arrays["format"])
    if version != FORMAT_VERSION:
        raise ValueError(f"{function}: {path!r} has checkpoint format {version}, this minicnn reads format "
                         f"{FORMAT_VERSION}")
    return arrays


def _optimizer_state_dict(arrays, path):
    if _OPTIMIZER_GROUPS_KEY not in arrays:
        raise ValueError(f"load_checkpoint: an optimizer was given but {path!r} holds no optimizer state")
    state = {}
    for key, array in arrays.items():
        if key.startswith(_OPTIMIZER_STATE_PREFIX):
            index, name = key[len(_OPTIMIZER_STATE_PREFIX):].split("/", 1)
            state.setdefault(int(index), {})[name] = array
    return {"state": state, "param_groups": _read_json(arrays, _OPTIMIZER_GROUPS_KEY)}


def read_checkpoint_extra(path):
    """The ``extra`` saved with a checkpoint (None if none was), read without building any model.

    Lets a tool learn what a checkpoint holds (``fit(checkpoint_extra=...)``
    can store the model's name and width) before it builds the model to load.

    >>> read_checkpoint_extra("runs/last.npz")
    {'model': 'vgg11_bn', 'width': 0.25, ...}
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"read_checkpoint_extra: path must be a str or os.PathLike, "
                        f"got {type(path).__name__}") from None
    arrays = _read_archive(path, "read_checkpoint_extra", keys=("extra",))
    return _read_json(arrays, "extra") if "extra" in arrays else None


def load_checkpoint(path, model, optimizer=None, scheduler=None, loader=None):
    """Restore a checkpoint into ``model`` (and the optimizer, scheduler and loader given) in place.

    Also restores minicnn's random state, so dropout and shuffling continue
    exactly where the saved run stopped.  Returns ``dict(epoch, history,
    extra)``: ``epoch`` the epochs completed, ``history`` a ``History`` (None if
    none was saved), ``extra`` what was passed to ``save_checkpoint``.

    A load that fails leaves every object as it was: a checkpoint without the
    optimizer/scheduler/loader state asked for raises ValueError; a model whose
    keys or shapes differ raises ``minicnn.nn.StateDictError`` (a ValueError).
    """
    function = "load_checkpoint"
    if not isinstance(model, Module):
        raise TypeError(f"{function}: model must be a minicnn.nn.Module, got {type(model).__name__}")
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"{function}: path must be a str or os.PathLike, got {type(path).__name__}") from None
    arrays = _read_archive(path)

    model_state = {key[len(_MODEL_PREFIX):]: array for key, array in arrays.items()
                   if key.startswith(_MODEL_PREFIX)}
    optimizer_state = None
    if optimizer is not None:
        _check_stateful(function, "optimizer", optimizer)
        optimizer_state = _optimizer_state_dict(arrays, path)
    for what, given in (("scheduler", scheduler), ("loader", loader)):
        if given is not None:
            _check_stateful(function, what, given)
            if what not in arrays:
                raise ValueError(f"{function}: a {what} was given but {path!r} holds no {what} state")

    targets = [(model, model_state)]
    if optimizer is not None:
        targets.append((optimizer, optimizer_state))
    if scheduler is not None:
        targets.append((scheduler, _read_json(arrays, "scheduler")))
    if loader is not None:
        targets.append((loader, _read_json(arrays, "loader")))
    rng_state = _read_json(arrays, "rng")
    # A later object may still refuse its state (an optimizer with other groups): put back what was loaded.
    previous_states = [(target, target.state_dict()) for target, _ in targets]
    try:
        for target, state in targets:
            target.load_state_dict(state)
    except BaseException:
        for target, state in previous_states:
            target.load_state_dict(state)
        raise
    set_rng_state(rng_state)

    history = None
    if "history" in arrays:
        # Imported here: minicnn.train imports this module to write its checkpoints.
        from minicnn.train import History

        history = History.from_dict(_read_json(arrays, "history"))
    extra = _read_json(arrays, "extra") if "extra" in arrays else None
    return {"epoch": int(arrays["epoch"]), "history": history, "extra": extra}


__all__ = ["FORMAT_VERSION", "load_checkpoint", "read_checkpoint_extra", "save_checkpoint"]
