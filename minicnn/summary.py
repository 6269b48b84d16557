"""``summary(model, input_size)``: what every layer does to one input, and what it costs.

One forward pass (eval mode, no gradients) on a random input, watched two ways:

* a forward hook on every leaf module (and on any module holding parameters of
  its own) gives the table's rows: the layer's name (``features.0``), type,
  output shape and parameters;
* a *tape* of every differentiable ``Function`` the pass runs (conv2d, linear,
  pooling, the ``+`` of a residual block, ``F.relu`` called inside a block ...)
  follows the data between the layers.  From it come the MACs and the receptive
  field, so both stay right when a model calls ``F.*`` instead of a module, or
  calls a layer's weights functionally.

MACs (multiply-accumulates, the figure papers quote as "FLOPs") count only
convolutions and fully connected layers, per image, whatever ``batch_size``:
    conv:   C_out · H_out · W_out · C_in/groups · k_h · k_w
    linear: in_features · out_features
Batch norm, activations, pooling and additions count 0.

Receptive field r (how many input pixels one output value sees, per axis) and
jump j (how many input pixels apart two neighbouring outputs are, the
effective stride) start at r = j = 1 on the image and grow through every
window (conv, max/avg pool) of kernel k, dilation d and stride s:
    r_out = r_in + (k − 1) · d · j_in          j_out = j_in · s
Adaptive pooling counts as a window of its largest bin with stride
floor(in/out) (global pooling: the whole map); reducing H and W away
(``mean``) is a global pool too, and a Linear on flattened C·H·W features sees
the whole H×W map, like a conv with an H×W kernel.  Where paths meet (the
``+`` of a residual block, Inception's ``cat``) the output follows the operand
of full size with the largest receptive field: the conv path beats the
shortcut, and an SE gate of shape (N, C, 1, 1) only rescales the main path.
This is the theoretical receptive field: it counts padding, so near the end of
a deep network it exceeds the image (ResNet-18's last conv: 435 on 224).

Tracing holds every intermediate tensor, so an image far larger than usual
is first estimated (traced at two small sizes, every tensor's shape followed
out to the real one) and refused with a MemoryError when it cannot fit:
VGG-16 on 3x20000x20000 is turned down in a second instead of swapping.

>>> print(minicnn.summary(model, (3, 32, 32)))
>>> table = minicnn.summary(model, (3, 224, 224))
>>> table.totals.macs, table["features.0"].receptive_field
"""
import dataclasses
import math
import os
from contextlib import contextmanager

import numpy as np

from minicnn import nn
from minicnn.functions import conv, linear, pooling, reduction, shape
from minicnn.tensor import Function, Tensor, no_grad

_MAC_FUNCTIONS = (conv.Conv2d, linear.Linear)


@dataclasses.dataclass
class LayerRow:
    """One call of one layer.  ``receptive_field`` and ``jump`` are (rows, columns) in input pixels,
    None where the input has no H and W; ``macs`` are per image; ``output_bytes`` for the whole batch."""
    name: str
    type: str
    output_shape: tuple
    params: int
    macs: int
    receptive_field: tuple | None
    jump: tuple | None
    output_bytes: int


@dataclasses.dataclass
class Totals:
    params: int                 # every parameter once, shared ones too
    trainable_params: int
    non_trainable_params: int
    buffers: int                # buffer tensors (three per batch norm: running_mean, running_var, num_batches_tracked)
    buffer_elements: int
    macs: int                   # per image
    activation_bytes: int       # sum of the rows' output tensors, whole batch: what a training step keeps
    param_bytes: int
    buffer_bytes: int


@dataclasses.dataclass
class _Field:
    """What the tape knows about one tensor: receptive field and jump per axis, and the H×W a
    flatten folded into the channel axis (so the next Linear knows it sees the whole map)."""
    rf: tuple
    jump: tuple
    folded: tuple | None = None

    def window(self, kernel, stride, dilation=(1, 1)):
        rf = tuple(r + (k - 1) * d * j for r, k, d, j in zip(self.rf, kernel, dilation, self.jump))
        return _Field(rf, tuple(j * s for j, s in zip(self.jump, stride)))


class Summary:
    """The table ``summary`` returns: ``rows`` (LayerRow), ``totals`` (Totals), ``str()`` to print.

    ``table["features.0"]`` is the first row of that name.
    """

    def __init__(self, model_name, input_shape, dtype, rows, totals):
        self.model_name, self.input_shape, self.dtype = model_name, input_shape, dtype
        self.rows, self.totals = rows, totals

    def __getitem__(self, name):
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"summary: no layer named {name!r}; layers are {[row.name for row in self.rows]}")

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __str__(self):
        header = ("Layer", "Type", "Output shape", "Params", "MACs", "RF", "Jump")
        cells = [header] + [
            (row.name, row.type, _shape_text(row.output_shape), f"{row.params:,}", f"{row.macs:,}",
             _pair_text(row.receptive_field), _pair_text(row.jump))
            for row in self.rows
        ]
        widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
        left = (True, True, True, False, False, False, False)  # text left, numbers right

        def line(values):
            return "  ".join(v.ljust(w) if is_left else v.rjust(w)
                             for v, w, is_left in zip(values, widths, left)).rstrip()

        rule = "-" * len(line(header))
        t = self.totals
        lines = [f"{self.model_name}: input {_shape_text(self.input_shape)} {np.dtype(self.dtype).name}",
                 rule, line(header), rule] + [line(c) for c in cells[1:]] + [
            rule,
            (f"Parameters:       {t.params:,} ({t.trainable_params:,} trainable, "
             f"{t.non_trainable_params:,} frozen)"),
            f"Buffers:          {t.buffers:,} tensors, {t.buffer_elements:,} values",
            f"MACs per image:   {t.macs:,} ({t.macs / 1e9:.3f} G)",
            f"Activations:      {_megabytes(t.activation_bytes)} (layer outputs, whole batch)",
            f"Parameter memory: {_megabytes(t.param_bytes)} (+ {_megabytes(t.buffer_bytes)} buffers)",
        ]
        return "\n".join(lines)

    def __repr__(self):
        t = self.totals
        return (f"<Summary of {self.model_name}: {len(self.rows)} rows, {t.params:,} parameters, "
                f"{t.macs:,} MACs>")


def summary(model, input_size, batch_size=1, dtype=np.float32, check_memory=True):
    """Run ``model`` once on a random (batch_size, *input_size) input and tabulate every layer.

    The model is left as it was: modes restored, hooks removed, batch-norm
    statistics untouched (eval mode).  ``input_size`` is (C, H, W) for images,
    or any shape without the batch axis.  With ``check_memory`` an image input
    that could not fit in the memory available now is refused with a
    MemoryError giving the estimate, instead of swapping the machine to a halt.

    >>> table = summary(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), (3, 32, 32))
    >>> table.rows[0].output_shape, table.rows[0].macs     # 8·30·30·3·3·3
    ((1, 8, 30, 30), 194400)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary: model must be a minicnn.nn.Module, got {type(model).__name__}")
    model_name = type(model).__name__
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        input_size = (input_size,)
    if (not isinstance(input_size, (tuple, list)) or not input_size
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in input_size)):
        raise TypeError(f"summary ({model_name}): input_size must be a tuple of ints like (3, 224, 224), "
                        f"got {input_size!r}")
    if min(input_size) < 1:
        raise ValueError(f"summary ({model_name}): input_size must be positive, got {tuple(input_size)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"summary ({model_name}): batch_size must be a positive int, got {batch_size!r}")
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"summary ({model_name}): dtype must be floating-point, got {np.dtype(dtype)}")

    input_shape = (batch_size, *input_size)
    if check_memory:
        _refuse_what_cannot_fit(model, model_name, input_shape, dtype)
    rows, _ = _trace(model, model_name, _random_input(model, input_shape, dtype))
    return Summary(model_name, input_shape, dtype, rows, _totals(model, rows))


def _random_input(model, shape, dtype):
    """A seeded random input on the model's device, from its own generator: a summary must not move
    minicnn's random stream."""
    data = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    first_param = next(model.parameters(), None)
    if first_param is not None and first_param.device == "cuda":
        import cupy

        data = cupy.asarray(data)
    return Tensor(data)


def _trace(model, model_name, x):
    """(rows, tape) of one eval-mode, gradient-free pass of ``model`` on ``x``; the model is left as is."""
    calls, tape = [], []
    watched = [(name, module) for name, module in model.named_modules()
               if not module._modules or any(p is not None for p in module._parameters.values())]

    def watcher(name):
        def hook(module, inputs, output):
            calls.append((len(tape), name, module, inputs, output))
        return hook

    modes = [(module, module.training) for module in model.modules()]
    handles = [module.register_forward_hook(watcher(name or model_name)) for name, module in watched]
    try:
        model.eval()
        with no_grad(), _recording(tape):
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    return _rows(model, calls, tape, _trace_fields(x, tape)), tape


@contextmanager
def _recording(tape):
    """Append (function, inputs, output) to ``tape`` for every Function call inside the block.

    Function.__call__ is the one door every differentiable op goes through, so
    wrapping it for the length of one forward pass sees the whole computation.
    The tape holds every intermediate tensor alive until the summary is built,
    which also keeps their id()s unique.
    """
    original = Function.__call__

    def recording_call(function, *inputs):
        output = original(function, *inputs)
        tape.append((function, inputs, output))
        return output

    Function.__call__ = recording_call
    try:
        yield
    finally:
        Function.__call__ = original


def _trace_fields(x, tape):
    """id(tensor) → _Field for the input and every tensor computed from it (see the module docstring)."""
    fields = {id(x): _Field((1, 1), (1, 1))} if x.ndim == 4 else {}
    for function, inputs, output in tape:
        tensors = [t for t in inputs if isinstance(t, Tensor) and id(t) in fields]
        if not tensors or not isinstance(output, Tensor):
            continue
        source = inputs[0] if isinstance(inputs[0], Tensor) else None
        field = fields.get(id(source))
        if isinstance(function, conv.Conv2d) and field:
            result = field.window(inputs[1].shape[-2:], function.stride, function.dilation)
        elif isinstance(function, pooling.MaxPool2d) and field:
            result = field.window(function.kernel_size, function.stride, function.dilation)
        elif isinstance(function, pooling.AvgPool2d) and field:
            result = field.window(function.kernel_size, function.stride)
        elif isinstance(function, pooling.AdaptiveAvgPool2d) and field:
            bins = [_largest_bin(size, out) for size, out in zip(source.shape[-2:], function.out_size)]
            strides = [max(size // out, 1) for size, out in zip(source.shape[-2:], function.out_size)]
            result = field.window(bins, strides)
        elif isinstance(function, (reduction.Sum, reduction.Mean, reduction.Max)) and field and source.ndim == 4:
            # mean over H and W is a global pool; other reductions leave the field as it was
            kernel = [size if axis in function.axes else 1 for axis, size in ((2, source.shape[2]),
                                                                                (3, source.shape[3]))]
            result = field.window(kernel, kernel)
        elif isinstance(function, linear.Linear) and field and field.folded:
            result = field.window(field.folded, field.folded)
        elif isinstance(function, shape.Reshape) and field and source.ndim == 4 and output.ndim < 4 \
                and output.shape[0] == source.shape[0]:
            result = dataclasses.replace(field, folded=source.shape[-2:])  # flatten: H×W go into the features
        else:
            # Elementwise ops, cat, batch norm: follow the full-size operand with the largest field.
            full_size = [t for t in tensors if t.shape == output.shape] or tensors
            result = max((fields[id(t)] for t in full_size), key=lambda f: (f.rf[0] * f.rf[1], f.jump))
        fields[id(output)] = result
    return fields


def _largest_bin(size, out):
    """The widest window adaptive pooling uses: bin i covers floor(i·size/out) … ceil((i+1)·size/out) − 1."""
    return max(-(-(i + 1) * size // out) - (i * size // out) for i in range(out))


def _macs(function, inputs, output):
    """Multiply-accumulates per image of one conv2d or linear call (see the module docstring)."""
    weight = inputs[1]
    if isinstance(function, conv.Conv2d):
        # C_out·H_out·W_out (one image) times C_in/groups·k_h·k_w (the weight's last three axes)
        return math.prod(output.shape[1:]) * math.prod(weight.shape[1:])
    positions = math.prod(inputs[0].shape[1:-1]) if inputs[0].ndim > 2 else 1  # a Linear on (N, L, in)
    return positions * weight.shape[0] * weight.shape[1]


def _rows(model, calls, tape, fields):
    """One LayerRow per watched call, plus one per conv/linear that no watched call made (a functional call)."""
    owner_of = {id(p): (name, module) for name, module in model.named_modules()
                for p in module._parameters.values() if p is not None}
    claimed, credited, placed = set(), set(), []
    start = 0
    for position, name, module, inputs, output in calls:
        # The ops since the previous hook belong to this call, except those that made its inputs
        # (a parent's F.relu before calling it).
        made_inputs, stack = set(), [t for t in inputs if isinstance(t, Tensor)]
        producer = {id(tape[i][2]): i for i in range(start, position)}
        while stack:
            index = producer.get(id(stack.pop()))
            if index is not None and index not in made_inputs:
                made_inputs.add(index)
                stack.extend(t for t in tape[index][1] if isinstance(t, Tensor))
        mine = [i for i in range(start, position)
                if i not in made_inputs and isinstance(tape[i][0], _MAC_FUNCTIONS)]
        claimed.update(mine)
        start = position
        first_call = id(module) not in credited
        credited.add(id(module))
        params = sum(p.numel() for p in module._parameters.values() if p is not None) if first_call else 0
        shapes, nbytes = _describe(output)
        field = fields.get(id(output)) if isinstance(output, Tensor) else None
        row = LayerRow(name, type(module).__name__ + ("" if first_call else " (again)"), shapes, params,
                       sum(_macs(*tape[i]) for i in mine), *_field_pair(field), nbytes)
        placed.append((position, row))

    for index, (function, inputs, output) in enumerate(tape):
        if index in claimed or not isinstance(function, _MAC_FUNCTIONS):
            continue
        name, module = owner_of.get(id(inputs[1]), ("(functional)", None))
        params = 0
        if module is not None and id(module) not in credited:
            credited.add(id(module))
            params = sum(p.numel() for p in module._parameters.values() if p is not None)
        field = fields.get(id(output))
        kind = "conv2d" if isinstance(function, conv.Conv2d) else "linear"
        placed.append((index + 1, LayerRow(name, f"{kind} (functional)", output.shape, params,
                                           _macs(function, inputs, output), *_field_pair(field),
                                           output.data.nbytes)))
    placed.sort(key=lambda item: item[0])  # stable: calls that finished together keep their order
    return [row for _, row in placed]


def _field_pair(field):
    return (None, None) if field is None else (field.rf, field.jump)


def _describe(output):
    """(shape, bytes) of a layer's output: a Tensor, or tuples/lists/dicts of them (shape becomes a list)."""
    if isinstance(output, Tensor):
        return tuple(output.shape), int(output.data.nbytes)
    items = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else []
    described = [_describe(item) for item in items]
    return [shape_ for shape_, _ in described], sum(nbytes for _, nbytes in described)


def _totals(model, rows):
    params = list(model.parameters())
    buffers = list(model.buffers())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    return Totals(
        params=total, trainable_params=trainable, non_trainable_params=total - trainable,
        buffers=len(buffers), buffer_elements=sum(b.numel() for b in buffers),
        macs=sum(row.macs for row in rows), activation_bytes=sum(row.output_bytes for row in rows),
        param_bytes=sum(int(p.data.nbytes) for p in params), buffer_bytes=sum(int(b.data.nbytes) for b in buffers),
    )


def _shape_text(shape_):
    if isinstance(shape_, list):
        return "[" + ", ".join(_shape_text(s) for s in shape_) + "]"
    return "[" + ", ".join(str(s) for s in shape_) + "]"


def _pair_text(pair):
    if pair is None:
        return "-"
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _megabytes(nbytes):
    return f"{nbytes / 2**20:,.2f} MB"


# --- refusing an input that cannot fit ----------------------------------------------------
# Tracing keeps every intermediate tensor alive: VGG-16 on 3x20000x20000 would ask for over 1,000 GiB.
# The estimate traces the model on two small images and follows each tensor's shape out to the real input:
# conv and pool arithmetic makes a feature map's height a straight line in the input's height (exactly so
# when the sides divide evenly), and the same for widths.
_PROBE_SIDES = (64, 128, 256)  # the smaller probe's side; a larger one is tried if the model refuses it
_CLEARLY_FITS = 4096  # a zoo model's trace peaks below 700x its input: under 1/4096 of memory, no estimate


@dataclasses.dataclass
class _MemoryEstimate:
    activation_bytes: int  # the rows' outputs, as Totals.activation_bytes
    peak_bytes: int        # the most held at once: the input, the tensors traced so far, a conv's im2col


def _refuse_what_cannot_fit(model, model_name, input_shape, dtype):
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
        return [_trace(model, model_name, _random_input(model, (1, channels, *size), dtype)) for size in sizes]
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
        """Elements of im2col's (C·KH·KW, N·OH·OW) matrix for one conv (none for a depthwise one)."""
        function, inputs, output = entry_a
        if not isinstance(function, conv.Conv2d) or getattr(function, "depthwise", False):
            return 0
        x, weight = inputs[:2]
        positions = grown(output.shape, entry_b[2].shape) // output.shape[1]
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


# --- the course's point about stacked 3×3 convolutions --------------------------------
@dataclasses.dataclass
class StackRow:
    depth: int                  # how many 3×3 convs are stacked
    receptive_field: int        # what the stack sees, measured by summary
    stacked_params: int         # depth · 9C²
    single_kernel: int          # the one conv that sees as much: 2·depth + 1
    single_params: int          # (2·depth + 1)² C², measured by summary
    non_linearities: int        # a ReLU after each conv of the stack, against one


class StackComparison:
    """What ``receptive_field_comparison`` returns: ``rows`` (StackRow) and ``str()`` to print."""

    def __init__(self, channels, rows):
        self.channels, self.rows = channels, rows

    def __str__(self):
        c = self.channels
        lines = [f"Stacked 3x3 convs against one big conv, C = {c} channels in and out, no bias:"]
        for row in self.rows:
            lines.append(
                f"  {row.depth} x 3x3: sees {row.receptive_field}x{row.receptive_field}, "
                f"{row.stacked_params:,} params = {row.depth}*9C^2, {row.non_linearities} ReLUs | "
                f"1 x {row.single_kernel}x{row.single_kernel}: {row.single_params:,} params = "
                f"{row.single_kernel ** 2}C^2, 1 ReLU | saves {1 - row.stacked_params / row.single_params:.0%}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def receptive_field_comparison(channels=64, depths=(1, 2, 3)):
    """Why VGG stacks 3×3 convs: two see 5×5 and three see 7×7, with 2·9C² and 3·9C² parameters
    against 25C² and 49C² for the single conv, and a ReLU after each instead of one.

    Every number is measured: each stack and each single conv is built from
    nn.Conv2d and run through ``summary``.

    >>> print(receptive_field_comparison(64))
    """
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"receptive_field_comparison: channels must be a positive int, got {channels!r}")
    rows = []
    for depth in depths:
        size = 2 * depth + 1  # just big enough for the single conv's window
        stack = nn.Sequential(*[layer for _ in range(depth)
                                for layer in (nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.ReLU())])
        single = nn.Sequential(nn.Conv2d(channels, channels, size, padding=depth, bias=False), nn.ReLU())
        stacked, one = summary(stack, (channels, size, size)), summary(single, (channels, size, size))
        rows.append(StackRow(
            depth=depth, receptive_field=stacked.rows[-1].receptive_field[0],
            stacked_params=stacked.totals.params, single_kernel=one.rows[-1].receptive_field[0],
            single_params=one.totals.params,
            non_linearities=sum(isinstance(m, nn.ReLU) for m in stack.modules()),
        ))
    return StackComparison(channels, rows)


__all__ = ["LayerRow", "StackComparison", "StackRow", "Summary", "Totals", "receptive_field_comparison", "summary"]
