"""Pooling kernels: max, average and adaptive average over (N, C, H, W) arrays.

The one idea: a pooling window is a row window times a column window, so a max
(or a sum) over KH×KW values is a max over KW columns, then over KH rows.  Along
one axis, kernel offset ("tap") t of output o reads input o·stride − padding +
t·dilation: for all outputs at once, one strided slice (``_taps``).  No padded
copy, no column buffer, 3 + 3 passes for a 3×3 window instead of 9; taps that
land in the padding are skipped, so max-pool padding acts as −inf and average-
pool padding as 0.  Max pooling carries the winning offset i·KW + j along; its
backward scatter-adds each gradient there.  Average pooling's backward spreads
gy / divisor back over the same taps.  Adaptive average pooling is two small
matmuls (plain average pooling when its bins are all one size).  The (n, c)
planes go in blocks that keep their temporaries in L2, shared between threads.
"""
from minicnn.backend.cpu.threads import parallel_blocks
from minicnn.device import get_array_module

__all__ = [
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "max_pool2d_input_indices",
]

# Input bytes per block of planes: small enough for its temporaries to stay in L2, large enough
# that NumPy's per-call overhead (Python, under one GIL for all threads) stays small next to the work.
# Measured on two cores: 2^20 is best, 2^18 already loses the second thread to the GIL.
BLOCK_BYTES = 1 << 20


# --- planes, blocks and taps ---------------------------------------------------
def _plane_order(array):
    """The axis order, (N, C, H, W) or (C, N, H, W), in which the planes of ``array`` follow one another.

    Conv outputs are channel-major views, so reading planes in memory order (and building the
    outputs in that order too) needs no copy.
    """
    return (1, 0, 2, 3) if array.strides[1] > array.strides[0] else (0, 1, 2, 3)


def _as_planes(array, order):
    """(N, C, H, W) → (P, H, W), planes in ``order``: a view unless the layout forbids it."""
    return array.transpose(order).reshape(-1, *array.shape[2:])


def _from_planes(planes, order, batch_shape):
    """(P, H, W) in ``order`` → an (N, C, H, W) view."""
    first, second = (batch_shape[axis] for axis in order[:2])
    return planes.reshape(first, second, *planes.shape[1:]).transpose(order)


def _planes_per_block(planes, plane_bytes):
    return max(1, min(planes, BLOCK_BYTES // max(plane_bytes, 1)))


def _taps(size, out, kernel, stride, padding, dilation):
    """Per kernel offset t along one axis: (t, outputs, phase, inputs).  Output o reads input
    o·stride − padding + t·dilation; for the outputs whose input lies in [0, size), those inputs
    are the slice ``inputs`` of one stride phase of the axis (``_phases``).

    An offset that meets no input at all (wholly in the padding or the ceil_mode overhang) is left out.
    """
    taps = []
    for tap in range(kernel):
        shift = tap * dilation - padding  # the input output 0 would read
        first = max(0, -(shift // stride))  # ceil(−shift / stride): the first output inside the input
        stop = min(out, (size - 1 - shift) // stride + 1)
        if first < stop:
            start, phase = divmod(first * stride + shift, stride)
            taps.append((tap, slice(first, stop), phase, slice(start, start + stop - first)))
    return taps


def _phases(values, axis, stride, taps=(), copy=False):
    """``values`` split along ``axis`` by position mod stride: phase r holds r, r + stride, r + 2·stride, ...

    Views cost nothing; copied (the phases the taps use), every tap reads a contiguous slice, which
    NumPy's loops run several times faster than a strided one.
    """
    xp = get_array_module(values)
    used = {phase for _, _, phase, _ in taps}
    phases = [values[_along(axis, slice(phase, None, stride))] for phase in range(stride)]
    return [xp.ascontiguousarray(view) if copy and phase in used else view for phase, view in enumerate(phases)]


def _along(axis, index):
    """An index tuple that applies ``index`` to ``axis`` and takes everything before it."""
    return (slice(None),) * axis + (index,)


def _first_tap(phases, axis, taps, out, fill):
    """Start a running reduction: out = the first tap's inputs where it reaches, ``fill`` elsewhere."""
    if not taps:
        out.fill(fill)
        return
    _, outputs, phase, inputs = taps[0]
    out[_along(axis, slice(0, outputs.start))] = fill
    out[_along(axis, slice(outputs.stop, None))] = fill
    out[_along(axis, outputs)] = phases[phase][_along(axis, inputs)]


# --- max pooling -------------------------------------------------------------
def _max_over_taps(phases, axis, taps, best, offset_dtype, offset_step=1, carried_phases=None):
    """Running max over one axis's taps into ``best``; returns the first maximum's offset per output.

    The offset of tap t is t·offset_step, plus, in the row pass, the column offset that the column
    pass found in that row (``carried_phases``, phased as the values are).  Taps come in increasing
    order, so a later winner always has the larger offset: "set where it wins" is a maximum.
    """
    xp = get_array_module(best)
    _first_tap(phases, axis, taps, best, -xp.inf)
    offsets = xp.zeros(best.shape, dtype=offset_dtype)
    for position, (tap, outputs, phase, inputs) in enumerate(taps):
        offset = offset_dtype.type(tap * offset_step)
        if carried_phases is not None:
            offset = carried_phases[phase][_along(axis, inputs)] + offset
        if position == 0:
            offsets[_along(axis, outputs)] = offset
            continue
        running, candidate = best[_along(axis, outputs)], phases[phase][_along(axis, inputs)]
        wins = (candidate > running).view(xp.uint8)  # strict: of equal maxima the first keeps its place
        xp.maximum(running, candidate, out=running)  # propagates NaN, as max() does
        winners = offsets[_along(axis, outputs)]
        xp.maximum(winners, wins * offset, out=winners)
    return offsets


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, out_size):
    """Max over every window; returns (y, window_argmax), both (N, C, OH, OW).

    ``window_argmax`` (int32) is the winning offset i·KW + j inside the window;
    on ties the first in row-major order wins, as in PyTorch.  Padding is −inf,
    so a padded position never beats a real value (0-padding would, for
    negative inputs).  A dilated window lying wholly in the padding gives −inf,
    as in PyTorch, and passes no gradient.  A window holding NaN gives NaN with
    offset 0 (the CUDA kernel does the same).

    Separable: a column pass (B, H, W) → (B, H, OW) keeps each row's best column
    offset j, then a row pass → (B, OH, OW) picks the best row i and adds i·KW to
    the j it carries from that row.  The first maximum of the window is the first
    maximum of the first row holding it, so ties come out as in row-major order.
    """
    xp = get_array_module(x)
    height, width = x.shape[2:]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    row_taps = _taps(height, out_size[0], kh, sh, ph, dh)
    column_taps = _taps(width, out_size[1], kw, sw, pw, dw)
    offset_dtype = xp.min_scalar_type(kh * kw - 1)  # uint8 up to 16×16 windows: cheap passes
    order = _plane_order(x)
    planes = _as_planes(x, order)  # (P, H, W)
    y = xp.empty((len(planes), *out_size), dtype=x.dtype)
    window_argmax = xp.empty(y.shape, dtype=xp.int32)

    def pool(first, stop):
        columns = _phases(planes[first:stop], 2, sw, column_taps, copy=True)
        column_max = xp.empty((stop - first, height, out_size[1]), dtype=x.dtype)  # (B, H, OW)
        column_offsets = _max_over_taps(columns, 2, column_taps, column_max, offset_dtype)
        offsets = _max_over_taps(_phases(column_max, 1, sh), 1, row_taps, y[first:stop], offset_dtype,
                                 kw, _phases(column_offsets, 1, sh))
        # A window that is NaN, or has nothing above −inf, reports offset 0 (as the CUDA kernel does).
        offsets *= (y[first:stop] > -xp.inf).view(xp.uint8)
        window_argmax[first:stop] = offsets

    parallel_blocks(len(planes), _planes_per_block(len(planes), height * width * x.itemsize), pool, height * width)
    return _from_planes(y, order, x.shape), _from_planes(window_argmax, order, x.shape)


def max_pool2d_backward(gy, window_argmax, x_shape, kernel_size, stride, padding, dilation):
    """Route each output gradient to its window's maximum; overlapping windows add up.

    A scatter-add (``add.at``: windows that overlap can share a maximum) to the flat
    position of each maximum in its plane.  A maximum is always a real input, except
    in a window with nothing above −inf: its offset 0, the top-left corner, may lie in
    the padding.  Such windows sit in the first rows or columns of the output, and
    their gradient is dropped.
    """
    xp = get_array_module(gy)
    height, width = x_shape[2:]
    out_h, out_w = gy.shape[2:]
    kw, (sh, sw), (ph, pw), (dh, dw) = kernel_size[1], stride, padding, dilation
    order = _plane_order(gy)
    gy_planes = _as_planes(gy, order)  # (P, OH, OW)
    argmax_planes = _as_planes(window_argmax, order)
    gx = xp.empty((len(gy_planes), height, width), dtype=gy.dtype)
    block = _planes_per_block(len(gy_planes), height * width * gy.itemsize)
    # Flat position of each window's top-left corner in a block of planes: (block, OH, OW).
    corners = (xp.arange(out_h)[:, None] * sh - ph) * width + xp.arange(out_w) * sw - pw
    corners = xp.arange(block)[:, None, None] * (height * width) + corners
    # Windows whose corner lies in the top / left padding: the first ceil(p / s) rows / columns.
    border = (xp.s_[:, : -(-ph // sh)], xp.s_[:, :, : -(-pw // sw)])

    def scatter(first, stop):
        argmax = argmax_planes[first:stop]
        # Offset (i, j) = (a // KW, a % KW) lies i·DH·W + j·DW past the corner = a·DW + i·(DH·W − KW·DW).
        target = corners[: stop - first] + (argmax if dw == 1 else argmax * dw)
        target += (argmax // kw) * (dh * width - kw * dw)
        grad = gy_planes[first:stop]
        if ph or pw:
            grad = grad.copy()
            for strip in border:
                in_padding = argmax[strip] == 0
                grad[strip][in_padding] = 0
                target[strip][in_padding] = 0  # any position in the block: it adds 0
        out = gx[first:stop]
        out.fill(0)
        xp.add.at(out.reshape(-1), target.reshape(-1), grad.reshape(-1))

    parallel_blocks(len(gy_planes), block, scatter, height * width)
    return _from_planes(gx, order, x_shape)


def max_pool2d_input_indices(window_argmax, x_shape, kernel_size, stride, padding, dilation):
    """PyTorch's ``return_indices``: the flat position h·W + w of each maximum in its input plane."""
    xp = get_array_module(window_argmax)
    width, kw = x_shape[3], kernel_size[1]
    out_h, out_w = window_argmax.shape[2:]
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    row = xp.arange(out_h, dtype=xp.int64)[:, None] * sh - ph + (window_argmax // kw) * dh
    col = xp.arange(out_w, dtype=xp.int64)[None, :] * sw - pw + (window_argmax % kw) * dw
    return row * width + col


# --- average pooling ---------------------------------------------------------
def _window_counts(xp, size, out, kernel, stride, padding, count_include_pad):
    """How many positions each output's window averages over, along one axis.

    PyTorch's rule: a window is clipped to the padded input [−p, size + p)
    (ceil_mode windows may overhang it); with ``count_include_pad`` the padding
    counts, otherwise only the real input [0, size) does.
    """
    start = xp.arange(out, dtype=xp.int64) * stride - padding
    end = xp.minimum(start + kernel, size + padding)
    if not count_include_pad:
        start, end = xp.maximum(start, 0), xp.minimum(end, size)
    return end - start


def _avg_pool_divisor(xp, x_shape, out_size, kernel_size, stride, padding, count_include_pad,
                      divisor_override, dtype):
    """(OH, OW) divisors, or the one ``divisor_override`` for every window."""
    if divisor_override is not None:
        return xp.asarray(divisor_override, dtype=dtype)
    counts_h, counts_w = (
        _window_counts(xp, size, out, k, s, p, count_include_pad)
        for size, out, k, s, p in zip(x_shape[2:], out_size, kernel_size, stride, padding)
    )
    return (counts_h[:, None] * counts_w[None, :]).astype(dtype)


def _sum_over_taps(phases, axis, taps, out):
    """out = the sum over one axis's taps (a tap that does not reach an output adds 0: zero padding)."""
    _first_tap(phases, axis, taps, out, 0)
    for _, outputs, phase, inputs in taps[1:]:
        out[_along(axis, outputs)] += phases[phase][_along(axis, inputs)]


def _spread_over_taps(grad, axis, taps, out, stride):
    """The adjoint of ``_sum_over_taps``: every tap's input gets its output's gradient; overlaps add."""
    phases = _phases(out, axis, stride)  # views: the writes land in ``out``
    # Taps less than a stride apart never share an input; if they also cover the axis, the
    # windows tile it (stride = kernel, no padding, no remainder): one plain write per input.
    tiling = (bool(taps) and taps[-1][0] - taps[0][0] < stride
              and sum(inputs.stop - inputs.start for *_, inputs in taps) == out.shape[axis])
    if not tiling:
        out.fill(0)
    for _, outputs, phase, inputs in taps:
        if tiling:
            phases[phase][_along(axis, inputs)] = grad[_along(axis, outputs)]
        else:
            phases[phase][_along(axis, inputs)] += grad[_along(axis, outputs)]


def avg_pool2d_forward(x, kernel_size, stride, padding, out_size, count_include_pad=True, divisor_override=None):
    """Mean over every window (padding counts as zeros); returns (N, C, OH, OW).

    Separable, as max pooling: column sums (B, H, OW), then row sums (B, OH, OW), then the divisor.
    """
    xp = get_array_module(x)
    height, width = x.shape[2:]
    row_taps, column_taps = (_taps(size, out, k, s, p, 1)
                             for size, out, k, s, p in zip(x.shape[2:], out_size, kernel_size, stride, padding))
    divisor = _avg_pool_divisor(xp, x.shape, out_size, kernel_size, stride, padding,
                                count_include_pad, divisor_override, x.dtype)
    order = _plane_order(x)
    planes = _as_planes(x, order)
    y = xp.empty((len(planes), *out_size), dtype=x.dtype)

    def pool(first, stop):
        column_sums = xp.empty((stop - first, height, out_size[1]), dtype=x.dtype)
        _sum_over_taps(_phases(planes[first:stop], 2, stride[1], column_taps, copy=True), 2, column_taps,
                       column_sums)
        _sum_over_taps(_phases(column_sums, 1, stride[0]), 1, row_taps, y[first:stop])
        y[first:stop] /= divisor

    parallel_blocks(len(planes), _planes_per_block(len(planes), height * width * x.itemsize), pool, height * width)
    return _from_planes(y, order, x.shape)


def avg_pool2d_backward(gy, x_shape, kernel_size, stride, padding, count_include_pad=True, divisor_override=None):
    """Every input in a window receives gy / divisor; overlapping windows add their shares."""
    xp = get_array_module(gy)
    height, width = x_shape[2:]
    out_size = gy.shape[2:]
    row_taps, column_taps = (_taps(size, out, k, s, p, 1)
                             for size, out, k, s, p in zip(x_shape[2:], out_size, kernel_size, stride, padding))
    divisor = _avg_pool_divisor(xp, x_shape, out_size, kernel_size, stride, padding,
                                count_include_pad, divisor_override, gy.dtype)
    order = _plane_order(gy)
    share = _as_planes(gy / divisor, order)  # (P, OH, OW)
    gx = xp.empty((len(share), height, width), dtype=gy.dtype)

    def spread(first, stop):
        row_shares = xp.empty((stop - first, height, out_size[1]), dtype=gy.dtype)  # (B, H, OW)
        _spread_over_taps(share[first:stop], 1, row_taps, row_shares, stride[0])
        _spread_over_taps(row_shares, 2, column_taps, gx[first:stop], stride[1])

    parallel_blocks(len(share), _planes_per_block(len(share), height * width * gy.itemsize), spread, height * width)
    return _from_planes(gx, order, x_shape)


# --- adaptive average pooling ------------------------------------------------
def _adaptive_average_matrix(xp, in_size, out_size, dtype):
    """(out_size, in_size): row i averages inputs floor(i·in/out) … ceil((i+1)·in/out) − 1."""
    rows = xp.arange(out_size, dtype=xp.int64)[:, None]
    start = (rows * in_size) // out_size
    end = -((-(rows + 1) * in_size) // out_size)  # ceil division
    position = xp.arange(in_size, dtype=xp.int64)[None, :]
    inside = (position >= start) & (position < end)
    return (inside / (end - start)).astype(dtype)


def _apply_separable(xp, x, rows_matrix, cols_matrix):
    """rows_matrix · x · cols_matrixᵀ for every (n, c) plane, as two plain 2-D matmuls.

    x is (N, C, H, W), rows_matrix (P, H), cols_matrix (Q, W); returns (N, C, P, Q).
    """
    n, c, h, w = x.shape
    p, q = rows_matrix.shape[0], cols_matrix.shape[0]
    along_w = x.reshape(n * c * h, w) @ cols_matrix.T  # (N·C·H, Q)
    along_h = xp.tensordot(rows_matrix, along_w.reshape(n * c, h, q), axes=([1], [1]))  # (P, N·C, Q)
    return along_h.transpose(1, 0, 2).reshape(n, c, p, q)


def _equal_bins(in_size, out_size):
    """The (KH, KW) of the bins when OH divides H and OW divides W (then plain average pooling), else None."""
    if all(size % out == 0 for size, out in zip(in_size, out_size)):
        return tuple(size // out for size, out in zip(in_size, out_size))
    return None


def adaptive_avg_pool2d_forward(x, out_size):
    """Average over PyTorch's adaptive windows, any (OH, OW) (even larger than H, W)."""
    xp = get_array_module(x)
    if tuple(out_size) == (1, 1):
        # Global average pooling (ResNet, MobileNet, GoogLeNet heads): one plain mean.
        return x.mean(axis=(2, 3), keepdims=True)
    bins = _equal_bins(x.shape[2:], out_size)
    if bins:  # VGG's 14×14 → 7×7: average pooling's passes, as fast, and no BLAS threads to stall
        return avg_pool2d_forward(x, bins, bins, (0, 0), tuple(out_size))
    a_h = _adaptive_average_matrix(xp, x.shape[2], out_size[0], x.dtype)
    a_w = _adaptive_average_matrix(xp, x.shape[3], out_size[1], x.dtype)
    return _apply_separable(xp, x, a_h, a_w)


def adaptive_avg_pool2d_backward(gy, x_shape):
    """dx = A_hᵀ · gy · A_w: the transpose of the forward's linear map."""
    xp = get_array_module(gy)
    if gy.shape[2:] == (1, 1):
        # Every input of a plane shares its mean's gradient equally: a broadcast view.
        return xp.broadcast_to(gy / gy.dtype.type(x_shape[2] * x_shape[3]), x_shape)
    bins = _equal_bins(x_shape[2:], gy.shape[2:])
    if bins:
        return avg_pool2d_backward(gy, x_shape, bins, bins, (0, 0))
    a_h = _adaptive_average_matrix(xp, x_shape[2], gy.shape[2], gy.dtype)
    a_w = _adaptive_average_matrix(xp, x_shape[3], gy.shape[3], gy.dtype)
    return _apply_separable(xp, gy, a_h.T, a_w.T)
