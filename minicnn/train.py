"""The training loop: ``fit`` trains a model epoch by epoch, ``evaluate`` measures it.

One training step is the five lines every PyTorch tutorial writes::

    outputs = model(images)                 # forward: builds the graph
    loss = loss_fn(outputs, labels)
    model.zero_grad(); loss.backward()      # gradients of every parameter
    clip_grad_norm_(params, grad_clip)      # optional: cap the global gradient norm
    optimizer.step()                        # update the parameters in place

``fit`` adds what a real run needs around it: a progress bar per epoch, a
check that the loss stays finite and does not run away (a diverging run stops
with a ``NonFiniteLossError`` or ``LossDivergedError`` that names the step and
the parameter to blame; see ``minicnn.train_guards``), a learning-rate schedule
stepped once per epoch, validation after every epoch, a ``History`` of
per-epoch metrics and checkpoints (``last.npz`` every epoch, ``best.npz`` on
the best validation accuracy).  Ctrl-C always stops it with KeyboardInterrupt,
leaving the last checkpoint whole.

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
from minicnn.atomic_files import remove_stale_temporary_files
from minicnn.checkpoint import save_checkpoint
from minicnn.device import normalize_device
from minicnn.distributed import training as distributed
from minicnn.distributed import world
from minicnn.history import History
from minicnn.interrupts import InterruptGuard
from minicnn.nn import Module
from minicnn.optim import Optimizer
from minicnn.tensor import Tensor, no_grad
from minicnn.train_guards import LossDivergedError, NonFiniteLossError, StepGuard


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


def _check_model_and_loader(function, model, loader_name, loader):
    if not isinstance(model, Module):
        raise TypeError(f"{function}: model must be a minicnn.nn.Module, got {type(model).__name__}")
    if loader is None or not hasattr(loader, "__iter__"):
        raise TypeError(f"{function}: {loader_name} must be an iterable of (images, labels) batches, "
                        f"got {type(loader).__name__}")


def _check_fit_arguments(model, train_loader, val_loader, optimizer, epochs, start_epoch, loss_fn, scheduler,
                         device, grad_clip, checkpoint_dir, progress, divergence_factor):
    function = "fit"
    _check_model_and_loader(function, model, "train_loader", train_loader)
    if val_loader is not None and not hasattr(val_loader, "__iter__"):
        raise TypeError(f"{function}: val_loader must be None or an iterable of (images, labels) batches, "
                        f"got {type(val_loader).__name__}")
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise TypeError(f"{function}: checkpoint_dir must be a path (str or os.PathLike) or None, "
                        f"got {type(checkpoint_dir).__name__}")
    if checkpoint_dir is not None and os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
        # Now, not after the first epoch's work, when the first checkpoint could not be written.
        raise NotADirectoryError(f"{function}: checkpoint_dir {os.fspath(checkpoint_dir)!r} is a file; "
                                 f"pass a folder (it is created if missing)")
    _check_int(function, epochs, "epochs")
    _check_int(function, start_epoch, "start_epoch")
    if start_epoch > epochs:
        raise ValueError(f"{function}: start_epoch ({start_epoch}) is past epochs ({epochs}); epochs is the "
                         f"total to reach, as in range(start_epoch, epochs)")
    if optimizer is None and epochs > start_epoch:
        raise ValueError(f"{function}: an optimizer is needed to train (got optimizer=None), e.g. "
                         f"minicnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"{function}: optimizer must be a minicnn.optim.Optimizer, got "
                        f"{type(optimizer).__name__}; e.g. minicnn.optim.SGD(model.parameters(), lr=0.01, "
                        f"momentum=0.9)")
    if optimizer is not None:
        _check_optimizer_owns(model, optimizer)
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"{function}: loss_fn must be callable (outputs, labels) -> loss, "
                        f"got {type(loss_fn).__name__}")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"{function}: scheduler must have a step() method, got {type(scheduler).__name__}")
    if scheduler is not None and getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError(f"{function}: the scheduler drives another optimizer than the one given, so the "
                         f"learning rate would never change; make it over this one, e.g. "
                         f"StepLR(optimizer, 30)")
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
    if divergence_factor is not None:
        if isinstance(divergence_factor, bool) or not isinstance(divergence_factor, numbers.Real):
            raise TypeError(f"{function}: divergence_factor must be a number or None (no check), "
                            f"got {type(divergence_factor).__name__}")
        if not (divergence_factor > 1 and math.isfinite(divergence_factor)):
            raise ValueError(f"{function}: divergence_factor must be a finite number > 1 (how many times its "
                             f"starting level the loss may reach), or None to turn the check off; "
                             f"got {divergence_factor}")


def _check_optimizer_owns(model, optimizer):
    """Every parameter the optimizer updates must be one of the model's (the same object, not a copy).

    An optimizer over another model's parameters updates nothing ``fit`` trains,
    and a foreign parameter would neither learn (no gradient reaches it) nor be
    checkpointed.  A subset of the model's is fine: fine-tuning only the head.
    """
    own = {id(param) for param in model.parameters()}
    optimized = [param for group in optimizer.param_groups for param in group["params"]]
    foreign = [param for param in optimized if id(param) not in own]
    if not foreign:
        return
    if len(foreign) == len(optimized):
        names = [name for name, _ in model.named_parameters()]
        more = f" and {len(names) - 4} more" if len(names) > 4 else ""
        listed = ", ".join(repr(name) for name in names[:4]) + more
        missing = f"the model's parameters ({listed}) are missing from it" if names else "the model has none"
        raise ValueError(f"fit: none of the optimizer's {len(optimized)} parameters belong to the model, so "
                         f"training would change nothing; {missing}. Was the optimizer built over another "
                         f"model (or a copy of this one)? Build it over this model: "
                         f"optim.SGD(model.parameters(), lr=...)")
    shapes = ", ".join(str(param.shape) for param in foreign[:4]) + (" ..." if len(foreign) > 4 else "")
    raise ValueError(f"fit: {len(foreign)} of the optimizer's {len(optimized)} parameters (shapes {shapes}) "
                     f"do not belong to the model; fit trains and checkpoints only the model's parameters, "
                     f"so those would never change. Build the optimizer over model.parameters() or a part of "
                     f"them (e.g. model.classifier.parameters() to fine-tune the head)")


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


def default_loss(outputs, labels):
    """fit's loss when none is given: the cross-entropy of the logits; for outputs that carry several heads
    (``outputs.weighted_logits()`` gives ``[(weight, logits)]``, as GoogLeNet's training outputs do) the
    weighted sum over the heads.  The loop asks the outputs, so it needs to know no model."""
    weighted_logits = getattr(outputs, "weighted_logits", None)
    if callable(weighted_logits):
        return F.cross_entropy_of_heads(weighted_logits(), labels)
    return F.cross_entropy(outputs, labels)


def _main_logits(outputs):
    """A model with auxiliary heads returns (logits, aux ...) in training: accuracy is measured on the main logits."""
    return outputs[0] if isinstance(outputs, tuple) else outputs


def _count_correct(logits, labels):
    return int((logits.numpy().argmax(axis=1) == labels.numpy()).sum())


# --- the loop --------------------------------------------------------------------------------
def _batches_per_epoch(loader):
    try:
        return len(loader)
    except TypeError:  # a plain iterable or generator
        return None


def _train_one_epoch(model, train_loader, optimizer, loss_fn, grad_clip, epoch, bar, guard):
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
        global_step = (epoch * total_batches + step) if total_batches is not None else step
        guard.check(loss_value, images, epoch + 1, step, global_step)
        if grad_clip is not None:
            clip_grad_norm_(model.parameters(), grad_clip)
        guard.keep_parameters()
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
    loss_sum, correct, seen = distributed.sum_over_ranks([loss_sum, correct, seen])  # one rank: as they are
    if seen == 0:
        raise ValueError("fit: train_loader yielded no batches")
    return loss_sum / seen, correct / seen, int(seen), seconds


def fit(model, train_loader, val_loader=None, optimizer=None, epochs=1, loss_fn=None, scheduler=None,
        device="cpu", grad_clip=None, checkpoint_dir=None, progress=None, start_epoch=0, history=None,
        *, checkpoint_extra=None, divergence_factor=1e4):
    """Train ``model`` from epoch ``start_epoch`` up to (not including) ``epochs``; returns the ``History``.

    ``epochs`` is the total to reach, as Keras's ``fit(epochs, initial_epoch)``:
    a run resumed from a checkpoint of 3 epochs with ``start_epoch=3, epochs=10``
    trains 7 more.  Each epoch: train mode, every batch forward / loss /
    backward / optional clipping of the global gradient norm to ``grad_clip`` /
    ``optimizer.step()``; then ``scheduler.step()`` once; then
    ``evaluate(model, val_loader)`` if given; then the history and checkpoints.

    * ``loss_fn(outputs, labels)`` receives what the model returned; the default
      (``default_loss``) is cross-entropy, summed over the heads with their
      weights for outputs that say how to weigh them (GoogLeNet's training
      outputs: main + 0.3 × each auxiliary head).  Accuracy is always measured
      on the main logits.
    * ``progress``: True/False, or None for "on when stdout is a terminal and
      the CI environment variable is unset" (bars go to stderr via tqdm.auto).
    * ``checkpoint_dir``: write ``last.npz`` after every epoch and ``best.npz``
      when the validation accuracy beats every earlier epoch (see
      ``minicnn.checkpoint``); ``checkpoint_extra`` (JSON-able) is stored in both.
    * ``history``: a ``History`` (or its dict) of the ``start_epoch`` epochs
      already done, which this run extends; a new one when None.
    * A NaN/Inf loss or gradient raises ``NonFiniteLossError`` before the
      optimizer step; a loss above ``divergence_factor`` times the first step's
      (taken as at least 1) raises ``LossDivergedError`` (None: no such check);
      no checkpoint is written for the failing epoch.
    * The optimizer must update the model's own parameters (all or some).
    * Ctrl-C raises KeyboardInterrupt, always: one that lands in a checkpoint
      write waits until the file is whole, one that a ``__del__`` swallowed is
      raised again at the next step.
    * Under ``mpiexec`` with several ranks (``minicnn.distributed``), the
      model is wrapped in ``DataParallel`` (unless it already is) and rank 0's
      weights, optimizer and scheduler state go to every rank; ``train_loader``
      must split the data with a ``DistributedSampler``.  Metrics are summed
      over the ranks, batch norm's running statistics averaged before each
      evaluation and checkpoint, and only rank 0 shows progress and writes
      checkpoints (of the inner model, so they resume at any number of ranks).
    """
    _check_fit_arguments(model, train_loader, val_loader, optimizer, epochs, start_epoch, loss_fn, scheduler,
                         device, grad_clip, checkpoint_dir, progress, divergence_factor)
    if history is None:
        history = History()
    elif isinstance(history, dict):
        history = History.from_dict(history)
    elif not isinstance(history, History):
        raise TypeError(f"fit: history must be a History, its dict or None, got {type(history).__name__}")
    model.to(normalize_device("fit", device))  # in place: the optimizer's parameters move with it
    communicator = world()  # this process alone unless mpiexec started several ranks
    trained = distributed.prepare("fit", model, optimizer, scheduler, train_loader, communicator)
    model = distributed.unwrap(model)  # what checkpoints save and the guard names parameters of
    is_rank_0 = communicator.rank == 0
    if len(history) != start_epoch:
        raise ValueError(f"fit: history holds {len(history)} epochs but start_epoch is {start_epoch}; pass "
                         f"the history saved with the checkpoint you resume from")
    train_loss_fn = default_loss if loss_fn is None else loss_fn
    show_progress = _show_progress(progress) and is_rank_0
    checkpoint_loader = train_loader if callable(getattr(train_loader, "state_dict", None)) else None
    best_accuracy = max((a for a in history.val_accuracy if a is not None), default=-math.inf)
    if checkpoint_dir is not None and is_rank_0:
        remove_stale_temporary_files(checkpoint_dir)  # what a killed run's last write left behind

    with InterruptGuard(hold=False) as interrupts:
        guard = StepGuard(model, optimizer, divergence_factor, checkpoint_dir, interrupts)
        for epoch in range(start_epoch, epochs):
            epoch_started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            # Updated by hand rather than wrapping the loader: a wrapped bar closes itself when the loader
            # ends, before the validation metrics could join its last line.
            bar = tqdm(total=_batches_per_epoch(train_loader), desc=f"epoch {epoch + 1}/{epochs}",
                       unit="batch", dynamic_ncols=True) if show_progress else None
            try:
                train_loss, train_accuracy, images, train_seconds = _train_one_epoch(
                    trained, train_loader, optimizer, train_loss_fn, grad_clip, epoch, bar, guard)
                if scheduler is not None:
                    scheduler.step()
                if trained is not model:  # every rank's running statistics → their mean
                    trained.average_buffers()
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
                        postfix.update({"val_loss": f"{val['loss']:.4f}",
                                        "val_acc": f"{val['accuracy']:.3f}"})
                    bar.set_postfix(postfix)
            finally:
                if bar is not None:
                    bar.close()
            if checkpoint_dir is not None and is_rank_0:
                state = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "epoch": epoch + 1,
                         "history": history, "loader": checkpoint_loader, "extra": checkpoint_extra}
                save_checkpoint(os.path.join(checkpoint_dir, "last.npz"), **state)
                if val is not None and val["accuracy"] > best_accuracy:
                    best_accuracy = val["accuracy"]
                    save_checkpoint(os.path.join(checkpoint_dir, "best.npz"), **state)
            if checkpoint_dir is not None and communicator.size > 1:
                communicator.barrier()  # no rank goes on (or returns and reads it) before the file is whole
            interrupts.raise_if_interrupted()  # one that a __del__ swallowed while the epoch ended
    return history


def evaluate(model, loader, loss_fn=None):
    """Loss, accuracy and confusion matrix of ``model`` over ``loader``, in eval mode and without a graph.

    Returns ``dict(loss=mean loss per image, accuracy=fraction correct,
    confusion=(C, C) int64 array)``, where ``confusion[true, predicted]``
    counts images (rows: true class, as scikit-learn).  ``loss_fn`` (default
    cross-entropy) must average over its batch.  Each module's train/eval mode
    is put back as it was.  A loader split over several ranks (a
    ``DistributedSampler``) gives each rank a share: the sums are then added
    over the ranks, and every rank returns the whole dataset's metrics.
    """
    function = "evaluate"
    _check_model_and_loader(function, model, "loader", loader)
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
    if distributed.is_sharded(loader):
        # The loss sum, the count and the confusion matrix in one allreduce (its side C from the ranks).
        num_classes = _num_classes(confusion)
        if confusion is None:
            confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        sums = distributed.sum_over_ranks(np.concatenate([[loss_sum, seen], confusion.ravel()]))
        loss_sum, seen = float(sums[0]), int(sums[1])
        confusion = np.rint(sums[2:]).astype(np.int64).reshape(confusion.shape)
    if seen == 0:
        raise ValueError(f"{function}: the loader yielded no batches")
    return {"loss": loss_sum / seen, "accuracy": int(np.trace(confusion)) / seen, "confusion": confusion}


def _num_classes(confusion):
    """The confusion matrix's side on a rank that may have seen no batch: the other ranks' must agree."""
    side = np.array([-1 if confusion is None else confusion.shape[0]], dtype=np.int64)
    sides = world().allgather(side).ravel()
    return int(sides.max())


__all__ = ["History", "LossDivergedError", "NonFiniteLossError", "clip_grad_norm_", "default_loss", "evaluate", "fit"]
