"""The kernel floor: array in, array out.

Everything above this package asks which module owns its arrays with
``get_array_module`` (NumPy or CuPy, from ``minicnn.device``) and which kernel
set serves them with ``kernels_for``; nothing imports CuPy as a global ``np``.
The NumPy kernels in ``minicnn.backend.cpu`` are the reference that every other
backend is tested against, and every backend exposes the same functions with
the same signatures.  The kernels themselves import ``minicnn.device``, never
this package, so the floor has no import cycle.
"""
from minicnn.device import get_array_module, is_gpu_array

__all__ = ["get_array_module", "kernels_for"]


def kernels_for(*arrays):
    """Return the kernel set (a module) that computes on ``arrays``: CUDA when any is a CuPy array."""
    if any(is_gpu_array(array) for array in arrays):
        from minicnn.backend.cuda import kernels  # imports no CuPy: that waits for the first launch

        return kernels
    from minicnn.backend import cpu

    return cpu
