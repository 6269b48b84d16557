"""Direct depthwise convolution: each channel convolved with its own KH×KW filter.

im2col would copy every input KH·KW times to feed a matmul whose inner dimension is
only KH·KW, so depthwise conv (MobileNet's workhorse) adds up one shifted, scaled
copy of the input per kernel tap instead:  y = Σ_ij w[c, i, j] · shift_ij(x).
NumPy runs that at the speed of its inner loops, so the one idea is to make every
tap ONE LONG CONTIGUOUS SLICE, with a layout chosen per shape:

* shifted (stride 1, OW = W, MobileNet's 3×3 and 5×5): rows of exactly W, one copy
  of the image per kernel column j, shifted by j; tap (i, j) is then copy j from row i,
  and one einsum sums all taps as fused multiply-adds.
* planes (stride 2, or no padding): the padded input split into its stride phases
  (rows ≡ a, columns ≡ b mod s), each flat with rows of OW + a few junk columns;
  tap (i, j) is one slice of one phase plane, and a multiply and an add per tap.
* channels last (outputs under SMALL_IMAGE pixels, e.g. 7×7): the channels innermost,
  where rows of pixels would be too short for NumPy's loops to pay.

The backward is the same geometry transposed: the weight gradient is one dot product
per tap between gy and the slice the tap read; the input gradient gathers gy through
the flipped kernel (shifted) or adds w·gy back into those slices (planes, channels last).
Blocks of (samples × channels) that fit the L2 cache are shared between threads
(threads.py); each block writes only its own part of the result, so one thread or
two give identical numbers.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from minicnn.backend.cpu.threads import parallel_for

__all__ = ["depthwise_conv2d_backward", "depthwise_conv2d_forward"]

# Input values (copies and padding included) per block: a block's few buffers stay in a 2 MiB L2 cache.
BLOCK_ELEMENTS = 1 << 17
# Output images with fewer pixels than this run channels last: a plane's rows would be too short.
SMALL_IMAGE = 100
# OpenBLAS splits a dot product longer than 10 000 across its own threads, which then fight ours.
DOT_LENGTH = 8192
# NumPy would copy each window through an 8192-value buffer to lengthen its inner loop,
# expanding the broadcast weight as it goes (4× slower); with buffers this small it never does.
UFUNC_BUFFER = 16


class _Axis:
    """One spatial axis: which kernel taps meet real input, and where each one reads.

    Tap i reads padded position s·o + i·d for output o: phase (i·d) % s, plane position o + (i·d)//s.
    Taps that only ever read padding are left out (a 3×3 kernel on a 1×1 image keeps its centre).
    """

    def __init__(self, size, out, kernel, stride, padding, dilation):
        self.size, self.out, self.stride, self.padding, self.dilation = size, out, stride, padding, dilation
        self.taps = [(i, i * dilation % stride, i * dilation // stride)  # (tap, phase, shift)
                     for i in range(kernel) if self._meets_input(i * dilation - padding)]
        self.phases = sorted({phase for _, phase, _ in self.taps})
        self.length = out + max((shift for _, _, shift in self.taps), default=0)  # plane positions read
        self.offsets = [i * dilation - padding for i, _, _ in self.taps]  # input read by tap i at o = 0

    def _meets_input(self, first):
        """Does some output o in [0, out) read input position first + s·o inside [0, size)?"""
        lowest = max(0, -(first // self.stride))  # ceil(−first / s)
        return lowest <= min(self.out - 1, (self.size - 1 - first) // self.stride)

    def run(self, phase, length):
        """(plane slice, input slice): the input positions held by the first ``length`` of ``phase``."""
        start = max(0, -((phase - self.padding) // self.stride))  # ceil((p − phase) / s)
        count = max(0, min(length, (self.size - 1 + self.padding - phase) // self.stride + 1) - start)
        first = self.stride * start + phase - self.padding
        return slice(start, start + count), slice(first, first + self.stride * count, self.stride)

    def covered(self, length):
        """How many input positions lie in the phase planes (the others get a zero gradient)."""
        return sum(len(range(self.size)[self.run(phase, length)[1]]) for phase in self.phases)

    def window(self, i):
        """Channels-last layout: the padded positions tap i reads, as a slice."""
        first = i * self.dilation
        return slice(first, first + self.stride * (self.out - 1) + 1, self.stride)

    def extent(self):
        """Channels-last layout: padded positions any tap can read, and how many of them are input."""
        span = self.stride * (self.out - 1) + self.dilation * max((i for i, _, _ in self.taps), default=0) + 1
        return span, max(0, min(self.size, span - self.padding))


class _Layout:
    """Layout, taps and blocks of one depthwise convolution (the module docstring names the layouts)."""

    def __init__(self, x_shape, weight_shape, stride, padding, dilation, out_size):
        self.n, self.c, self.oh, self.ow = *x_shape[:2], *out_size
        self.pixels = x_shape[2] * x_shape[3] + self.oh * self.ow  # input and output values per channel
        self.kernel = tuple(weight_shape[2:])
        self.height, self.width = (_Axis(*args) for args in
                                   zip(x_shape[2:], out_size, self.kernel, stride, padding, dilation))
        if self.oh * self.ow < SMALL_IMAGE:
            self.kind = "channels_last"
            self._channels_last_geometry()
        elif tuple(stride) == (1, 1) and self.ow == x_shape[3]:
            self.kind = "shifted"
            self._shifted_geometry(x_shape[2])
        else:
            self.kind = "planes"
            self._planes_geometry()
        per_image = max(1, self.block_values * self.c)
        if per_image <= BLOCK_ELEMENTS:
            self.samples, self.channels = max(1, BLOCK_ELEMENTS // per_image), self.c
        else:
            self.samples, self.channels = 1, max(1, BLOCK_ELEMENTS // self.block_values)
        self.sample_blocks = -(-self.n // self.samples)

    def _tap_index(self, i, j):
        return i * self.kernel[1] + j

    def _shifted_geometry(self, height):
        """Rows of exactly W; copy j holds x moved left by δ_j = j·d − p columns, zero where it left the row.

        Tap (i, j) is then copy j from ε_i = i·d − p rows down, one contiguous slice; consecutive
        taps i are dilation rows apart and the copies equally spaced, so one einsum sums every tap.
        """
        rows_down, self.column_shifts = self.height.offsets, self.width.offsets  # ε_i, δ_j
        self.cols, self.length = self.ow, self.oh * self.ow
        self.row_step = self.height.dilation * self.ow
        # Forward: x starts `top` rows down; tap i's window starts at row top + ε_i.
        self.top = max(0, -rows_down[0])
        self.rows = max(self.top + height, self.top + self.oh + rows_down[-1])
        self.first_window = (self.top + rows_down[0]) * self.ow
        # Backward gather: pixel (h, w) takes gy[h − ε_i, w − δ_j] from every tap.
        self.grad_top = max(0, rows_down[-1])
        self.grad_rows = max(self.grad_top + self.oh, self.grad_top + height - rows_down[0])
        self.first_grad_window = (self.grad_top - rows_down[-1]) * self.ow
        self.copy_length = max(self.rows, self.grad_rows) * self.ow
        self.block_values = len(self.column_shifts) * self.copy_length
        self.tap_grid = [[self._tap_index(i, j) for j, _, _ in self.width.taps]
                         for i, _, _ in self.height.taps]
        self.taps = [k for row in self.tap_grid for k in row]

    def _planes_geometry(self):
        """Phase planes with rows of OW + the largest column shift; tap k reads planes[plane][offset:]."""
        self.cols = self.width.length
        # One spare row: the junk columns of the last output row read a little past the last row.
        self.rows = self.height.length + (self.width.length > self.ow)
        self.phases = [(a, b) for a in self.height.phases for b in self.width.phases]
        self.length = self.oh * self.cols  # a flat output plane, junk columns included
        self.block_values = len(self.phases) * self.rows * self.cols
        self.taps = [(self._tap_index(i, j), (self.phases.index((a, b)), shift_i * self.cols + shift_j))
                     for i, a, shift_i in self.height.taps for j, b, shift_j in self.width.taps]

    def _channels_last_geometry(self):
        """One zero-padded (rows, cols, channels) image per sample; tap k reads padded[:, rows, cols]."""
        self.padded_h, self.input_h = self.height.extent()
        self.padded_w, self.input_w = self.width.extent()
        self.block_values = self.padded_h * self.padded_w
        self.taps = [(self._tap_index(i, j), (self.height.window(i), self.width.window(j)))
                     for i, _, _ in self.height.taps for j, _, _ in self.width.taps]

    def covers_input(self, x_shape):
        """True when the backward writes every input pixel's gradient (else the untouched ones must be 0)."""
        if not self.taps:
            return False
        if self.kind == "shifted":
            return True  # the gather writes every pixel
        if self.kind == "channels_last":
            height, width = x_shape[2:]
            return (self.input_h, self.input_w) == (height, width) and \
                self.height.padding + height <= self.padded_h and self.width.padding + width <= self.padded_w
        return (self.height.covered(self.rows), self.width.covered(self.cols)) == tuple(x_shape[2:])

    def copies(self):
        """Planes layout: (plane, rows, cols, input rows, input cols), the input each phase plane holds."""
        for plane, (a, b) in enumerate(self.phases):
            (rows, h), (cols, w) = self.height.run(a, self.rows), self.width.run(b, self.cols)
            if rows.stop > rows.start and cols.stop > cols.start:
                yield plane, rows, cols, h, w

    def run_blocks(self, dtype, work):
        """work(sample block, samples, channels, buffer) over every block, the blocks shared between threads.

        ``buffer`` is the thread's own zero-bordered copy of a block's input: each block overwrites
        its interior, and its borders (the padding) stay zero from block to block.
        """
        channel_blocks = -(-self.c // self.channels)
        if self.kind == "shifted":  # [0]: the copies of x, [1]: the copies of gy
            shape = (2, self.samples, self.channels, len(self.column_shifts), self.copy_length)
        elif self.kind == "planes":
            shape = (len(self.phases), self.samples, self.channels, self.rows * self.cols)
        else:
            shape = (self.samples, self.padded_h, self.padded_w, self.channels)

        def piece(start, stop):
            buffer = np.zeros(shape, dtype=dtype)
            with np.errstate():
                np.setbufsize(UFUNC_BUFFER)
                for index in range(start, stop):
                    sample_block, channel_block = divmod(index, channel_blocks)
                    n0, c0 = sample_block * self.samples, channel_block * self.channels
                    work(sample_block, slice(n0, min(n0 + self.samples, self.n)),
                         slice(c0, min(c0 + self.channels, self.c)), buffer)

        parallel_for(self.sample_blocks * channel_blocks, piece,
                     elements_per_item=self.samples * self.channels * self.pixels)


# --- planes layout ------------------------------------------------------------------
def _fill_planes(layout, x_block, planes):
    """Copy x_block (n, c, H, W) into the interiors of its phase planes (P, n, c, rows·cols)."""
    n, c = x_block.shape[:2]
    for plane, rows, cols, h, w in layout.copies():
        planes[plane, :n, :c].reshape(n, c, layout.rows, layout.cols)[:, :, rows, cols] = x_block[:, :, h, w]


def _planes_forward(layout, x, tap_weights, y):
    def block(_, samples, channels, planes):
        n, c = samples.stop - samples.start, channels.stop - channels.start
        _fill_planes(layout, x[samples, channels], planes)
        total = np.empty((n, c, layout.length), dtype=y.dtype)  # (n, c, OH·cols)
        product = np.empty_like(total)
        for t, (k, (plane, offset)) in enumerate(layout.taps):
            window = planes[plane, :n, :c, offset : offset + layout.length]
            np.multiply(window, tap_weights[k, channels, None], out=product if t else total)
            if t:
                np.add(total, product, out=total)
        # Junk columns dropped: (n, c, OH·cols) → (n, c, OH, OW).
        y[samples, channels] = total.reshape(n, c, layout.oh, layout.cols)[..., : layout.ow]
    return block


def _dot_pieces(layout):
    """(pieces, piece length) splitting a flat output plane into whole rows, each under DOT_LENGTH."""
    rows = max(1, min(layout.oh, DOT_LENGTH // layout.cols))
    while layout.oh % rows:
        rows -= 1
    return layout.oh // rows, rows * layout.cols


def _planes_backward(layout, gy, x, tap_weights, grad_x, partial):
    pieces = _dot_pieces(layout)

    def block(sample_block, samples, channels, planes):
        n, c = samples.stop - samples.start, channels.stop - channels.start
        # gy on the planes' row length, zero in the junk columns so they add nothing to either gradient.
        grid = np.zeros((n, c, layout.oh, layout.cols), dtype=gy.dtype)
        grid[..., : layout.ow] = gy[samples, channels]
        grid = grid.reshape(n, c, layout.length)
        if partial is not None:
            _fill_planes(layout, x[samples, channels], planes)
            for k, (plane, offset) in layout.taps:
                window = planes[plane, :n, :c, offset : offset + layout.length]
                dots = np.vecdot(grid.reshape(n, c, *pieces), window.reshape(n, c, *pieces))  # (n, c, pieces)
                partial[sample_block, k, channels] = dots.sum(axis=(0, 2))
        if grad_x is not None:
            gradient = np.zeros((len(layout.phases), n, c, layout.rows * layout.cols), dtype=gy.dtype)
            product = np.empty_like(grid)
            for k, (plane, offset) in layout.taps:
                np.multiply(grid, tap_weights[k, channels, None], out=product)
                window = gradient[plane, :, :, offset : offset + layout.length]
                np.add(window, product, out=window)
            grad_block = grad_x[samples, channels]
            for plane, rows, cols, h, w in layout.copies():
                plane_image = gradient[plane].reshape(n, c, layout.rows, layout.cols)
                grad_block[:, :, h, w] = plane_image[:, :, rows, cols]
    return block


# --- shifted-copies layout (stride 1, OW = W) ----------------------------------------
def _shifted_copies(image, top, column_shifts, copies):
    """copies[..., k, :] = image (n, c, rows, W) starting ``top`` rows down, column w holding image column
    w + column_shifts[k]; zero where that column is outside the image (the values that wrapped in
    from the neighbouring row).  Rows outside the image are left alone: they stay zero."""
    n, c, rows, width = image.shape
    flat, size = image.reshape(n, c, rows * width), rows * width
    for k, shift in enumerate(column_shifts):
        target = copies[:n, :c, k, top * width : top * width + size]
        if shift >= 0:
            target[..., : size - shift] = flat[..., shift:]
            target.reshape(n, c, rows, width)[..., width - shift :] = 0
        else:
            target[..., -shift:] = flat[..., :shift]
            target.reshape(n, c, rows, width)[..., :-shift] = 0


def _tap_view(copies, first, row_step, down, length):
    """(n, c, taps down, taps across, length): tap (i, j)'s flat window, in copy j from first + i·row_step."""
    n, c, across = copies.shape[:3]
    return as_strided(copies[..., first:], shape=(n, c, down, across, length),
                      strides=(*copies.strides[:2], row_step * copies.itemsize, copies.strides[2],
                               copies.itemsize))


def _shifted_forward(layout, x, tap_weights, y):
    weights = tap_weights[np.array(layout.tap_grid)].transpose(2, 0, 1)  # (C, taps down, taps across)

    def block(_, samples, channels, buffers):
        n, c = samples.stop - samples.start, channels.stop - channels.start
        copies = buffers[0, :n, :c]
        _shifted_copies(x[samples, channels], layout.top, layout.column_shifts, copies)
        taps = _tap_view(copies, layout.first_window, layout.row_step, weights.shape[1], layout.length)
        y_block = y[samples, channels].reshape(n, c, layout.length)  # a view: y is ours and contiguous
        np.einsum("ncijt,cij->nct", taps, weights[channels], out=y_block)
    return block


def _shifted_backward(layout, gy, x, tap_weights, grad_x, partial):
    tap_grid = np.array(layout.tap_grid)
    weights = tap_weights[tap_grid].transpose(2, 0, 1)  # (C, taps down, taps across)
    flipped = weights[:, ::-1]  # the gather meets the taps down in reverse order
    down, pieces = weights.shape[1], _dot_pieces(layout)
    image = grad_x.shape[2] * layout.ow if grad_x is not None else 0

    def block(sample_block, samples, channels, buffers):
        n, c = samples.stop - samples.start, channels.stop - channels.start
        gy_block = gy[samples, channels]
        if partial is not None:
            copies = buffers[0, :n, :c]
            _shifted_copies(x[samples, channels], layout.top, layout.column_shifts, copies)
            taps = _tap_view(copies, layout.first_window, layout.row_step, down, layout.length)
            dots = np.vecdot(gy_block.reshape(n, c, 1, 1, *pieces), taps.reshape(*taps.shape[:4], *pieces))
            partial[sample_block, tap_grid, channels] = dots.sum(axis=(0, 4)).transpose(1, 2, 0)
        if grad_x is not None:
            copies = buffers[1, :n, :c]
            _shifted_copies(gy_block, layout.grad_top, [-shift for shift in layout.column_shifts], copies)
            taps = _tap_view(copies, layout.first_grad_window, layout.row_step, down, image)
            grad_block = grad_x[samples, channels].reshape(n, c, image)  # a view, as in the forward
            np.einsum("ncijt,cij->nct", taps, flipped[channels], out=grad_block)
    return block


# --- channels-last layout -------------------------------------------------------------
def _fill_channels_last(layout, x_block, padded):
    """Copy x_block (n, c, H, W) into the interior of padded (n, padded H, padded W, c)."""
    n, c = x_block.shape[:2]
    top, left = layout.height.padding, layout.width.padding
    padded[:n, top : top + layout.input_h, left : left + layout.input_w, :c] = \
        x_block[:, :, : layout.input_h, : layout.input_w].transpose(0, 2, 3, 1)


def _channels_last_forward(layout, x, tap_weights, y):
    # Each weight written out along a row of OW pixels: a stride-1 window row is OW·c contiguous values.
    row_weights = np.repeat(tap_weights[:, None, :], layout.ow, axis=1)  # (taps, OW, C)

    def block(_, samples, channels, padded):
        n, c = samples.stop - samples.start, channels.stop - channels.start
        _fill_channels_last(layout, x[samples, channels], padded)
        total = np.empty((n, layout.oh, layout.ow, c), dtype=y.dtype)
        product = np.empty_like(total)
        for t, (k, (rows, cols)) in enumerate(layout.taps):
            np.multiply(padded[:n, rows, cols, :c], row_weights[k, :, channels], out=product if t else total)
            if t:
                np.add(total, product, out=total)
        y[samples, channels] = total.transpose(0, 3, 1, 2)
    return block


def _channels_last_backward(layout, gy, x, tap_weights, grad_x, partial):
    top, left = layout.height.padding, layout.width.padding
    row_weights = np.repeat(tap_weights[:, None, :], layout.ow, axis=1)  # (taps, OW, C), as in the forward

    def block(sample_block, samples, channels, padded):
        n, c = samples.stop - samples.start, channels.stop - channels.start
        gy_block = np.empty((n, layout.oh, layout.ow, c), dtype=gy.dtype)
        gy_block[...] = gy[samples, channels].transpose(0, 2, 3, 1)
        if partial is not None:
            _fill_channels_last(layout, x[samples, channels], padded)
            for k, (rows, cols) in layout.taps:
                window = padded[:n, rows, cols, :c]
                partial[sample_block, k, channels] = np.einsum("nhwc,nhwc->c", gy_block, window)
        if grad_x is not None:
            gradient = np.zeros((n, layout.padded_h, layout.padded_w, c), dtype=gy.dtype)
            product = np.empty_like(gy_block)
            for k, (rows, cols) in layout.taps:
                np.multiply(gy_block, row_weights[k, :, channels], out=product)
                window = gradient[:, rows, cols]
                np.add(window, product, out=window)
            grad_x[samples, channels, : layout.input_h, : layout.input_w] = \
                gradient[:, top : top + layout.input_h, left : left + layout.input_w].transpose(0, 3, 1, 2)
    return block


# --- the kernels ----------------------------------------------------------------------
def _tap_weights(weight, dtype):
    """(C, 1, KH, KW) → (KH·KW, C): one row of per-channel weights per tap."""
    c, _, kh, kw = weight.shape
    return weight.reshape(c, kh * kw).T.astype(dtype)


# Each layout's block work, built once per call: forward(layout, x, tap_weights, y),
# backward(layout, gy, x, tap_weights, grad_x or None, partial weight gradients or None).
FORWARD = {"shifted": _shifted_forward, "planes": _planes_forward, "channels_last": _channels_last_forward}
BACKWARD = {"shifted": _shifted_backward, "planes": _planes_backward,
            "channels_last": _channels_last_backward}


def depthwise_conv2d_forward(x, weight, stride, padding, dilation, out_size):
    """y[n, c] = Σ_ij weight[c, 0, i, j] · x_padded[n, c, oh·s + i·d, ow·s + j·d];  weight (C, 1, KH, KW)."""
    layout = _Layout(x.shape, weight.shape, stride, padding, dilation, tuple(out_size))
    tap_weights = _tap_weights(weight, x.dtype)
    y = np.empty((*x.shape[:2], *out_size), dtype=x.dtype)
    if not layout.taps:  # every tap reads only padding
        y[...] = 0
        return y
    layout.run_blocks(x.dtype, FORWARD[layout.kind](layout, x, tap_weights, y))
    return y


def depthwise_conv2d_backward(gy, x, weight, stride, padding, dilation, need_x=True, need_weight=True):
    """Gradients of depthwise_conv2d_forward: (grad_x or None, grad_weight or None).

    grad_x:      every x_padded value read by tap (i, j) gets back gy · w[c, 0, i, j]
                 (added into the same slices the forward read);
    grad_weight: ∂L/∂w[c, 0, i, j] = Σ_{n, oh, ow} gy · (the slice tap (i, j) read).
    """
    layout = _Layout(x.shape, weight.shape, stride, padding, dilation, tuple(gy.shape[2:]))
    tap_weights = _tap_weights(weight, gy.dtype)
    grad_x = partial = None
    if need_x:  # input pixels no tap reads get no gradient
        allocate = np.empty if layout.covers_input(x.shape) else np.zeros
        grad_x = allocate(x.shape, dtype=gy.dtype)
    if need_weight:
        # One slot per block of samples, summed in a fixed order below: the same sum on one thread or two.
        partial = np.zeros((layout.sample_blocks, *tap_weights.shape), dtype=gy.dtype)
    if layout.taps:
        layout.run_blocks(gy.dtype, BACKWARD[layout.kind](layout, gy, x, tap_weights, grad_x, partial))
    grad_weight = None if partial is None else partial.sum(axis=0).T.reshape(weight.shape)
    return grad_x, grad_weight
