"""``minicnn.cuda``: is a GPU usable here, and if not, why not.

The GPU backend runs on CuPy.  CuPy is an optional dependency
(``pip install 'minicnn[gpu]'``), so this module never imports it at import
time: the first question (``is_available()``) tries, remembers the answer and
the reason, and every later question is a dictionary lookup.

>>> import minicnn
>>> minicnn.cuda.is_available()
False
>>> minicnn.cuda.unavailable_reason()
"CuPy is not installed: pip install 'minicnn[gpu]' (or cupy-cuda12x / cupy-cuda13x to match your driver)"
"""

__all__ = ["is_available", "device_count", "unavailable_reason", "require"]

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
