"""``shapes``: coloured geometric shapes on noisy backgrounds, generated on the spot (no files).

A CIFAR-sized stand-in (3x32x32, eight classes) that needs nothing but NumPy: the shape decides
the class, while colour, position, size, a small rotation and the background vary per image, so a
network has to learn shape, not colour.  Outline and filled versions of the same figure (ring and
circle, frame and square) make it less trivial than it looks.

Each image's pixels are tested against its shape's inequality all at once: coordinates of every
pixel relative to the image's centre, rotated and scaled, give a boolean mask per image; no loop
runs over pixels.

>>> train = load_dataset("shapes", split="train", num_samples=1000, seed=0)   # doctest: +SKIP
"""
import numpy as np

from minicnn.data.datasets import register_source

SHAPE_CLASSES = ["circle", "ring", "square", "frame", "triangle", "diamond", "plus", "cross"]
DEFAULT_NUM_SAMPLES = {"train": 5000, "test": 1000}
_SPLIT_STREAM = {"train": 0, "test": 1}  # train and test draw from different streams of one seed
_CHUNK = 2048  # images generated at once: bounds the float32 work arrays to ~10 MB at 32x32
_MAX_TILT = np.pi / 9  # ±20°: enough to vary, too little to turn a square into a diamond or a plus into a cross
_SQRT3 = np.sqrt(3.0)


def _inside(shape_index, u, v):
    """Boolean mask of the points (u, v) inside shape ``shape_index``, in units of the shape's radius.

    u points right and v points up; every shape fits in the unit disc.
    """
    name = SHAPE_CLASSES[shape_index]
    radius_squared = u * u + v * v
    box = np.maximum(np.abs(u), np.abs(v))             # "radius" in the max norm: squares are its level sets
    if name == "circle":
        return radius_squared <= 1.0
    if name == "ring":
        return (radius_squared <= 1.0) & (radius_squared >= 0.6 ** 2)
    if name == "square":
        return box <= 0.75
    if name == "frame":
        return (box <= 0.75) & (box >= 0.45)
    if name == "triangle":                              # apex up at (0, 1), base at v = -0.5
        return (v >= -0.5) & (v <= 1.0 - _SQRT3 * np.abs(u))
    if name == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    bar_half_width = 0.22
    if name == "plus":
        return (box <= 0.95) & (np.minimum(np.abs(u), np.abs(v)) <= bar_half_width)
    if name == "cross":                                 # the plus turned by 45°
        diagonal, antidiagonal = (u + v) / np.sqrt(2.0), (u - v) / np.sqrt(2.0)
        in_bars = np.minimum(np.abs(diagonal), np.abs(antidiagonal)) <= bar_half_width
        return in_bars & (np.maximum(np.abs(diagonal), np.abs(antidiagonal)) <= 0.95)
    raise AssertionError(f"no geometry for shape {name!r}")


def generate_shapes(num_samples, seed=0, size=32, noise=16.0):
    """``num_samples`` images (N, size, size, 3) uint8 and their labels (N,) int64, classes balanced.

    Same (num_samples, seed, size, noise) → the same images, on any machine.  Class counts differ
    by at most one; the order of the classes is shuffled.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise ValueError(f"generate_shapes: expected num_samples to be a positive int, got {num_samples!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"generate_shapes: expected size to be an int >= 8, got {size!r}")
    if not isinstance(noise, (int, float)) or isinstance(noise, bool) or noise < 0:
        raise ValueError(f"generate_shapes: expected noise to be a number >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    num_classes = len(SHAPE_CLASSES)
    labels = rng.permutation(np.arange(num_samples) % num_classes).astype(np.int64)
    images = np.empty((num_samples, size, size, 3), dtype=np.uint8)
    for start in range(0, num_samples, _CHUNK):
        stop = min(start + _CHUNK, num_samples)
        images[start:stop] = _draw(labels[start:stop], size, noise, rng)
    return images, labels


def _draw(labels, size, noise, rng):
    """Render one chunk of images: (B, size, size, 3) uint8."""
    count = len(labels)
    # Per image: a radius of 25-45% of the side, a centre that keeps the shape inside, a small tilt.
    radius = rng.uniform(0.25, 0.45, count).astype(np.float32) * size
    centre_x = rng.uniform(radius, size - radius).astype(np.float32)
    centre_y = rng.uniform(radius, size - radius).astype(np.float32)
    tilt = rng.uniform(-_MAX_TILT, _MAX_TILT, count).astype(np.float32)

    pixel = np.arange(size, dtype=np.float32) + 0.5                          # pixel centres
    dx = pixel[None, None, :] - centre_x[:, None, None]                      # (B, 1, W)
    dy = centre_y[:, None, None] - pixel[None, :, None]                      # (B, H, 1): v points up
    cos, sin = np.cos(tilt)[:, None, None], np.sin(tilt)[:, None, None]
    scale = 1.0 / radius[:, None, None]
    u = (cos * dx + sin * dy) * scale                                         # (B, H, W)
    v = (cos * dy - sin * dx) * scale

    mask = np.zeros((count, size, size), dtype=bool)
    for shape_index in range(len(SHAPE_CLASSES)):                             # one vectorised test per class
        members = np.flatnonzero(labels == shape_index)
        if len(members):
            mask[members] = _inside(shape_index, u[members], v[members])

    # Background: a random colour with a gentle linear gradient. Foreground: each channel shifted by
    # 80-176 (mod 256) from the background's, so the shape always stands out in every channel.
    background = rng.uniform(0, 255, (count, 1, 1, 3)).astype(np.float32)
    slope = rng.uniform(-1.5, 1.5, (count, 1, 1, 3)).astype(np.float32)
    gradient = slope * (pixel - size / 2)[None, :, None, None]               # (B, H, 1, 3)
    foreground = np.mod(background + rng.uniform(80, 176, (count, 1, 1, 3)).astype(np.float32), 256.0)
    image = np.where(mask[..., None], foreground, background + gradient)      # (B, H, W, 3)
    image += rng.normal(0.0, noise, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@register_source("shapes")
def load_shapes_source(split, root=None, download=False, num_samples=None, seed=0, size=32, noise=16.0):
    """Generated shapes: 5,000 train / 1,000 test images by default; train and test never repeat a stream."""
    if num_samples is None:
        num_samples = DEFAULT_NUM_SAMPLES[split]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"load_dataset: 'shapes' expected seed to be a non-negative int, got {seed!r}")
    images, labels = generate_shapes(num_samples, seed=[int(seed), _SPLIT_STREAM[split]], size=size, noise=noise)
    return images, labels, SHAPE_CLASSES
