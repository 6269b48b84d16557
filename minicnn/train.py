"""The training loop: ``fit`` trains a model epoch by epoch, ``evaluate`` measures it.

One training step is the five lines every PyTorch tutorial writes::

    outputs = model(images)                 # forward: builds the graph
    loss = loss_fn(outputs, labels)
    model.zero_grad(); loss.backward()      # gradients of every parameter
    clip_grad_norm_(params, grad_clip)      # optional: cap the global gradient norm
    optimizer.step()                        # update the parameters in place

``fit`` adds what a real run needs around it: a progress bar per epoch, a
check that the loss and gradients stay finite (a diverging run stops with a
``NonFiniteLossError`` that names the step and the first parameter whose
gradient blew up), a learning-rate schedule stepped once per epoch, validation
after every epoch, a ``History`` of per-epoch metrics and checkpoints
(``last.npz`` every epoch, ``best.npz`` on the best validation accuracy).

>>> optimizer = minicnn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
>>> history = fit(model, train_loader, val_loader, optimizer=optimizer, epochs=5, checkpoint_dir="runs/vgg")
>>> history.val_accuracy          # one float per epoch
>>> evaluate(model, val_loader)   # {"loss": ..., "accuracy": ..., "confusion": (C, C) int64 array}
"""
import math
import numbers
import os
import sys
import time

import numpy as np
from tqdm.auto import tqdm

import minicnn.nn.functional as F
from minicnn import cuda
from minicnn.checkpoint import save_checkpoint
from minicnn.device import normalize_device
from minicnn.models import googlenet_loss
from minicnn.nn import Module
from minicnn.optim import Optimizer
from minicnn.tensor import Tensor, no_grad


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or Inf loss (or gradient); raised by ``fit`` before the bad update.

    An ``ArithmeticError`` (through ``FloatingPointError``, what NumPy raises
    under ``np.seterr(all="raise")``), not a ValueError: ``fit``'s arguments were
    valid, the numbers went wrong during training.  Attributes: ``epoch`` and
    ``step`` (both counted from 1), ``loss`` (the float), ``parameter`` (name of
    the first parameter, in registration order, whose gradient was non-finite,
    or None) and ``input_non_finite`` (the batch itself held NaN/Inf).
    """

    def __init__(self, message, epoch, step, loss, parameter, input_non_finite):
        super().__init__(message)
        self.epoch, self.step, self.loss = epoch, step, loss
        self.parameter, self.input_non_finite = parameter, input_non_finite


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
        lengths = {key: len(metrics[key]) for key in cls.KEYS}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"History.from_dict: metric lists differ in length: {lengths}")
        history = cls()
        for key in cls.KEYS:
            setattr(history, key, [None if value is None else float(value) for value in metrics[key]])
        return history


def clip_grad_norm_(parameters, max_norm):
    """Scale all gradients together so their global L2 norm is at most ``max_norm``; returns the norm before.

    The norm is taken over every gradient as one long vector, so clipping keeps
    the update's direction and only shortens it (PyTorch's
    ``torch.nn.utils.clip_grad_norm_``, with its 1e-6 guard).
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm > 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be a positive number, got {max_norm!r}")
    grads = [param.grad.data for param in parameters if param.grad is not None]
    # Python floats add up the squares: no float32 overflow for any finite norm below 1e154.
    total_norm = math.sqrt(sum(float(np.linalg.norm(grad.ravel())) ** 2 for grad in grads))
    scale = max_norm / (total_norm + 1e-6)
    if scale < 1.0:
        for grad in grads:
            grad *= grad.dtype.type(scale)  # in place: each .grad array is owned by its parameter
    return total_norm


# --- argument checks -------------------------------------------------------------------------
def _check_int(function, value, name, minimum=0):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{function}: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{function}: {name} must be >= {minimum}, got {value}")


def _check_fit_arguments(model, train_loader, val_loader, optimizer, epochs, start_epoch, loss_fn, scheduler,
                         device, grad_clip, checkpoint_dir, progress):
    function = "fit"
    if not isinstance(model, Module):
        raise TypeError(f"{function}: model must be a minicnn.nn.Module, got {type(model).__name__}")
    if train_loader is None or not hasattr(train_loader, "__iter__"):
        raise TypeError(f"{function}: train_loader must be an iterable of (images, labels) batches, "
                        f"got {type(train_loader).__name__}")
    if val_loader is not None and not hasattr(val_loader, "__iter__"):
        raise TypeError(f"{function}: val_loader must be None or an iterable of (images, labels) batches, "
                        f"got {type(val_loader).__name__}")
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise TypeError(f"{function}: checkpoint_dir must be a path (str or os.PathLike) or None, "
                        f"got {type(checkpoint_dir).__name__}")
    _check_int(function, epochs, "epochs")
    _check_int(function, start_epoch, "start_epoch")
    if start_epoch > epochs:
        raise ValueError(f"{function}: start_epoch ({start_epoch}) is past epochs ({epochs}); epochs is the "
                         f"total to reach, as in range(start_epoch, epochs)")
    if optimizer is None and epochs > start_epoch:
        raise ValueError(f"{function}: an optimizer is needed to train (got optimizer=None), e.g. "
                         f"minicnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"{function}: optimizer must be a minicnn.optim.Optimizer, got {type(optimizer).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"{function}: loss_fn must be callable (outputs, labels) -> loss, "
                        f"got {type(loss_fn).__name__}")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"{function}: scheduler must have a step() method, got {type(scheduler).__name__}")
    _check_device(function, device)
    if grad_clip is not None:
        if isinstance(grad_clip, bool) or not isinstance(grad_clip, numbers.Real):
            raise TypeError(f"{function}: grad_clip must be a number or None, got {type(grad_clip).__name__}")
        if not (grad_clip > 0 and math.isfinite(grad_clip)):
            raise ValueError(f"{function}: grad_clip must be a positive finite number (the largest global "
                             f"gradient norm allowed), got {grad_clip}")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"{function}: progress must be True, False or None (automatic), "
                        f"got {type(progress).__name__}")


def _check_device(function, device):
    """"cpu" or "cuda"; for "cuda" a RuntimeError saying why no GPU is usable, before any work."""
    device = normalize_device(function, device)
    if device == "cuda":
        cuda.require(function)
    return device


def _model_device(model):
    """Where the model's parameters live: batches are moved there (evaluate takes no device)."""
    for parameter in model.parameters():
        return parameter.device
    return "cpu"


def _show_progress(progress):
    """``progress=None``: bars only for a person at a terminal, never in CI logs."""
    if progress is not None:
        return progress
    return sys.stdout.isatty() and not os.environ.get("CI")


# --- one batch -------------------------------------------------------------------------------
def _unpack_batch(function, batch, device="cpu"):
    """(images, labels) as Tensors on ``device``; loaders yield CPU batches, the model may be on the GPU."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"{function}: each batch must be a pair (images, labels), got {type(batch).__name__}")
    images, labels = batch
    images = images if isinstance(images, Tensor) else Tensor(images)
    labels = labels if isinstance(labels, Tensor) else Tensor(labels)
    if device != "cpu":
        images, labels = images.to(device), labels.to(device)
    return images, labels


def _main_logits(outputs):
    """GoogLeNet returns (logits, aux2, aux1) in training: accuracy is measured on the main logits."""
    return outputs[0] if isinstance(outputs, tuple) else outputs


def _count_correct(logits, labels):
    return int((logits.numpy().argmax(axis=1) == labels.numpy()).sum())


def _first_non_finite_gradient(model):
    for name, param in model.named_parameters():
        if param.grad is not None and not np.isfinite(param.grad.data).all():
            return name
    return None


def _non_finite_error(loss_value, parameter, images, epoch, step, global_step, checkpoint_dir):
    input_non_finite = not np.isfinite(images.numpy()).all()
    where = f"at epoch {epoch}, step {step} (global step {global_step})"
    if not math.isfinite(loss_value):
        message = f"fit: the loss became {loss_value} {where}"
        if input_non_finite:
            message += "; the input batch itself contains NaN or Inf values"
        if parameter is not None:
            message += (f"; the first parameter (in registration order) whose gradient went non-finite in the "
                        f"last backward is {parameter!r}")
        else:
            message += "; all gradients of the last backward were finite: the loss itself overflowed"
    else:
        message = (f"fit: the gradient of {parameter!r} went non-finite {where} while the loss was finite "
                   f"({loss_value:.6g}); it is the first such parameter in registration order")
    message += ". Training stopped before the optimizer step, so the model keeps its last finite parameters"
    if checkpoint_dir is not None:
        last = os.path.join(os.fspath(checkpoint_dir), "last.npz")
        message += f"; {last} holds the last good epoch" if os.path.exists(last) else "; no checkpoint was written"
    message += ". A lower learning rate or grad_clip usually helps."
    return NonFiniteLossError(message, epoch, step, loss_value, parameter, input_non_finite)


# --- the loop --------------------------------------------------------------------------------
def _batches_per_epoch(loader):
    try:
        return len(loader)
    except TypeError:  # a plain iterable or generator
        return None


def _train_one_epoch(model, train_loader, optimizer, loss_fn, grad_clip, epoch, bar, checkpoint_dir):
    """One pass over ``train_loader``; returns (mean loss, accuracy, images seen, seconds)."""
    model.train()
    total_batches = _batches_per_epoch(train_loader)
    loss_sum, correct, seen = 0.0, 0, 0
    started = time.perf_counter()
    for step, batch in enumerate(train_loader, start=1):
        images, labels = _unpack_batch("fit", batch, _model_device(model))
        outputs = model(images)
        loss = loss_fn(outputs, labels)
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise TypeError(f"fit: loss_fn must return a one-element Tensor, got "
                            f"{type(loss).__name__}{getattr(loss, 'shape', '')}")
        model.zero_grad()
        optimizer.zero_grad()
        loss.backward()
        loss_value = float(loss.item())
        bad_parameter = _first_non_finite_gradient(model)
        if bad_parameter is not None or not math.isfinite(loss_value):
            global_step = (epoch * total_batches + step) if total_batches is not None else step
            raise _non_finite_error(loss_value, bad_parameter, images, epoch + 1, step, global_step,
                                    checkpoint_dir)
        if grad_clip is not None:
            clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()

        batch_size = len(labels)
        loss_sum += loss_value * batch_size
        correct += _count_correct(_main_logits(outputs), labels)
        seen += batch_size
        # Drop this step's graph now, not when the next forward replaces it: halves peak memory.
        del outputs, loss
        if bar is not None:
            bar.set_postfix({"loss": f"{loss_sum / seen:.4f}", "acc": f"{correct / seen:.3f}",
                             "img/s": f"{seen / (time.perf_counter() - started):.0f}"}, refresh=False)
            bar.update(1)
    seconds = time.perf_counter() - started
    if seen == 0:
        raise ValueError("fit: train_loader yielded no batches")
    return loss_sum / seen, correct / seen, seen, seconds


def fit(model, train_loader, val_loader=None, optimizer=None, epochs=1, loss_fn=None, scheduler=None,
        device="cpu", grad_clip=None, checkpoint_dir=None, progress=None, start_epoch=0, history=None,
        *, checkpoint_extra=None):
    """Train ``model`` from epoch ``start_epoch`` up to (not including) ``epochs``; returns the ``History``.

    ``epochs`` is the total to reach, as Keras's ``fit(epochs, initial_epoch)``:
    a run resumed from a checkpoint of 3 epochs with ``start_epoch=3, epochs=10``
    trains 7 more.  Each epoch: train mode, every batch forward / loss /
    backward / optional clipping of the global gradient norm to ``grad_clip`` /
    ``optimizer.step()``; then ``scheduler.step()`` once; then
    ``evaluate(model, val_loader)`` if given; then the history and checkpoints.

    * ``loss_fn(outputs, labels)`` receives what the model returned; the default
      is cross-entropy, and ``googlenet_loss`` (main + 0.3 × each auxiliary
      head) when the model returns GoogLeNet's training outputs.  Accuracy is
      always measured on the main logits.
    * ``progress``: True/False, or None for "on when stdout is a terminal and
      the CI environment variable is unset" (bars go to stderr via tqdm.auto).
    * ``checkpoint_dir``: write ``last.npz`` after every epoch and ``best.npz``
      when the validation accuracy beats every earlier epoch (see
      ``minicnn.checkpoint``); ``checkpoint_extra`` (JSON-able) is stored in both.
    * ``history``: a ``History`` (or its dict) of the ``start_epoch`` epochs
      already done, which this run extends; a new one when None.
    * A NaN/Inf loss or gradient raises ``NonFiniteLossError`` before the
      optimizer step; no checkpoint is written for the failing epoch.
    """
    _check_fit_arguments(model, train_loader, val_loader, optimizer, epochs, start_epoch, loss_fn, scheduler,
                         device, grad_clip, checkpoint_dir, progress)
    if history is None:
        history = History()
    elif isinstance(history, dict):
        history = History.from_dict(history)
    elif not isinstance(history, History):
        raise TypeError(f"fit: history must be a History, its dict or None, got {type(history).__name__}")
    model.to(normalize_device("fit", device))  # in place: the optimizer's parameters move with it
    if len(history) != start_epoch:
        raise ValueError(f"fit: history holds {len(history)} epochs but start_epoch is {start_epoch}; pass "
                         f"the history saved with the checkpoint you resume from")
    train_loss_fn = googlenet_loss if loss_fn is None else loss_fn
    show_progress = _show_progress(progress)
    checkpoint_loader = train_loader if callable(getattr(train_loader, "state_dict", None)) else None
    best_accuracy = max((a for a in history.val_accuracy if a is not None), default=-math.inf)

    for epoch in range(start_epoch, epochs):
        epoch_started = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        # Updated by hand rather than wrapping the loader: a wrapped bar closes itself when the loader
        # ends, before the validation metrics could join its last line.
        bar = tqdm(total=_batches_per_epoch(train_loader), desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                   dynamic_ncols=True) if show_progress else None
        try:
            train_loss, train_accuracy, images, train_seconds = _train_one_epoch(
                model, train_loader, optimizer, train_loss_fn, grad_clip, epoch, bar, checkpoint_dir)
            if scheduler is not None:
                scheduler.step()
            val = evaluate(model, val_loader, loss_fn=loss_fn) if val_loader is not None else None
            history.append(train_loss=train_loss, train_accuracy=train_accuracy,
                           val_loss=None if val is None else val["loss"],
                           val_accuracy=None if val is None else val["accuracy"],
                           lr=lr, epoch_seconds=time.perf_counter() - epoch_started,
                           images_per_second=images / max(train_seconds, 1e-12))
            if bar is not None:
                postfix = {"loss": f"{train_loss:.4f}", "acc": f"{train_accuracy:.3f}",
                           "img/s": f"{history.images_per_second[-1]:.0f}"}
                if val is not None:
                    postfix.update({"val_loss": f"{val['loss']:.4f}", "val_acc": f"{val['accuracy']:.3f}"})
                bar.set_postfix(postfix)
        finally:
            if bar is not None:
                bar.close()
        if checkpoint_dir is not None:
            state = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "epoch": epoch + 1,
                     "history": history, "loader": checkpoint_loader, "extra": checkpoint_extra}
            save_checkpoint(os.path.join(checkpoint_dir, "last.npz"), **state)
            if val is not None and val["accuracy"] > best_accuracy:
                best_accuracy = val["accuracy"]
                save_checkpoint(os.path.join(checkpoint_dir, "best.npz"), **state)
    return history


def evaluate(model, loader, loss_fn=None):
    """Loss, accuracy and confusion matrix of ``model`` over ``loader``, in eval mode and without a graph.

    Returns ``dict(loss=mean loss per image, accuracy=fraction correct,
    confusion=(C, C) int64 array)``, where ``confusion[true, predicted]``
    counts images (rows: true class, as scikit-learn).  ``loss_fn`` (default
    cross-entropy) must average over its batch.  Each module's train/eval mode
    is put back as it was.
    """
    function = "evaluate"
    if not isinstance(model, Module):
        raise TypeError(f"{function}: model must be a minicnn.nn.Module, got {type(model).__name__}")
    if loader is None or not hasattr(loader, "__iter__"):
        raise TypeError(f"{function}: loader must be an iterable of (images, labels) batches, "
                        f"got {type(loader).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"{function}: loss_fn must be callable, got {type(loss_fn).__name__}")
    loss_fn = F.cross_entropy if loss_fn is None else loss_fn
    modes = [(module, module.training) for module in model.modules()]
    loss_sum, seen, confusion = 0.0, 0, None
    model.eval()
    try:
        with no_grad():
            device = _model_device(model)
            for batch in loader:
                images, labels = _unpack_batch(function, batch, device)
                logits = _main_logits(model(images))
                num_classes = logits.shape[1]
                true = labels.numpy().astype(np.int64)
                if true.size and (true.min() < 0 or true.max() >= num_classes):
                    raise ValueError(f"{function}: labels must lie in [0, {num_classes}) for a model with "
                                     f"{num_classes} outputs, got {true.min()}..{true.max()}")
                batch_size = len(labels)
                loss_sum += float(loss_fn(logits, labels).item()) * batch_size
                seen += batch_size
                predicted = logits.numpy().argmax(axis=1)
                counts = np.bincount(true * num_classes + predicted, minlength=num_classes * num_classes)
                counts = counts.reshape(num_classes, num_classes).astype(np.int64)
                confusion = counts if confusion is None else confusion + counts
    finally:
        for module, training in modes:
            module.training = training
    if seen == 0:
        raise ValueError(f"{function}: the loader yielded no batches")
    return {"loss": loss_sum / seen, "accuracy": int(np.trace(confusion)) / seen, "confusion": confusion}


__all__ = ["History", "NonFiniteLossError", "clip_grad_norm_", "evaluate", "fit"]
