"""The forward pass behind ``summary``: one eval-mode, gradient-free call of the model, watched two ways.

* a forward hook on every leaf module (and on any module holding parameters of
  its own) gives the table's rows: the layer's name (``features.0``), type,
  output shape and parameters;
* a *tape* of every differentiable ``Function`` the pass runs (conv2d, linear,
  pooling, the ``+`` of a residual block, ``F.relu`` called inside a block ...)
  follows the data between the layers.  From it come the MACs and the receptive
  field, so both stay right when a model calls ``F.*`` instead of a module, or
  calls a layer's weights functionally.

What the MACs and the receptive field count, and their formulas, are in minicnn/summary.py's
docstring; minicnn/summary_memory.py traces here too, at two small sizes, to estimate a large one.
"""
import dataclasses
import math
from contextlib import contextmanager

import numpy as np

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
class _Field:
    """What the tape knows about one tensor: receptive field and jump per axis, and the H×W a
    flatten folded into the channel axis (so the next Linear knows it sees the whole map)."""
    rf: tuple
    jump: tuple
    folded: tuple | None = None

    def window(self, kernel, stride, dilation=(1, 1)):
        rf = tuple(r + (k - 1) * d * j for r, k, d, j in zip(self.rf, kernel, dilation, self.jump))
        return _Field(rf, tuple(j * s for j, s in zip(self.jump, stride)))


def random_input(model, shape, dtype):
    """A seeded random input on the model's device, from its own generator: a summary must not move
    minicnn's random stream."""
    data = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    first_param = next(model.parameters(), None)
    if first_param is not None and first_param.device == "cuda":
        import cupy

        data = cupy.asarray(data)
    return Tensor(data)


def trace(model, model_name, x):
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
    """id(tensor) → _Field for the input and every tensor computed from it (see minicnn/summary.py's docstring)."""
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
    """Multiply-accumulates per image of one conv2d or linear call (see minicnn/summary.py's docstring)."""
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
