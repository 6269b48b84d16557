"""Files that are always whole on disk: write beside the target, flush to disk, rename over it.

``write_atomically(path, write)`` calls ``write(file)`` on a temporary file in
the target's folder, named ``.<target>.<pid>.<random>.tmp``, fsyncs it and
renames it over ``path`` with ``os.replace``, with Ctrl-C held until the rename
is done.  The one idea: a rename within one folder is atomic, so whoever reads
``path`` (a run resumed after a crash) finds the old file or the new one, never
half of one.  A writer killed mid-write (SIGKILL, power loss) can still leave
its temporary file behind; ``remove_stale_temporary_files`` deletes those whose
writer is gone, and every write calls it first.
"""
import os
import re
import tempfile

from minicnn.interrupts import InterruptGuard

# ".last.npz.4242.k3j9x_q1.tmp": the target's name, the writing process, mkstemp's random part.
_TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[a-z0-9_]+\.tmp$")
_writing_now = set()  # temporary files this process is writing at the moment: never stale


def write_atomically(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    The temporary file is flushed to disk (fsync) before the rename and the
    folder after it, so a crash leaves ``path`` as it was or as ``write`` made
    it; if ``write`` fails, the temporary file is removed and ``path`` is
    untouched.  Ctrl-C during the write takes effect once the new file is in
    place.  Temporary files that killed writers left in the folder are removed
    first.  The folder must exist.
    """
    folder = os.path.dirname(os.path.abspath(path))
    with InterruptGuard(hold=True):
        remove_stale_temporary_files(folder)
        # Same folder as the target: os.replace is only atomic within one file system.
        handle, temporary_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.",
                                                  suffix=".tmp", dir=folder)
        _writing_now.add(temporary_path)
        try:
            with os.fdopen(handle, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary_path, path)
        except BaseException:
            if os.path.exists(temporary_path):
                os.remove(temporary_path)
            raise
        finally:
            _writing_now.discard(temporary_path)
        _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _process_is_gone(pid):
    """True only when no process ``pid`` exists (POSIX); elsewhere we cannot tell, so False."""
    if os.name != "posix":
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, under another user
        return False
    return False


def remove_stale_temporary_files(folder):
    """Delete the temporary files that killed writers left in ``folder``; returns their names.

    Only names of ``write_atomically``'s own pattern (``.<target>.<pid>.<random>.tmp``)
    are considered, and of those only files whose writer is gone: a process that
    no longer exists, or this one when it is not writing that file now (a run
    restarted under the same pid, as in a container).  Another live run's
    write in progress is left alone.
    """
    removed = []
    folder = os.path.abspath(folder)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for name in names:
        match = _TEMPORARY_NAME.match(name)
        if match is None:
            continue
        path = os.path.join(folder, name)
        pid = int(match["pid"])
        stale = path not in _writing_now if pid == os.getpid() else _process_is_gone(pid)
        if stale:
            try:
                os.remove(path)
                removed.append(name)
            except FileNotFoundError:  # another run cleaned it first
                pass
    return removed


__all__ = ["remove_stale_temporary_files", "write_atomically"]
