"""The kernel floor: array in, array out.

Everything above this package asks which module owns its arrays with
``get_array_module`` (NumPy or CuPy) and which kernel set serves them with
``kernels_for``; nothing imports CuPy as a global ``np``.  The NumPy kernels in
``minicnn.backend.cpu`` are the reference that every other backend is tested
against, and every backend exposes the same functions with the same signatures.
"""
import numpy as np


def get_array_module(*arrays):
    """Return ``numpy`` or ``cupy``, whichever owns ``arrays`` (Chainer's idiom)."""
    for array in arrays:
        if type(array).__module__.startswith("cupy"):
            import cupy

            return cupy
    return np


def kernels_for(*arrays):
    """Return the kernel set (a module) that computes on ``arrays``."""
    if get_array_module(*arrays) is np:
        from minicnn.backend import cpu

        return cpu
    from minicnn.backend.cuda import kernels

    return kernels
