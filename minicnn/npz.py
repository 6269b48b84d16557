"""Reading ``.npz`` archives, the one format minicnn stores arrays in (weights and checkpoints alike).

An ``.npz`` is a zip of ``.npy`` files.  ``np.load`` alone would unpickle objects from a file that holds
them, and would try anything that is not a zip as a pickle too; ``read_npz`` checks the zip signature
first and never unpickles, so a file from elsewhere can be refused but never run.
"""
import os
import zipfile

import numpy as np

__all__ = ["read_npz"]

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK"


def read_npz(path, function="read_npz", what="an .npz file", keys=None):
    """The arrays of the ``.npz`` at ``path`` as ``{key: ndarray}`` in the file's order, without pickle.

    ``keys``: read only these entries (None: all).  Errors name ``function`` and say the file is not
    ``what`` ("an .npz file", "a readable .npz checkpoint"): FileNotFoundError for a missing file,
    ValueError for a single ``.npy``, anything that is not a zip, a broken zip or pickled objects.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{function}: no such file {path!r}")
    with open(path, "rb") as file:
        magic = file.read(len(NPY_MAGIC))
    if magic == NPY_MAGIC:
        raise ValueError(f"{function}: {path!r} is a .npy holding a single array, expected {what} of named arrays")
    if not magic.startswith(ZIP_MAGIC):
        raise ValueError(f"{function}: {path!r} is not {what} (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            wanted = archive.files if keys is None else [key for key in archive.files if key in set(keys)]
            return {key: archive[key] for key in wanted}
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{function}: {path!r} is not {what} ({error})") from None
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(f"{function}: {path!r} holds pickled objects, which are never loaded; expected "
                             "plain numeric arrays") from None
        raise ValueError(f"{function}: {path!r} is not {what} ({error})") from None
