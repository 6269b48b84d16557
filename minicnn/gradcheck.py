"""Check hand-written backward passes against finite differences.

``gradcheck`` compares every element of every input's analytic gradient with
a central difference, in float64; ``gradcheck_directional`` checks one random
direction with two evaluations, for inputs too large to probe element by element.
Both look at the scalar ``sum(fn(*inputs) * v)`` for a fixed random ``v``, so
every output element takes part.

The finite differences are taken on float64 copies in host memory; each
evaluation of ``fn`` runs on ``device`` (by default the device of the first
tensor input, else ``minicnn.get_default_device()``), so the same check proves
the GPU kernels: ``gradcheck(fn, [x], device="cuda")``.
"""
import numpy as np

from minicnn import device as _device
from minicnn.tensor import Tensor, as_array


class GradcheckError(AssertionError):
    """An analytic gradient disagreed with the numeric one; the message names the worst element."""


def _device_for(inputs, device):
    if device is not None:
        return _device.normalize_device("gradcheck", device)
    return next((t.device for t in inputs if isinstance(t, Tensor)), _device.get_default_device())


def _prepare(fn, inputs, seed, device):
    """Float64 host copies of the inputs, their analytic gradients, and the objective on ``device``."""
    if not callable(fn):
        raise TypeError(f"gradcheck: fn must be a function of tensors returning a tensor, got {type(fn).__name__}")
    if isinstance(inputs, (Tensor, np.ndarray)) or not isinstance(inputs, (list, tuple)):
        raise TypeError(f"gradcheck: inputs must be a list of tensors or arrays, got {type(inputs).__name__}; "
                        f"wrap a single input as [x]")
    device = _device_for(inputs, device)
    host = [np.array(t.numpy() if isinstance(t, Tensor) else as_array(t, op=f"gradcheck: input {i}"),
                     dtype=np.float64) for i, t in enumerate(inputs)]
    tensors = [Tensor(_device.move_array(a, device, "gradcheck"), requires_grad=True) for a in host]
    output = fn(*tensors)
    projection = np.random.default_rng(seed).standard_normal(output.shape)

    def objective(arrays):
        out = fn(*[Tensor(_device.move_array(a, device, "gradcheck")) for a in arrays])
        return float((out.numpy() * projection).sum())

    output.backward(_device.move_array(projection, output.device, "gradcheck"))
    analytic = [t.grad.numpy() if t.grad is not None else np.zeros(t.shape, dtype=np.float64) for t in tensors]
    return host, analytic, objective


def numeric_gradients(fn, inputs, eps=1e-6, seed=0, device=None):
    """Analytic and central-difference gradients of sum(fn(*inputs) · v), both in float64.

    Returns two lists with one array per input: (analytic, numeric).  The
    building block of ``gradcheck``, and what ``python -m minicnn gradcheck``
    prints its error table from.
    """
    arrays, analytic, objective = _prepare(fn, inputs, seed, device)
    numeric = [np.empty_like(a) for a in arrays]
    for array, gradient in zip(arrays, numeric):
        for index in np.ndindex(*array.shape):
            original = array[index]
            array[index] = original + eps
            plus = objective(arrays)
            array[index] = original - eps
            minus = objective(arrays)
            array[index] = original
            gradient[index] = (plus - minus) / (2 * eps)
    return analytic, numeric


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=True, seed=0, device=None):
    """Compare ``fn``'s backward with central differences for every input element.

    ``fn`` takes tensors and returns a tensor; ``inputs`` are tensors or arrays
    (copied to float64).  Returns True, or raises ``GradcheckError`` naming the
    worst element: input, index, analytic and numeric values, relative error.

    >>> gradcheck(lambda x: (x * x).sum(), [np.array([1.0, 2.0])])
    True
    """
    analytic, numeric = numeric_gradients(fn, inputs, eps, seed, device)
    worst = None
    for which, (exact, approximate) in enumerate(zip(analytic, numeric)):
        if exact.size == 0:
            continue
        excess = (np.abs(exact - approximate) - (atol + rtol * np.abs(approximate))).reshape(-1)
        excess[~np.isfinite(excess)] = np.inf  # a nan compares False with everything and would slip through
        flat = int(np.argmax(excess))
        if worst is None or excess[flat] > worst[0]:
            worst = (excess[flat], which, np.unravel_index(flat, exact.shape), exact.reshape(-1)[flat],
                     approximate.reshape(-1)[flat])
    if worst is None or worst[0] <= 0:
        return True
    _, which, index, exact, numeric_value = worst
    index = tuple(int(i) for i in index)
    return _failed(f"gradcheck: input {which} at index {index}:", exact, numeric_value, atol, rtol, raise_exception)


def _failed(where, exact, numeric, atol, rtol, raise_exception):
    """False, or GradcheckError when ``raise_exception``: ``where`` the two values disagree, and by how much."""
    relative = abs(exact - numeric) / max(abs(numeric), 1e-12)
    message = (f"{where} analytic {exact:.10g}, numeric {numeric:.10g}, relative error {relative:.3g} "
               f"(atol={atol}, rtol={rtol})")
    if raise_exception:
        raise GradcheckError(message)
    return False


def gradcheck_directional(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=True, seed=0,
                          device=None):
    """Check the gradient along one random unit direction: two evaluations, any input size.

    The directional derivative (f(x + εu) − f(x − εu)) / 2ε must equal ⟨∇f, u⟩.
    """
    base, analytic, objective = _prepare(fn, inputs, seed, device)
    rng = np.random.default_rng(seed + 1)
    directions = [rng.standard_normal(a.shape) for a in base]
    norm = np.sqrt(sum((d * d).sum() for d in directions))
    directions = [d / norm for d in directions]
    plus = objective([a + eps * d for a, d in zip(base, directions)])
    minus = objective([a - eps * d for a, d in zip(base, directions)])
    numeric = (plus - minus) / (2 * eps)
    exact = float(sum((g * d).sum() for g, d in zip(analytic, directions)))
    if abs(exact - numeric) <= atol + rtol * abs(numeric):
        return True
    return _failed("gradcheck_directional:", exact, numeric, atol, rtol, raise_exception)
