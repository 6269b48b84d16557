"""One picture in, one picture out: a photo as the (N, C, H, W) Tensor a model takes, and back.

Image files, PIL and scikit-image hold a picture channels last, (H, W, C), as uint8 in [0, 255]; a
network wants float32 (N, C, H, W) in [0, 1].  ``to_tensor`` (transforms.py) makes that step for a
dataset's batches; ``image_to_tensor`` makes it for the single photo a student holds, grey or colour,
uint8 or float, and ``tensor_to_image`` turns a result back into what ``plt.imshow`` draws.

>>> from skimage import data
>>> x = image_to_tensor(data.rocket())                 # uint8 (427, 640, 3) -> Tensor (1, 3, 427, 640)
>>> plt.imshow(tensor_to_image(F.avg_pool2d(x, 4)))    # float (106, 160, 3) in [0, 1]
"""
import numpy as np

from minicnn.checks import check_positive_int
from minicnn.data.transforms import Resize, size_pair, to_tensor
from minicnn.tensor import Tensor

__all__ = ["image_to_tensor", "tensor_to_image"]

# Integer images are scaled by their type's full range, as skimage.img_as_float does.
_FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _as_image_array(name, image):
    if isinstance(image, Tensor):
        raise TypeError(f"{name}: got a Tensor, which is already (N, C, H, W); pass the image as a NumPy "
                        f"array (H, W, C), or show a Tensor with tensor_to_image")
    if isinstance(image, (str, bytes)) or image is None:
        raise TypeError(f"{name}: expected an image array (H, W) or (H, W, C), got {type(image).__name__}; "
                        f"read a file first, e.g. skimage.io.imread(path)")
    array = np.asarray(image)      # also takes a PIL image or nested lists
    if array.dtype != np.bool_ and array.dtype not in _FULL_SCALE and array.dtype.kind != "f":
        raise TypeError(f"{name}: expected a uint8, uint16, bool or float image, got dtype {array.dtype}")
    return array


def _check_layout(name, array):
    """(N, H, W, C) from (H, W), (H, W, C) or (N, H, W, C), refusing an array that is channels first."""
    shape = array.shape
    if array.ndim == 3 and shape[-1] > 4:
        hint = ("it looks channels first (C, H, W): use np.moveaxis(image, 0, -1)" if shape[0] <= 4 else
                "a batch of grey images (N, H, W) needs a channel axis: images[..., None]")
        raise ValueError(f"{name}: expected channels last (H, W, C) with 1 to 4 channels, got shape {shape}; "
                         f"{hint}")
    if array.ndim not in (2, 3, 4):
        raise ValueError(f"{name}: expected an image (H, W) or (H, W, C), or a batch (N, H, W, C), "
                         f"got shape {shape}")
    if array.ndim == 2:                                   # grey: one channel
        array = array[:, :, None]
    if array.ndim == 3:                                   # a batch of one
        array = array[None]
    if not 1 <= array.shape[-1] <= 4:
        raise ValueError(f"{name}: expected 1 to 4 channels last (grey, grey+alpha, RGB, RGBA), "
                         f"got shape {shape}")
    if 0 in array.shape:
        raise ValueError(f"{name}: the image is empty, shape {shape}")
    return array


def image_to_tensor(image, size=None):
    """A picture as a float32 (N, C, H, W) Tensor in [0, 1]: what conv layers and models take.

    ``image`` is (H, W) grey, (H, W, C) with 1-4 channels last, or a batch (N, H, W, C); a single image
    becomes a batch of one.  uint8 is divided by 255 (exactly like ``ToTensor``), uint16 by 65535, bool
    becomes 0 or 1, and a float image must already lie in [0, 1].  ``size`` resizes bilinearly after the
    conversion, like ``Resize``: an int makes the shorter edge that long, a pair is (height, width).

    >>> image_to_tensor(np.zeros((427, 640, 3), np.uint8)).shape
    (1, 3, 427, 640)
    >>> image_to_tensor(np.zeros((427, 640), np.uint8), size=224).shape     # grey, shorter edge 224
    (1, 1, 224, 335)
    """
    name = "image_to_tensor"
    if size is not None:
        if isinstance(size, (tuple, list)):
            size_pair(name, size)
        else:
            check_positive_int(name, "size", size)
    array = _check_layout(name, _as_image_array(name, image))
    if array.dtype == np.uint8:
        batch = to_tensor(array)                              # (N, C, H, W), the datasets' own conversion
    else:
        if array.dtype.kind == "f":
            low, high = float(array.min()), float(array.max())
            if not (0.0 <= low and high <= 1.0):              # also catches NaN, which fails every comparison
                raise ValueError(f"{name}: a float image must lie in [0, 1], got values from {low:g} to "
                                 f"{high:g}; scale it first, or pass the uint8 image")
            values = array.astype(np.float32)
        else:
            values = array.astype(np.float32) / np.float32(_FULL_SCALE.get(array.dtype, 1.0))
        batch = to_tensor(np.ascontiguousarray(values.transpose(0, 3, 1, 2)))   # (N, C, H, W)
    if size is not None:
        batch = Resize(size)(batch)       # a convex mix of neighbours: the values stay in [0, 1]
    return Tensor(batch)


def tensor_to_image(tensor):
    """The inverse, for showing: (1, C, H, W) or (C, H, W) → a NumPy (H, W, C) float32 image in [0, 1].

    One channel comes back as (H, W), which ``plt.imshow(..., cmap="gray")`` draws; 3 or 4 channels as
    (H, W, C).  Values outside [0, 1] (after dropout's rescaling, say) are clipped, as ``plt.imshow``
    would clip them anyway.  Takes a Tensor on any device or a NumPy array.

    >>> tensor_to_image(image_to_tensor(photo)).shape        # photo: uint8 (427, 640, 3)
    (427, 640, 3)
    """
    name = "tensor_to_image"
    if isinstance(tensor, Tensor):
        array = tensor.numpy()                                # copied to the host from a GPU
    elif isinstance(tensor, np.ndarray):
        array = tensor
    else:
        raise TypeError(f"{name}: expected a Tensor or NumPy array (N, C, H, W), got {type(tensor).__name__}")
    if array.dtype.kind != "f":
        raise TypeError(f"{name}: expected a float tensor in [0, 1] like image_to_tensor makes, "
                        f"got dtype {array.dtype}")
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise ValueError(f"{name}: expected one image, got a batch of {array.shape[0]} (shape "
                             f"{array.shape}); pick one with tensor[i]")
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"{name}: expected (1, C, H, W) or (C, H, W), got shape {array.shape}")
    if array.shape[0] not in (1, 3, 4):
        raise ValueError(f"{name}: expected 1, 3 or 4 channels to draw, got {array.shape[0]} (shape "
                         f"{array.shape}); show one channel with plt.imshow(tensor[0, c])")
    image = np.clip(array.transpose(1, 2, 0), 0.0, 1.0).astype(np.float32)   # (H, W, C)
    return image[:, :, 0] if image.shape[-1] == 1 else image
