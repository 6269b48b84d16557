"""Weights in and out as ``.npz``: the format ``examples/export_torchvision_weights.py`` writes.

An ``.npz`` is a zip of plain ``.npy`` arrays, one per state_dict key
(``features.0.weight``); it is read with ``allow_pickle=False``, so loading a
file can never run code, unlike a pickled checkpoint.  Keys, order and shapes
of minicnn's torchvision-compatible models equal torchvision's, so

    python examples/export_torchvision_weights.py resnet18 --weights DEFAULT resnet18.npz

followed by

>>> model = minicnn.models.resnet18()
>>> load_npz_state_dict(model, "resnet18.npz")

gives minicnn the pretrained network.  Two torchvision habits are kept:

* GoogLeNet's checkpoint carries the auxiliary heads (``aux1.*``, ``aux2.*``);
  a model built without them (``self.aux1 = None``, or no such attribute)
  ignores those keys, as torchvision's builder does.
* torchvision's builder switches GoogLeNet's ``transform_input`` on when it
  loads pretrained weights (they expect inputs in [-1, 1]); pass
  ``transform_input=True`` to do the same here.  By default the model keeps its
  own setting, so a save/load round trip changes nothing.
"""
import os

import numpy as np

from minicnn.nn import Module
from minicnn.npz import read_npz

# Heads torchvision's GoogLeNet checkpoint has and a model without aux classifiers drops.
_OPTIONAL_HEADS = ("aux1", "aux2")


def save_npz_state_dict(model, path):
    """Write ``model.state_dict()`` to ``path`` as an uncompressed ``.npz``; returns the path written.

    NumPy appends ``.npz`` when ``path`` lacks it.  Arrays keep their dtypes
    (float32 weights, int64 ``num_batches_tracked``), none of them an object
    array, so the file loads with ``allow_pickle=False``.
    """
    _check_model("save_npz_state_dict", model)
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    np.savez(path, **model.state_dict())
    return path


def load_npz_state_dict(model, path, strict=True, transform_input=None):
    """Load an ``.npz`` state_dict into ``model`` (in place); returns ``IncompatibleKeys``.

    ``strict`` as ``Module.load_state_dict``: every key must match and every
    shape agree, or nothing is loaded and a ``StateDictError`` lists all the
    problems.  ``aux1.*``/``aux2.*`` entries are dropped first when the model
    has no such head (GoogLeNet with ``aux_logits=False``).
    ``transform_input`` (GoogLeNet): None keeps the model's setting, True or
    False sets it, e.g. True for torchvision's pretrained weights.
    """
    _check_model("load_npz_state_dict", model)
    arrays = read_npz(path)
    for head in _OPTIONAL_HEADS:
        if getattr(model, head, None) is None:
            arrays = {key: value for key, value in arrays.items() if not key.startswith(head + ".")}
    result = model.load_state_dict(arrays, strict=strict)
    if transform_input is not None:
        if not hasattr(model, "transform_input"):
            raise ValueError(f"load_npz_state_dict: {type(model).__name__} has no transform_input setting "
                             "(only GoogLeNet has)")
        model.transform_input = bool(transform_input)
    return result


def _check_model(function, model):
    if not isinstance(model, Module):
        raise TypeError(f"{function}: model must be a minicnn.nn.Module, got {type(model).__name__}")


__all__ = ["load_npz_state_dict", "read_npz", "save_npz_state_dict"]
