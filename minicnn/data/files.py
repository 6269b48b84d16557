"""Standard datasets read from their distribution files: MNIST, Fashion-MNIST (IDX) and CIFAR-10 (binary).

Files live under ``root/<name>/``:

- ``mnist/`` and ``fashion_mnist/``: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``) or not;
- ``cifar10/cifar-10-batches-bin/``: ``data_batch_1.bin`` … ``data_batch_5.bin`` and ``test_batch.bin``,
  as unpacked from ``cifar-10-binary.tar.gz`` (the binary version, not the Python pickles).

``download=True`` fetches what is missing from ``RESOURCES`` with SHA-256 verification.
"""
import gzip
import math
import os
import struct
import tarfile
import urllib.error
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minicnn.data.datasets import register_source
from minicnn.data.download import download_file

# IDX type codes (the third byte of the magic number) → big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"

MNIST_CLASSES = [str(digit) for digit in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32  # a label byte, then 1,024 red, 1,024 green and 1,024 blue bytes
CIFAR10_FILES = {"train": [f"data_batch_{number}.bin" for number in range(1, 6)], "test": ["test_batch.bin"]}
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass(frozen=True)
class Resources:
    """Where a dataset's files come from: mirrors (base URLs, tried in order) and file name → SHA-256."""

    mirrors: tuple
    sha256: dict
    homepage: str


# The SHA-256 sums below were not computed here (this code was written offline); they are the ones
# TensorFlow Datasets publishes in tensorflow_datasets/url_checksums/{mnist,fashion_mnist,cifar10}.txt,
# and the MNIST ones also match torchvision's and several independent projects' tables.
RESOURCES = {
    "mnist": Resources(
        mirrors=("https://storage.googleapis.com/cvdf-datasets/mnist/",
                 "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        homepage="https://yann.lecun.com/exdb/mnist/"),
    "fashion_mnist": Resources(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        sha256={
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        homepage="https://github.com/zalandoresearch/fashion-mnist"),
    "cifar10": Resources(
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        sha256={CIFAR10_ARCHIVE: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"},
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html"),
}


def default_root():
    """``$MINICNN_DATA`` if set, else ``~/.cache/minicnn/data``."""
    return Path(os.environ.get("MINICNN_DATA") or Path.home() / ".cache" / "minicnn" / "data")


def read_idx(path):
    """An IDX file (gzipped when its name ends in ``.gz``) as a NumPy array of its stored shape.

    The format: two zero bytes, a type code, the number of dimensions, then each dimension as a
    big-endian uint32, then the values in C order.  The header is untrusted: the body is read in
    chunks up to the size it declares, so a corrupt header claiming terabytes allocates nothing, and
    a file whose length disagrees with its header raises ValueError naming the file.
    """
    gzipped = str(path).endswith(".gz")
    try:
        with (gzip.open if gzipped else open)(path, "rb") as file:
            magic = file.read(4)
            if len(magic) < 4 or magic[0] or magic[1] or magic[2] not in _IDX_DTYPES:
                raise ValueError(f"read_idx: {path} is not an IDX file: {_describe_magic(magic, gzipped)}")
            dtype, ndim = np.dtype(_IDX_DTYPES[magic[2]]), magic[3]
            dims = file.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise ValueError(f"read_idx: {path} is truncated inside its header: {ndim} dimensions need "
                                 f"{4 * ndim} bytes after the magic number, the file has only {len(dims)}")
            shape = struct.unpack(f">{ndim}I", dims)
            expected = math.prod(shape) * dtype.itemsize     # Python ints: no overflow, however large
            body = _read_at_most(file, expected + 1)          # one byte more tells "too long" from "exact"
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:   # only gzip.open raises these
        raise ValueError(f"read_idx: {path} is not a valid gzip file ({error}); "
                         f"{_gzip_hint(path)}") from error
    if len(body) != expected:
        holds = (f"{len(body)} bytes after its {4 + 4 * ndim}-byte header: the file is cut short"
                 if len(body) < expected else f"more than that after its {4 + 4 * ndim}-byte header")
        raise ValueError(f"read_idx: {path} declares shape {shape} ({expected} bytes of {dtype.name}) "
                         f"but holds {holds}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _describe_magic(magic, gzipped):
    """Why the first four bytes are not an IDX magic number, with a hint for the usual mix-up."""
    if not magic:
        return "the file is empty"
    found = (f"its magic number is 0x{magic.hex()}, "
             f"expected 0x0000 then a type code and the number of dimensions")
    if magic.startswith(_GZIP_MAGIC) and not gzipped:
        return found + "; it looks gzipped: add .gz to its name"
    return found


def _gzip_hint(path):
    """What to do about a ``.gz`` file that gzip cannot read: it depends on whether it starts like one."""
    with open(path, "rb") as file:
        if file.read(2) == _GZIP_MAGIC:
            return "the compressed stream is truncated or corrupt: download it again"
    return "it is not gzipped at all: if it is a plain IDX file, drop .gz from its name"


def _read_at_most(file, limit, chunk_size=1 << 20):
    """Up to ``limit`` bytes of ``file``, read in chunks so memory follows the file, not its header."""
    chunks = []
    while limit > 0 and (chunk := file.read(min(chunk_size, limit))):
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


def read_cifar10_batch(path):
    """One CIFAR-10 binary batch file → (images (N, 32, 32, 3) uint8, labels (N,) int64).

    The file has no header, so its length is checked before anything is read: it must be a whole
    number of 3,073-byte records.
    """
    size = os.path.getsize(path)
    if size == 0 or size % CIFAR10_RECORD_BYTES:
        raise ValueError(
            f"read_cifar10_batch: {path} holds {size} bytes, not a whole number of "
            f"{CIFAR10_RECORD_BYTES}-byte records ({size // CIFAR10_RECORD_BYTES} records and "
            f"{size % CIFAR10_RECORD_BYTES} bytes): "
            f"truncated, or not a batch of the binary version ({CIFAR10_ARCHIVE}, not the Python pickles)")
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)      # planes (N, C, H, W) → (N, H, W, C)
    if labels.max() >= len(CIFAR10_CLASSES):
        record = int(np.argmax(labels >= len(CIFAR10_CLASSES)))
        raise ValueError(f"read_cifar10_batch: {path} has label {labels[record]} in record {record}; "
                         f"CIFAR-10 labels are 0..9 (a corrupt or foreign file)")
    return np.ascontiguousarray(images), labels


def _missing_file_error(name, folder, wanted, resources):
    urls = " or ".join(mirror for mirror in resources.mirrors)
    return FileNotFoundError(
        f"load_dataset: '{name}' needs {', '.join(wanted)} in {folder}; download "
        f"{', '.join(resources.sha256)} from {urls} (see {resources.homepage}), "
        f"or pass download=True (minicnn train --download) to fetch them")


def _fetch(name, folder, file_name):
    """Download one of dataset ``name``'s files into ``folder``, trying each mirror in turn.

    When every mirror fails (no network, a firewall, a dead host) the error lists each URL with its
    reason and says what to put where by hand: a file already in place with the right SHA-256 is
    used without a download.
    """
    resources = RESOURCES[name]
    failures = []
    for mirror in resources.mirrors:
        try:
            return download_file(mirror + file_name, folder / file_name, resources.sha256[file_name])
        except (ConnectionError, urllib.error.URLError) as error:  # HTTPError included: try the next mirror
            failures.append(error)
    raise ConnectionError(
        f"load_dataset: could not download '{name}' ({'; '.join(str(error) for error in failures)}); "
        f"without network, fetch {', '.join(resources.sha256)} elsewhere (see {resources.homepage}) and put "
        f"them in {folder}: download=True then checks their SHA-256 and downloads nothing") from failures[-1]


def _idx_source(name, classes):
    def load_idx_source(split, root=None, download=False):
        folder = Path(root if root is not None else default_root()) / name
        paths = []
        for stem in IDX_FILES[split]:
            present = [folder / file_name for file_name in (stem, stem + ".gz") if (folder / file_name).is_file()]
            if not present:
                if not download:
                    raise _missing_file_error(name, folder, [f"{stem}[.gz]"], RESOURCES[name])
                present = [_fetch(name, folder, stem + ".gz")]
            paths.append(present[0])
        images_path, labels_path = paths
        images, labels = read_idx(images_path), read_idx(labels_path)
        # Each file is a valid IDX file on its own; these checks catch a swapped, foreign or mismatched one.
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"load_dataset: '{name}' expected uint8 images (N, H, W) in {images_path}, "
                             f"got {images.dtype.name} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"load_dataset: '{name}' expected {len(images)} integer labels (one per image "
                             f"of {images_path.name}) in {labels_path}, "
                             f"got {labels.dtype.name} {labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f"load_dataset: '{name}' expected labels 0..{len(classes) - 1} in "
                             f"{labels_path}, got labels from {labels.min()} to {labels.max()}")
        return images[..., None], labels.astype(np.int64), classes               # grey: C = 1
    load_idx_source.__doc__ = f"{name} from IDX files under root/{name}/ (gzipped or not)."
    return load_idx_source


register_source("mnist")(_idx_source("mnist", MNIST_CLASSES))
register_source("fashion_mnist")(_idx_source("fashion_mnist", FASHION_MNIST_CLASSES))


def _extract_cifar10(archive, folder):
    """Unpack the batch files of the CIFAR-10 archive into ``folder``, each one atomically."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            # Only plain files directly inside cifar-10-batches-bin/: no path tricks from the archive.
            parent, _, file_name = member.name.rpartition("/")
            if not member.isfile() or parent != CIFAR10_FOLDER or not file_name:
                continue
            target = folder / CIFAR10_FOLDER / file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(target.name + ".part")
            with tar.extractfile(member) as source, open(temporary, "wb") as destination:
                while chunk := source.read(1 << 20):
                    destination.write(chunk)
            os.replace(temporary, target)


@register_source("cifar10")
def load_cifar10_source(split, root=None, download=False):
    """CIFAR-10 (binary version) under root/cifar10/cifar-10-batches-bin/: 50,000 train / 10,000 test."""
    folder = Path(root if root is not None else default_root()) / "cifar10"
    batch_paths = [folder / CIFAR10_FOLDER / file_name for file_name in CIFAR10_FILES[split]]
    missing = [path.name for path in batch_paths if not path.is_file()]
    if missing:
        if not download:
            raise _missing_file_error("cifar10", folder / CIFAR10_FOLDER, missing, RESOURCES["cifar10"])
        archive = _fetch("cifar10", folder, CIFAR10_ARCHIVE)
        _extract_cifar10(archive, folder)
        still_missing = [path.name for path in batch_paths if not path.is_file()]
        if still_missing:
            raise ValueError(f"load_dataset: 'cifar10' archive {archive} lacks {', '.join(still_missing)}")
    batches = [read_cifar10_batch(path) for path in batch_paths]
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return images, labels, CIFAR10_CLASSES
