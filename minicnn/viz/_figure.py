"""What every picture shares: a Figure outside pyplot, saving it, and turning inputs into NumPy arrays."""
import numbers
import os

import numpy as np
from matplotlib.figure import Figure

from minicnn.device import is_gpu_array
from minicnn.tensor import Tensor


def check_dpi(function, dpi):
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not dpi > 0:
        raise ValueError(f"{function}: dpi must be a positive number, got {dpi!r}")
    return float(dpi)


def new_figure(function, figsize, dpi):
    """A Figure that belongs to no window: no backend, no display, no global registry to close it from."""
    return Figure(figsize=figsize, dpi=check_dpi(function, dpi))


def save_figure(function, figure, save):
    """Write ``figure`` to ``save`` (a path) when given, creating missing folders; PNG unless the
    name ends in another format matplotlib knows (".svg", ".pdf")."""
    if save is None:
        return
    if not isinstance(save, (str, os.PathLike)):
        raise TypeError(f"{function}: save must be a path (str or os.PathLike) or None, "
                        f"got {type(save).__name__}")
    path = os.fspath(save)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    extension = os.path.splitext(path)[1]
    figure.savefig(path, format=None if extension else "png", dpi=figure.dpi, bbox_inches="tight")


def to_numpy(function, what, value):
    """A NumPy array from an ndarray, a minicnn Tensor (CPU or GPU), a torch tensor or nested lists."""
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu().numpy()
    elif isinstance(value, Tensor):
        value = value.numpy()  # copied to the host when it lives on the GPU
    elif is_gpu_array(value):
        value = value.get()  # CuPy refuses an implicit np.asarray
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{function}: {what} must be array-like, "
                        f"got {type(value).__name__} ({error})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{function}: {what} must hold numbers, got dtype {array.dtype} "
                        f"(from {type(value).__name__})")
    return array


def scale_to_unit(array, constant=0.5):
    """Stretch ``array`` linearly onto [0, 1] (min → 0, max → 1); a constant array becomes ``constant``."""
    array = np.asarray(array, dtype=np.float32)
    low, high = float(array.min()), float(array.max())
    if high > low:
        return (array - low) / np.float32(high - low)
    return np.full_like(array, constant)
