"""Batch transforms, each checked against an independent computation: a per-image loop (the naive
version), NumPy written out differently, or PyTorch for Resize."""
import numpy as np
import pytest
import torch

import minicnn
from minicnn.data.transforms import (
    Compose,
    Normalize,
    Pad,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToTensor,
    to_tensor,
)


def uint8_hwc(batch=4, height=5, width=6, channels=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, height, width, channels), dtype=np.uint8)


def float_chw(batch=4, channels=3, height=5, width=6, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, channels, height, width)).astype(np.float32)


def distinct_chw(batch, channels, height, width):
    """Positive pixel values that are all different, so every window of an image is recognisable."""
    return np.arange(1, batch * channels * height * width + 1, dtype=np.float32).reshape(
        batch, channels, height, width)


# --- ToTensor ---------------------------------------------------------------------------------------------
def test_to_tensor_turns_uint8_hwc_into_float32_chw_in_unit_range():
    batch = uint8_hwc()
    batch[0, 0, 0, 0], batch[0, 0, 1, 0] = 0, 255
    out = ToTensor()(batch, None)
    assert out.dtype == np.float32 and out.shape == (4, 3, 5, 6) and out.flags["C_CONTIGUOUS"]
    for image in range(4):
        for channel in range(3):
            np.testing.assert_allclose(out[image, channel], batch[image, :, :, channel] / 255.0, rtol=1e-6)
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_array_equal(to_tensor(batch), out)


def test_to_tensor_passes_a_float_chw_batch_through_as_float32():
    batch = float_chw()
    assert to_tensor(batch) is batch
    converted = to_tensor(batch.astype(np.float64))
    assert converted.dtype == np.float32
    np.testing.assert_array_equal(converted, batch)


@pytest.mark.parametrize("batch, error, message", [
    (np.zeros((4, 5, 6, 3), dtype=np.int32), TypeError,
     r"ToTensor: expected a uint8 \(B, H, W, C\) or float \(B, C, H, W\) batch, got dtype int32"),
    (np.zeros((5, 6, 3), dtype=np.uint8), ValueError,
     r"ToTensor: expected a uint8 batch of shape \(B, H, W, C\), got shape \(5, 6, 3\)"),
    (np.zeros((5, 6), dtype=np.float32), ValueError,
     r"ToTensor: expected a float batch of shape \(B, C, H, W\), got shape \(5, 6\)"),
    ([[1, 2]], TypeError, "ToTensor: expected a NumPy array batch, got list"),
])
def test_to_tensor_rejects_other_inputs(batch, error, message):
    with pytest.raises(error, match=message):
        ToTensor()(batch)


# --- Compose -----------------------------------------------------------------------------------------------
def test_compose_applies_in_order_and_hands_every_transform_the_same_rng():
    seen = []

    def record(batch, rng):
        seen.append(rng)
        return batch * 2

    rng = np.random.default_rng(0)
    batch = uint8_hwc()
    out = Compose([ToTensor(), record, Normalize(0.5, 0.25), record])(batch, rng)
    expected = ((batch.transpose(0, 3, 1, 2) / 255.0 * 2) - 0.5) / 0.25 * 2
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert seen == [rng, rng]


def test_compose_rejects_something_not_callable():
    with pytest.raises(TypeError, match="Compose: every transform must be callable, got int 3"):
        Compose([ToTensor(), 3])


# --- Normalize ---------------------------------------------------------------------------------------------
def test_normalize_works_per_channel():
    batch = float_chw(channels=3)
    mean, std = (0.1, -0.2, 0.3), (0.5, 2.0, 0.25)
    out = Normalize(mean, std)(batch)
    assert out.dtype == np.float32
    for channel in range(3):
        np.testing.assert_allclose(out[:, channel], (batch[:, channel] - mean[channel]) / std[channel], rtol=1e-5)


def test_normalize_with_one_value_applies_it_to_every_channel():
    batch = float_chw(channels=3)
    np.testing.assert_allclose(Normalize([0.5], [0.2])(batch), (batch - 0.5) / 0.2, rtol=1e-5)


@pytest.mark.parametrize("make, error, message", [
    (lambda: Normalize((0.5, 0.5), (0.2, 0.0)), ValueError, r"Normalize: std must be positive in every channel"),
    (lambda: Normalize((0.5, 0.5), (0.2,)), ValueError, ("Normalize: mean and std must have the same length, got 2 "
                                                        "and 1")),
    (lambda: Normalize("0.5", 0.2), TypeError, ("Normalize: mean must be a number or a sequence of numbers, got "
                                                "str '0.5'")),
    (lambda: Normalize([], []), ValueError, "Normalize: mean must not be empty"),
])
def test_normalize_rejects_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_normalize_checks_channels_and_layout():
    with pytest.raises(ValueError, match="Normalize: the batch has 3 channels but mean and std have 2 values"):
        Normalize((0.5, 0.5), (0.2, 0.2))(float_chw(channels=3))
    with pytest.raises(TypeError, match=r"Normalize: expected a \(B, C, H, W\) float batch, got shape "
                                        r"\(4, 5, 6, 3\) — put it after ToTensor"):
        Normalize(0.5, 0.2)(uint8_hwc())


# --- Resize -------------------------------------------------------------------------------------------------
def torch_bilinear(batch, size):
    return torch.nn.functional.interpolate(torch.from_numpy(batch), size=size, mode="bilinear",
                                           align_corners=False, antialias=False).numpy()


@pytest.mark.parametrize("in_size, out_size", [
    ((8, 8), (32, 32)), ((7, 9), (3, 4)), ((5, 13), (11, 6)), ((6, 6), (6, 6)), ((4, 5), (1, 1)), ((28, 28), (32, 32)),
])
def test_resize_matches_torch_bilinear_on_float_batches(in_size, out_size):
    batch = float_chw(batch=3, channels=2, height=in_size[0], width=in_size[1])
    out = Resize(out_size)(batch)
    expected = torch_bilinear(batch, out_size)
    assert out.dtype == np.float32 and out.shape == expected.shape
    assert np.abs(out - expected).max() / np.abs(expected).max() < 1e-5


def test_resize_of_uint8_hwc_returns_uint8_hwc_rounded_like_torch():
    batch = uint8_hwc(batch=2, height=8, width=8, channels=3)
    out = Resize(32)(batch)
    assert out.dtype == np.uint8 and out.shape == (2, 32, 32, 3)
    expected = torch_bilinear(batch.transpose(0, 3, 1, 2).astype(np.float32), (32, 32)).transpose(0, 2, 3, 1)
    # Values that land exactly on .5 may round either way in float32.
    assert np.abs(out.astype(np.int16) - np.rint(expected)).max() <= 1
    assert np.mean(out == np.rint(expected)) > 0.99


def test_resize_to_an_int_sets_the_shorter_edge_and_keeps_the_aspect_ratio():
    assert Resize(16)(float_chw(batch=1, height=8, width=12)).shape == (1, 3, 16, 24)
    assert Resize(16)(float_chw(batch=1, height=12, width=8)).shape == (1, 3, 24, 16)
    assert Resize((16, 10))(float_chw(batch=1, height=12, width=8)).shape == (1, 3, 16, 10)


@pytest.mark.parametrize("make, error, message", [
    (lambda: Resize(0), ValueError, "Resize: size must be positive, got 0"),
    (lambda: Resize(2.5), TypeError, "Resize: size must be an int, got float 2.5"),
    (lambda: Resize((2,)), ValueError, r"Resize: size must be an int or a \(height, width\) pair, got \(2,\)"),
    (lambda: Resize(4)(np.zeros((2, 3, 5, 5), dtype=np.int32)), TypeError,
     "Resize: expected a uint8 or float batch, got dtype int32"),
    (lambda: Resize(4)(np.zeros((3, 5, 5), dtype=np.float32)), ValueError,
     r"Resize: expected a uint8 \(B, H, W, C\) or float \(B, C, H, W\) batch, got shape \(3, 5, 5\)"),
])
def test_resize_rejects_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


# --- Pad ------------------------------------------------------------------------------------------------------
def test_pad_surrounds_each_image_with_the_fill_value():
    batch = float_chw(batch=2, channels=3, height=4, width=5)
    out = Pad((1, 2, 3, 4), fill=-1.0)(batch)      # left, top, right, bottom
    assert out.shape == (2, 3, 4 + 2 + 4, 5 + 1 + 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :, 2:6, 1:6], batch)
    border = np.ones(out.shape, dtype=bool)
    border[:, :, 2:6, 1:6] = False
    assert np.all(out[border] == -1.0)
    assert Pad(2)(batch).shape == (2, 3, 8, 9)
    assert Pad((1, 2))(batch).shape == (2, 3, 8, 7)


# --- RandomCrop --------------------------------------------------------------------------------------------------
def find_crop_offsets(batch, crops, padding):
    """The naive version: for each image, try every window of its padded copy and keep the one that matches."""
    padded = np.pad(batch, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    height, width = crops.shape[2:]
    offsets = []
    for image, crop in zip(padded, crops):
        matches = [(top, left) for top in range(image.shape[1] - height + 1)
                   for left in range(image.shape[2] - width + 1)
                   if np.array_equal(image[:, top:top + height, left:left + width], crop)]
        assert len(matches) == 1, "each crop must be exactly one window of its own padded image"
        offsets.append(matches[0])
    return offsets


def test_random_crop_cuts_one_window_of_the_zero_padded_image_with_its_own_offset_per_image():
    batch = distinct_chw(batch=64, channels=2, height=6, width=6)
    crops = RandomCrop(6, padding=2)(batch, np.random.default_rng(0))
    assert crops.shape == (64, 2, 6, 6) and crops.dtype == np.float32 and crops.flags["C_CONTIGUOUS"]
    offsets = find_crop_offsets(batch, crops, padding=2)
    tops, lefts = zip(*offsets)
    # Per-image randomness: every offset from 0 to 2·padding turns up in a batch of 64.
    assert set(tops) == set(range(5)) and set(lefts) == set(range(5))


def test_random_crop_of_a_smaller_non_square_size():
    batch = distinct_chw(batch=16, channels=1, height=7, width=9)
    crops = RandomCrop((4, 5))(batch, np.random.default_rng(1))
    assert crops.shape == (16, 1, 4, 5)
    assert len(set(find_crop_offsets(batch, crops, padding=0))) > 1


def test_random_crop_is_reproducible_from_the_rng_and_the_global_generator():
    batch = float_chw(batch=8)
    crop = RandomCrop(5, padding=3)
    np.testing.assert_array_equal(crop(batch, np.random.default_rng(5)), crop(batch, np.random.default_rng(5)))
    assert not np.array_equal(crop(batch, np.random.default_rng(5)), crop(batch, np.random.default_rng(6)))
    state = minicnn.get_rng_state()
    try:
        minicnn.manual_seed(3)
        first = crop(batch)
        minicnn.manual_seed(3)
        np.testing.assert_array_equal(crop(batch), first)
    finally:
        minicnn.set_rng_state(state)


@pytest.mark.parametrize("make, error, message", [
    (lambda: RandomCrop(28)(uint8_hwc(batch=4, height=28, width=28, channels=1)), TypeError,
     r"RandomCrop: expected a \(B, C, H, W\) float batch, got shape \(4, 28, 28, 1\) — put it after ToTensor"),
    (lambda: RandomCrop(4)(np.zeros((3, 5, 5), dtype=np.float32)), ValueError,
     r"RandomCrop: expected a \(B, C, H, W\) float batch, got shape \(3, 5, 5\)"),
    (lambda: RandomCrop(8, padding=1)(float_chw(height=5, width=6)), ValueError,
     r"RandomCrop: crop size \(8, 8\) is larger than the padded image \(7, 8\)"),
    (lambda: RandomCrop(0), ValueError, "RandomCrop: size must be positive, got 0"),
    (lambda: RandomCrop(4, padding=-1), ValueError, "RandomCrop: padding must be >= 0, got -1"),
    (lambda: RandomCrop(4, padding=(1, 2, 3)), ValueError,
     "RandomCrop: padding must be an int or a sequence of 2 or 4 ints, got"),
    (lambda: RandomCrop(4, padding=1.5), TypeError, "RandomCrop: padding must be made of ints, got float 1.5"),
])
def test_random_crop_rejects_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


# --- RandomHorizontalFlip ------------------------------------------------------------------------------------------
def test_random_horizontal_flip_mirrors_some_images_and_leaves_the_others():
    batch = float_chw(batch=32)
    out = RandomHorizontalFlip()(batch, np.random.default_rng(0))
    flipped = []
    for image, result in zip(batch, out):       # naive: one image at a time
        if np.array_equal(result, image[:, :, ::-1]):
            flipped.append(True)
        else:
            np.testing.assert_array_equal(result, image)
            flipped.append(False)
    assert 0 < sum(flipped) < 32


def test_random_horizontal_flip_probability():
    batch = float_chw(batch=4000, channels=1, height=1, width=2)
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(batch, rng), batch)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(batch, rng), batch[..., ::-1])
    out = RandomHorizontalFlip(p=0.25)(batch, rng)
    fraction = np.mean(np.any(out != batch, axis=(1, 2, 3)))
    assert 0.22 < fraction < 0.28


@pytest.mark.parametrize("make, error, message", [
    (lambda: RandomHorizontalFlip(1.5), ValueError, r"RandomHorizontalFlip: p must be in \[0, 1\], got 1.5"),
    (lambda: RandomHorizontalFlip("half"), TypeError, "RandomHorizontalFlip: p must be a number, got str 'half'"),
    (lambda: RandomHorizontalFlip()(uint8_hwc()), TypeError,
     r"RandomHorizontalFlip: expected a \(B, C, H, W\) float batch, got shape \(4, 5, 6, 3\) — put it after"),
])
def test_random_horizontal_flip_rejects_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


# --- repr ----------------------------------------------------------------------------------------------------------
def test_reprs_read_like_torchvision():
    pipeline = Compose([Resize(32), ToTensor(), Pad(2), RandomCrop(32, padding=4), RandomHorizontalFlip(),
                        Normalize((0.1307,), (0.3081,))])
    assert repr(pipeline) == (
        "Compose(\n"
        "    Resize(size=32, interpolation=bilinear, antialias=False)\n"
        "    ToTensor()\n"
        "    Pad(padding=2, fill=0.0, padding_mode=constant)\n"
        "    RandomCrop(size=(32, 32), padding=4)\n"
        "    RandomHorizontalFlip(p=0.5)\n"
        "    Normalize(mean=(0.1307,), std=(0.3081,))\n"
        ")"
    )
