"""``History``: the per-epoch metrics of a training run, one list per metric, one entry per epoch.

``fit`` returns one, and extends the one it is given when a run resumes;
``save_checkpoint`` stores it as JSON (``to_dict``) and ``load_checkpoint``
builds it again (``from_dict``, which checks every value first).  It lives in a
file of its own so that the training loop and the checkpoints both import it
from here, and neither has to import the other to get it.

>>> history = fit(model, train_loader, val_loader, optimizer=optimizer, epochs=5)
>>> history.val_accuracy                                  # one float (or None) per epoch
>>> History.from_dict(history.to_dict()).to_dict() == history.to_dict()
True
"""
import numbers


class History:
    """Per-epoch metrics of a run: one list per metric, one entry per epoch.

    ``val_loss``/``val_accuracy`` hold None for epochs trained without a
    validation loader; ``lr`` is the first param group's learning rate used
    during the epoch; ``epoch_seconds`` includes validation, while
    ``images_per_second`` counts training images over training time only.
    """

    KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds",
            "images_per_second")

    def __init__(self):
        for key in self.KEYS:
            setattr(self, key, [])

    def __len__(self):
        return len(self.train_loss)

    def __repr__(self):
        if len(self) == 0:
            return "History(0 epochs)"
        return (f"History({len(self)} epochs, last train_loss={self.train_loss[-1]:.4f}, "
                f"val_accuracy={self.val_accuracy[-1]})")

    def append(self, **metrics):
        """Record one epoch; every key of ``History.KEYS`` must be given."""
        if set(metrics) != set(self.KEYS):
            raise ValueError(f"History.append: expected the metrics {', '.join(self.KEYS)}, "
                             f"got {', '.join(sorted(metrics))}")
        for key in self.KEYS:
            value = metrics[key]
            getattr(self, key).append(None if value is None else float(value))

    def to_dict(self):
        """``{metric: list of floats (or None)}``, JSON-serialisable (a copy)."""
        return {key: list(getattr(self, key)) for key in self.KEYS}

    @classmethod
    def from_dict(cls, metrics):
        """The inverse of ``to_dict``; every metric list must be present and all of one length."""
        if not isinstance(metrics, dict):
            raise TypeError(f"History.from_dict: expected a dict, got {type(metrics).__name__}")
        missing = [key for key in cls.KEYS if key not in metrics]
        if missing:
            raise ValueError(f"History.from_dict: missing metrics {', '.join(missing)}")
        for key in cls.KEYS:
            if not isinstance(metrics[key], (list, tuple)):
                raise TypeError(f"History.from_dict: metric {key!r} must be a list, got "
                                f"{type(metrics[key]).__name__}")
            for epoch, value in enumerate(metrics[key], start=1):
                if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
                    raise TypeError(f"History.from_dict: metric {key!r} of epoch {epoch} is {value!r}, "
                                    f"expected a number or None")
        lengths = {key: len(metrics[key]) for key in cls.KEYS}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"History.from_dict: metric lists differ in length: {lengths}")
        history = cls()
        for key in cls.KEYS:
            setattr(history, key, [None if value is None else float(value) for value in metrics[key]])
        return history


__all__ = ["History"]
