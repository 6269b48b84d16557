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
import math
import numbers

import numpy as np

from minicnn.backend import get_array_module
from minicnn.device import device_of, move_array
from minicnn.inplace import mark_written
from minicnn.tensor import Tensor, enable_grad

# Scalars (not arrays) that an update rule keeps in a parameter's state.
_SCALAR_STATE_KEYS = ("step",)
# Hyper-parameters that switch a variant of the rule on or off.
_SWITCHES = ("nesterov", "amsgrad", "centered", "maximize", "decoupled_weight_decay")


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

    # Names of the per-parameter state the update rule keeps (None: any); a loaded state with others
    # comes from another optimizer type.
    _state_names = None

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # Tensor (hashed by identity) -> dict
        if isinstance(params, Tensor):
            raise TypeError(
                f"{self._name}: params should be an iterable of Tensors or dicts, but got a single Tensor; "
                f"wrap it in a list"
            )
        if _is_module(params):
            raise TypeError(f"{self._name}: params should be an iterable of Tensors, but got the model "
                            f"({type(params).__name__}) itself; pass model.parameters()")
        if isinstance(params, (set, frozenset)):
            raise TypeError(self._unordered_message())
        if not hasattr(params, "__iter__"):
            raise TypeError(f"{self._name}: params should be an iterable of Tensors or dicts (e.g. "
                            f"model.parameters()), but got {type(params).__name__}")
        used_up = iter(params) is params  # a generator: a second pass over it yields nothing
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(self._empty_message(used_up))
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    @property
    def _name(self):
        return type(self).__name__

    def _empty_message(self, used_up):
        if used_up:
            return (f"{self._name}: got an empty parameter list: the iterator passed was already used up "
                    f"(model.parameters() is a generator, read once, e.g. by an earlier optimizer or "
                    f"list()); call model.parameters() again")
        return (f"{self._name}: got an empty parameter list; pass model.parameters() of a model with "
                f"parameters")

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
        elif _is_module(params):
            raise TypeError(f"{self._name}: a param group's 'params' is the model ({type(params).__name__}) "
                            f"itself; pass model.parameters()")
        elif not hasattr(params, "__iter__"):
            raise TypeError(f"{self._name}: a param group's 'params' must be an iterable of Tensors, got "
                            f"{type(params).__name__}")
        used_up = iter(params) is params
        params = list(params)
        if len(params) == 0:
            raise ValueError(self._empty_message(used_up))
        for index, param in enumerate(params):
            if not isinstance(param, Tensor):
                what = "a module: pass its .parameters()" if _is_module(param) else \
                    "not a Tensor: pass model.parameters() or a list of Parameters"
                raise TypeError(f"{self._name}: can only optimize Tensors, but one of the params is "
                                f"{type(param).__name__} (item {index}, {what})")
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
        self._check_flags(group)
        self._check_group(group)
        group["params"] = params
        self.param_groups.append(group)

    def _check_group(self, group):
        """Raise ValueError/TypeError naming the optimizer when a hyper-parameter is out of range."""

    # Small checks shared by the subclasses' ``_check_group``.
    def _check_number(self, value, description):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{self._name}: {description} must be a real number, got {type(value).__name__} "
                            f"{value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{self._name}: invalid {description} {value} (expected a finite number)")

    def _check_at_least_zero(self, value, description):
        self._check_number(value, description)
        if not value >= 0.0:
            raise ValueError(f"{self._name}: invalid {description} {value} (expected >= 0)")

    def _check_in_unit_interval(self, value, description):
        self._check_number(value, description)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{self._name}: invalid {description} {value} (expected in [0, 1))")

    def _check_flags(self, group):
        """Switches must be True or False: a string such as "no" would count as True."""
        for key in _SWITCHES:
            if key in group and not isinstance(group[key], (bool, np.bool_)):
                raise TypeError(f"{self._name}: {key} must be True or False, got {type(group[key]).__name__} "
                                f"{group[key]!r}")

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
                mark_written(param)  # a graph built before this step may no longer backpropagate
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
        Everything is checked before anything changes: a state from another
        optimizer type (other hyper-parameters or state names), other groups, or
        a malformed entry raises ValueError/TypeError and leaves the optimizer as it was.
        """
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise TypeError(f"{self._name}.load_state_dict: expected a dict with 'state' and 'param_groups' "
                            f"(from state_dict()), got {type(state_dict).__name__}")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, dict) for g in saved_groups):
            raise TypeError(f"{self._name}.load_state_dict: 'param_groups' must be a list of dicts")
        if not isinstance(saved_state, dict):
            raise TypeError(f"{self._name}.load_state_dict: 'state' must be a dict, got "
                            f"{type(saved_state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{self._name}: the loaded state dict has {len(saved_groups)} parameter groups "
                             f"but the optimizer has {len(self.param_groups)}")
        new_groups = [self._restored_group(index, saved, group)
                      for index, (saved, group) in enumerate(zip(saved_groups, self.param_groups))]

        params = self._indexed_params()
        saved_indices = [int(index) for group in saved_groups for index in group["params"]]
        position_of_saved = {saved_index: position for position, saved_index in enumerate(saved_indices)}
        new_state = {}
        for key, saved in saved_state.items():
            index = int(key) if str(key).isdigit() else None
            if index not in position_of_saved:
                raise ValueError(f"{self._name}: the loaded state names parameter {key!r}, which no group "
                                 f"holds")
            if not isinstance(saved, dict):
                raise TypeError(f"{self._name}: the loaded state of parameter {key} must be a dict of "
                                f"arrays, got {type(saved).__name__}")
            param = params[position_of_saved[index]]
            new_state[param] = {name: self._restored(name, value, param, index)
                                for name, value in saved.items()}
        self.param_groups = new_groups
        self.state = new_state

    def _restored_group(self, index, saved, group):
        """One saved param group as this optimizer's group, checked like a new one."""
        if not isinstance(saved.get("params"), (list, tuple)) or not all(
                isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in saved["params"]):
            raise ValueError(f"{self._name}: parameter group {index} of the loaded state needs 'params', a "
                             f"list of parameter indices")
        if len(saved["params"]) != len(group["params"]):
            raise ValueError(f"{self._name}: parameter group {index} has {len(group['params'])} "
                             f"parameters but the loaded one has {len(saved['params'])}")
        missing = [key for key in self.defaults if key not in saved]
        if missing:
            raise ValueError(f"{self._name}: parameter group {index} of the loaded state lacks "
                             f"{', '.join(missing)}, which {self._name} needs (it has "
                             f"{', '.join(key for key in saved if key != 'params')}): the state was saved by "
                             f"another optimizer type")
        new_group = {}
        for key, value in saved.items():
            if key == "params":
                continue
            if isinstance(self.defaults.get(key), tuple) and isinstance(value, (list, tuple, np.ndarray)):
                value = tuple(value)
            elif isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
                value = value.item()
            new_group[key] = value
        self._check_flags(new_group)
        self._check_group(new_group)
        new_group["params"] = group["params"]
        return new_group

    def _restored(self, name, value, param, index):
        where = f"loaded state '{name}' of parameter {index}"
        if self._state_names is not None and name not in self._state_names:
            kept = ", ".join(self._state_names)
            raise ValueError(f"{self._name}: {where} is not state {self._name} keeps ({kept}): the state was "
                             f"saved by another optimizer type")
        array = np.asarray(value) if get_array_module(value) is np else value
        if name in _SCALAR_STATE_KEYS:
            if array.shape != () or array.dtype.kind not in "iu" or int(array) < 0:
                raise ValueError(f"{self._name}: {where} must be an int >= 0, got {value!r}")
            return int(array)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{self._name}: {where} has dtype {array.dtype}, expected numbers")
        if array.shape != param.shape:
            raise ValueError(f"{self._name}: {where} has shape {array.shape} but its parameter "
                             f"has shape {param.shape}")
        xp = get_array_module(param.data)
        return xp.array(array, dtype=param.dtype, copy=True)


def _is_module(value):
    """A model (or layer) where Tensors were expected: it has .parameters() but is no Tensor."""
    return callable(getattr(value, "parameters", None)) and not isinstance(value, Tensor)
