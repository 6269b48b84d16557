"""``minicnn.cuda``: is a GPU usable here, and if not, why not (PyTorch's ``torch.cuda``).

The public face of the probe that lives in ``minicnn.device`` with the rest of
the device story.  CuPy is an optional dependency (``pip install 'minicnn[gpu]'``),
so nothing imports it at import time: the first question tries, remembers the
answer and the reason, and every later question is a dictionary lookup.

Not to be confused with ``minicnn.backend.cuda``, the CUDA kernel set.

>>> import minicnn
>>> minicnn.cuda.is_available()
False
>>> minicnn.cuda.unavailable_reason()
"CuPy is not installed: pip install 'minicnn[gpu]' (or cupy-cuda12x / cupy-cuda13x to match your driver)"
"""
from minicnn.device import (
    _reset_probe_for_tests,  # noqa: F401  (tests that fake a missing CuPy use it to forget the answer)
    device_count,
    is_available,
    require,
    unavailable_reason,
)

__all__ = ["is_available", "device_count", "unavailable_reason", "require"]
