"""How the command line fails: one line on stderr and an exit status per kind of failure, never a traceback.

A user's mistake or the machine's limits (a bad option, a full disk, no network,
too little memory) are expected, so ``minicnn`` reports each as one line, what
went wrong and what to do, with an exit status of its own so that scripts can
tell them apart.  The one idea: ``FAILURES`` is a table, read top to bottom,
from exception kinds to a status, a label and a hint; the first row that covers
the exception wins, and its last row (any Exception) is a bug in minicnn.
``one_interrupt`` makes Ctrl-C end a command once, with the word "interrupted".

``minicnn --help`` prints the table below as its epilog (all that follows its heading).

Exit status:
  0    done; also a --resume whose checkpoint already holds --epochs epochs (nothing to do)
  1    gradcheck: an op's backward disagrees with finite differences
  2    a bad argument: an option's value, an unknown name, a missing file (as argparse)
  3    a path of the wrong kind: a file where a folder belongs, or the reverse
  4    permission denied (or a read-only file system)
  5    no space left on the device (or the disk quota is used up)
  6    out of memory (summary refuses an input too large before trying it)
  7    a download failed: no network, a timeout, a wrong checksum
  8    a checkpoint that is not minicnn's or does not fit the model
  9    training diverged: the loss became NaN or Inf, or ran away
  10   an optional package is missing (pip install 'minicnn[data]')
  11   another error from the operating system (input/output)
  70   a bug in minicnn: rerun with --debug and report the traceback
  130  interrupted (Ctrl-C)
  141  the reader of the output went away (minicnn summary vgg16 | head)
"""
import contextlib
import dataclasses
import errno
import os
import signal
import sys
import threading
import urllib.error

from minicnn.data.download import ChecksumError


class CommandError(Exception):
    """A problem with what the user asked for: printed as one line, exit status 2."""


class PathKindError(Exception):
    """A file given where a folder belongs, or a folder where a file belongs: exit status 3."""


class CheckpointError(Exception):
    """A file that is not a minicnn checkpoint, or one that does not fit the model: exit status 8."""


@dataclasses.dataclass(frozen=True)
class Failure:
    """One kind of expected failure: the exceptions it covers, its exit status and its line on stderr.

    ``label`` starts the line when the exception's own words may not name the problem (a bare
    MemoryError says nothing); ``hint`` ends it with what to do ({command} becomes "minicnn train").
    """
    kinds: tuple
    status: int
    label: str = ""
    hint: str = ""
    errnos: tuple = ()        # an OSError with one of these errno values is covered too
    name_the_type: bool = False

    def covers(self, error):
        return isinstance(error, self.kinds) or (isinstance(error, OSError) and error.errno in self.errnos)

    def line(self, command, error):
        text = _one_line(error)
        if self.name_the_type:
            text = f"{type(error).__name__}: {text}" if text else type(error).__name__
        what = f"{self.label}: {text}" if self.label and text else self.label or text
        return f"{command}: error: {what}" + (f"; {self.hint.format(command=command)}" if self.hint else "")


# The first that covers the exception wins: narrow kinds before the broad ones (ChecksumError is a
# ValueError, PermissionError an OSError, and Exception covers whatever nobody expected).
FAILURES = (
    Failure((FloatingPointError,), 9, "training diverged",
            "try a smaller --lr; the last good epoch, if one finished, is in --output's last.npz"),
    Failure((MemoryError,), 6, "out of memory",
            "try a smaller --input (summary) or --batch-size/--width (train)"),
    Failure((), 5, hint="free some space, or pass an --output on another disk",
            errnos=(errno.ENOSPC, errno.EDQUOT)),
    Failure((PermissionError,), 4, hint="pass an --output folder you can write to, or change the permissions",
            errnos=(errno.EACCES, errno.EPERM, errno.EROFS)),
    Failure((PathKindError, IsADirectoryError, NotADirectoryError, FileExistsError), 3,
            hint="--output and --data-root are folders, --resume and evaluate's CHECKPOINT .npz files"),
    Failure((ConnectionError, TimeoutError, urllib.error.URLError, ChecksumError), 7, "download failed",
            "check the network and run again (a partial download resumes), or put the files in --data-root"),
    Failure((CheckpointError,), 8, "incompatible checkpoint",
            "it must come from minicnn train with the same --model, --width and --dataset"),
    Failure((ImportError,), 10, "missing package",
            "install the package it names; pip install 'minicnn[data]' adds the dataset ones"),
    Failure((CommandError, FileNotFoundError, ValueError), 2, hint="see {command} --help"),
    Failure((OSError,), 11, hint="check the disk and the path"),
    Failure((Exception,), 70, "internal error (a bug in minicnn)",
            "rerun with --debug for the traceback and please report it", name_the_type=True),
)
INTERRUPTED, READER_GONE = 130, 141
_LONGEST_MESSAGE = 700  # a state_dict mismatch can name every key: enough to see the problem, --debug for all


def _one_line(error):
    """The exception's own words on one line, cut at _LONGEST_MESSAGE characters; an OSError as
    "reason: 'path'", without "[Errno 28]"."""
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        text = str(error.reason)  # not "<urlopen error ...>"
    elif isinstance(error, OSError) and error.errno is not None:
        text = error.strerror or os.strerror(error.errno)
        if error.filename is not None:
            text += f": {error.filename!r}"
        if error.filename2 is not None:
            text += f" -> {error.filename2!r}"
    else:
        text = str(error)
    text = " ".join(text.split())
    if len(text) > _LONGEST_MESSAGE:
        return text[:_LONGEST_MESSAGE] + " ... (--debug shows it all)"
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text  # a hint may follow


@contextlib.contextmanager
def one_interrupt(process_ends_after):
    """Ctrl-C raises KeyboardInterrupt once; later presses are ignored until the command has ended, so the
    cleanup it unwinds through and the word "interrupted" cannot be cut short by a second traceback.
    When the process ends next, a press during the interpreter's exit is ignored too.

    Only where Ctrl-C still has Python's default meaning (not in a thread, not where it is ignored).
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def first_press(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, first_press)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN if process_ends_after else signal.default_int_handler)


def silence_stdout():
    """After the reader went away (`minicnn summary vgg16 | head`): point stdout at /dev/null so that the
    final flush cannot raise again, and stop quietly, as Unix tools do."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (captured, replaced): nothing to flush into a pipe
        pass


def say(line):
    """``line`` on stderr; if stderr itself is gone there is nobody left to tell."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
