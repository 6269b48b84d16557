"""Training curves: loss and accuracy per epoch, train against validation.

The gap between the two lines is the lesson: train loss still falling while validation loss rises is
overfitting, both flat and high is underfitting (or a learning rate that is too small).
"""
from collections.abc import Mapping

import numpy as np
from matplotlib.ticker import MaxNLocator, PercentFormatter

from minicnn.viz._figure import new_figure, save_figure

_FUNCTION = "training_curves"


def _history_as_dict(history):
    # History.to_dict() rather than isinstance(History): viz must not import the training loop.
    if hasattr(history, "to_dict") and callable(history.to_dict):
        history = history.to_dict()
    if not isinstance(history, Mapping):
        raise TypeError(f"{_FUNCTION}: history must be a minicnn.train.History or a dict of per-epoch lists "
                        f"(train_loss, train_accuracy, val_loss, val_accuracy), got {type(history).__name__}")
    return history


def _series(history, key):
    """The per-epoch values under ``key`` as float64, with None (an epoch without that metric) as NaN;
    None when the key is absent or holds no number at all."""
    values = history.get(key)
    if values is None:
        return None
    try:
        array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{_FUNCTION}: history[{key!r}] must be a list of numbers (one per epoch), "
                         f"got {values!r:.80}") from None
    if array.ndim != 1:
        raise ValueError(f"{_FUNCTION}: history[{key!r}] must be a flat list (one number per epoch), "
                         f"got shape {array.shape}")
    return array if np.isfinite(array).any() else None


def _plot_pair(axes, train, val, ylabel):
    for values, label in ((train, "train"), (val, "val")):
        if values is not None:
            epochs = np.arange(1, len(values) + 1)
            # Markers: a one-epoch run is a single point, invisible as a line.
            axes.plot(epochs, values, marker="o", markersize=3, label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend()
    else:
        axes.text(0.5, 0.5, f"no {ylabel} recorded", ha="center", va="center", transform=axes.transAxes)


def training_curves(history, title=None, save=None, dpi=100, figsize=(10, 4)):
    """Two panels, loss and accuracy against epoch, with a train line and (when recorded) a val line.

    ``history`` is what ``minicnn.train.fit`` returns (anything with ``to_dict()``) or a dict of lists
    ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``; only ``train_loss`` is required.
    Missing validation (no key, an empty list, all None) simply leaves its line out.  Accuracies in
    [0, 1] get a percent axis; the plotted values are the history's own.

    >>> history = fit(model, train_loader, val_loader, optimizer, epochs=10)
    >>> training_curves(history, save="runs/curves.png")
    """
    history = _history_as_dict(history)
    train_loss = _series(history, "train_loss")
    if train_loss is None:
        raise ValueError(f"{_FUNCTION}: history needs 'train_loss' with at least one epoch, got keys "
                         f"{sorted(history)} and train_loss={history.get('train_loss')!r:.60}")

    figure = new_figure(_FUNCTION, figsize, dpi)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    _plot_pair(loss_axes, train_loss, _series(history, "val_loss"), "loss")
    train_accuracy, val_accuracy = _series(history, "train_accuracy"), _series(history, "val_accuracy")
    _plot_pair(accuracy_axes, train_accuracy, val_accuracy, "accuracy")
    recorded = [np.nanmax(a) for a in (train_accuracy, val_accuracy) if a is not None]
    if recorded and max(recorded) <= 1.0:
        accuracy_axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    loss_axes.set_title("loss")
    accuracy_axes.set_title("accuracy")
    figure.suptitle(title if title is not None else f"Training curves ({len(train_loss)} epochs)")
    figure.tight_layout()
    save_figure(_FUNCTION, figure, save)
    return figure
