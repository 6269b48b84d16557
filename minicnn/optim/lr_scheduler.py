"""Learning-rate schedules: change each param group's ``lr`` once per epoch (or per iteration).

Call ``scheduler.step()`` after ``optimizer.step()``.  Creating a scheduler
records each group's starting lr as ``group["initial_lr"]`` and performs a
first step (``last_epoch`` becomes 0), exactly as PyTorch does.

Like PyTorch, each schedule is written *recursively*: the new lr is computed
from the group's current lr, so schedulers can be chained (a warm-up multiplies
whatever a decay produced).  The closed form each recursion follows is given in
the class docstring; ``SequentialLR`` uses it to start a schedule mid-way.
"""
import math
import numbers
from bisect import bisect_right

from minicnn.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses give ``_recursive_lr()`` (and ``_closed_form_lr()``)."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral) or last_epoch < -1:
            raise ValueError(f"{type(self).__name__}: last_epoch must be an int >= -1 (-1 for a fresh run), "
                             f"got {last_epoch!r}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for index, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(
                        f"{type(self).__name__}: param_groups[{index}] has no 'initial_lr' but last_epoch="
                        f"{last_epoch} asks to resume a schedule; load the optimizer's state first, or use "
                        f"last_epoch=-1 for a fresh run")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def step(self):
        """Advance one epoch and write the new learning rates into the optimizer."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch=None):
        if epoch is None:
            self.last_epoch += 1
            values = self._recursive_lr()
        else:
            self.last_epoch = epoch
            values = self._closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates (one per param group) set by the latest ``step()``."""
        return list(self._last_lr)

    def _current_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def _recursive_lr(self):
        raise NotImplementedError

    def _closed_form_lr(self):
        raise NotImplementedError(f"{type(self).__name__} has no closed form")

    def state_dict(self):
        """Everything but the optimizer: JSON-serialisable scalars and lists."""
        return {key: (list(value) if isinstance(value, (list, tuple)) else value)
                for key, value in self._own_state().items()}

    def _own_state(self):
        """The scheduler's own attributes: not the optimizer, nor the schedulers a scheduler drives."""
        return {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "_schedulers")}

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()``; one of another scheduler type, or a malformed one, changes nothing."""
        self.__dict__.update(self._checked_state(state_dict))

    def _checked_state(self, state_dict):
        """``state_dict`` ready to apply, after checking it has this scheduler's keys and kinds of value."""
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(f"{name}.load_state_dict: expected a dict from state_dict(), got "
                            f"{type(state_dict).__name__}")
        own = self._own_state()
        missing, unexpected = sorted(set(own) - set(state_dict)), sorted(set(state_dict) - set(own))
        if missing or unexpected:
            lacks, has = ", ".join(missing) or "nothing", ", ".join(unexpected) or "nothing"
            raise ValueError(f"{name}.load_state_dict: the saved state lacks {lacks} and has {has} that "
                             f"{name} does not keep: it was saved by another scheduler type")
        for key, value in state_dict.items():
            expected = _expected_kind(key, own[key], value)
            if expected is not None:
                raise ValueError(f"{name}.load_state_dict: '{key}' is {value!r}, expected {expected}")
        return {key: (list(value) if isinstance(value, (list, tuple)) else value)
                for key, value in state_dict.items()}


# Values that count epochs or steps (ints), and lists with one entry per param group.
_COUNTERS = {"last_epoch", "_step_count", "step_size", "T_max", "total_iters", "milestones", "_milestones"}
_PER_GROUP = {"base_lrs", "_last_lr"}


def _expected_kind(key, own, saved):
    """What a saved value should be, judged by the scheduler's own value for ``key``; None if it fits."""
    if isinstance(own, bool):
        return None if isinstance(saved, bool) else "True or False"
    if isinstance(own, (list, tuple)):
        if not isinstance(saved, (list, tuple)):
            return "a list"
        if key in _PER_GROUP and len(saved) != len(own):
            return f"a list of {len(own)} (one per param group)"
        item = 0 if key in _COUNTERS else 0.0
        if any(_expected_kind(key, item, value) is not None for value in saved):
            return f"a list whose items are each {_expected_kind(key, item, None)}"
        return None
    if isinstance(own, numbers.Real):
        if key in _COUNTERS:
            return None if isinstance(saved, numbers.Integral) and not isinstance(saved, bool) else "an int"
        fits = isinstance(saved, numbers.Real) and not isinstance(saved, bool) and math.isfinite(saved)
        return None if fits else "a finite number"
    return None


def _check_factor(scheduler, value, name):
    """gamma, eta_min: a finite number >= 0 (PyTorch takes any, and a negative one makes the lr negative)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{type(scheduler).__name__}: {name} must be a number, got {type(value).__name__} "
                        f"{value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{type(scheduler).__name__}: invalid {name} {value} "
                         f"(expected a finite number >= 0)")


def _check_positive_int(scheduler, value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{type(scheduler).__name__}: {name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{type(scheduler).__name__}: invalid {name} {value} (expected > 0)")


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs: lr = base_lr · gamma^(epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _check_positive_int(self, step_size, "step_size")
        _check_factor(self, gamma, "gamma")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _recursive_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each milestone epoch: lr = base_lr · gamma^(milestones passed).

    A milestone listed twice decays twice, as in PyTorch.
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        if not hasattr(milestones, "__iter__"):
            raise TypeError(f"MultiStepLR: milestones must be a list of epochs (ints), got "
                            f"{type(milestones).__name__}")
        _check_factor(self, gamma, "gamma")
        milestones = list(milestones)
        for milestone in milestones:
            if isinstance(milestone, bool) or not isinstance(milestone, numbers.Integral):
                raise TypeError(f"MultiStepLR: milestones must be ints, got {type(milestone).__name__}")
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _recursive_lr(self):
        decays = self.milestones.count(self.last_epoch)
        if decays == 0:
            return self._current_lrs()
        return [lr * self.gamma ** decays for lr in self._current_lrs()]

    def _closed_form_lr(self):
        passed = bisect_right(self.milestones, self.last_epoch)
        return [base_lr * self.gamma ** passed for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Anneal the lr along a half cosine from base_lr to ``eta_min`` over ``T_max`` epochs.

    Closed form (SGDR without restarts; past ``T_max`` the cosine climbs back up)::

        lr(t) = eta_min + (base_lr − eta_min) · (1 + cos(π · t / T_max)) / 2

    Computed recursively, as PyTorch does, so it composes with other schedules::

        lr(t) = eta_min + (lr(t−1) − eta_min) · (1 + cos(π t / T_max)) / (1 + cos(π (t−1) / T_max))

    with the 0/0 case at the bottom of the cosine handled separately.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        _check_positive_int(self, T_max, "T_max")
        _check_factor(self, eta_min, "eta_min")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _recursive_lr(self):
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and self.last_epoch > 0:  # resumed mid-way: start from the closed form
            return self._closed_form_lr()
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:  # just past the minimum
            rise = (1 - math.cos(math.pi / self.T_max)) / 2
            return [lr + (base_lr - self.eta_min) * rise
                    for lr, base_lr in zip(self._current_lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / (
            1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
        return [ratio * (lr - self.eta_min) + self.eta_min for lr in self._current_lrs()]

    def _closed_form_lr(self):
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base_lr - self.eta_min) * cosine for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr by a factor moving linearly from ``start_factor`` to ``end_factor`` (a warm-up).

    Closed form: lr(t) = base_lr · (start + (end − start) · min(t, total_iters) / total_iters).

    >>> warmup = LinearLR(optimizer, start_factor=0.1, total_iters=5)   # 10% → 100% over 5 epochs
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        _check_factor(self, start_factor, "start_factor")
        _check_factor(self, end_factor, "end_factor")
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: invalid start_factor {start_factor} (expected in (0, 1])")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: invalid end_factor {end_factor} (expected in [0, 1])")
        _check_positive_int(self, total_iters, "total_iters")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _recursive_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        # factor(t) / factor(t − 1), written so it stays exact when end_factor == start_factor
        slope = self.end_factor - self.start_factor
        growth = 1.0 + slope / (self.total_iters * self.start_factor + (self.last_epoch - 1) * slope)
        return [lr * growth for lr in self._current_lrs()]

    def _closed_form_lr(self):
        progress = min(self.total_iters, self.last_epoch) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base_lr * factor for base_lr in self.base_lrs]


def _check_schedulers(owner, optimizer, schedulers):
    if len(schedulers) < 1:
        raise ValueError(f"{owner}: expects at least one scheduler, got none")
    for index, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"{owner}: item {index} is a {type(scheduler).__name__}, not an LRScheduler")
        if scheduler.optimizer is not optimizer:
            raise ValueError(f"{owner}: scheduler {index} ({type(scheduler).__name__}) drives a different "
                             f"optimizer")


class _SchedulerOfSchedulers(LRScheduler):
    """Saves and loads the schedulers it drives along with its own counters."""

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        """Check the saved state of every scheduler driven before any of them changes, then load them all."""
        if not isinstance(state_dict, dict) or not isinstance(state_dict.get("_schedulers"), list) or \
                len(state_dict["_schedulers"]) != len(self._schedulers):
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected the state of "
                             f"{len(self._schedulers)} schedulers under '_schedulers'")
        saved_schedulers = state_dict["_schedulers"]
        own = self._checked_state({key: value for key, value in state_dict.items() if key != "_schedulers"})
        inner = [scheduler._checked_state(saved)
                 for scheduler, saved in zip(self._schedulers, saved_schedulers)]
        for scheduler, state in zip(self._schedulers, inner):
            scheduler.__dict__.update(state)
        self.__dict__.update(own)


class SequentialLR(_SchedulerOfSchedulers):
    """Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]`` from its start, and so on.

    >>> warmup = LinearLR(optimizer, start_factor=0.1, total_iters=5)
    >>> decay = CosineAnnealingLR(optimizer, T_max=95)
    >>> scheduler = SequentialLR(optimizer, [warmup, decay], milestones=[5])
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        schedulers = list(schedulers)
        _check_schedulers("SequentialLR", optimizer, schedulers)
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expects one milestone fewer than schedulers, got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        self.optimizer = optimizer
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        # The schedulers each took a first step when they were made: undo that, then start only the first.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            scheduler.last_epoch -= 1
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self):
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)  # this schedule's turn begins: its epoch 0, from base_lrs
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()



class ChainedScheduler(_SchedulerOfSchedulers):
    """Step several schedulers together, each scaling the lr the previous one produced."""

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if len(schedulers) < 1:
            raise ValueError("ChainedScheduler: expects at least one scheduler, got none")
        optimizer = optimizer if optimizer is not None else getattr(schedulers[0], "optimizer", None)
        _check_schedulers("ChainedScheduler", optimizer, schedulers)
        self.optimizer = optimizer
        self._schedulers = schedulers
        self._last_lr = self._current_lrs()

    def step(self):
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = self._current_lrs()
