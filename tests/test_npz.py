"""minicnn.npz.read_npz: the one reader of .npz archives, behind model weights and checkpoints alike."""
import numpy as np
import pytest

from minicnn import nn
from minicnn.checkpoint import load_checkpoint
from minicnn.models import read_npz as models_read_npz
from minicnn.npz import read_npz


def test_it_reads_every_array_in_the_file_order_or_only_the_keys_asked_for(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, b=np.arange(3), a=np.ones((2, 2), np.float32), c=np.int64(7))
    arrays = read_npz(path)
    assert list(arrays) == ["b", "a", "c"]
    np.testing.assert_array_equal(arrays["a"], np.ones((2, 2)))
    assert arrays["a"].dtype == np.float32 and int(arrays["c"]) == 7
    assert list(read_npz(path, keys={"c", "b", "missing"})) == ["b", "c"]
    assert models_read_npz is read_npz  # minicnn.models.read_npz is this reader, not a second one


# Each writer gets the file opened for binary writing (so np.save keeps the .npz name).
@pytest.mark.parametrize("write, error, message", [
    (None, FileNotFoundError, r"loader: no such file '.*nowhere.npz'"),
    (lambda file: np.save(file, np.zeros(3)), ValueError,
     r"loader: '.*' is a \.npy holding a single array, expected a thing of named arrays"),
    (lambda file: file.write(b"hello, not a zip"), ValueError, r"loader: '.*' is not a thing \(not a zip archive\)"),
    (lambda file: file.write(b"PK\x03\x04 broken"), ValueError, r"loader: '.*' is not a thing \("),
    (lambda file: np.savez(file, x=np.array([{"a": 1}], dtype=object)), ValueError,
     r"loader: '.*' holds pickled objects, which are never loaded; expected plain numeric arrays"),
])
def test_it_refuses_what_is_not_a_plain_npz_naming_the_caller(tmp_path, write, error, message):
    path = tmp_path / "nowhere.npz"
    if write is not None:
        with open(path, "wb") as file:
            write(file)
    with pytest.raises(error, match=message):
        read_npz(path, "loader", "a thing")


def test_a_checkpoint_load_goes_through_the_same_reader(tmp_path):
    path = tmp_path / "single.npz"
    with open(path, "wb") as file:
        np.save(file, np.zeros(3))
    with pytest.raises(ValueError, match=r"load_checkpoint: '.*single.npz' is a \.npy holding a single array, "
                                         r"expected a readable \.npz checkpoint of named arrays"):
        load_checkpoint(path, nn.Linear(2, 2))
