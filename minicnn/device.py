"""Devices: "cpu" (NumPy arrays) and "cuda" (CuPy arrays), named as in PyTorch.

A tensor's device is simply the type of its array.  This module is the one
place that knows it, and everything else imports it from here:

* which device an array is on: ``is_gpu_array``, ``device_of`` and
  ``get_array_module`` (NumPy or CuPy, Chainer's ``xp`` idiom);
* whether CUDA is usable and, if not, why: ``is_available``, ``device_count``,
  ``unavailable_reason``, ``require`` (``minicnn.cuda`` is their public face).
  CuPy is optional, so it is never imported at import time: the first question
  tries, and the answer and its reason are kept for the life of the process;
* device names and the default device: ``"cpu"``, ``"cuda"`` and ``"cuda:0"``
  (minicnn drives one GPU); ``set_default_device`` / ``get_default_device``,
  starting from the environment variable ``MINICNN_DEVICE``;
* moving and building arrays: ``move_array`` and ``array_module``.

>>> minicnn.set_default_device("cuda")      # raises, naming the reason, without a GPU
>>> x = minicnn.randn(2, 3)                 # on the GPU
"""
import os

import numpy as np

__all__ = [
    "is_gpu_array", "device_of", "get_array_module",
    "is_available", "device_count", "unavailable_reason", "require",
    "normalize_device", "set_default_device", "get_default_device", "move_array", "array_module",
]

ENVIRONMENT_VARIABLE = "MINICNN_DEVICE"

_default_device = "cpu"


# --- which device an array is on ------------------------------------------------
def is_gpu_array(array):
    """True for a CuPy array: its type is defined in a ``cupy`` module (no CuPy import needed)."""
    array_type = type(array)
    return array_type is not np.ndarray and array_type.__module__.startswith("cupy")


def device_of(array):
    """ "cpu" for a NumPy array, "cuda" for a CuPy array."""
    return "cuda" if is_gpu_array(array) else "cpu"


def get_array_module(*arrays):
    """``numpy``, or ``cupy`` when any of ``arrays`` is a CuPy array (Chainer's idiom).

    >>> xp = get_array_module(x)
    >>> y = xp.maximum(x, 0)        # runs where x lives
    """
    if any(is_gpu_array(array) for array in arrays):
        import cupy

        return cupy
    return np


# --- is CUDA usable here, and if not, why not ----------------------------------
_INSTALL_HINT = "pip install 'minicnn[gpu]' (or cupy-cuda12x / cupy-cuda13x to match your driver)"

# (device_count, reason): filled in by the first probe; reason is None when a GPU is usable.
_probe_result = None


def _probe():
    """Import CuPy and count GPUs once per process; returns (count, reason or None)."""
    global _probe_result
    if _probe_result is not None:
        return _probe_result
    try:
        import cupy
    except ImportError as error:
        _probe_result = (0, f"CuPy is not installed: {_INSTALL_HINT} [{error}]")
        return _probe_result
    except Exception as error:  # noqa: BLE001  (a broken CuPy install raises all sorts of things at import)
        _probe_result = (0, f"CuPy failed to import ({type(error).__name__}: {error})")
        return _probe_result
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as error:  # noqa: BLE001  (CUDARuntimeError: no driver, too old, no device node)
        _probe_result = (0, f"the CUDA driver reported an error ({type(error).__name__}: {error})")
        return _probe_result
    if count == 0:
        _probe_result = (0, "no CUDA GPU was found (CuPy is installed, but the driver sees no device)")
    else:
        _probe_result = (count, None)
    return _probe_result


def is_available():
    """True when CuPy imports and the driver sees at least one GPU (PyTorch's ``torch.cuda.is_available``)."""
    return _probe()[1] is None


def device_count():
    """How many GPUs the driver sees (0 without CuPy or without a driver)."""
    return _probe()[0]


def unavailable_reason():
    """Why CUDA cannot be used here, as one sentence; None when it can."""
    return _probe()[1]


def require(op):
    """Raise ``RuntimeError("<op>: CUDA is not available (<reason>)")`` unless a GPU is usable."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"{op}: CUDA is not available ({reason})")


def _reset_probe_for_tests():
    """Forget the cached answer (tests that fake a missing or broken CuPy use this)."""
    global _probe_result
    _probe_result = None


# --- device names and the default device ------------------------------------------
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


def set_default_device(device):
    """Where factories create tensors from now on: "cpu" or "cuda" (PyTorch's ``torch.set_default_device``).

    Setting "cuda" without a usable GPU raises RuntimeError saying why.  Modules
    are built on the CPU (their initialisers draw from the seeded NumPy stream,
    so a model is the same on every machine); move them with
    ``model.to(minicnn.get_default_device())`` or ``model.cuda()``.
    """
    global _default_device
    device = normalize_device("set_default_device", device)
    if device == "cuda":
        require("set_default_device")
    _default_device = device


def get_default_device():
    """The device factories use when no ``device=`` is given ("cpu" unless set)."""
    return _default_device


# --- moving and building arrays -----------------------------------------------------
def move_array(array, device, op="to"):
    """``array`` on ``device`` ("cpu"/"cuda"): itself when already there, else a copy.

    Raises RuntimeError naming the reason when "cuda" is asked for and no GPU is usable.
    """
    device = normalize_device(op, device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    require(op)  # before the import: the error then says why (not installed, no GPU, driver)
    import cupy

    return cupy.asarray(array)


def array_module(device, op="to"):
    """NumPy for "cpu", CuPy for "cuda" (None: the default device): where to build an array in place.

    Raises RuntimeError naming the reason when "cuda" is asked for and no GPU is usable.
    """
    if normalize_device(op, device) == "cpu":
        return np
    require(op)
    import cupy

    return cupy


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
