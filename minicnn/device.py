"""Devices: "cpu" (NumPy arrays) and "cuda" (CuPy arrays), named as in PyTorch.

A tensor's device is simply the type of its array; this module only turns
device *names* into that choice and moves arrays between the two:

* ``set_default_device("cuda")`` / ``get_default_device()``: where the
  factories (``zeros``, ``randn``, ``tensor`` ...) put new tensors when no
  ``device=`` is given.  The environment variable ``MINICNN_DEVICE`` sets the
  starting value, read once when minicnn is imported.
* Accepted names: ``"cpu"``, ``"cuda"`` and ``"cuda:0"`` (minicnn drives one
  GPU; ``"cuda:0"`` is the same device as ``"cuda"``).

Modules are built on the CPU (their initialisers draw from the seeded NumPy
stream, so a model is the same on every machine); move them with
``model.to(minicnn.get_default_device())`` or ``model.cuda()``.

>>> minicnn.set_default_device("cuda")      # raises, naming the reason, without a GPU
>>> x = minicnn.randn(2, 3)                 # on the GPU
"""
import os

import numpy as np

from minicnn import cuda

__all__ = ["set_default_device", "get_default_device", "normalize_device", "move_array", "device_of",
           "is_gpu_array", "array_module"]

ENVIRONMENT_VARIABLE = "MINICNN_DEVICE"

_default_device = "cpu"


def normalize_device(op, device):
    """``device`` as "cpu" or "cuda"; a clear ValueError/TypeError for anything else.

    Does not check that a GPU exists (``move_array`` and ``set_default_device`` do).
    """
    if device is None:
        return _default_device
    if not isinstance(device, str):
        raise TypeError(f"{op}: device must be a str ('cpu', 'cuda' or 'cuda:0'), got {type(device).__name__}")
    name = device.strip().lower()
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "cuda:0", "gpu"):
        return "cuda"
    if name.startswith("cuda:"):
        raise ValueError(f"{op}: minicnn drives a single GPU, 'cuda:0'; got {device!r}")
    raise ValueError(f"{op}: device must be 'cpu' or 'cuda', got {device!r} ('cuda:0' also names the GPU)")


def is_gpu_array(array):
    """True for a CuPy array: the test ``get_array_module`` uses (the type's module is cupy's)."""
    array_type = type(array)
    return array_type is not np.ndarray and array_type.__module__.startswith("cupy")


def device_of(array):
    """ "cpu" for a NumPy array, "cuda" for a CuPy array."""
    return "cuda" if is_gpu_array(array) else "cpu"


def move_array(array, device, op="to"):
    """``array`` on ``device`` ("cpu"/"cuda"): itself when already there, else a copy.

    Raises RuntimeError naming the reason when "cuda" is asked for and no GPU is usable.
    """
    device = normalize_device(op, device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    cuda.require(op)  # before the import: the error then says why (not installed, no GPU, driver)
    import cupy

    return cupy.asarray(array)


def array_module(device, op="to"):
    """NumPy for "cpu", CuPy for "cuda" (None: the default device): where to build an array in place.

    Raises RuntimeError naming the reason when "cuda" is asked for and no GPU is usable.
    """
    if normalize_device(op, device) == "cpu":
        return np
    cuda.require(op)
    import cupy

    return cupy


def set_default_device(device):
    """Where factories create tensors from now on: "cpu" or "cuda" (PyTorch's ``torch.set_default_device``).

    Setting "cuda" without a usable GPU raises RuntimeError saying why.
    """
    global _default_device
    device = normalize_device("set_default_device", device)
    if device == "cuda":
        cuda.require("set_default_device")
    _default_device = device


def get_default_device():
    """The device factories use when no ``device=`` is given ("cpu" unless set)."""
    return _default_device


def _read_environment():
    """Apply ``MINICNN_DEVICE`` (if set and not empty); a bad value stops the import with the reason."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if not value:
        return
    try:
        set_default_device(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise type(error)(f"{ENVIRONMENT_VARIABLE}={value!r}: {error}") from None


_read_environment()
