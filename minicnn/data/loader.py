"""DataLoader: cut a dataset into batches of Tensors, reproducibly and resumably.

Everything random about an epoch is a pure function of (seed, epoch): the shuffle order comes from a
generator seeded with (seed, epoch), and each batch's augmentation from one seeded with
(seed, epoch, batch index). Nothing carries over from one epoch to the next, so a run resumed from a
checkpoint at epoch 7 (``load_state_dict``) sees exactly the batches an uninterrupted run would have seen,
without replaying epochs 0 to 6. That is why the loader counts its own epochs.

>>> loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=0)
>>> for x, y in loader:          # x: Tensor float32 (64, C, H, W), y: Tensor int64 (64,)
...     ...
>>> loader.state_dict()
{'epoch': 1, 'seed': 0, 'batch': 0}

A ``sampler`` (PyTorch's argument) replaces the loader's own order: any object whose ``iter()`` gives the
epoch's sample indices; the loader calls its ``set_epoch(epoch)`` first if it has one.  That is how
``minicnn.distributed.DistributedSampler`` gives each rank its share of every epoch.
"""
import math
import numbers

import numpy as np

from minicnn import random as _random
from minicnn.tensor import DEFAULT_DTYPE, Tensor

__all__ = ["DataLoader"]

# Distinct spawn keys keep the shuffle stream and the augmentation stream of the same seed apart.
# Keys have a fixed length: NumPy's SeedSequence pads short entropy with zeros, so (seed, e) and
# (seed, e, 0) would otherwise collide.
_ORDER_STREAM, _TRANSFORM_STREAM = 0, 1


def _generator(seed, stream, epoch, batch_index=0):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, epoch, batch_index)))


def shuffled_order(num_samples, seed, epoch):
    """The shuffled sample order of ``epoch``: a pure function of (num_samples, seed, epoch)."""
    return _generator(seed, _ORDER_STREAM, epoch).permutation(num_samples)


def _check_non_negative_int(what, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"DataLoader: {what} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"DataLoader: {what} must be >= 0, got {value}")
    return int(value)


class DataLoader:
    """Iterate over ``dataset`` in batches: yields (x Tensor float32 (B, C, H, W), y Tensor int64 (B,)).

    Args:
        dataset: has ``__len__`` and ``get_batch(indices, rng)`` returning (float32 images, int64 labels);
            every minicnn dataset does, and applies its ``transform`` there.
        batch_size: images per batch; the last batch is smaller unless ``drop_last``.
        shuffle: a new order every epoch (a pure function of seed and epoch), else dataset order.
        drop_last: drop the last, incomplete batch.
        seed: seeds the shuffle and the augmentation. ``None`` draws one from minicnn's global generator
            when the loader is made, so ``minicnn.manual_seed`` makes the whole run reproducible (with a
            sampler that has a ``seed``, None takes the sampler's).
        sampler: gives each epoch's sample indices instead of the loader's own order (then ``shuffle``
            must stay False: the sampler decides the order).

    Each ``iter(loader)`` runs the next epoch (``loader.epoch`` counts them); ``state_dict()`` records
    where the loader is, even in the middle of an epoch, and ``load_state_dict()`` continues from there.
    """

    def __init__(self, dataset, batch_size=32, shuffle=False, drop_last=False, seed=None, sampler=None):
        if not (hasattr(dataset, "get_batch") and hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader: dataset must have __len__ and get_batch(indices, rng), "
                            f"got {type(dataset).__name__}; wrap arrays as "
                            f"minicnn.data.ImageDataset(images, labels, classes)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        for flag, value in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"DataLoader: {flag} must be True or False, got {type(value).__name__} {value!r}")
        if sampler is not None:
            if shuffle:
                raise ValueError("DataLoader: sampler and shuffle=True both decide the order; leave shuffle "
                                 "False and let the sampler shuffle (DistributedSampler(..., shuffle=True))")
            if not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__")):
                raise TypeError(f"DataLoader: sampler must have __iter__ (sample indices) and __len__, "
                                f"got {type(sampler).__name__}")
        if len(dataset) == 0:
            raise ValueError("DataLoader: the dataset is empty")
        num_samples = len(dataset) if sampler is None else len(sampler)
        what = "the dataset" if sampler is None else "the sampler's share"
        if num_samples == 0:
            raise ValueError(f"DataLoader: {what} is empty")
        if drop_last and num_samples < batch_size:
            raise ValueError(f"DataLoader: drop_last=True with batch_size {batch_size} larger than "
                             f"{what} ({num_samples} samples) leaves no batch at all")
        if seed is None and getattr(sampler, "seed", None) is not None:
            seed = sampler.seed
        if seed is None:
            seed = int(_random.generator().integers(0, 2**63))
        self.sampler = sampler
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = _check_non_negative_int("seed", seed)
        self._next_epoch = 0            # the epoch the next iteration runs
        self._start_batch = 0           # where that iteration starts (non-zero only after a mid-epoch resume)
        self._running = None            # [epoch, batches handed out] of the iteration in progress

    @property
    def epoch(self):
        """The epoch being served, or between epochs the one the next iteration will serve."""
        return self._running[0] if self._running is not None else self._next_epoch

    def __len__(self):
        """Batches per epoch."""
        num_samples = len(self.dataset) if self.sampler is None else len(self.sampler)
        if self.drop_last:
            return num_samples // self.batch_size
        return math.ceil(num_samples / self.batch_size)

    def order(self, epoch):
        """The sample indices of ``epoch`` in the order they are served (a pure function of seed, epoch)."""
        if self.sampler is not None:
            if callable(getattr(self.sampler, "set_epoch", None)):
                self.sampler.set_epoch(epoch)
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        num_samples = len(self.dataset)
        if not self.shuffle:
            return np.arange(num_samples)
        return shuffled_order(num_samples, self.seed, epoch)

    def _augmentation_generator(self, epoch, batch_index):
        """The random stream of one batch's transforms.

        Under a DistributedSampler, rank r's k-th batch is slot k·ranks + r: every rank's batches draw
        their own stream, and one rank alone (slot k) draws exactly what a loader without a sampler does.
        """
        ranks, rank = getattr(self.sampler, "num_replicas", 1), getattr(self.sampler, "rank", 0)
        return _generator(self.seed, _TRANSFORM_STREAM, epoch, batch_index * ranks + rank)

    def __iter__(self):
        epoch, start = self._next_epoch, self._start_batch
        # Claim the epoch now: a second iter() (or one abandoned after a peek) moves on, like PyTorch.
        self._next_epoch, self._start_batch = epoch + 1, 0
        position = [epoch, start]
        self._running = position
        return self._batches(position)

    def _batches(self, position):
        epoch, start = position
        order = self.order(epoch)
        try:
            for batch_index in range(start, len(self)):
                indices = order[batch_index * self.batch_size:(batch_index + 1) * self.batch_size]
                rng = self._augmentation_generator(epoch, batch_index)
                images, labels = self.dataset.get_batch(indices, rng)
                # Counted before the yield: a state_dict taken while the batch is being used points past it.
                position[1] = batch_index + 1
                yield self._as_tensors(images, labels)
        finally:
            if self._running is position:
                self._running = None

    def _as_tensors(self, images, labels):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype == np.uint8:
            raise TypeError(f"DataLoader: {type(self.dataset).__name__}.get_batch returned uint8 images of shape "
                            f"{images.shape}; its transform must convert them (add ToTensor)")
        if not np.issubdtype(images.dtype, np.floating):
            raise TypeError(f"DataLoader: expected float images from get_batch, got dtype {images.dtype}")
        # A transform written as ``x / 255.0`` yields float64; models run in float32.
        return Tensor(images.astype(DEFAULT_DTYPE, copy=False)), Tensor(labels.astype(np.int64, copy=False))

    def set_epoch(self, epoch):
        """Make the next iteration run ``epoch`` from its first batch (e.g. to line up with a resumed fit)."""
        self._next_epoch = _check_non_negative_int("epoch", epoch)
        self._start_batch = 0
        self._running = None

    def state_dict(self):
        """Where the loader stands, JSON-serialisable: {"epoch", "seed", "batch"}.

        Between epochs ``batch`` is 0 and ``epoch`` is the next one to run; in the middle of an epoch,
        ``batch`` counts the batches already handed out.
        """
        epoch, batch = self._next_epoch, self._start_batch
        if self._running is not None:
            epoch, batch = self._running
            if batch >= len(self):              # the last batch is out: the epoch is as good as done
                epoch, batch = epoch + 1, 0
        return {"epoch": int(epoch), "seed": int(self.seed), "batch": int(batch)}

    def load_state_dict(self, state_dict):
        """Continue from a ``state_dict()``: same seed, same epoch, same position within it."""
        if not isinstance(state_dict, dict) or "epoch" not in state_dict or "seed" not in state_dict:
            raise ValueError(f"DataLoader.load_state_dict: expected a dict with 'epoch' and 'seed', "
                             f"got {state_dict!r}")
        epoch = _check_non_negative_int("epoch", state_dict["epoch"])
        seed = _check_non_negative_int("seed", state_dict["seed"])
        batch = _check_non_negative_int("batch", state_dict.get("batch", 0))
        if batch > len(self):
            raise ValueError(f"DataLoader.load_state_dict: batch {batch} is past the end of an epoch "
                             f"({len(self)} batches)")
        if batch == len(self):
            epoch, batch = epoch + 1, 0
        self.seed, self._next_epoch, self._start_batch = seed, epoch, batch
        if getattr(self.sampler, "seed", None) is not None:  # one seed for the order and the augmentation
            self.sampler.seed = seed
        self._running = None

    def __repr__(self):
        sampler = "" if self.sampler is None else f", sampler={self.sampler!r}"
        return (f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, epoch={self.epoch}"
                f"{sampler})")
