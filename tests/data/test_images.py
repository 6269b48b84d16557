"""image_to_tensor and tensor_to_image: one photo into the (N, C, H, W) layout models take and back out,
checked against PyTorch's own conversion (permute, divide, interpolate) and against to_tensor."""
import numpy as np
import pytest
import torch

import minicnn
from minicnn.data import image_to_tensor, tensor_to_image, to_tensor


def photo(height=5, width=7, channels=3, seed=0):
    image = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    image[0, 0, 0], image[0, 1, 0] = 0, 255          # the two ends of the range are always there
    return image


def torch_to_tensor(image_hwc, scale):
    """What torchvision's ToTensor does, written with torch: HWC → CHW, divided by the type's range."""
    return (torch.from_numpy(image_hwc.astype(np.float64)).permute(2, 0, 1) / scale).unsqueeze(0).numpy()


# --- shapes, dtype, values ----------------------------------------------------------------------------
def test_a_uint8_colour_photo_becomes_a_float32_batch_of_one_in_unit_range():
    image = photo()
    x = image_to_tensor(image)
    assert isinstance(x, minicnn.Tensor) and not x.requires_grad
    assert x.shape == (1, 3, 5, 7) and x.dtype == np.float32 and x.numpy().flags["C_CONTIGUOUS"]
    assert x.numpy().min() == 0.0 and x.numpy().max() == 1.0
    np.testing.assert_allclose(x.numpy(), torch_to_tensor(image, 255.0), rtol=1e-6)
    np.testing.assert_array_equal(x.numpy(), to_tensor(image[None]))    # the datasets' conversion, bit for bit


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1)])
def test_a_grey_image_gets_one_channel(shape):
    image = photo(channels=1).reshape(shape)
    x = image_to_tensor(image)
    assert x.shape == (1, 1, 5, 7)
    np.testing.assert_allclose(x.numpy()[0, 0], image.reshape(5, 7) / 255.0, rtol=1e-6)


def test_rgba_keeps_its_four_channels():
    image = photo(channels=4)
    np.testing.assert_allclose(image_to_tensor(image).numpy(), torch_to_tensor(image, 255.0), rtol=1e-6)


def test_a_batch_nhwc_converts_like_to_tensor():
    batch = np.stack([photo(seed=seed) for seed in range(3)])            # (3, 5, 7, 3)
    x = image_to_tensor(batch)
    assert x.shape == (3, 3, 5, 7)
    np.testing.assert_array_equal(x.numpy(), to_tensor(batch))


def test_a_float_image_in_unit_range_keeps_its_values_as_float32():
    image = np.random.default_rng(1).random((5, 7, 3))                  # float64 in [0, 1)
    x = image_to_tensor(image)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.numpy(), image.transpose(2, 0, 1)[None].astype(np.float32))


def test_uint16_is_divided_by_its_full_range_and_bool_becomes_zero_or_one():
    deep = np.array([[0, 65535], [32768, 1]], dtype=np.uint16)
    np.testing.assert_allclose(image_to_tensor(deep).numpy()[0, 0], deep / 65535.0, rtol=1e-6)
    mask = np.array([[True, False], [False, True]])
    np.testing.assert_array_equal(image_to_tensor(mask).numpy()[0, 0], mask.astype(np.float32))


def test_a_pil_like_object_with_array_interface_is_accepted():
    class FakePILImage:
        def __array__(self, dtype=None, copy=None):
            return photo()

    assert image_to_tensor(FakePILImage()).shape == (1, 3, 5, 7)


# --- size ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, expected", [(4, (4, 5)), ((3, 9), (3, 9)), (10, (10, 13))])
def test_size_resizes_bilinearly_like_torch_interpolate(size, expected):
    image = photo(height=8, width=11)
    x = image_to_tensor(image, size=size)
    assert x.shape == (1, 3, *expected)
    reference = torch.nn.functional.interpolate(torch.from_numpy(to_tensor(image[None])), size=expected,
                                                mode="bilinear", align_corners=False, antialias=False)
    np.testing.assert_allclose(x.numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)
    assert 0.0 <= x.numpy().min() and x.numpy().max() <= 1.0


# --- back to a picture ------------------------------------------------------------------------------------
def test_tensor_to_image_inverts_image_to_tensor():
    image = photo()
    shown = tensor_to_image(image_to_tensor(image))
    assert shown.shape == (5, 7, 3) and shown.dtype == np.float32
    np.testing.assert_array_equal(np.rint(shown * 255).astype(np.uint8), image)


def test_tensor_to_image_gives_a_grey_image_as_two_dimensions():
    image = photo(channels=1)[:, :, 0]
    shown = tensor_to_image(image_to_tensor(image))
    assert shown.shape == (5, 7)
    np.testing.assert_array_equal(np.rint(shown * 255).astype(np.uint8), image)


def test_tensor_to_image_takes_chw_arrays_and_clips_to_unit_range():
    chw = np.array([[[-0.5, 0.25], [1.0, 2.0]]] * 3, dtype=np.float64)  # (3, 2, 2)
    shown = tensor_to_image(chw)
    assert shown.shape == (2, 2, 3) and shown.dtype == np.float32
    np.testing.assert_array_equal(shown[:, :, 0], [[0.0, 0.25], [1.0, 1.0]])


def test_a_real_photo_round_trips():
    data = pytest.importorskip("skimage.data", reason="the real photo needs scikit-image")
    rocket = data.rocket()                                               # NASA, public domain
    x = image_to_tensor(rocket)
    assert x.shape == (1, 3, 427, 640)
    np.testing.assert_array_equal(np.rint(tensor_to_image(x) * 255).astype(np.uint8), rocket)


# --- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("image, error, message", [
    (np.zeros((3, 8, 9), dtype=np.uint8), ValueError, r"image_to_tensor: .*looks channels first .*moveaxis"),
    (np.zeros((10, 8, 9), dtype=np.uint8), ValueError, r"image_to_tensor: .*grey images \(N, H, W\)"),
    (np.zeros((6, 5, 5), dtype=np.uint8), ValueError, r"image_to_tensor: expected channels last .* 1 to 4 channels"),
    (np.zeros((1, 4, 5, 6), dtype=np.uint8), ValueError, r"image_to_tensor: expected 1 to 4 channels"),
    (np.zeros(5, dtype=np.uint8), ValueError, r"image_to_tensor: expected an image \(H, W\)"),
    (np.zeros((1, 1, 2, 2, 3), dtype=np.uint8), ValueError, r"image_to_tensor: expected an image \(H, W\)"),
    (np.zeros((0, 4, 3), dtype=np.uint8), ValueError, r"image_to_tensor: the image is empty"),
    (np.full((2, 2), 1.5), ValueError, r"image_to_tensor: a float image must lie in \[0, 1\], got values from"),
    (np.full((2, 2), -0.1, dtype=np.float32), ValueError, r"image_to_tensor: a float image must lie in \[0, 1\]"),
    (np.array([[0.5, np.nan]]), ValueError, r"image_to_tensor: a float image must lie in \[0, 1\]"),
    (np.zeros((2, 2), dtype=np.int64), TypeError, r"image_to_tensor: expected a uint8, uint16, bool or float"),
    (np.zeros((2, 2), dtype=np.int8), TypeError, r"image_to_tensor: .*got dtype int8"),
    (np.array([["a", "b"]]), TypeError, r"image_to_tensor: .*got dtype <U1"),
    ("rocket.png", TypeError, r"image_to_tensor: expected an image array .* got str; read a file first"),
    (None, TypeError, r"image_to_tensor: expected an image array .* got NoneType"),
    (minicnn.zeros(1, 3, 4, 4), TypeError, r"image_to_tensor: got a Tensor, which is already"),
])
def test_image_to_tensor_refuses_bad_images_naming_itself(image, error, message):
    with pytest.raises(error, match=message):
        image_to_tensor(image)


@pytest.mark.parametrize("size, error, message", [
    (0, ValueError, r"image_to_tensor: size must be positive, got 0"),
    (2.5, TypeError, r"image_to_tensor: size must be an int"),
    ((4, 4, 4), ValueError, r"image_to_tensor: size must be an int or a \(height, width\) pair"),
    ((4, -1), ValueError, r"image_to_tensor: size must be positive"),
    (True, TypeError, r"image_to_tensor: size must be an int"),
])
def test_image_to_tensor_refuses_a_bad_size_naming_itself(size, error, message):
    with pytest.raises(error, match=message):
        image_to_tensor(photo(), size=size)


@pytest.mark.parametrize("tensor, error, message", [
    (np.zeros((2, 3, 4, 4), dtype=np.float32), ValueError, r"tensor_to_image: expected one image, got a batch of 2"),
    (np.zeros((1, 2, 4, 4), dtype=np.float32), ValueError, r"tensor_to_image: expected 1, 3 or 4 channels"),
    (np.zeros((4, 4), dtype=np.float32), ValueError, r"tensor_to_image: expected \(1, C, H, W\) or \(C, H, W\)"),
    (np.zeros((4, 4, 3), dtype=np.uint8), TypeError, r"tensor_to_image: expected a float tensor .* uint8"),
    ([[0.0]], TypeError, r"tensor_to_image: expected a Tensor or NumPy array .* got list"),
])
def test_tensor_to_image_refuses_what_it_cannot_draw_naming_itself(tensor, error, message):
    with pytest.raises(error, match=message):
        tensor_to_image(tensor)
