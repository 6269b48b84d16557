"""``Module``: the base class of every layer and model.

A module owns three ordered collections, filled simply by assigning attributes
in ``__init__`` (``self.conv = Conv2d(...)``):

* ``_parameters``: the ``Parameter`` tensors it learns (``weight``, ``bias``);
* ``_buffers``: state that is saved but not learned (``running_mean``);
* ``_modules``: its child modules.

Registration order is the order of assignment, and it fixes everything a user
sees: ``parameters()``, ``print(model)`` and the keys of ``state_dict()``
(``features.0.weight``, ``bn.running_var``), which match PyTorch's names and
order, so a PyTorch checkpoint's keys map one to one.
"""
from collections import OrderedDict

import numpy as np

from minicnn import cuda
from minicnn.device import move_array, normalize_device
from minicnn.nn.parameter import Parameter
from minicnn.nn.state_dict import load_into
from minicnn.tensor import Tensor


def _check_name(kind, name, module):
    if not isinstance(name, str):
        raise TypeError(f"{type(module).__name__}: {kind} name must be a str, got {type(name).__name__}")
    if name == "" or "." in name:
        raise ValueError(f"{type(module).__name__}: {kind} name must be non-empty and contain no '.', got {name!r}")


def _indent_after_first_line(text, spaces):
    lines = text.split("\n")
    return "\n".join(lines[:1] + [" " * spaces + line for line in lines[1:]])


class RemovableHandle:
    """What ``register_forward_hook`` returns: ``remove()`` unregisters the hook (twice is harmless).

    Also a context manager, so a hook can live for one ``with`` block.
    """

    _next_id = 0

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()


class Module:
    """Base class for layers and models: subclass it, assign children and parameters, write ``forward``.

    >>> class TwoLayer(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = Linear(4, 8)
    ...         self.fc2 = Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.fc2(F.relu(self.fc1(x)))
    >>> list(TwoLayer().state_dict())
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    def forward(self, *inputs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *inputs, **kwargs):
        output = self.forward(*inputs, **kwargs)
        # .get: a module whose __init__ never reached Module.__init__ simply has no hooks.
        for hook in list(self.__dict__.get("_forward_hooks", {}).values()):
            replacement = hook(self, inputs, output)
            if replacement is not None:
                output = replacement
        return output

    # --- hooks ------------------------------------------------------------------
    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after every forward of this module, as PyTorch does.

        ``inputs`` is the tuple of positional arguments; a hook that returns
        something other than None replaces the output.  Returns a handle whose
        ``remove()`` takes the hook off again (``minicnn.summary`` uses this to
        watch every layer without changing the model).

        >>> handle = conv.register_forward_hook(lambda m, inputs, out: print(out.shape))
        >>> handle.remove()
        """
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.register_forward_hook: hook must be callable, "
                            f"got {type(hook).__name__}")
        if "_forward_hooks" not in self.__dict__:
            object.__setattr__(self, "_forward_hooks", OrderedDict())
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # --- registration ---------------------------------------------------------
    def _require_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: cannot assign {what} before Module.__init__() call")

    def register_parameter(self, name, param):
        """Add ``param`` (a Parameter, or None for an absent one like ``bias=False``) under ``name``."""
        self._require_init("parameter")
        _check_name("parameter", name, self)
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"{type(self).__name__}: cannot assign '{type(param).__name__}' as parameter {name!r} "
                "(Parameter or None expected)"
            )
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add saved, not learned state (a Tensor or None) under ``name``.

        ``persistent=False`` keeps it out of ``state_dict()``.
        """
        self._require_init("buffer")
        _check_name("buffer", name, self)
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"{type(self).__name__}: cannot assign '{type(tensor).__name__}' as buffer {name!r} "
                "(Tensor or None expected)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Add a child module (or None) under ``name``; ``self.name = module`` does the same."""
        self._require_init("child module")
        _check_name("module", name, self)
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: {type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    def register_module(self, name, module):
        self.add_module(name, module)

    def __setattr__(self, name, value):
        def forget(*dicts):
            for d in dicts:
                d.pop(name, None)

        parameters = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._require_init("parameters")
            forget(self.__dict__, self._buffers, self._modules)
            self._non_persistent_buffers.discard(name)
            self.register_parameter(name, value)
        elif parameters is not None and name in parameters:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign '{type(value).__name__}' as parameter {name!r} "
                    "(Parameter or None expected)"
                )
            parameters[name] = None
        elif isinstance(value, Module):
            self._require_init("child module")
            forget(self.__dict__, self._parameters, self._buffers)
            self._non_persistent_buffers.discard(name)
            self._modules[name] = value
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign '{type(value).__name__}' as child module {name!r} "
                    "(Module or None expected)"
                )
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: cannot assign '{type(value).__name__}' as buffer {name!r} "
                    "(Tensor or None expected)"
                )
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when ordinary lookup fails: look in the three registries.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # --- walking the tree -------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """Yield (dotted name, module) for this module and every descendant, parents first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            child_prefix = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, child_prefix, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """Yield (name, module) for the direct children, each shared child once."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, member in getattr(module, registry).items():
                if member is None or (remove_duplicate and id(member) in seen):
                    continue
                seen.add(id(member))
                yield module_prefix + ("." if module_prefix else "") + name, member

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """Yield (dotted name, Parameter); a parameter shared by two layers comes once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def num_parameters(self, trainable_only=False):
        """How many numbers the model learns (each shared parameter counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant, children first, then on self; returns self.

        >>> model.apply(lambda m: init.zeros_(m.bias) if isinstance(m, Linear) else None)
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # --- modes and gradients --------------------------------------------------------
    def train(self, mode=True):
        """Put this module and all descendants in training mode (or eval mode); returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"{type(self).__name__}.train: mode must be a bool, got {mode!r}")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        """Evaluation mode: batch norm uses running statistics, dropout passes input through."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter; returns self."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Drop every parameter's gradient (``grad = None``), ready for the next backward."""
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad = Tensor(param.grad.data * 0)

    # --- dtype and device ------------------------------------------------------------
    def to(self, device=None, dtype=None):
        """Move every parameter and buffer (and their gradients) to ``device`` ("cpu", "cuda",
        "cuda:0") and/or cast the floating-point ones to ``dtype``, in place; returns self.

        The Parameter objects stay the same (only their ``.data`` changes), so an
        optimizer built before still holds them; its state arrays (momentum,
        Adam's moments) follow the parameters at its next ``step()``.  Without a
        usable GPU, ``to("cuda")`` raises RuntimeError saying why.

        >>> model.to("cuda")          # or model.cuda()
        >>> model.to(np.float64)      # for a float64 gradcheck; also model.double()
        """
        if dtype is None and device is not None and not isinstance(device, str):
            device, dtype = None, device  # model.to(np.float64)
        op = f"{type(self).__name__}.to"
        if device is not None:
            device = normalize_device(op, device)
            if device == "cuda":
                cuda.require(op)
        if dtype is not None and np.dtype(dtype).kind != "f":
            raise TypeError(f"{type(self).__name__}.to: dtype must be floating-point, got {np.dtype(dtype)}")

        def convert(array):
            if device is not None:
                array = move_array(array, device, op)
            if dtype is not None and array.dtype.kind == "f":  # num_batches_tracked stays int64
                array = array.astype(dtype)
            return array

        for tensor in list(self.parameters()) + list(self.buffers()):
            tensor.data = convert(tensor.data)
            if tensor.grad is not None:
                tensor.grad.data = convert(tensor.grad.data)
        return self

    def double(self):
        return self.to(dtype=np.float64)

    def float(self):
        return self.to(dtype=np.float32)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # --- saving and loading ---------------------------------------------------------
    def _named_state(self, prefix=""):
        """(key, Tensor) for every saved entry, in PyTorch's state_dict order."""
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, param
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                yield prefix + name, buffer
        for name, module in self._modules.items():
            if module is not None:
                yield from module._named_state(prefix + name + ".")

    def state_dict(self):
        """An OrderedDict mapping each parameter and persistent buffer name to a NumPy copy.

        Keys are PyTorch's: each module's parameters, then its buffers, then its
        children's entries prefixed with the child's name (``features.0.weight``).
        """
        return OrderedDict((key, tensor.numpy().copy()) for key, tensor in self._named_state())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` (arrays, Tensors or torch tensors) into this module.

        Every problem is collected first (missing keys, unexpected keys, shape
        mismatches) and reported in one ``StateDictError``; when that is raised
        the module is left exactly as it was.  ``strict=False`` tolerates missing
        and unexpected keys (never a shape mismatch).  Each array keeps the
        module's dtype.  Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        return load_into(type(self).__name__, OrderedDict(self._named_state()), state_dict, strict)

    # --- printing -----------------------------------------------------------------------
    def extra_repr(self):
        """The text inside this module's parentheses in ``print(model)``; layers override it."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({name}): " + _indent_after_first_line(repr(module), 2) for name, module in self._modules.items()
        ]
        text = type(self).__name__ + "("
        if len(extra_lines) == 1 and not child_lines:
            text += extra_lines[0]
        elif extra_lines or child_lines:
            text += "\n  " + "\n  ".join(extra_lines + child_lines) + "\n"
        return text + ")"
