"""Fetch a file over HTTP(S): verified by SHA-256, resumable, and atomic.

The bytes go to ``<path>.part`` first.  Only once the whole file is there and its
SHA-256 matches does ``os.replace`` move it to ``path``, so ``path`` either holds
the right file or nothing: a crash, a dropped connection or a corrupted mirror
never leaves a half-written dataset behind for the next run to trust.

A dropped connection keeps the ``.part`` file; calling again asks the server for
the rest with an HTTP ``Range`` header.  A server that ignores ``Range`` answers
with the whole file (status 200), and the download simply starts over.

>>> download_file("https://example.org/train.gz", "data/train.gz", sha256="440f...")  # doctest: +SKIP
"""
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_CHUNK_SIZE = 1 << 16  # 64 KiB: large enough to be fast, small enough for a smooth progress bar
DEFAULT_TIMEOUT = 30.0  # seconds of silence before a connection counts as dead

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class ChecksumError(ValueError):
    """A downloaded file's SHA-256 differs from the one expected (the file is not kept)."""


def file_sha256(path, chunk_size=DEFAULT_CHUNK_SIZE):
    """The SHA-256 hex digest of a file, read in chunks (datasets can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(url, path, sha256, chunk_size=DEFAULT_CHUNK_SIZE, timeout=DEFAULT_TIMEOUT, progress=False):
    """Download ``url`` to ``path`` and verify its SHA-256; return ``path`` as a ``Path``.

    ``sha256``: the expected hex digest (required: an unverified dataset is a silent bug).
    ``progress``: False for silence, True for a tqdm bar, or a callable ``progress(done, total)``
    (``total`` is None when the server does not say).  A ``path`` that already holds the right
    file is returned untouched; one with the wrong contents is deleted and fetched again.

    Raises ``ChecksumError`` (a ValueError) when the downloaded bytes do not match; then neither
    ``path`` nor the ``.part`` file is kept.  Raises ``ConnectionError`` naming the URL and the cause
    when the server cannot be reached (no network, refused, timed out) or the connection drops before
    the end; the ``.part`` file stays, and calling again resumes from it.  An error status from the
    server stays a ``urllib.error.HTTPError``, its message now naming the URL.
    """
    if not isinstance(url, str) or not url:
        raise TypeError(f"download_file: expected url to be a non-empty str, got {url!r}")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"download_file: expected sha256 to be 64 hex digits, got {sha256!r}")
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
        raise ValueError(f"download_file: expected chunk_size to be a positive int, got {chunk_size!r}")
    sha256 = sha256.lower()
    path = Path(path)
    if path.exists():
        if file_sha256(path, chunk_size) == sha256:
            return path
        path.unlink()  # known to be wrong: better nothing than a file that looks like the dataset
    path.parent.mkdir(parents=True, exist_ok=True)
    part_path = path.with_name(path.name + ".part")

    _fetch_to_part(url, part_path, chunk_size, timeout, progress)
    actual = file_sha256(part_path, chunk_size)
    if actual != sha256:
        part_path.unlink()
        raise ChecksumError(
            f"download_file: {url} has SHA-256 {actual}, expected {sha256}; the file was deleted "
            f"(a corrupted download or a changed mirror) and nothing was written to {path}"
        )
    os.replace(part_path, path)
    return path


def _fetch_to_part(url, part_path, chunk_size, timeout, progress):
    """Append the rest of ``url`` to ``part_path`` (or rewrite it when the server restarts from 0)."""
    offset = part_path.stat().st_size if part_path.exists() else 0
    response = _open(url, offset, timeout)
    if response is None:
        return
    with response:
        if response.status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"), url)
            if start != offset:  # a range we did not ask for: appending it would corrupt the file
                raise ConnectionError(
                    f"download_file: {url} answered a Range request for byte {offset} from byte {start}")
            mode = "ab"
        else:  # 200: the server ignored Range (or there was none); the body is the whole file
            offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
        report = _progress_reporter(progress, total, offset, url)
        done = offset
        try:
            with open(part_path, mode) as part_file:
                while True:
                    try:
                        chunk = response.read(chunk_size)
                    except http.client.IncompleteRead as error:
                        part_file.write(error.partial)
                        done += len(error.partial)
                        raise ConnectionError(_dropped(url, done, total, part_path)) from error
                    except (OSError, http.client.HTTPException) as error:  # a timeout or a reset mid-body
                        raise ConnectionError(_dropped(url, done, total, part_path, error)) from error
                    if not chunk:
                        break
                    part_file.write(chunk)
                    done += len(chunk)
                    report(done)
        finally:
            report(None)
    if total is not None and done != total:
        raise ConnectionError(_dropped(url, done, total, part_path))


def _open(url, offset, timeout):
    """The response to a GET of ``url`` from byte ``offset``, or None when the .part file is complete.

    urllib says only "<urlopen error [Errno 111] Connection refused>", without the URL, and lets a
    timeout or a reset while waiting for the status line through unwrapped: both become a
    ConnectionError that names the URL and the cause.
    """
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # "range not satisfiable": the .part file already holds it all
            return None
        # Still an HTTPError, so callers can test .code; the message now says which URL answered.
        message = f"{error.reason} for url {url}"
        raise urllib.error.HTTPError(url, error.code, message, error.headers, None) from error
    except (OSError, http.client.HTTPException) as error:  # refused, unknown host, timeout, no status line
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        reason = str(reason) or type(reason).__name__              # a bare TimeoutError() prints as ""
        raise ConnectionError(f"download_file: cannot reach {url}: {reason}") from error


def _dropped(url, done, total, part_path, cause=None):
    """The message for a transfer cut short: how far it got, and that calling again resumes it."""
    received = f"{done} bytes" if total is None else f"{done} of {total} bytes"
    because = f" ({cause})" if cause is not None else ""
    return (f"download_file: the connection to {url} dropped after {received}{because}; "
            f"the partial file {part_path} was kept: call again to resume")


def _parse_content_range(header, url):
    """``"bytes 100-199/200"`` → (100, 200); the total is None when the server sends ``*``."""
    match = _CONTENT_RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        raise ConnectionError(f"download_file: {url} answered 206 with a bad Content-Range {header!r}")
    start, _, total = match.groups()
    return int(start), (None if total == "*" else int(total))


def _progress_reporter(progress, total, initial, url):
    """A function ``report(done)``; ``report(None)`` closes any bar."""
    if callable(progress):
        return lambda done: None if done is None else progress(done, total)
    if not progress:
        return lambda done: None
    from tqdm.auto import tqdm  # only when asked: the import costs time

    bar = tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1])

    def report(done):
        if done is None:
            bar.close()
        else:
            bar.update(done - bar.n)

    return report
