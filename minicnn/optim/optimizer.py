"""The ``Optimizer`` base class: parameter groups, per-parameter state, saving and loading.

An optimizer holds ``param_groups``, a list of dicts.  Each dict has a
``"params"`` list of Tensors plus that group's hyper-parameters (``lr``,
``momentum`` ...), filled in from the optimizer's ``defaults`` where the group
does not set them.  ``state[param]`` is a dict of whatever the update rule
remembers between steps (a momentum buffer, Adam's moments, a step count).

``step()`` is written once here: it walks every parameter that has a gradient
and hands it to the subclass's ``_update(param, grad, state, group)``, which
changes ``param`` in place.  Updates work on the raw arrays (``param.data``)
with ``xp = get_array_module(...)``, so they record no graph and run unchanged
on the GPU.

State-dict layout (everything is a NumPy array or a JSON-serialisable scalar,
so a checkpoint can store it in ``.npz`` + JSON without pickle)::

    {
        "state": {                       # only parameters that have been stepped
            0: {"step": 3,               # Python int
                "exp_avg": ndarray,      # same shape and dtype as parameter 0
                ...},
            ...
        },
        "param_groups": [                # one dict per group, in order
            {"lr": 0.001, "betas": [0.9, 0.999], ..., "params": [0, 1, 2]},
            ...
        ],
    }

Parameters are numbered 0, 1, 2, ... across all groups in order, as PyTorch
does, so the state is independent of the Tensor objects.  Tuples become lists;
``load_state_dict`` accepts string keys ("0") and 0-d arrays for ``step`` too,
which is what a round trip through JSON / ``.npz`` gives back.
"""
import numbers

import numpy as np

from minicnn.backend import get_array_module
from minicnn.device import device_of, move_array
from minicnn.tensor import Tensor, enable_grad

# Scalars (not arrays) that an update rule keeps in a parameter's state.
_SCALAR_STATE_KEYS = ("step",)


def _to_numpy(array):
    """A host copy of ``array`` (NumPy or CuPy), so a saved state never aliases a live buffer."""
    if get_array_module(array) is np:
        return array.copy()
    return array.get()


def _follow_device(state, param_array):
    """Move a parameter's state arrays to its device, after ``model.to(device)`` moved the parameter.

    The optimizer keeps no device of its own: state lives wherever its
    parameter lives, checked at each step by one type comparison per entry.
    """
    for name, value in state.items():
        if hasattr(value, "shape") and type(value) is not type(param_array):
            state[name] = move_array(value, device_of(param_array), "Optimizer.step")


def _to_json_scalar(value):
    if isinstance(value, tuple):
        return [_to_json_scalar(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Optimizer:
    """Base class: subclasses give ``defaults``, ``_check_group`` and ``_update``.

    ``params`` is an iterable of Tensors, or of dicts ``{"params": [...], "lr": ...}``
    for per-group hyper-parameters (PyTorch's param groups).
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # Tensor (hashed by identity) -> dict
        if isinstance(params, Tensor):
            raise TypeError(
                f"{self._name}: params should be an iterable of Tensors or dicts, but got a single Tensor; "
                f"wrap it in a list"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(self._unordered_message())
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    @property
    def _name(self):
        return type(self).__name__

    def _unordered_message(self):
        return (f"{self._name}: parameters must be in an ordered collection (a list), not a set: "
                f"a set's order changes between runs and the saved state would not match")

    def __repr__(self):
        lines = [f"{self._name} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    # --- groups ----------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a group of parameters with its own hyper-parameters (the rest come from ``defaults``).

        >>> optimizer.add_param_group({"params": head.parameters(), "lr": 1e-2})
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: a param group must be a dict, but got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}: a param group needs a 'params' entry")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(self._unordered_message())
        params = list(params)
        if len(params) == 0:
            raise ValueError(f"{self._name}: got an empty parameter list")
        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError(f"{self._name}: can only optimize Tensors, but one of the params is "
                                f"{type(param).__name__}")
            if not param.is_leaf:
                raise ValueError(f"{self._name}: can't optimize a non-leaf Tensor (one made by an "
                                 f"operation); optimize the leaf it was computed from")
        seen = set()
        for param in params:
            if id(param) in seen:
                raise ValueError(f"{self._name}: the same parameter appears twice in a param group")
            seen.add(id(param))
        for group in self.param_groups:
            if any(id(param) in seen for param in group["params"]):
                raise ValueError(f"{self._name}: some parameters appear in more than one parameter group")

        group = {key: value for key, value in param_group.items() if key != "params"}
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._check_group(group)
        group["params"] = params
        self.param_groups.append(group)

    def _check_group(self, group):
        """Raise ValueError/TypeError naming the optimizer when a hyper-parameter is out of range."""

    # Small checks shared by the subclasses' ``_check_group``.
    def _check_number(self, value, description):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{self._name}: {description} must be a real number, got {type(value).__name__}")

    def _check_at_least_zero(self, value, description):
        self._check_number(value, description)
        if not value >= 0.0:
            raise ValueError(f"{self._name}: invalid {description} {value} (expected >= 0)")

    def _check_in_unit_interval(self, value, description):
        self._check_number(value, description)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{self._name}: invalid {description} {value} (expected in [0, 1))")

    # --- the update loop ----------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (``None``), or fill it with zeros if ``set_to_none=False``."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.data[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; parameters with ``grad is None`` are skipped.

        ``closure``, if given, recomputes the loss (with gradients enabled) and
        its value is returned, as in PyTorch.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = self._gradient_of(param)
                if group.get("maximize", False):
                    grad = -grad  # a new array: never touch the caller's .grad
                state = self.state.setdefault(param, {})
                if state:
                    _follow_device(state, param.data)
                self._update(param.data, grad, state, group)
        return loss

    def _gradient_of(self, param):
        grad = param.grad.data if isinstance(param.grad, Tensor) else param.grad
        if grad.shape != param.shape:
            raise ValueError(f"{self._name}: a parameter of shape {param.shape} has a gradient of shape "
                             f"{grad.shape}")
        if grad.dtype != param.dtype:
            grad = grad.astype(param.dtype)
        return grad

    def _update(self, param, grad, state, group):
        """Change the array ``param`` in place, given its ``grad`` array (already negated if maximize)."""
        raise NotImplementedError

    # --- saving and loading ------------------------------------------------------------
    def _indexed_params(self):
        return [param for group in self.param_groups for param in group["params"]]

    def state_dict(self):
        """The optimizer's state as NumPy arrays and JSON scalars (layout in the module docstring).

        Arrays are copies: stepping on afterwards does not change a saved state.
        """
        state = {}
        for index, param in enumerate(self._indexed_params()):
            param_state = self.state.get(param)
            if not param_state:
                continue
            state[index] = {
                key: int(value) if key in _SCALAR_STATE_KEYS else _to_numpy(value)
                for key, value in param_state.items()
            }
        param_groups = []
        first_index = 0
        for group in self.param_groups:
            saved = {key: _to_json_scalar(value) for key, value in group.items() if key != "params"}
            saved["params"] = list(range(first_index, first_index + len(group["params"])))
            first_index += len(group["params"])
            param_groups.append(saved)
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and per-parameter state saved by ``state_dict()``.

        The parameters themselves are not touched (they are the model's to load);
        state arrays are copied into each parameter's array module and dtype.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{self._name}: the loaded state dict has {len(saved_groups)} parameter groups "
                             f"but the optimizer has {len(self.param_groups)}")
        for index, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{self._name}: parameter group {index} has {len(group['params'])} "
                                 f"parameters but the loaded one has {len(saved['params'])}")

        params = self._indexed_params()
        saved_indices = [int(index) for group in saved_groups for index in group["params"]]
        position_of_saved = {saved_index: position for position, saved_index in enumerate(saved_indices)}
        new_state = {}
        for key, saved_state in state_dict["state"].items():
            if int(key) not in position_of_saved:
                raise ValueError(f"{self._name}: the loaded state names parameter {key}, which no group "
                                 f"holds")
            param = params[position_of_saved[int(key)]]
            new_state[param] = {name: self._restored(name, value, param)
                                for name, value in saved_state.items()}

        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            new_group = {}
            for key, value in saved.items():
                if key == "params":
                    continue
                if isinstance(self.defaults.get(key), tuple) and isinstance(value, (list, tuple, np.ndarray)):
                    value = tuple(float(v) for v in value)
                elif isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
                    value = value.item()
                new_group[key] = value
            self._check_group(new_group)
            new_group["params"] = group["params"]
            new_groups.append(new_group)
        self.param_groups = new_groups
        self.state = new_state

    def _restored(self, name, value, param):
        if name in _SCALAR_STATE_KEYS:
            return int(np.asarray(value).item())
        array = np.asarray(value) if get_array_module(value) is np else value
        if array.shape != param.shape:
            raise ValueError(f"{self._name}: loaded state '{name}' has shape {array.shape} but its parameter "
                             f"has shape {param.shape}")
        xp = get_array_module(param.data)
        return xp.array(array, dtype=param.dtype, copy=True)
