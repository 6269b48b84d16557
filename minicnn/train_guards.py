"""What stops a training run whose numbers went wrong, before the bad update is applied.

Two errors, both ``FloatingPointError`` so one ``except`` catches either:
``NonFiniteLossError`` (a NaN or Inf loss or gradient) and ``LossDivergedError``
(a finite loss that ran away, as a learning rate far too large makes it).
``StepGuard`` raises them: ``fit`` calls ``check`` after each backward and
``keep_parameters`` just before ``optimizer.step()``.  The one idea: check
between backward and step, so a bad step changes no parameter, and say in the
message where it happened (epoch, step), which parameter to blame and what
usually helps (a smaller learning rate, ``grad_clip``).
"""
import math
import os

import numpy as np

from minicnn.backend import get_array_module


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


class LossDivergedError(FloatingPointError):
    """The loss ran away: finite, but ``divergence_factor`` times where the run started; raised by ``fit``.

    What a learning rate far too large does: SGD or Adam at lr=1e6 sends a
    cross-entropy of 1.2 to 1e11 in one step, and the run then goes on at
    1e5..1e34 and chance accuracy without ever producing a NaN.  A
    ``FloatingPointError`` like ``NonFiniteLossError``, so one ``except`` catches
    both.  Attributes: ``epoch`` and ``step`` (from 1), ``loss``, ``start`` (the
    first step's loss), ``limit``, ``parameter`` (name of the parameter
    that the last update moved most relative to its size, or None) and
    ``relative_update`` (that update's norm over the parameter's norm before it).
    """

    def __init__(self, message, epoch, step, loss, start, limit, parameter, relative_update):
        super().__init__(message)
        self.epoch, self.step, self.loss, self.start, self.limit = epoch, step, loss, start, limit
        self.parameter, self.relative_update = parameter, relative_update


def _first_non_finite_gradient(model):
    for name, param in model.named_parameters():
        if param.grad is not None and not np.isfinite(param.grad.data).all():
            return name
    return None


class StepGuard:
    """What ``fit`` checks after each backward, before the optimizer changes anything.

    * The loss and every gradient are finite, else ``NonFiniteLossError``.
    * The loss has not run away, else ``LossDivergedError``: ``|loss|`` must stay
      within ``divergence_factor × max(start, 1)``, where ``start`` is the loss
      of this run's first step, before any update.  Not an average of the first
      steps: a run can blow up within them (lr=1e5 on a linear head goes 1.2,
      8.7e3, 5.9e5, ...), which would lift the limit out of reach.  The factor
      (1e4 by default) leaves ordinary runs, spikes of 10x and all, far below the
      limit, and the floor of 1 lets a run that starts near zero (fine-tuning)
      wander up to ordinary loss values.  To name the parameter to blame, the
      guard keeps a copy of the parameters from before each update (one model's
      worth of memory, one copy per step).
    * No Ctrl-C went missing in a ``__del__`` (``InterruptGuard``).
    """

    def __init__(self, model, optimizer, divergence_factor, checkpoint_dir, interrupts):
        self.model, self.optimizer, self.divergence_factor = model, optimizer, divergence_factor
        self.checkpoint_dir, self.interrupts = checkpoint_dir, interrupts
        self.start = None  # |loss| of the first step
        self.before_update = None  # [(name, parameter, its array before the last update)]

    def check(self, loss_value, images, epoch, step, global_step):
        self.interrupts.raise_if_interrupted()
        where = f"at epoch {epoch}, step {step} (global step {global_step})"
        bad_parameter = _first_non_finite_gradient(self.model)
        if bad_parameter is not None or not math.isfinite(loss_value):
            raise self._non_finite_error(loss_value, bad_parameter, images, epoch, step, where)
        if self.divergence_factor is None:
            return
        if self.start is None:
            self.start = abs(loss_value)
        limit = self.divergence_factor * max(self.start, 1.0)
        if abs(loss_value) > limit:
            raise self._diverged_error(loss_value, limit, epoch, step, where)

    def keep_parameters(self):
        """Copy the parameters before the update: if the next loss runs away, this update is to blame."""
        if self.divergence_factor is None:
            return
        if self.before_update is None:  # allocated once: the copies are reused every step
            self.before_update = [(name, param, get_array_module(param.data).empty_like(param.data))
                                  for name, param in self.model.named_parameters()]
        for _, param, before in self.before_update:
            before[...] = param.data

    def _largest_relative_update(self):
        """(name, ||after - before|| / ||before||) of the parameter the last update moved most, in float64.

        Parameters that were all zeros (a bias just initialised) are skipped:
        any change is infinitely large relative to them, which blames nothing.
        """
        largest = (None, None)
        for name, param, before in self.before_update or ():
            xp = get_array_module(before)
            before64 = before.astype(xp.float64).ravel()
            size = float(xp.linalg.norm(before64))
            if size == 0:
                continue
            ratio = float(xp.linalg.norm(param.data.astype(xp.float64).ravel() - before64)) / size
            if largest[1] is None or ratio > largest[1]:
                largest = (name, ratio)
        return largest

    def _stopped(self, what_is_kept, parameter):
        """The end both errors share: where the last good state is, and the learning rate to lower."""
        message = f". Training stopped before the optimizer step, so {what_is_kept}"
        if self.checkpoint_dir is not None:
            last = os.path.join(os.fspath(self.checkpoint_dir), "last.npz")
            message += f"; {last} holds the last good epoch" if os.path.exists(last) else \
                "; no checkpoint was written"
        blamed = dict(self.model.named_parameters()).get(parameter)
        groups = self.optimizer.param_groups
        group = next((group for group in groups if any(p is blamed for p in group["params"])), groups[0])
        several = len(groups) > 1 and blamed is not None
        where = f" (of the param group holding {parameter!r})" if several else ""
        return message + (f". The learning rate{where} is {group['lr']:g}: one 10 to 100 times smaller, or "
                          f"grad_clip, usually helps")

    def _non_finite_error(self, loss_value, parameter, images, epoch, step, where):
        input_non_finite = not np.isfinite(images.numpy()).all()
        if not math.isfinite(loss_value):
            message = f"fit: the loss became {loss_value} {where}"
            if input_non_finite:
                message += "; the input batch itself contains NaN or Inf values"
            if parameter is not None:
                message += (f"; the first parameter (in registration order) whose gradient went non-finite "
                            f"in the last backward is {parameter!r}")
            else:
                message += "; all gradients of the last backward were finite: the loss itself overflowed"
        else:
            message = (f"fit: the gradient of {parameter!r} went non-finite {where} while the loss was "
                       f"finite ({loss_value:.6g}); it is the first such parameter in registration order")
        message += self._stopped("the model keeps its last finite parameters", parameter) + "."
        return NonFiniteLossError(message, epoch, step, loss_value, parameter, input_non_finite)

    def _diverged_error(self, loss_value, limit, epoch, step, where):
        parameter, ratio = self._largest_relative_update()
        message = (f"fit: the loss ran away to {loss_value:.4g} {where}: more than divergence_factor="
                   f"{self.divergence_factor:g} times its level at the first step, {self.start:.4g} (or 1 if "
                   f"lower)")
        if parameter is not None:
            message += (f"; the last update moved {parameter!r} most, by {ratio:.3g} times its own norm")
        message += self._stopped("this step's update is not applied", parameter)
        message += "; divergence_factor=None turns this check off."
        return LossDivergedError(message, epoch, step, loss_value, self.start, limit, parameter, ratio)


__all__ = ["LossDivergedError", "NonFiniteLossError", "StepGuard"]
