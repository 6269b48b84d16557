"""Version counters: how backward knows that an array an op saved was overwritten since.

Every array has a counter, shared by every tensor that views it, which every
in-place write bumps (``minicnn/inplace.py`` does the writing).  A function
notes the versions of the arrays it saved for backward when it runs, and
backward checks them before asking it for gradients: a changed count means the
saved value is gone, and backward stops instead of returning a wrong gradient
(PyTorch's rule, with the same counter, ``tensor._version``).

This file sits below ``minicnn/tensor.py``: it knows arrays and the tensors'
counters, not the ``Tensor`` class.
"""


class Version:
    """How many in-place writes an array has had: shared by every tensor viewing that array."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


def storage(array):
    """The array that owns ``array``'s memory (itself, or the base a view was cut from)."""
    while isinstance(getattr(array, "base", None), type(array)):
        array = array.base
    return array


def input_viewed_by(output, tensors):
    """The input whose array ``output`` is a view of (reshape, transpose, x[i]), or None."""
    owner = storage(output)
    for t in tensors:
        if storage(t.data) is owner:
            return t
    return None


def saved_versions(function, inputs, output):
    """(version counter, its value now, what it is) for each input or output array ``function`` kept.

    A function saves arrays as attributes in ``forward``; those that share
    memory with an input or the output are what an in-place write could spoil.
    """
    owners = [(storage(t.data), t, f"input {i} (shape {t.shape})") for i, t in enumerate(inputs)]
    owners.append((storage(output.data), output, f"output (shape {output.shape})"))
    saved = []
    for value in vars(function).values():
        for array in value if isinstance(value, (tuple, list)) else (value,):
            if not hasattr(array, "base") or not hasattr(array, "dtype"):
                continue
            memory = storage(array)
            saved.extend((t._version_counter, t._version, what) for owner, t, what in owners if owner is memory)
    return saved


def check_saved_versions(function):
    """Before ``function.backward``: stop if an array it saved was written to since."""
    name = type(function).__name__
    for version, expected, what in function.saved_versions:
        if version.value != expected:
            raise RuntimeError(
                f"backward: the {what} of {name} was changed by an in-place operation after {name} saved it "
                f"for backward (version {expected}, now {version.value}), so its gradient would be wrong; "
                f"compute a new tensor instead (y = y + z rather than y += z), or change a .clone()"
            )
