"""Loading a checkpoint into a module: check everything first, then copy.

A half-loaded model is worse than an error, so ``load_into`` collects every
problem (missing keys, unexpected keys, shape mismatches, unreadable values)
into one message and writes nothing unless all of it is sound.
"""
from collections import namedtuple

import numpy as np

from minicnn.backend import get_array_module
from minicnn.device import is_gpu_array
from minicnn.tensor import Tensor


class StateDictError(ValueError, RuntimeError):
    """``load_state_dict`` found missing, unexpected or mis-shaped entries.

    It is a ``ValueError`` (bad input, this project's convention) and also a
    ``RuntimeError``, so code written for PyTorch's ``except RuntimeError`` still works.
    """


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _as_array(value):
    """A NumPy (or CuPy) array from a Tensor, a torch tensor, an array or a number."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor, without importing torch
        return value.detach().cpu().numpy()
    if is_gpu_array(value):
        return value
    return np.asarray(value)


def _quoted(keys):
    return ", ".join(f'"{key}"' for key in keys)


def load_into(module_name, own, state_dict, strict):
    """Copy ``state_dict`` into the tensors of ``own`` (key → Tensor), in place and in their dtypes.

    Raises ``StateDictError`` listing every problem, having changed nothing.
    Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``.
    """
    if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
        raise TypeError(f"load_state_dict: expected a mapping of names to arrays, got {type(state_dict).__name__}")
    missing = [key for key in own if key not in state_dict]
    unexpected = [key for key in state_dict.keys() if key not in own]  # noqa: SIM118  (any mapping)
    errors, arrays = [], {}
    if strict and missing:
        errors.append(f"Missing key(s) in state_dict: {_quoted(missing)}.")
    if strict and unexpected:
        errors.append(f"Unexpected key(s) in state_dict: {_quoted(unexpected)}.")
    for key, tensor in own.items():
        if key not in state_dict:
            continue
        try:
            array = _as_array(state_dict[key])
        except Exception as error:  # noqa: BLE001  (reported with the other problems)
            errors.append(f"could not read {key} as an array: {error}")
            continue
        if array.dtype.kind not in "biuf":
            errors.append(f"{key} has dtype {array.dtype}, expected numbers")
        elif tuple(array.shape) != tensor.shape:
            errors.append(
                f"size mismatch for {key}: copying a param with shape {tuple(array.shape)} from checkpoint, "
                f"the shape in current model is {tensor.shape}."
            )
        else:
            arrays[key] = array
    if errors:
        raise StateDictError(f"Error(s) in loading state_dict for {module_name}:\n\t" + "\n\t".join(errors))

    # Only now, with everything valid, write: in place, so an optimizer's references stay good.
    for key, array in arrays.items():
        target = own[key].data
        xp = get_array_module(target)
        if xp is np and not isinstance(array, np.ndarray):  # a GPU checkpoint into a host model
            array = array.get()
        target[...] = xp.asarray(array).astype(target.dtype, copy=False)
    return IncompatibleKeys(missing, unexpected)
