"""Batch transforms: each one takes a whole batch and a NumPy ``Generator`` and returns a new batch.

A dataset stores its images as uint8 ``(N, H, W, C)``, the way image files hold them; models want float32
``(B, C, H, W)``.  ``ToTensor`` is the step between the two layouts, so every transform states which side
of it it belongs to:

==========================  ==========================================================
before ``ToTensor``         uint8 ``(B, H, W, C)``: ``Resize`` (also works after)
after ``ToTensor``          float ``(B, C, H, W)``: ``Normalize``, ``Pad``, ``RandomCrop``,
                            ``RandomHorizontalFlip``, ``Resize``
==========================  ==========================================================

Transforms work on the whole batch at once with index arrays, never with a Python loop over images: a
random crop draws one offset per image and gathers all the windows in a single fancy-indexing step.
The random ones take their randomness from the ``rng`` argument only, so the DataLoader can hand each
batch a generator derived from (seed, epoch, batch) and a resumed run sees the very same augmentation.

>>> from minicnn.data.transforms import Compose, ToTensor, RandomCrop, RandomHorizontalFlip, Normalize
>>> augment = Compose([ToTensor(), RandomCrop(32, padding=4), RandomHorizontalFlip(),
...                    Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
>>> x = augment(images[:64], np.random.default_rng(0))        # uint8 (64, 32, 32, 3) -> float32 (64, 3, 32, 32)
"""
import numbers

import numpy as np

from minicnn import random as _random
from minicnn.checks import check_positive_int

__all__ = ["Compose", "Normalize", "Pad", "RandomCrop", "RandomHorizontalFlip", "Resize", "ToTensor",
           "to_tensor"]


# --- argument and layout checks ---------------------------------------------------------------------
def _describe(value):
    return f"{type(value).__name__} {value!r}"


def _check_array(name, batch):
    if not isinstance(batch, np.ndarray):
        raise TypeError(f"{name}: expected a NumPy array batch, got {type(batch).__name__}")


def _check_chw_float(name, batch):
    """Transforms that run after ToTensor: insist on a float (B, C, H, W) batch."""
    _check_array(name, batch)
    if batch.dtype == np.uint8:
        raise TypeError(f"{name}: expected a (B, C, H, W) float batch, got shape {batch.shape} "
                        f"— put it after ToTensor")
    if not np.issubdtype(batch.dtype, np.floating):
        raise TypeError(f"{name}: expected a (B, C, H, W) float batch, got dtype {batch.dtype}")
    if batch.ndim != 4:
        raise ValueError(f"{name}: expected a (B, C, H, W) float batch, got shape {batch.shape}")


def size_pair(name, size):
    """An int means a square; a pair is (height, width)."""
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"{name}: size must be an int or a (height, width) pair, got {size!r}")
        return tuple(check_positive_int(name, "size", value) for value in size)
    side = check_positive_int(name, "size", size)
    return side, side


def _padding_quad(name, padding):
    """torchvision's convention: p, (left/right, top/bottom) or (left, top, right, bottom)."""
    values = padding if isinstance(padding, (tuple, list)) else (padding,)
    if len(values) not in (1, 2, 4):
        raise ValueError(f"{name}: padding must be an int or a sequence of 2 or 4 ints, got {padding!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}: padding must be made of ints, got {_describe(value)}")
        if value < 0:
            raise ValueError(f"{name}: padding must be >= 0, got {padding!r}")
    if len(values) == 1:
        return (int(values[0]),) * 4
    if len(values) == 2:
        return int(values[0]), int(values[1]), int(values[0]), int(values[1])
    return tuple(int(value) for value in values)


def _pad_chw(batch, left, top, right, bottom, fill=0.0):
    if left == top == right == bottom == 0:
        return batch
    return np.pad(batch, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)


def _rng_or_global(name, rng):
    # Interactive use (``flip(x)``) falls back on minicnn's global generator; the DataLoader always passes one.
    if rng is None:
        return _random.generator()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name}: expected rng to be a numpy Generator or None, got {_describe(rng)}")
    return rng


# --- composition and conversion ----------------------------------------------------------------------
class Compose:
    """Apply transforms one after the other, handing each the same ``rng``."""

    def __init__(self, transforms):
        if not isinstance(transforms, (list, tuple)):
            raise TypeError(f"Compose: expected a list of transforms, got {_describe(transforms)}")
        transforms = list(transforms)
        for transform in transforms:
            if not callable(transform):
                raise TypeError(f"Compose: every transform must be callable, got {_describe(transform)}")
        self.transforms = transforms

    def __call__(self, batch, rng=None):
        for transform in self.transforms:
            batch = transform(batch, rng)
        return batch

    def __repr__(self):
        lines = "".join(f"\n    {transform!r}" for transform in self.transforms)
        return f"Compose({lines}\n)"


def to_tensor(batch):
    """uint8 (B, H, W, C) in [0, 255] → float32 (B, C, H, W) in [0, 1].

    A float batch is taken to be (B, C, H, W) already and comes back as float32 unchanged, so a dataset
    that stores floats can still use the default conversion.
    """
    _check_array("ToTensor", batch)
    if np.issubdtype(batch.dtype, np.floating):
        if batch.ndim != 4:
            raise ValueError(f"ToTensor: expected a float batch of shape (B, C, H, W), got shape {batch.shape}")
        return batch.astype(np.float32, copy=False)
    if batch.dtype != np.uint8:
        raise TypeError(f"ToTensor: expected a uint8 (B, H, W, C) or float (B, C, H, W) batch, "
                        f"got dtype {batch.dtype}")
    if batch.ndim != 4:
        raise ValueError(f"ToTensor: expected a uint8 batch of shape (B, H, W, C), got shape {batch.shape}")
    # Divide in float32: NumPy would otherwise promote uint8 / 255.0 to float64.
    chw = batch.transpose(0, 3, 1, 2).astype(np.float32)       # (B, C, H, W)
    chw *= np.float32(1.0 / 255.0)
    return np.ascontiguousarray(chw)


class ToTensor:
    """uint8 (B, H, W, C) → float32 (B, C, H, W) in [0, 1]; float batches pass through (see ``to_tensor``)."""

    def __call__(self, batch, rng=None):
        return to_tensor(batch)

    def __repr__(self):
        return "ToTensor()"


# --- deterministic transforms ------------------------------------------------------------------------
class Normalize:
    """(x − mean[c]) / std[c] for each channel c of a float (B, C, H, W) batch.

    One value for mean and std applies to every channel. Runs after ToTensor.
    """

    def __init__(self, mean, std):
        self.mean, self.std = mean, std
        self._mean = self._per_channel("mean", mean)
        self._std = self._per_channel("std", std)
        if len(self._mean) != len(self._std):
            raise ValueError(f"Normalize: mean and std must have the same length, got {len(self._mean)} "
                             f"and {len(self._std)}")
        if np.any(self._std <= 0):
            raise ValueError(f"Normalize: std must be positive in every channel, got {std!r}")

    @staticmethod
    def _per_channel(what, values):
        values = values if isinstance(values, (tuple, list, np.ndarray)) else (values,)
        for value in values:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"Normalize: {what} must be a number or a sequence of numbers, "
                                f"got {_describe(value)}")
        if len(values) == 0:
            raise ValueError(f"Normalize: {what} must not be empty")
        # A NaN or infinite mean or std would not fail: it would quietly turn every batch into NaN or 0.
        if not np.all(np.isfinite(values)):
            raise ValueError(f"Normalize: {what} must be finite, got {values!r}")
        return np.asarray(values, dtype=np.float32)

    def __call__(self, batch, rng=None):
        _check_chw_float("Normalize", batch)
        channels = batch.shape[1]
        if len(self._mean) not in (1, channels):
            raise ValueError(f"Normalize: the batch has {channels} channels but mean and std have "
                             f"{len(self._mean)} values")
        mean = self._mean.reshape(-1, 1, 1).astype(batch.dtype)    # (C, 1, 1) broadcasts over B, H, W
        std = self._std.reshape(-1, 1, 1).astype(batch.dtype)
        return (batch - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


def _linear_resize_axis(array, axis, out_size):
    """Linear interpolation along one axis with align_corners=False (PyTorch's half-pixel rule).

    Output pixel j samples the input at src = (j + 0.5) · in/out − 0.5 (clamped at 0) and mixes its two
    neighbours floor(src) and floor(src) + 1 by the fractional part. Done as two gathers with index arrays.
    """
    in_size = array.shape[axis]
    if in_size == out_size:
        return array
    scale = in_size / out_size
    source = np.maximum((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.intp), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    weight_high = (source - low).astype(array.dtype)
    shape = [1] * array.ndim
    shape[axis] = out_size
    weight_high = weight_high.reshape(shape)                    # broadcasts along every other axis
    low_values = np.take(array, low, axis=axis)
    high_values = np.take(array, high, axis=axis)
    return low_values + (high_values - low_values) * weight_high


class Resize:
    """Bilinear resize, like ``F.interpolate(mode="bilinear", align_corners=False, antialias=False)``.

    ``size`` is (height, width), or an int: then, as in torchvision, the *shorter* edge becomes ``size`` and
    the other keeps the aspect ratio (a square image simply becomes size × size).
    Works on both layouts: a float batch is (B, C, H, W) and stays float; a uint8 batch is (B, H, W, C)
    (before ToTensor) and comes back uint8, rounded to the nearest integer. Shrinking does not
    anti-alias, exactly like PyTorch's tensor interpolation.
    """

    def __init__(self, size):
        if isinstance(size, (tuple, list)):
            self._pair = size_pair("Resize", size)
        else:
            check_positive_int("Resize", "size", size)
            self._pair = None
        self.size = size

    def output_size(self, height, width):
        if self._pair is not None:
            return self._pair
        short, long = min(height, width), max(height, width)
        new_short, new_long = self.size, int(self.size * long / short)
        return (new_short, new_long) if height <= width else (new_long, new_short)

    def __call__(self, batch, rng=None):
        _check_array("Resize", batch)
        if batch.ndim != 4:
            raise ValueError(f"Resize: expected a uint8 (B, H, W, C) or float (B, C, H, W) batch, "
                             f"got shape {batch.shape}")
        if batch.dtype == np.uint8:
            height_axis, width_axis = 1, 2
            values = batch.astype(np.float32)
        elif np.issubdtype(batch.dtype, np.floating):
            height_axis, width_axis = 2, 3
            values = batch
        else:
            raise TypeError(f"Resize: expected a uint8 or float batch, got dtype {batch.dtype}")
        out_height, out_width = self.output_size(batch.shape[height_axis], batch.shape[width_axis])
        values = _linear_resize_axis(values, height_axis, out_height)
        values = _linear_resize_axis(values, width_axis, out_width)
        if batch.dtype == np.uint8:
            return np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(values)

    def __repr__(self):
        return f"Resize(size={self.size}, interpolation=bilinear, antialias=False)"


class Pad:
    """Pad the borders of a float (B, C, H, W) batch with a constant (runs after ToTensor).

    ``padding`` is p (all sides), (left/right, top/bottom) or (left, top, right, bottom), as in torchvision.
    """

    def __init__(self, padding, fill=0.0):
        self._quad = _padding_quad("Pad", padding)
        if isinstance(fill, bool) or not isinstance(fill, numbers.Real):
            raise TypeError(f"Pad: fill must be a number, got {_describe(fill)}")
        self.padding, self.fill = padding, fill

    def __call__(self, batch, rng=None):
        _check_chw_float("Pad", batch)
        return _pad_chw(batch, *self._quad, fill=self.fill)

    def __repr__(self):
        return f"Pad(padding={self.padding}, fill={self.fill}, padding_mode=constant)"


# --- random augmentation -------------------------------------------------------------------------------
class RandomCrop:
    """Zero-pad by ``padding``, then cut a ``size`` window at a random place, a different place per image.

    Runs after ToTensor and before Normalize, so the padding is black (0), as with torchvision's PIL crop.

    >>> RandomCrop(32, padding=4)(x, rng)        # (B, C, 32, 32) → (B, C, 32, 32), shifted up to 4 pixels
    """

    def __init__(self, size, padding=0):
        self._height, self._width = size_pair("RandomCrop", size)
        self._quad = _padding_quad("RandomCrop", padding)
        self.size, self.padding = (self._height, self._width), padding

    def __call__(self, batch, rng=None):
        _check_chw_float("RandomCrop", batch)
        padded = _pad_chw(batch, *self._quad)
        batch_size, _, padded_height, padded_width = padded.shape
        if self._height > padded_height or self._width > padded_width:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the padded image "
                             f"({padded_height}, {padded_width})")
        rng = _rng_or_global("RandomCrop", rng)
        tops = rng.integers(0, padded_height - self._height + 1, size=batch_size)
        lefts = rng.integers(0, padded_width - self._width + 1, size=batch_size)
        # Every window of the padded images, as a view (no copy): (B, C, H'-h+1, W'-w+1, h, w).
        windows = np.lib.stride_tricks.sliding_window_view(padded, (self._height, self._width), axis=(2, 3))
        # One window per image: the advanced indices on axes 0, 2, 3 pair up, the channel slice stays.
        crops = windows[np.arange(batch_size), :, tops, lefts]      # (B, C, h, w)
        return np.ascontiguousarray(crops)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p``, independently per image (after ToTensor)."""

    def __init__(self, p=0.5):
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"RandomHorizontalFlip: p must be a number, got {_describe(p)}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, batch, rng=None):
        _check_chw_float("RandomHorizontalFlip", batch)
        flip = _rng_or_global("RandomHorizontalFlip", rng).random(batch.shape[0]) < self.p      # (B,)
        return np.where(flip[:, None, None, None], batch[..., ::-1], batch)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"
