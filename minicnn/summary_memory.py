"""Refusing a summary that cannot fit: the memory a trace needs, estimated before it runs.

Tracing keeps every intermediate tensor alive: VGG-16 on 3x20000x20000 would ask for over 1,000 GiB.
The one idea: trace the model on two small images and follow each tensor's shape out to the real input.
Conv and pool arithmetic makes a feature map's height a straight line in the input's height (exactly so
when the sides divide evenly), and the same for widths.  The peak counts every tensor traced so far plus
the im2col matrix of the conv running now.  ``refuse_what_cannot_fit`` compares that with the memory
available now (/proc/meminfo and a container's cgroup limit; a GPU's free memory) and raises a
MemoryError; an input that clearly fits is traced without any estimate.
"""
import dataclasses
import math
import os

import numpy as np

from minicnn.backend import kernels_for
from minicnn.functions import conv
from minicnn.summary_trace import random_input, trace
from minicnn.tensor import Tensor

_PROBE_SIDES = (64, 128, 256)  # the smaller probe's side; a larger one is tried if the model refuses it
_CLEARLY_FITS = 4096  # a zoo model's trace peaks below 700x its input: under 1/4096 of memory, no estimate


@dataclasses.dataclass
class _MemoryEstimate:
    activation_bytes: int  # the rows' outputs, as Totals.activation_bytes
    peak_bytes: int        # the most held at once: the input, the tensors traced so far, a conv's im2col


def refuse_what_cannot_fit(model, model_name, input_shape, dtype):
    """MemoryError naming the estimate and the memory available, when the trace would not fit."""
    device = getattr(next(model.parameters(), None), "device", "cpu")
    available = _available_memory(device)
    if available is None or math.prod(input_shape) * np.dtype(dtype).itemsize * _CLEARLY_FITS <= available:
        return
    estimate = _estimate_memory(model, model_name, input_shape, dtype)
    if estimate is not None and estimate.peak_bytes > available:
        raise MemoryError(
            f"summary ({model_name}): an input of {input_shape} needs about "
            f"{_gibibytes(estimate.peak_bytes)} to trace ({_gibibytes(estimate.activation_bytes)} of layer "
            f"outputs), but {_gibibytes(available)} of memory is available")


def _estimate_memory(model, model_name, input_shape, dtype):
    """A _MemoryEstimate for an (N, C, H, W) input from traces at two small images; None if none can be made
    (not an image, a model that rejects every probe, or a path that changes with the input's size)."""
    if len(input_shape) != 4:
        return None
    _, channels, height, width = input_shape
    for side in _PROBE_SIDES:
        sizes = [(min(height, s), min(width, s)) for s in (side, 2 * side)]
        probes = _probe(model, model_name, channels, sizes, dtype)
        if probes is not None:
            return _extrapolate(*probes, *sizes, input_shape, dtype)
    return None


def _probe(model, model_name, channels, sizes, dtype):
    """(rows, tape) at each (H, W) of ``sizes``, or None if the model refuses one (AlexNet below 63x63)."""
    try:
        return [trace(model, model_name, random_input(model, (1, channels, *size), dtype)) for size in sizes]
    except Exception:  # noqa: BLE001  (whatever the model says about a size it cannot take)
        return None


def _extrapolate(probe_a, probe_b, size_a, size_b, input_shape, dtype):
    """The _MemoryEstimate at ``input_shape`` from one-image traces at (H, W) ``size_a`` and ``size_b``."""
    (rows_a, tape_a), (rows_b, tape_b) = probe_a, probe_b
    if len(rows_a) != len(rows_b) or len(tape_a) != len(tape_b):
        return None
    batch, channels, height, width = input_shape

    def grown(shape_a, shape_b):
        return _grown_elements(shape_a, shape_b, size_a, size_b, (height, width))

    def columns(entry_a, entry_b):
        """Elements of one conv's workspace: im2col's (C·KH·KW, N·OH·OW) matrix, none for a depthwise one,
        and for Winograd its input planes (about C·H·W) with the transformed input and output, 16 values
        per 2×2 tile for each input and each output channel: 4·N·OH·OW·(C + OC)."""
        function, inputs, output = entry_a
        if not isinstance(function, conv.Conv2d) or function.depthwise:
            return 0
        x, weight = inputs[:2]
        positions = grown(output.shape, entry_b[2].shape) // output.shape[1]
        full_x_shape = (batch, x.shape[1], *(_on_line(a, b, size_a[axis], size_b[axis], (height, width)[axis])
                                             for axis, (a, b) in enumerate(zip(x.shape[2:], entry_b[1][0].shape[2:]))))
        algorithm = kernels_for(_array(x)).conv2d_algorithm(full_x_shape, weight.shape, function.stride,
                                                           function.dilation, function.groups)
        if algorithm == "winograd":  # the algorithm at the real size, not at the probes' small one
            return positions * (x.shape[1] + 4 * (x.shape[1] + weight.shape[0]))
        return positions * x.shape[1] * weight.shape[2] * weight.shape[3]

    # Walk the tape in order: every output stays (the tape holds it); a conv's columns live while it runs.
    held = peak = channels * height * width
    for a, b in zip(tape_a, tape_b):
        if isinstance(a[2], Tensor):
            held += grown(a[2].shape, b[2].shape)
            peak = max(peak, held + columns(a, b))
    rows = sum(grown(a, b) for row_a, row_b in zip(rows_a, rows_b)
               for a, b in zip(_flat_shapes(row_a.output_shape), _flat_shapes(row_b.output_shape)))
    itemsize = np.dtype(dtype).itemsize
    return _MemoryEstimate(batch * rows * itemsize, batch * peak * itemsize)


def _array(value):
    return value.data if isinstance(value, Tensor) else value


def _grown_elements(shape_a, shape_b, size_a, size_b, size):
    """Elements of one tensor on an input of ``size`` (H, W), from its shapes on inputs of ``size_a`` and
    ``size_b``: a feature map's rows follow H and its columns W; anything else (flattened features,
    logits) follows H·W.  Each along the straight line through the two probes."""
    if len(shape_a) == 4 and len(shape_b) == 4 and shape_a[:2] == shape_b[:2]:
        rows = _on_line(shape_a[2], shape_b[2], size_a[0], size_b[0], size[0])
        columns = _on_line(shape_a[3], shape_b[3], size_a[1], size_b[1], size[1])
        return shape_a[0] * shape_a[1] * rows * columns
    return _on_line(math.prod(shape_a), math.prod(shape_b),
                    math.prod(size_a), math.prod(size_b), math.prod(size))


def _on_line(y_a, y_b, x_a, x_b, x):
    slope = 0 if x_a == x_b else (y_b - y_a) / (x_b - x_a)
    return max(0, round(y_b + slope * (x - x_b)))


def _flat_shapes(shape_):
    """A row's output shape as a list of tuples (a layer returning several tensors has a list of them)."""
    return [s for item in shape_ for s in _flat_shapes(item)] if isinstance(shape_, list) else [shape_]


def _available_memory(device):
    """Bytes free for new arrays on ``device`` now, or None when the system does not say.

    CPU: the smallest of /proc/meminfo's MemAvailable and a container's limit less its usage (cgroup v2,
    then v1), or without those the free pages sysconf reports.  GPU: the device's free memory plus what
    CuPy's pool holds unused."""
    if device == "cuda":
        try:
            import cupy

            return int(cupy.cuda.Device().mem_info[0] + cupy.get_default_memory_pool().free_bytes())
        except Exception:  # noqa: BLE001  (no answer is not a reason to refuse)
            return None
    candidates = [_meminfo_available()]
    for limit, usage in (("memory.max", "memory.current"),                                 # cgroup v2
                         ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):  # cgroup v1
        limit, usage = _read_int(f"/sys/fs/cgroup/{limit}"), _read_int(f"/sys/fs/cgroup/{usage}")
        if limit is not None and usage is not None:
            candidates.append(max(limit - usage, 0))
            break
    known = [c for c in candidates if c is not None]
    if known:
        return min(known)
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _meminfo_available():
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file says kB and means KiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path):
    """The number in a one-line file such as a cgroup's memory.max, or None ("max", missing, unreadable)."""
    try:
        with open(path) as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


def _gibibytes(nbytes):
    return f"{nbytes / 2**30:,.1f} GiB"
