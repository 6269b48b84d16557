"""download_file against a local HTTP server (127.0.0.1 only), and load_dataset(download=True) through it."""
import gzip
import hashlib
import http.server
import io
import re
import tarfile
import threading

import numpy as np
import pytest

from minicnn.data import ChecksumError, download_file, files, load_dataset


class FileServer:
    """A tiny HTTP server on an ephemeral port that serves ``files`` and can misbehave on demand.

    ``honour_range``: answer ``Range: bytes=N-`` with 206 and the rest of the file (else 200, all of it).
    ``drop_after[name] = n``: the next request for ``name`` sends n bytes of the body, then hangs up.
    ``chunked``: send the body with chunked transfer encoding (no Content-Length) instead.
    ``requests``: (path, Range header or None, status) for every request seen.
    """

    def __init__(self):
        self.files = {}
        self.honour_range = True
        self.drop_after = {}
        self.chunked = False
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                range_header = self.headers.get("Range")
                data = server.files.get(name)
                if data is None:
                    server.requests.append((name, range_header, 404))
                    self.send_error(404)
                    return
                start, status = 0, 200
                if range_header and server.honour_range:
                    start, status = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1)), 206
                    if start >= len(data):
                        server.requests.append((name, range_header, 416))
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                server.requests.append((name, range_header, status))
                body = data[start:]
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                cut = server.drop_after.pop(name, None)
                if server.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    sent = body if cut is None else body[:cut]
                    self.wfile.write(f"{len(sent):x}\r\n".encode() + sent + b"\r\n")
                    if cut is None:
                        self.wfile.write(b"0\r\n\r\n")      # the last-chunk marker: a complete body
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):  # keep pytest's output clean
                pass

        Handler.protocol_version = "HTTP/1.1"  # chunked encoding needs 1.1; each response still closes
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    file_server = FileServer()
    yield file_server
    file_server.close()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


PAYLOAD = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()


def test_good_file_is_downloaded_verified_and_reported(server, tmp_path):
    server.files["data.bin"] = PAYLOAD
    seen = []
    path = download_file(server.url + "data.bin", tmp_path / "sub" / "data.bin", sha256(PAYLOAD),
                         chunk_size=8192, progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "sub" / "data.bin" and path.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "data.bin.part").exists()
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) > 10


def test_a_file_already_there_with_the_right_hash_is_not_fetched_again(server, tmp_path):
    (tmp_path / "data.bin").write_bytes(PAYLOAD)
    download_file(server.url + "data.bin", tmp_path / "data.bin", sha256(PAYLOAD))
    assert server.requests == []


def test_a_file_already_there_with_the_wrong_hash_is_replaced(server, tmp_path):
    server.files["data.bin"] = PAYLOAD
    (tmp_path / "data.bin").write_bytes(b"stale")
    download_file(server.url + "data.bin", tmp_path / "data.bin", sha256(PAYLOAD))
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_corrupted_file_raises_checksum_error_and_keeps_nothing(server, tmp_path):
    corrupted = bytearray(PAYLOAD)
    corrupted[1000] ^= 0xFF
    server.files["data.bin"] = bytes(corrupted)
    with pytest.raises(ChecksumError, match=r"download_file: .*data.bin has SHA-256 [0-9a-f]{64}, expected "
                                            + sha256(PAYLOAD)) as error:
        download_file(server.url + "data.bin", tmp_path / "data.bin", sha256(PAYLOAD))
    assert isinstance(error.value, ValueError)
    assert list(tmp_path.iterdir()) == []                     # neither the file nor its .part


def test_interrupted_download_resumes_from_the_part_file(server, tmp_path):
    server.files["data.bin"] = PAYLOAD
    half = len(PAYLOAD) // 2
    server.drop_after["data.bin"] = half
    target = tmp_path / "data.bin"
    with pytest.raises(ConnectionError, match=f"download_file: .* dropped after {half} of {len(PAYLOAD)} bytes; .*resume"):
        download_file(server.url + "data.bin", target, sha256(PAYLOAD), chunk_size=4096)
    assert not target.exists()
    assert (tmp_path / "data.bin.part").stat().st_size == half

    download_file(server.url + "data.bin", target, sha256(PAYLOAD), chunk_size=4096)
    assert target.read_bytes() == PAYLOAD and not (tmp_path / "data.bin.part").exists()
    assert server.requests == [("data.bin", None, 200), ("data.bin", f"bytes={half}-", 206)]


def test_chunked_response_cut_short_keeps_the_part_file_and_resumes(server, tmp_path):
    server.files["data.bin"] = PAYLOAD
    server.chunked = True
    server.drop_after["data.bin"] = 70_000
    target = tmp_path / "data.bin"
    with pytest.raises(ConnectionError, match="download_file: .* dropped after 70000 bytes; .*resume"):
        download_file(server.url + "data.bin", target, sha256(PAYLOAD))
    assert (tmp_path / "data.bin.part").read_bytes() == PAYLOAD[:70_000]
    download_file(server.url + "data.bin", target, sha256(PAYLOAD))
    assert target.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("data.bin", "bytes=70000-", 206)


def test_server_ignoring_range_restarts_and_still_ends_correct(server, tmp_path):
    server.files["data.bin"] = PAYLOAD
    server.honour_range = False
    (tmp_path / "data.bin.part").write_bytes(b"x" * 5000)      # a stale partial file, not even a prefix
    download_file(server.url + "data.bin", tmp_path / "data.bin", sha256(PAYLOAD))
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert server.requests == [("data.bin", "bytes=5000-", 200)]


def test_a_complete_part_file_is_verified_without_refetching_the_body(server, tmp_path):
    server.files["data.bin"] = PAYLOAD
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    download_file(server.url + "data.bin", tmp_path / "data.bin", sha256(PAYLOAD))
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert server.requests == [("data.bin", f"bytes={len(PAYLOAD)}-", 416)]


def test_missing_url_is_an_http_error_and_leaves_nothing(server, tmp_path):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError, match="404"):
        download_file(server.url + "nope.bin", tmp_path / "nope.bin", sha256(b""))
    assert not (tmp_path / "nope.bin").exists()


def test_download_file_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="download_file: expected sha256 to be 64 hex digits, got 'abc'"):
        download_file("http://127.0.0.1:9/x", tmp_path / "x", "abc")
    with pytest.raises(TypeError, match="download_file: expected url to be a non-empty str, got None"):
        download_file(None, tmp_path / "x", "0" * 64)
    with pytest.raises(ValueError, match="download_file: expected chunk_size to be a positive int, got 0"):
        download_file("http://127.0.0.1:9/x", tmp_path / "x", "0" * 64, chunk_size=0)


# --- load_dataset(download=True) -------------------------------------------------------------------
def idx_gz(array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_load_dataset_downloads_missing_mnist_files_from_the_table(server, tmp_path, monkeypatch):
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([4, 0, 9, 1, 1], dtype=np.uint8)
    server.files["t10k-images-idx3-ubyte.gz"] = idx_gz(images)
    server.files["t10k-labels-idx1-ubyte.gz"] = idx_gz(labels)
    table = {name: sha256(data) for name, data in server.files.items()}
    # The first mirror is dead: the download falls through to the next.
    monkeypatch.setitem(files.RESOURCES, "mnist", files.Resources(
        mirrors=(server.url + "dead/", server.url), sha256=table, homepage="test"))
    test = load_dataset("mnist", split="test", root=tmp_path, download=True)
    assert np.array_equal(test.images[..., 0], images) and test.labels.tolist() == [4, 0, 9, 1, 1]
    assert (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes() == server.files["t10k-labels-idx1-ubyte.gz"]
    # Present now: loading again sends no request.
    count = len(server.requests)
    load_dataset("mnist", split="test", root=tmp_path, download=True)
    assert len(server.requests) == count


def test_load_dataset_downloads_and_unpacks_the_cifar10_archive(server, tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    batches = {}
    for name in [f"data_batch_{number}.bin" for number in range(1, 6)] + ["test_batch.bin"]:
        records = rng.integers(0, 256, (2, 3073), dtype=np.uint8)
        records[:, 0] %= 10
        batches[name] = records
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, records in list(batches.items()) + [("../escape.bin", batches["test_batch.bin"])]:
            member = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            member.size = records.nbytes
            tar.addfile(member, io.BytesIO(records.tobytes()))
    server.files["cifar-10-binary.tar.gz"] = archive.getvalue()
    monkeypatch.setitem(files.RESOURCES, "cifar10", files.Resources(
        mirrors=(server.url,), sha256={"cifar-10-binary.tar.gz": sha256(archive.getvalue())}, homepage="test"))

    test = load_dataset("cifar10", split="test", root=tmp_path, download=True)
    assert test.labels.tolist() == batches["test_batch.bin"][:, 0].tolist()
    assert np.array_equal(test.images[1].transpose(2, 0, 1).reshape(-1), batches["test_batch.bin"][1, 1:])
    train = load_dataset("cifar10", split="train", root=tmp_path)           # unpacked: no download needed
    assert len(train) == 10
    assert not (tmp_path / "cifar10" / "escape.bin").exists() and not (tmp_path / "escape.bin").exists()


def test_load_dataset_download_with_a_corrupted_mirror_keeps_nothing(server, tmp_path, monkeypatch):
    server.files["t10k-images-idx3-ubyte.gz"] = b"not what the table says"
    monkeypatch.setitem(files.RESOURCES, "mnist", files.Resources(
        mirrors=(server.url,), sha256={"t10k-images-idx3-ubyte.gz": sha256(b"the real file")}, homepage="test"))
    with pytest.raises(ChecksumError):
        load_dataset("mnist", split="test", root=tmp_path, download=True)
    assert list((tmp_path / "mnist").iterdir()) == []
