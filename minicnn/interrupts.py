"""Ctrl-C that is never lost: ``InterruptGuard`` holds or remembers SIGINT over a block of code.

Python raises KeyboardInterrupt wherever the main thread happens to be when Ctrl-C
comes, and a few places drop it (a ``finally`` that then fails, a ``__del__``).
The one idea: for the length of a ``with`` block, put our own SIGINT handler in
place of the one that raises, and either hold the interrupt until the block is
done (a checkpoint write stays whole) or raise it at once and remember it (the
training loop raises it again at its next step, should something swallow it).

>>> with InterruptGuard(hold=True):
...     write_the_whole_file()        # Ctrl-C here raises KeyboardInterrupt once the block ends
"""
import signal
import threading


class InterruptGuard:
    """Ctrl-C (SIGINT) inside a ``with`` block: held until the block ends (``hold=True``) or raised at once
    and remembered (``hold=False``), so that no interrupt is ever lost.

    Why: a KeyboardInterrupt raised at an unlucky moment used to vanish.  NumPy's
    ``savez`` closes its zip archive in a ``finally`` that then fails, turning the
    interrupt into a ValueError; and one raised while a ``__del__`` runs (a
    ZipFile's, a progress bar's) is printed as "Exception ignored" and dropped, so
    training went on.  Holding Ctrl-C over a checkpoint write keeps the write
    whole; remembering it lets ``fit`` raise it again (``raise_if_interrupted``).

    It acts only in the main thread (the only one signals reach) and where Ctrl-C
    raises KeyboardInterrupt (Python's default handler or an enclosing ``InterruptGuard``);
    under any other SIGINT handler it changes nothing.
    """

    def __init__(self, hold):
        self.hold = hold
        self.interrupted = False
        self._previous = None

    def __enter__(self):
        current = signal.getsignal(signal.SIGINT)
        enclosing = getattr(current, "__self__", None)
        raises = current is signal.default_int_handler or isinstance(enclosing, InterruptGuard)
        if raises and threading.current_thread() is threading.main_thread():
            self._previous = current
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.interrupted = True
        if not self.hold:
            self._previous(signum, frame)  # raises KeyboardInterrupt (an enclosing guard remembers it too)

    def __exit__(self, *exception):
        previous, self._previous = self._previous, None
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
            if self.hold and self.interrupted:
                previous(signal.SIGINT, None)  # the held Ctrl-C, now that the block is done
        return False

    def raise_if_interrupted(self):
        """Raise KeyboardInterrupt if a Ctrl-C came, even one that a ``__del__`` swallowed."""
        if self.interrupted:
            raise KeyboardInterrupt


__all__ = ["InterruptGuard"]
