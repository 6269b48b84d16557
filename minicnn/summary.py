"""``summary(model, input_size)``: what every layer does to one input, and what it costs.

One forward pass (eval mode, no gradients) on a random input gives a row per
layer call: the layer's name (``features.0``), type, output shape, parameters,
MACs and receptive field (minicnn/summary_trace.py watches the pass).

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
out to the real one; minicnn/summary_memory.py) and refused with a MemoryError
when it cannot fit: VGG-16 on 3x20000x20000 is turned down in a second instead
of swapping.

>>> print(minicnn.summary(model, (3, 32, 32)))
>>> table = minicnn.summary(model, (3, 224, 224))
>>> table.totals.macs, table["features.0"].receptive_field
"""
import dataclasses

import numpy as np

from minicnn import nn
from minicnn.summary_memory import refuse_what_cannot_fit
from minicnn.summary_trace import LayerRow, random_input, trace


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
        refuse_what_cannot_fit(model, model_name, input_shape, dtype)
    rows, _ = trace(model, model_name, random_input(model, input_shape, dtype))
    return Summary(model_name, input_shape, dtype, rows, _totals(model, rows))


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
