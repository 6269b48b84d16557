"""In-place updates (``x += y``, ``x[i] = v``, ``p.zero_()``) and the version counters that keep them safe.

An in-place update writes into the tensor's own array, as PyTorch does, so a
manual SGD step ``with no_grad(): p -= lr * p.grad`` really changes the model.
Two things could then go silently wrong, and both are refused instead:

* a leaf that requires grad (a parameter) changed while autograd records:
  backward would need the value it had;
* an array an op saved for its backward (``Exp`` keeps its output, ``Mul``
  its inputs) overwritten before backward runs.  Each array has a version
  counter (``minicnn/version_counter.py``), shared by every tensor that views
  it, which every in-place write bumps; backward checks the versions a
  function noted for what it saved (PyTorch's rule, with the same counter).

Inside a graph an update is recorded like any op: the old value lives on as a
new node, and the tensor becomes the update's output.  This file sits just
above ``minicnn/tensor.py``: it knows tensors and arrays, not the ops (they
arrive as a ``Function`` instance, e.g. ``Add()``).
"""
import numpy as np

from minicnn.tensor import Tensor, is_grad_enabled


def mark_written(tensor):
    """Count a write made straight into ``tensor.data`` (an optimizer step), as an in-place op would.

    A graph built before the write then refuses to backpropagate through the
    old value, instead of silently using the new one.
    """
    tensor._version_counter.value += 1


def update_in_place(tensor, op, function, *operands, casting="same_kind"):
    """Write ``function(tensor, *operands)`` into ``tensor``'s own array and return ``tensor``.

    Outside a graph (inside ``no_grad()``, or when nothing involved requires
    grad) it is a plain write.  Inside one, the old value lives on as a new
    node, ``previous``, which the old graph and every function that already
    used ``tensor`` now point to; ``tensor`` becomes ``function``'s output, so
    backward runs through the update and on into the old graph.  Checks come
    first: a refused update changes nothing.

    >>> update_in_place(x, "in-place +=", Add(), y)     # what x += y does
    """
    recording = is_grad_enabled() and (tensor.requires_grad or any(o.requires_grad for o in operands))
    _check_allowed(tensor, op, recording)
    previous = tensor
    if recording:
        # A copy: ``function`` may save its input for backward, and the write below would spoil it.
        previous = Tensor(tensor.data.copy(), requires_grad=tensor.requires_grad)
        previous.creator = tensor.creator
    result = function(previous, *operands)
    if result.shape != tensor.shape:
        raise ValueError(f"{op}: the result has shape {result.shape} but the tensor updated in place has "
                         f"shape {tensor.shape}; broadcasting cannot grow a tensor in place")
    if not np.can_cast(result.dtype, tensor.dtype, casting=casting):
        raise TypeError(f"{op}: the result has dtype {result.dtype}, which cannot be stored in place in a "
                        f"tensor of dtype {tensor.dtype}; convert first, e.g. x = x.astype('float32')")
    tensor.data[...] = result.data  # every view of this array sees the new values
    mark_written(tensor)
    if recording:
        for consumer in filter(None, (ref() for ref in tensor._consumers)):
            consumer.inputs = tuple(previous if t is tensor else t for t in consumer.inputs)
        previous._consumers, tensor._consumers = tensor._consumers, []
        tensor.creator, tensor.requires_grad = result.creator, True
    return tensor


def _check_allowed(tensor, op, recording):
    root = tensor
    while root._view_of is not None:
        root = root._view_of
    if is_grad_enabled() and root.is_leaf and root.requires_grad:
        whose = "a leaf tensor that requires grad" if root is tensor else "a view of a leaf that requires grad"
        raise RuntimeError(
            f"{op}: {whose} (shape {root.shape}, e.g. a parameter) cannot be changed in place while "
            f"autograd records, since backward needs its value; update it inside `with minicnn.no_grad():` "
            f"as optimizers do, or assign its .data"
        )
    if recording and root is not tensor:
        raise RuntimeError(
            f"{op}: this tensor views another tensor's array (reshape, transpose, flatten or x[index] made "
            f"it), and changing a view in place inside a graph would change that tensor behind the graph's "
            f"back; write it out of place (y = y + z), or assign through the original: x[index] = new_value"
        )
