"""A stand-in for ``minicnn.data.load_dataset`` in CLI tests: no files, no extras, any dataset name."""
import numpy as np

from minicnn.data import ImageDataset


def random_images_loader(channels):
    """``load_dataset`` giving 16 random 8x8 images of ``channels`` channels in 4 classes, whatever the name."""
    def load_dataset(name, split="train", transform=None, **options):
        rng = np.random.default_rng(0 if split == "train" else 1)
        images = rng.integers(0, 256, size=(16, 8, 8, channels), dtype=np.uint8)
        return ImageDataset(images, np.arange(16) % 4, ["a", "b", "c", "d"], transform=transform, name=name)

    return load_dataset
