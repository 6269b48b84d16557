"""Tensor and reverse-mode automatic differentiation.

A ``Tensor`` wraps an array (NumPy, or CuPy on the GPU) and remembers the
``Function`` that made it.  ``backward()`` walks that graph from the output to
the leaves in reverse topological order, asking each function for the
gradients of its inputs, and adds up every path's contribution.

In-place updates (``p -= lr * p.grad``, ``x[0] = 1``) write into the tensor's
own array, as PyTorch does; ``minicnn/inplace.py`` holds them, and
``minicnn/version_counter.py`` the counters with which backward refuses to read
a value overwritten since an op saved it.

This file knows only the array module: the differentiable operations
(``+``, ``@``, ``sum``, ``reshape`` ...) live in ``minicnn.functions`` and are
attached to ``Tensor`` there.
"""
import contextlib
import weakref

import numpy as np

from minicnn import device as _device
from minicnn.device import get_array_module
from minicnn.version_counter import Version, check_saved_versions, input_viewed_by, saved_versions

DEFAULT_DTYPE = np.float32
_FLOAT_DTYPES = (np.float16, np.float32, np.float64)
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned int, float

_grad_enabled = True
# What the backward() in progress runs once it has finished (queue_callback); None outside backward().
_after_backward = None


def queue_callback(callback):
    """Call ``callback()`` when the ``backward()`` now running has finished (PyTorch's engine.queue_callback).

    A Function's backward queues it; by the time it runs every leaf's gradient is complete.
    DataParallel reduces gradients across ranks this way.
    """
    if _after_backward is None:
        raise RuntimeError("queue_callback: no backward() is running; call it from a Function's backward")
    _after_backward.append(callback)


def is_grad_enabled():
    return _grad_enabled


@contextlib.contextmanager
def _grad_mode(enabled):
    global _grad_enabled
    previous = _grad_enabled
    _grad_enabled = enabled
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad():
    """Context manager: operations inside it record no graph (evaluation, optimizer steps).

    >>> with minicnn.no_grad():
    ...     y = model(x)          # y.requires_grad is False, nothing kept for backward
    """
    return _grad_mode(False)


def enable_grad():
    """Context manager that turns graph recording back on inside ``no_grad()``."""
    return _grad_mode(True)


def _is_array(data):
    return isinstance(data, np.ndarray) or _device.is_gpu_array(data)


def as_array(data, dtype=None, op="Tensor"):
    """Turn ``data`` into an array without copying when it already is one.

    Python floats and lists of floats become float32 (PyTorch's default), not
    NumPy's float64; arrays and NumPy scalars keep their dtype.  Only numbers
    are tensors: strings, ``None``, objects and ragged lists raise a TypeError
    or ValueError naming ``op``, where NumPy would make an object or string array.
    """
    if isinstance(data, Tensor):
        data = data.data
    if _is_array(data):
        array = data
    elif isinstance(data, np.generic):
        array = np.asarray(data)
    else:
        if isinstance(data, (str, bytes)) or data is None:
            raise TypeError(f"{op}: expected numbers (a number, a nested list of numbers or an array), "
                            f"got {type(data).__name__} {data!r}")
        try:
            array = np.asarray(data)
        except ValueError as error:  # NumPy refuses ragged nesting: [[1, 2], [3]]
            raise ValueError(f"{op}: nested lists must be rectangular (every row the same length), "
                             f"got a ragged list ({error})") from None
        if array.dtype == np.float64 and dtype is None:
            array = array.astype(DEFAULT_DTYPE)
    if array.dtype.kind not in _NUMERIC_KINDS:
        what = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers"}
        hint = "; a string where a number belongs? convert it first, e.g. float(text)" if array.dtype.kind in "US" else ""
        raise TypeError(f"{op}: expected numbers (bool, int or float), got an array of "
                        f"{what.get(array.dtype.kind, 'dtype ' + str(array.dtype))} (dtype {array.dtype}){hint}")
    if dtype is not None and array.dtype != np.dtype(dtype):
        array = array.astype(dtype)
    return array


class Tensor:
    """An array with an optional gradient and a link to the function that made it.

    >>> x = minicnn.Tensor([[1.0, 2.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    Tensor([[2. 4.]])
    """

    # Makes ``ndarray + Tensor`` call Tensor.__radd__ instead of NumPy's broadcasting.
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None):
        self._data = as_array(data, dtype)
        if requires_grad and self._data.dtype.type not in _FLOAT_DTYPES:
            raise TypeError(
                f"Tensor: only floating-point tensors can require gradients, got dtype {self._data.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.creator = None
        self._retains_grad = False
        self._version_counter = Version()
        self._view_of = None     # the tensor whose array this one views (reshape, transpose, x[i])
        self._consumers = []     # weak references to the functions that took this non-leaf as an input

    @property
    def _version(self):
        """How many in-place writes this tensor's array has had (PyTorch's ``tensor._version``)."""
        return self._version_counter.value

    @property
    def data(self):
        """The array itself (NumPy or CuPy).  Assigning a Tensor or an array replaces it, as in PyTorch.

        ``p.data = new`` is outside autograd: no graph, no version bump.  Operations
        on ``p.data`` are plain array operations (``p.data -= lr * p.grad.data``).
        """
        return self._data

    @data.setter
    def data(self, value):
        array = as_array(value, op="Tensor.data")
        if self.requires_grad and array.dtype.type not in _FLOAT_DTYPES:
            raise TypeError(f"Tensor.data: this tensor requires grad, so its data must be floating-point, "
                            f"got dtype {array.dtype}")
        self._data = array
        # A new array: what functions saved of the old one is untouched, so it starts its own count.
        self._version_counter, self._view_of = Version(), None

    # --- what it is ---------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    @property
    def is_leaf(self):
        return self.creator is None

    @property
    def device(self):
        return _device.device_of(self.data)

    def numel(self):
        return int(self.data.size)

    def __len__(self):
        return len(self.data)

    def __bool__(self):
        # Without this, Python would fall back on __len__: Tensor([0.0]) would be True.
        if self.data.size != 1:
            raise ValueError(f"bool: the truth value of a tensor with shape {self.shape} is ambiguous")
        return bool(self.data.reshape(()).item())

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python number, got shape {self.shape}")
        return self.data.reshape(()).item()

    def numpy(self):
        """The data as a NumPy array (copied to the host if it lives on the GPU)."""
        if get_array_module(self.data) is np:
            return self.data
        return self.data.get()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """A tensor sharing this data (and its version counter) but cut from the graph."""
        detached = Tensor(self._data)
        detached._version_counter = self._version_counter
        return detached

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype.type not in _FLOAT_DTYPES:
            raise TypeError(f"requires_grad_: dtype {self.data.dtype} cannot require gradients")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor too (leaves always keep theirs)."""
        self._retains_grad = True

    def zero_grad(self):
        self.grad = None

    def to(self, device):
        """This tensor on ``device`` ("cpu", "cuda", "cuda:0"): itself when already there.

        Otherwise a copy that stays in the graph, as in PyTorch: gradients flow
        back through it to the original device.

        >>> x_gpu = x.to("cuda")        # RuntimeError naming the reason without a GPU
        """
        target = _device.normalize_device("Tensor.to", device)
        if target == self.device:
            return self
        if target == "cuda":
            _device.require("Tensor.to")
        return ToDevice(target)(self)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def astype(self, dtype):
        """A copy in another dtype, cut from the graph (use it for inputs, not mid-graph)."""
        return Tensor(self.data.astype(dtype), requires_grad=self.requires_grad)

    def __repr__(self):
        body = np.array2string(self.numpy(), prefix="Tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.dtype != DEFAULT_DTYPE:
            extra = f", dtype={self.dtype}" + extra
        return f"Tensor({body}{extra})"

    # --- autograd ------------------------------------------------------------
    def backward(self, grad=None):
        """Add d(self)/d(leaf) · grad into ``.grad`` of every leaf that requires it.

        ``grad`` defaults to 1 for a one-element tensor.  Gradients accumulate
        across calls until ``zero_grad()``.  The graph is not freed, so calling
        ``backward()`` twice on the same output is well defined: it adds the
        same gradients a second time (PyTorch's ``retain_graph=True``).
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no graph to walk")
        xp = get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: grad may only be omitted for a one-element tensor, got shape {self.shape}"
                )
            grad = xp.ones_like(self.data)
        else:
            grad = as_array(grad, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {grad.shape} but the tensor has shape {self.shape}")
            if grad.ndim and _device.device_of(grad) != self.device:
                raise ValueError(f"backward: grad is on {_device.device_of(grad)} but the tensor is on "
                                 f"{self.device}; move it with minicnn.tensor(grad, device={self.device!r})")

        global _after_backward
        outer, _after_backward = _after_backward, []
        try:
            self._propagate(grad)
            callbacks = _after_backward
        finally:
            _after_backward = outer
        for callback in callbacks:
            callback()

    def _propagate(self, grad):
        """The walk itself: each tensor's gradient, handed on to its creator's inputs."""
        pending = {id(self): grad}
        for tensor in self._reverse_topological_order():
            grad_output = pending.pop(id(tensor), None)
            if grad_output is None:
                continue
            if tensor.creator is None or tensor._retains_grad:
                tensor._accumulate_grad(grad_output)
            if tensor.creator is None:
                continue
            function = tensor.creator
            check_saved_versions(function)
            input_grads = function.backward(grad_output)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for input_tensor, needs_grad, input_grad in zip(function.inputs, function.needs_input_grad,
                                                            input_grads):
                if input_grad is None or not needs_grad:
                    continue
                key = id(input_tensor)
                # A new array, never ``+=``: the incoming gradient may be shared.
                pending[key] = input_grad if key not in pending else pending[key] + input_grad

    def _reverse_topological_order(self):
        """Tensors that need a gradient, each after every tensor that uses it."""
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            tensor, inputs_done = stack.pop()
            if inputs_done:
                order.append(tensor)
                continue
            if id(tensor) in visited:
                continue
            visited.add(id(tensor))
            stack.append((tensor, True))
            if tensor.creator is not None:
                # needs_input_grad, not requires_grad: an input that was a constant when the op ran
                # stays one, even if an in-place update has put it into a graph since.
                for input_tensor, needs_grad in zip(tensor.creator.inputs, tensor.creator.needs_input_grad):
                    if needs_grad and id(input_tensor) not in visited:
                        stack.append((input_tensor, False))
        order.reverse()
        return order

    def _accumulate_grad(self, grad):
        if grad.dtype != self.dtype:
            grad = grad.astype(self.dtype)
        if grad.shape != self.shape:
            raise RuntimeError(
                f"backward: internal error, gradient of shape {grad.shape} for a tensor of shape {self.shape}"
            )
        if self.grad is None:
            self.grad = Tensor(grad.copy())
        else:
            self.grad = Tensor(self.grad.data + grad)


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` on gradients.

    Subclasses keep what backward needs as attributes during ``forward`` and
    return one gradient per input from ``backward`` (``None`` where an input
    needs none).  ``self.needs_input_grad`` says which inputs want one, so a
    backward can skip work (the first conv layer never needs d(image)).
    """

    def __call__(self, *inputs):
        tensors = tuple(x if isinstance(x, Tensor) else Tensor(x) for x in inputs)
        check_one_device(type(self).__name__, tensors)
        self.needs_input_grad = tuple(_grad_enabled and t.requires_grad for t in tensors)
        output = self.forward(*(t.data for t in tensors))
        record = any(self.needs_input_grad) and output.dtype.type in _FLOAT_DTYPES
        result = Tensor(output, requires_grad=record)
        viewed = input_viewed_by(output, tensors)
        if viewed is not None:  # reshape, transpose, x[i]: one array, so one version count
            result._version_counter, result._view_of = viewed._version_counter, viewed
        if record:
            self.saved_versions = saved_versions(self, tensors, result)
            self.inputs = tensors
            result.creator = self
            for t, needs_grad in zip(tensors, self.needs_input_grad):
                if needs_grad and t.creator is not None:  # an in-place update of t must find this function
                    t._consumers.append(weakref.ref(self))
        return result

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError


def check_one_device(op, tensors):
    """Every input of one op must live on one device; name both when they do not.

    One type test per input: NumPy arrays are the CPU, anything else the GPU.
    0-d CPU arrays are let through, so ``x_gpu * 2.0`` (whose 2.0 arrives as a
    0-d NumPy array) keeps working: CuPy treats them as scalars.
    """
    first_device = None
    for t in tensors:
        on_gpu = _device.is_gpu_array(t.data)
        if not on_gpu and t.data.ndim == 0:
            continue
        if first_device is None:
            first_device = on_gpu
        elif on_gpu != first_device:
            devices = ", ".join(f"{x.device} {tuple(x.shape)}" for x in tensors)
            raise ValueError(
                f"{op}: expected all tensors on one device, but got tensors on "
                f"cpu and cuda ({devices}); move them with .to(device)"
            )


class ToDevice(Function):
    """Copy to another device; the gradient is copied back to where the input lived."""

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.source_device = _device.device_of(x)
        return _device.move_array(x, self.device, "Tensor.to")

    def backward(self, gy):
        return _device.move_array(gy, self.source_device, "Tensor.to")


def tensor(data, dtype=None, requires_grad=False, device=None):
    """A new tensor holding a copy of ``data`` (PyTorch's ``torch.tensor``), on ``device``.

    ``device=None`` keeps a GPU array (or GPU tensor) on the GPU, as PyTorch
    does, and puts anything else on ``minicnn.get_default_device()``.
    """
    array = as_array(data, dtype)
    xp = get_array_module(array)
    array = xp.array(array, copy=True)
    if device is None and _device.is_gpu_array(array):
        device = "cuda"
    array = _device.move_array(array, _device.normalize_device("tensor", device), "tensor")
    return Tensor(array, requires_grad=requires_grad)
