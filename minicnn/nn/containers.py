"""Containers: modules that hold other modules.

``Sequential`` runs its children one after another; ``ModuleList`` and
``ModuleDict`` only hold them (so their parameters are registered) and leave
the wiring to the parent's ``forward``.  Children of ``Sequential`` and
``ModuleList`` are named "0", "1", ... which gives state_dict keys such as
``features.0.weight``, exactly as in PyTorch.
"""
import operator
from collections import OrderedDict

from minicnn.nn.module import Module


def _index(container, idx):
    """A valid non-negative position from an int (negative counts from the end)."""
    try:
        idx = operator.index(idx)
    except TypeError:
        raise TypeError(
            f"{type(container).__name__}: indices must be integers or slices, not {type(idx).__name__}"
        ) from None
    size = len(container)
    if not -size <= idx < size:
        raise IndexError(f"{type(container).__name__}: index {idx} is out of range for {size} modules")
    return idx % size


class _NumberedModules(Module):
    """Shared by Sequential and ModuleList: children named by position, renumbered after removal."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        return list(self._modules.values())[_index(self, idx)]

    def __setitem__(self, idx, module):
        self.add_module(str(_index(self, idx)), module)

    def __delitem__(self, idx):
        modules = list(self._modules.values())
        if isinstance(idx, slice):
            del modules[idx]
        else:
            del modules[_index(self, idx)]
        # Renumber so the names stay "0".."n-1" (PyTorch does the same).
        self._modules.clear()
        for position, module in enumerate(modules):
            self.add_module(str(position), module)

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index, module):
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        for position, child in enumerate(modules):
            self.add_module(str(position), child)


class Sequential(_NumberedModules):
    """Chain modules: ``Sequential(a, b, c)(x)`` is ``c(b(a(x)))``.

    Also accepts one OrderedDict to give the children names of your own.

    >>> features = Sequential(Conv2d(3, 8, 3, padding=1), BatchNorm2d(8), ReLU())
    >>> list(features.state_dict())[:2]
    ['0.weight', '0.bias']
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for position, module in enumerate(modules):
                self.add_module(str(position), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            # A slice keeps the children's names, so its state_dict keys still line up.
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return super().__getitem__(idx)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(_NumberedModules):
    """A list of modules whose parameters belong to the parent (no forward of its own).

    >>> self.blocks = ModuleList([Block(64) for _ in range(3)])
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return super().__getitem__(idx)

    def forward(self, *inputs):
        raise NotImplementedError("ModuleList has no forward: iterate over it in the parent's forward")


class ModuleDict(Module):
    """A dict of modules, in insertion order, whose parameters belong to the parent."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        self.add_module(name, module)

    def __delitem__(self, name):
        del self._modules[name]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, name):
        return name in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for name, module in items:
            self.add_module(name, module)

    def forward(self, *inputs):
        raise NotImplementedError("ModuleDict has no forward: look modules up in the parent's forward")
