"""Bad data files, failed downloads and bad arguments: each is a typed error that names what went wrong.

A user who hands minicnn a truncated MNIST file, a corrupt gzip stream, a machine without network or a
batch_size of 0 gets a ValueError, TypeError or ConnectionError whose message names the file, the URL or
the argument, never a bare NumPy, zlib or urllib traceback.  The files are written here, valid first,
then cut or corrupted; the "network" is 127.0.0.1 only (a closed port, a server that stalls, a server
that answers 404), so nothing here touches the internet.
"""
import contextlib
import functools
import gzip
import hashlib
import http.server
import math
import re
import socket
import threading
import tracemalloc
import urllib.error
import urllib.request

import numpy as np
import pytest

from minicnn.data import (
    Compose,
    DataLoader,
    ImageDataset,
    Normalize,
    Pad,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToTensor,
    download_file,
    files,
    load_dataset,
    read_cifar10_batch,
    read_idx,
    to_tensor,
)

# Random pixels: gzip cannot shrink them, so a cut gzip stream really is cut.
IMAGES = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
LABELS = np.array([0, 1, 2, 3, 4, 5], dtype=np.uint8)
IDX_DTYPES = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}
ANY_SHA256 = "0" * 64


def raises(error, text):
    """``pytest.raises`` expecting ``text`` word for word in the message (paths hold regex characters)."""
    return pytest.raises(error, match=re.escape(text))


# --- writing files ----------------------------------------------------------------------------------
def idx_header(shape, type_code=0x08):
    return bytes([0, 0, type_code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes()


def idx_bytes(array, type_code=0x08):
    return idx_header(array.shape, type_code) + np.asarray(array, dtype=IDX_DTYPES[type_code]).tobytes()


def corrupt(data, position):
    """``data`` with the byte at ``position`` flipped."""
    flipped = bytearray(data)
    flipped[position] ^= 0xFF
    return bytes(flipped)


def write(folder, name, data):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def mnist_root(root, images_idx=None, labels_idx=None, name="mnist"):
    """root/<name>/ with the gzipped train pair; ``images_idx``, ``labels_idx`` replace a file's IDX bytes."""
    images_idx = idx_bytes(IMAGES) if images_idx is None else images_idx
    labels_idx = idx_bytes(LABELS) if labels_idx is None else labels_idx
    write(root / name, "train-images-idx3-ubyte.gz", gzip.compress(images_idx))
    write(root / name, "train-labels-idx1-ubyte.gz", gzip.compress(labels_idx))
    return root


def cifar_records(count, label=3):
    records = np.random.default_rng(1).integers(0, 256, (count, 3073), dtype=np.uint8)   # label + 3x32x32
    records[:, 0] = label
    return records.tobytes()


# --- a network on 127.0.0.1 only --------------------------------------------------------------------
def closed_port_url():
    """A URL on a port nobody listens on: the connection is refused at once, as with no network."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@contextlib.contextmanager
def serving(folder):
    """An HTTP server on 127.0.0.1 for ``folder``'s files: anything else is a 404."""
    handler = functools.partial(QuietFileHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def stalling(sends=b""):
    """A server that accepts, sends ``sends`` (maybe nothing), then falls silent: the client times out."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    finished = threading.Event()

    def serve():
        try:
            connection, _ = listener.accept()
        except OSError:  # closed before anyone connected
            return
        with connection:
            connection.sendall(sends)
            finished.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        finished.set()
        listener.close()
        thread.join(5)


def point_mirrors(monkeypatch, name, *mirrors):
    """Make dataset ``name`` download from ``mirrors`` (same files, same checksums)."""
    resources = files.RESOURCES[name]
    replacement = files.Resources(mirrors, resources.sha256, resources.homepage)
    monkeypatch.setitem(files.RESOURCES, name, replacement)


# --- IDX files ----------------------------------------------------------------------------------------
def test_idx_header_cut_inside_its_dimensions_names_the_file(tmp_path):
    path = write(tmp_path, "train-images-idx3-ubyte", idx_bytes(IMAGES)[:9])
    with raises(ValueError, f"read_idx: {path} is truncated inside its header: 3 dimensions need 12 bytes "
                            f"after the magic number, the file has only 5"):
        read_idx(path)


def test_idx_body_cut_short_gives_declared_and_actual_sizes(tmp_path):
    path = write(tmp_path, "train-images-idx3-ubyte", idx_bytes(IMAGES)[:1000])
    with pytest.raises(ValueError) as raised:
        read_idx(path)
    assert str(raised.value) == (f"read_idx: {path} declares shape (6, 28, 28) (4704 bytes of uint8) "
                                 f"but holds 984 bytes after its 16-byte header: the file is cut short")


def test_idx_body_longer_than_its_header_says(tmp_path):
    path = write(tmp_path, "labels.idx", idx_bytes(LABELS) + b"\x00")
    with raises(ValueError, f"read_idx: {path} declares shape (6,) (6 bytes of uint8) "
                            f"but holds more than that"):
        read_idx(path)


def test_idx_dims_whose_product_overflows_int64_are_counted_exactly(tmp_path):
    shape = (2**32 - 1,) * 3
    path = write(tmp_path, "huge.idx", idx_header(shape, type_code=0x0C) + bytes(40))
    # NumPy's int64 product wraps around (to 12884901887 elements); the true size is ~3e29 bytes.
    with raises(ValueError, f"read_idx: {path} declares shape {shape} "
                            f"({math.prod(shape) * 4} bytes of int32) but holds 40 bytes"):
        read_idx(path)


def test_a_gzipped_header_claiming_a_terabyte_allocates_nothing_like_it(tmp_path):
    path = write(tmp_path, "claims.idx.gz", gzip.compress(idx_header((2**20, 2**10, 2**10)) + bytes(5000)))
    tracemalloc.start()
    try:
        with raises(ValueError, "declares shape (1048576, 1024, 1024) (1099511627776 bytes of uint8) "
                                "but holds 5000 bytes"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"reading a 5 kB file peaked at {peak} bytes"


def test_an_empty_idx_file_says_so(tmp_path):
    path = write(tmp_path, "t10k-labels-idx1-ubyte", b"")
    with raises(ValueError, f"read_idx: {path} is not an IDX file: the file is empty"):
        read_idx(path)


def test_a_bad_magic_number_is_shown_in_hex(tmp_path):
    path = write(tmp_path, "photo.jpg", b"\xff\xd8\xff\xe0" + bytes(100))
    with raises(ValueError, f"read_idx: {path} is not an IDX file: its magic number is 0xffd8ffe0, "
                            f"expected 0x0000 then a type code and the number of dimensions"):
        read_idx(path)


def test_a_gzipped_idx_file_without_gz_in_its_name_is_told_to_add_it(tmp_path):
    path = write(tmp_path, "train-images-idx3-ubyte", gzip.compress(idx_bytes(IMAGES)))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is not an IDX file: .*it looks gzipped: "
                                         rf"add \.gz to its name"):
        read_idx(path)


def test_a_plain_idx_file_named_gz_is_told_to_drop_the_suffix(tmp_path):
    path = write(tmp_path, "train-images-idx3-ubyte.gz", idx_bytes(IMAGES))
    with raises(ValueError, f"read_idx: {path} is not a valid gzip file (Not a gzipped file "
                            f"(b'\\x00\\x00')); it is not gzipped at all: if it is a plain IDX file, "
                            f"drop .gz from its name"):
        read_idx(path)


def test_a_truncated_gzip_stream_is_a_value_error_naming_the_file(tmp_path):
    path = write(tmp_path, "train-images-idx3-ubyte.gz", gzip.compress(idx_bytes(IMAGES))[:2000])
    with raises(ValueError, f"read_idx: {path} is not a valid gzip file (Compressed file ended before the "
                            f"end-of-stream marker was reached); the compressed stream is truncated or "
                            f"corrupt: download it again") as raised:
        read_idx(path)
    assert isinstance(raised.value.__cause__, EOFError)           # the cause stays attached for debugging


def test_a_gzip_stream_with_a_wrong_checksum_is_a_value_error_naming_the_file(tmp_path):
    path = write(tmp_path, "labels.gz", corrupt(gzip.compress(idx_bytes(IMAGES)), -6))     # inside the CRC-32
    with raises(ValueError, f"read_idx: {path} is not a valid gzip file (CRC check failed"):
        read_idx(path)


def test_corrupt_deflate_data_is_a_value_error_not_a_zlib_error(tmp_path):
    compressed = gzip.compress(idx_bytes(IMAGES))
    # The first deflate block starts right after the 10-byte gzip header; 0xff gives it block type 3,
    # which does not exist.
    path = write(tmp_path, "images.gz", compressed[:10] + b"\xff" + compressed[11:])
    with raises(ValueError, f"read_idx: {path} is not a valid gzip file (Error -3 while decompressing data: "
                            f"invalid block type)"):
        read_idx(path)


# --- CIFAR-10 batch files -----------------------------------------------------------------------------
def test_a_truncated_cifar_batch_counts_its_records_and_names_the_binary_version(tmp_path):
    path = write(tmp_path, "data_batch_1.bin", cifar_records(3)[:-73])
    with pytest.raises(ValueError) as raised:
        read_cifar10_batch(path)
    assert str(raised.value) == (
        f"read_cifar10_batch: {path} holds 9146 bytes, not a whole number of 3073-byte records "
        f"(2 records and 3000 bytes): truncated, or not a batch of the binary version "
        f"(cifar-10-binary.tar.gz, not the Python pickles)")


def test_an_empty_cifar_batch_names_the_file(tmp_path):
    path = write(tmp_path, "test_batch.bin", b"")
    with raises(ValueError, f"read_cifar10_batch: {path} holds 0 bytes"):
        read_cifar10_batch(path)


def test_a_cifar_label_out_of_range_names_the_record(tmp_path):
    records = bytearray(cifar_records(4))
    records[2 * 3073] = 200                                          # the label byte of record 2
    path = write(tmp_path, "data_batch_2.bin", bytes(records))
    with raises(ValueError, f"read_cifar10_batch: {path} has label 200 in record 2; "
                            f"CIFAR-10 labels are 0..9"):
        read_cifar10_batch(path)


def test_load_dataset_passes_a_broken_cifar_batch_on_with_its_path(tmp_path):
    path = write(tmp_path / "cifar10" / "cifar-10-batches-bin", "test_batch.bin", cifar_records(2)[:-1])
    with raises(ValueError, f"read_cifar10_batch: {path} holds 6145 bytes"):
        load_dataset("cifar10", split="test", root=tmp_path)


# --- MNIST-style datasets: files that are valid alone but wrong together ---------------------------------
def test_load_dataset_names_a_truncated_images_file(tmp_path):
    mnist_root(tmp_path, images_idx=idx_bytes(IMAGES)[:-28])
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    with raises(ValueError, f"read_idx: {path} declares shape (6, 28, 28)"):
        load_dataset("mnist", root=tmp_path)


def test_load_dataset_names_the_labels_file_when_the_counts_differ(tmp_path):
    mnist_root(tmp_path, labels_idx=idx_bytes(LABELS[:4]))
    with pytest.raises(ValueError) as raised:
        load_dataset("mnist", root=tmp_path)
    assert str(raised.value) == (
        f"load_dataset: 'mnist' expected 6 integer labels (one per image of train-images-idx3-ubyte.gz) in "
        f"{tmp_path / 'mnist' / 'train-labels-idx1-ubyte.gz'}, got uint8 (4,)")


def test_load_dataset_names_the_labels_file_with_a_label_out_of_range(tmp_path):
    mnist_root(tmp_path, labels_idx=idx_bytes(np.array([0, 1, 2, 3, 4, 12])), name="fashion_mnist")
    labels_path = tmp_path / "fashion_mnist" / "train-labels-idx1-ubyte.gz"
    with raises(ValueError, f"load_dataset: 'fashion_mnist' expected labels 0..9 in {labels_path}, "
                            f"got labels from 0 to 12"):
        load_dataset("fashion_mnist", root=tmp_path)


def test_load_dataset_names_an_images_file_that_holds_no_images(tmp_path):
    mnist_root(tmp_path, images_idx=idx_bytes(LABELS))                   # the labels, under the images' name
    images_path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    with raises(ValueError, f"load_dataset: 'mnist' expected uint8 images (N, H, W) in {images_path}, "
                            f"got uint8 (6,)"):
        load_dataset("mnist", root=tmp_path)


# --- downloads without a network --------------------------------------------------------------------------
def test_download_from_a_closed_port_names_the_url_and_the_cause_and_writes_nothing(tmp_path):
    url = closed_port_url() + "train-images-idx3-ubyte.gz"
    with pytest.raises(ConnectionError, match=rf"download_file: cannot reach {re.escape(url)}: "
                                              rf"\[Errno \d+\] Connection refused") as raised:
        download_file(url, tmp_path / "train-images-idx3-ubyte.gz", ANY_SHA256)
    assert isinstance(raised.value.__cause__, urllib.error.URLError)
    assert list(tmp_path.iterdir()) == []


def test_download_with_no_name_resolution_names_the_url_and_the_cause(tmp_path, monkeypatch):
    def no_dns(request, timeout):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", no_dns)
    url = "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz"
    with raises(ConnectionError, f"download_file: cannot reach {url}: [Errno -3] Temporary failure in "
                                 f"name resolution"):
        download_file(url, tmp_path / "t10k-labels-idx1-ubyte.gz", ANY_SHA256)


def test_download_from_a_server_that_never_answers_times_out_naming_the_url(tmp_path):
    with stalling() as base_url, raises(ConnectionError, f"download_file: cannot reach {base_url}data.bin: "
                                                         f"timed out"):
        download_file(base_url + "data.bin", tmp_path / "data.bin", ANY_SHA256, timeout=0.2)
    assert list(tmp_path.iterdir()) == []


def test_download_that_stalls_in_the_body_keeps_the_part_file_and_says_why(tmp_path):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 300
    part_path = tmp_path / "data.bin.part"
    with stalling(head) as base_url, raises(ConnectionError, (
            f"download_file: the connection to {base_url}data.bin dropped after 300 of 1000 bytes "
            f"(timed out); the partial file {part_path} was kept: call again to resume")):
        download_file(base_url + "data.bin", tmp_path / "data.bin", ANY_SHA256, chunk_size=100, timeout=0.2)
    assert part_path.read_bytes() == b"x" * 300


def test_an_http_error_stays_an_http_error_and_names_the_url(tmp_path):
    with serving(tmp_path) as base_url, pytest.raises(urllib.error.HTTPError) as raised:
        download_file(base_url + "missing.gz", tmp_path / "out" / "missing.gz", ANY_SHA256)
    assert raised.value.code == 404
    assert str(raised.value) == f"HTTP Error 404: File not found for url {base_url}missing.gz"


def test_load_dataset_without_network_says_which_files_to_put_where(tmp_path, monkeypatch):
    first, second = closed_port_url(), closed_port_url()
    point_mirrors(monkeypatch, "mnist", first, second)
    with pytest.raises(ConnectionError) as raised:
        load_dataset("mnist", split="test", root=tmp_path, download=True)
    message = str(raised.value)
    assert message.startswith("load_dataset: could not download 'mnist' (download_file: cannot reach ")
    for url in (first, second):                                       # every mirror, with its reason
        refused = rf"{re.escape(url)}t10k-images-idx3-ubyte\.gz: \[Errno \d+\] Connection refused"
        assert re.search(refused, message)
    assert ("without network, fetch train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz elsewhere "
            f"(see https://yann.lecun.com/exdb/mnist/) and put them in {tmp_path / 'mnist'}: "
            "download=True then checks their SHA-256 and downloads nothing") in message
    assert list((tmp_path / "mnist").iterdir()) == []


def test_load_dataset_whose_mirrors_answer_404_names_the_status_and_the_archive(tmp_path, monkeypatch):
    (tmp_path / "empty_server").mkdir()
    with serving(tmp_path / "empty_server") as base_url:
        point_mirrors(monkeypatch, "cifar10", base_url)
        with raises(ConnectionError, f"load_dataset: could not download 'cifar10' (HTTP Error 404: File not "
                                     f"found for url {base_url}cifar-10-binary.tar.gz); without network, "
                                     f"fetch cifar-10-binary.tar.gz elsewhere"):
            load_dataset("cifar10", split="test", root=tmp_path, download=True)


def test_a_file_put_in_place_by_hand_is_used_without_a_network(tmp_path, monkeypatch):
    point_mirrors(monkeypatch, "mnist", closed_port_url())
    data = gzip.compress(idx_bytes(IMAGES[:2]))
    monkeypatch.setitem(files.RESOURCES["mnist"].sha256, "t10k-images-idx3-ubyte.gz",
                        hashlib.sha256(data).hexdigest())
    write(tmp_path / "mnist", "t10k-images-idx3-ubyte.gz", data)
    write(tmp_path / "mnist", "t10k-labels-idx1-ubyte", idx_bytes(LABELS[:2]))
    test = load_dataset("mnist", split="test", root=tmp_path, download=True)
    assert np.array_equal(test.images[..., 0], IMAGES[:2])


# --- arguments ------------------------------------------------------------------------------------------
def test_load_dataset_checks_the_transform_before_reading_any_file(tmp_path):
    # No files at all: a missing-file error would mean the files were looked at first.
    with raises(TypeError, "load_dataset: expected transform to be callable or None, got 'flip'"):
        load_dataset("mnist", root=tmp_path, transform="flip")


def test_load_dataset_names_a_misspelt_option_and_the_ones_it_takes():
    with raises(TypeError, "load_dataset: 'shapes' takes the options "
                           "['num_samples', 'seed', 'size', 'noise'], got ['num_sample']"):
        load_dataset("shapes", num_sample=10)


def test_load_dataset_rejects_a_root_that_is_not_a_path():
    with raises(TypeError, "load_dataset: expected root to be a folder (str or Path) or None, got int 5"):
        load_dataset("mnist", root=5)


def test_get_batch_names_an_index_past_the_end():
    dataset = ImageDataset(np.zeros((3, 4, 4, 1), np.uint8), [0, 1, 0], ["a", "b"])
    with raises(IndexError, "get_batch: index 3 is out of range for a dataset of 3 images"):
        dataset.get_batch([0, 3])
    with raises(IndexError, "get_batch: index -4 is out of range for a dataset of 3 images"):
        dataset.get_batch([-4, 1])


def test_compose_given_one_transform_instead_of_a_list():
    with raises(TypeError, "Compose: expected a list of transforms, got ToTensor ToTensor()"):
        Compose(ToTensor())


def test_a_random_transform_names_an_rng_that_is_not_a_generator():
    batch = np.zeros((2, 1, 4, 4), np.float32)
    with raises(TypeError, "RandomHorizontalFlip: expected rng to be a numpy Generator or None, got int 7"):
        RandomHorizontalFlip()(batch, 7)


# --- the sweep: every bad input is a typed error whose message says what was wrong -----------------------
def _closed_port_download(tmp):
    download_file(closed_port_url() + "x.gz", tmp / "x.gz", ANY_SHA256)


def _stalled_download(tmp):
    with stalling() as base_url:
        download_file(base_url + "y.bin", tmp / "y.bin", ANY_SHA256, timeout=0.1)


def _missing_url(tmp):
    with serving(tmp) as base_url:
        download_file(base_url + "nowhere.bin", tmp / "out" / "nowhere.bin", ANY_SHA256)


def _dataset_without_network(tmp, name, split):
    with pytest.MonkeyPatch.context() as patch:
        point_mirrors(patch, name, closed_port_url())
        load_dataset(name, split=split, root=tmp, download=True)


def _dataset(count=4):
    return ImageDataset(np.zeros((count, 4, 4, 1), np.uint8), np.zeros(count, np.int64), ["only"])


def case(name, call, error, pattern):
    """One bad input: ``call(tmp_path)`` must raise ``error``, its message matching the regex ``pattern``."""
    return pytest.param(call, error, pattern, id=name)


FLOAT_BATCH = np.zeros((2, 3, 8, 8), np.float32)
FILE_CASES = [
    case("idx-empty", lambda tmp: read_idx(write(tmp, "empty.idx", b"")),
         ValueError, r"read_idx: \S+/empty\.idx is not an IDX file: the file is empty"),
    case("idx-one-byte", lambda tmp: read_idx(write(tmp, "one.idx", b"\x00")),
         ValueError, r"one\.idx is not an IDX file: its magic number is 0x00,"),
    case("idx-bad-magic", lambda tmp: read_idx(write(tmp, "magic.idx", b"\x00\x01\x08\x01" + bytes(8))),
         ValueError, r"magic\.idx is not an IDX file: its magic number is 0x00010801"),
    case("idx-unknown-type", lambda tmp: read_idx(write(tmp, "type.idx", b"\x00\x00\x07\x01" + bytes(8))),
         ValueError, r"type\.idx is not an IDX file: its magic number is 0x00000701"),
    case("idx-gzipped-without-gz",
         lambda tmp: read_idx(write(tmp, "zipped", gzip.compress(idx_bytes(LABELS)))),
         ValueError, r"zipped is not an IDX file: .*add \.gz to its name"),
    case("idx-cut-header", lambda tmp: read_idx(write(tmp, "head.idx", idx_bytes(IMAGES)[:7])),
         ValueError, r"head\.idx is truncated inside its header: 3 dimensions need 12 bytes"),
    case("idx-cut-body", lambda tmp: read_idx(write(tmp, "body.idx", idx_bytes(IMAGES)[:-1])),
         ValueError, r"body\.idx declares shape \(6, 28, 28\) \(4704 bytes of uint8\) but holds 4703 bytes"),
    case("idx-gz-cut-body",
         lambda tmp: read_idx(write(tmp, "body.gz", gzip.compress(idx_bytes(IMAGES)[:100]))),
         ValueError, r"body\.gz declares shape \(6, 28, 28\) .* holds 84 bytes"),
    case("idx-too-long", lambda tmp: read_idx(write(tmp, "long.idx", idx_bytes(LABELS) + b"!")),
         ValueError, r"long\.idx declares shape \(6,\) \(6 bytes of uint8\) but holds more than that"),
    case("idx-int32-cut", lambda tmp: read_idx(write(tmp, "int.idx", idx_bytes(np.arange(3), 0x0C)[:-2])),
         ValueError, r"int\.idx declares shape \(3,\) \(12 bytes of int32\) but holds 10 bytes"),
    case("idx-overflowing-dims", lambda tmp: read_idx(write(tmp, "huge.idx", idx_header((2**31,) * 3))),
         ValueError, r"huge\.idx declares shape \(2147483648, 2147483648, 2147483648\) "
                     r"\(9903520314283042199192993792 bytes of uint8\) but holds 0 bytes"),
    case("idx-gz-empty", lambda tmp: read_idx(write(tmp, "zero.gz", b"")),
         ValueError, r"zero\.gz is not an IDX file: the file is empty"),
    case("gzip-truncated", lambda tmp: read_idx(write(tmp, "cut.gz", gzip.compress(idx_bytes(IMAGES))[:-20])),
         ValueError, r"cut\.gz is not a valid gzip file \(.*\); the compressed stream is truncated"),
    case("gzip-bad-crc",
         lambda tmp: read_idx(write(tmp, "crc.gz", corrupt(gzip.compress(idx_bytes(LABELS)), -8))),
         ValueError, r"crc\.gz is not a valid gzip file \(CRC check failed"),
    case("gzip-bad-length",
         lambda tmp: read_idx(write(tmp, "size.gz", corrupt(gzip.compress(idx_bytes(LABELS)), -2))),
         ValueError, r"size\.gz is not a valid gzip file \(Incorrect length"),
    case("gzip-not-gzipped", lambda tmp: read_idx(write(tmp, "raw.gz", idx_bytes(LABELS))),
         ValueError, r"raw\.gz is not a valid gzip file .*drop \.gz from its name"),
    case("gzip-trailing-junk",
         lambda tmp: read_idx(write(tmp, "junk.gz", gzip.compress(idx_bytes(LABELS)) + b"junk")),
         ValueError, r"junk\.gz is not a valid gzip file"),
    case("cifar-cut-record",
         lambda tmp: read_cifar10_batch(write(tmp, "data_batch_1.bin", cifar_records(1)[:-1])),
         ValueError, r"data_batch_1\.bin holds 3072 bytes, not a whole number of 3073-byte records"),
    case("cifar-extra-byte",
         lambda tmp: read_cifar10_batch(write(tmp, "data_batch_2.bin", cifar_records(2) + b"!")),
         ValueError, r"data_batch_2\.bin holds 6147 bytes.*\(2 records and 1 bytes\)"),
    case("cifar-empty", lambda tmp: read_cifar10_batch(write(tmp, "test_batch.bin", b"")),
         ValueError, r"test_batch\.bin holds 0 bytes"),
    case("cifar-label-10",
         lambda tmp: read_cifar10_batch(write(tmp, "data_batch_3.bin", cifar_records(2, label=10))),
         ValueError, r"data_batch_3\.bin has label 10 in record 0"),
    case("mnist-cut-images", lambda tmp: load_dataset("mnist", root=mnist_root(tmp, idx_bytes(IMAGES)[:50])),
         ValueError, r"mnist/train-images-idx3-ubyte\.gz declares shape"),
    case("mnist-count-mismatch",
         lambda tmp: load_dataset("mnist", root=mnist_root(tmp, labels_idx=idx_bytes(LABELS[:5]))),
         ValueError, r"expected 6 integer labels .* in \S+/mnist/train-labels-idx1-ubyte\.gz"),
    case("mnist-float-labels",
         lambda tmp: load_dataset("mnist", root=mnist_root(tmp, labels_idx=idx_bytes(LABELS, 0x0D))),
         ValueError, r"train-labels-idx1-ubyte\.gz, got float32 \(6,\)"),
    case("mnist-label-10",
         lambda tmp: load_dataset("mnist", root=mnist_root(tmp, labels_idx=idx_bytes(LABELS + 5))),
         ValueError, r"expected labels 0\.\.9 in \S+train-labels-idx1-ubyte\.gz, got labels from 5 to 10"),
    case("fashion-one-image",
         lambda tmp: load_dataset("fashion_mnist",
                                  root=mnist_root(tmp, idx_bytes(IMAGES[0]), name="fashion_mnist")),
         ValueError, r"expected uint8 images \(N, H, W\) in \S+/fashion_mnist/train-images-idx3-ubyte\.gz, "
                     r"got uint8 \(28, 28\)"),
    case("mnist-missing", lambda tmp: load_dataset("mnist", split="test", root=tmp),
         FileNotFoundError, r"'mnist' needs t10k-images-idx3-ubyte\[\.gz\] in \S+/mnist"),
    case("cifar-missing", lambda tmp: load_dataset("cifar10", root=tmp),
         FileNotFoundError, r"'cifar10' needs data_batch_1\.bin, .* in \S+/cifar10/cifar-10-batches-bin"),
]
DOWNLOAD_CASES = [
    case("download-refused", _closed_port_download,
         ConnectionError, r"download_file: cannot reach http://127\.0\.0\.1:\d+/x\.gz: .*Connection refused"),
    case("download-timeout", _stalled_download,
         ConnectionError, r"download_file: cannot reach http://127\.0\.0\.1:\d+/y\.bin: timed out"),
    case("download-404", _missing_url,
         urllib.error.HTTPError,
         r"HTTP Error 404: File not found for url http://127\.0\.0\.1:\d+/nowhere\.bin"),
    case("fashion-offline", lambda tmp: _dataset_without_network(tmp, "fashion_mnist", "train"),
         ConnectionError, r"could not download 'fashion_mnist' \(download_file: cannot reach "
                          r"\S+/train-images-idx3-ubyte\.gz: .*put them in \S+/fashion_mnist"),
    case("cifar-offline", lambda tmp: _dataset_without_network(tmp, "cifar10", "test"),
         ConnectionError, r"could not download 'cifar10' .*fetch cifar-10-binary\.tar\.gz elsewhere \(see "
                          r"https://www\.cs\.toronto\.edu/~kriz/cifar\.html\) and put them in \S+/cifar10"),
    case("download-bad-sha", lambda tmp: download_file("http://127.0.0.1:9/x", tmp / "x", "abc"),
         ValueError, "download_file: expected sha256 to be 64 hex digits, got 'abc'"),
    case("download-bytes-url", lambda tmp: download_file(b"http://x", tmp / "x", ANY_SHA256),
         TypeError, "download_file: expected url to be a non-empty str, got b'http://x'"),
    case("download-bad-chunk",
         lambda tmp: download_file("http://127.0.0.1:9/x", tmp / "x", ANY_SHA256, chunk_size=-1),
         ValueError, "download_file: expected chunk_size to be a positive int, got -1"),
]
ARGUMENT_CASES = [
    case("dataset-unknown", lambda tmp: load_dataset("imagenet"),
         ValueError, r"load_dataset: expected a name from \[.*'cifar10'.*\], got 'imagenet'"),
    case("dataset-name-none", lambda tmp: load_dataset(None),
         ValueError, r"load_dataset: expected a name .*got None"),
    case("dataset-bad-split", lambda tmp: load_dataset("mnist", split="validation", root=tmp),
         ValueError, "load_dataset: expected split 'train' or 'test', got 'validation'"),
    case("dataset-bad-root", lambda tmp: load_dataset("mnist", root=3.5),
         TypeError, "load_dataset: expected root to be a folder .* got float 3.5"),
    case("dataset-bad-download", lambda tmp: load_dataset("mnist", root=tmp, download="yes"),
         TypeError, "load_dataset: expected download to be True or False, got str 'yes'"),
    case("dataset-bad-transform", lambda tmp: load_dataset("shapes", transform=0.5),
         TypeError, "load_dataset: expected transform to be callable or None, got 0.5"),
    case("dataset-unknown-option", lambda tmp: load_dataset("cifar10", root=tmp, size=32),
         TypeError, r"load_dataset: 'cifar10' takes no options, got \['size'\]"),
    case("shapes-zero-samples", lambda tmp: load_dataset("shapes", num_samples=0),
         ValueError, "generate_shapes: expected num_samples to be a positive int, got 0"),
    case("shapes-bad-seed", lambda tmp: load_dataset("shapes", num_samples=8, seed=-1),
         ValueError, "load_dataset: 'shapes' expected seed to be a non-negative int, got -1"),
    case("dataset-classes-str", lambda tmp: ImageDataset(np.zeros((2, 4, 4, 1), np.uint8), [0, 1], "ab"),
         TypeError, "ImageDataset: expected classes as a list of names, got str 'ab'"),
    case("get-batch-past-end", lambda tmp: _dataset().get_batch([1, 4]),
         IndexError, "get_batch: index 4 is out of range for a dataset of 4 images"),
    case("get-batch-2d", lambda tmp: _dataset().get_batch([[0, 1]]),
         ValueError, r"get_batch: expected a 1-D sequence of integer indices, got int64 with shape \(1, 2\)"),
    case("loader-batch-0", lambda tmp: DataLoader(_dataset(), batch_size=0),
         ValueError, "DataLoader: batch_size must be a positive integer, got 0"),
    case("loader-batch-negative", lambda tmp: DataLoader(_dataset(), batch_size=-8),
         ValueError, "DataLoader: batch_size must be a positive integer, got -8"),
    case("loader-batch-float", lambda tmp: DataLoader(_dataset(), batch_size=4.0),
         ValueError, "DataLoader: batch_size must be a positive integer, got 4.0"),
    case("loader-batch-str", lambda tmp: DataLoader(_dataset(), batch_size="32"),
         ValueError, "DataLoader: batch_size must be a positive integer, got '32'"),
    case("loader-array", lambda tmp: DataLoader(np.zeros((4, 28, 28))),
         TypeError, r"DataLoader: dataset must have __len__ and get_batch\(indices, rng\), got ndarray; "
                    r"wrap arrays as minicnn\.data\.ImageDataset\(images, labels, classes\)"),
    case("loader-none", lambda tmp: DataLoader(None),
         TypeError, r"DataLoader: dataset must have __len__ and get_batch\(indices, rng\), got NoneType"),
    case("loader-drop-last-int", lambda tmp: DataLoader(_dataset(), drop_last=1),
         TypeError, "DataLoader: drop_last must be True or False, got int 1"),
    case("loader-float-seed", lambda tmp: DataLoader(_dataset(), seed=1.5),
         TypeError, "DataLoader: seed must be an int, got float 1.5"),
    case("normalize-std-0", lambda tmp: Normalize((0.5, 0.5), (0.2, 0.0)),
         ValueError, r"Normalize: std must be positive in every channel, got \(0\.2, 0\.0\)"),
    case("normalize-std-inf", lambda tmp: Normalize(0.5, float("inf")),
         ValueError, r"Normalize: std must be finite, got \(inf,\)"),
    case("normalize-mean-nan", lambda tmp: Normalize([float("nan")], [1.0]),
         ValueError, r"Normalize: mean must be finite, got \[nan\]"),
    case("normalize-mean-str", lambda tmp: Normalize("0.5", 0.2),
         TypeError, "Normalize: mean must be a number or a sequence of numbers, got str '0.5'"),
    case("normalize-lengths", lambda tmp: Normalize((0.5, 0.5, 0.5), (0.2, 0.2)),
         ValueError, "Normalize: mean and std must have the same length, got 3 and 2"),
    case("normalize-uint8", lambda tmp: Normalize(0.5, 0.2)(np.zeros((1, 4, 4, 3), np.uint8)),
         TypeError, "Normalize: expected a .* float batch, got shape .* put it after ToTensor"),
    case("resize-0", lambda tmp: Resize(0),
         ValueError, "Resize: size must be positive, got 0"),
    case("resize-triple", lambda tmp: Resize((32, 32, 3)),
         ValueError, r"Resize: size must be an int or a \(height, width\) pair, got \(32, 32, 3\)"),
    case("resize-str", lambda tmp: Resize("32"),
         TypeError, "Resize: size must be an int, got str '32'"),
    case("pad-negative", lambda tmp: Pad(-1),
         ValueError, "Pad: padding must be >= 0, got -1"),
    case("pad-three", lambda tmp: Pad((1, 2, 3)),
         ValueError, r"Pad: padding must be an int or a sequence of 2 or 4 ints, got \(1, 2, 3\)"),
    case("pad-fill-str", lambda tmp: Pad(1, fill="black"),
         TypeError, "Pad: fill must be a number, got str 'black'"),
    case("crop-0", lambda tmp: RandomCrop(0),
         ValueError, "RandomCrop: size must be positive, got 0"),
    case("crop-too-big", lambda tmp: RandomCrop(16)(FLOAT_BATCH),
         ValueError, r"RandomCrop: crop size \(16, 16\) is larger than the padded image \(8, 8\)"),
    case("crop-int-rng", lambda tmp: RandomCrop(4)(FLOAT_BATCH, rng=42),
         TypeError, "RandomCrop: expected rng to be a numpy Generator or None, got int 42"),
    case("flip-p-above-1", lambda tmp: RandomHorizontalFlip(p=1.5),
         ValueError, r"RandomHorizontalFlip: p must be in \[0, 1\], got 1.5"),
    case("flip-p-nan", lambda tmp: RandomHorizontalFlip(p=float("nan")),
         ValueError, r"RandomHorizontalFlip: p must be in \[0, 1\], got nan"),
    case("flip-p-str", lambda tmp: RandomHorizontalFlip(p="half"),
         TypeError, "RandomHorizontalFlip: p must be a number, got str 'half'"),
    case("compose-none", lambda tmp: Compose(None),
         TypeError, "Compose: expected a list of transforms, got NoneType None"),
    case("compose-not-callable", lambda tmp: Compose([ToTensor(), "flip"]),
         TypeError, "Compose: every transform must be callable, got str 'flip'"),
    case("to-tensor-list", lambda tmp: to_tensor([[0, 1]]),
         TypeError, "ToTensor: expected a NumPy array batch, got list"),
    case("to-tensor-one-image", lambda tmp: to_tensor(np.zeros((28, 28, 1), np.uint8)),
         ValueError, r"ToTensor: expected a uint8 batch of shape \(B, H, W, C\), got shape \(28, 28, 1\)"),
]
SWEEP = FILE_CASES + DOWNLOAD_CASES + ARGUMENT_CASES


@pytest.mark.parametrize("call, error, pattern", SWEEP)
def test_bad_input_is_a_typed_error_whose_message_names_it(call, error, pattern, tmp_path):
    with pytest.raises(error, match=pattern):
        call(tmp_path)


def test_the_sweep_covers_at_least_forty_distinct_bad_inputs():
    names = [param.id for param in SWEEP]
    assert len(set(names)) == len(names) >= 40
