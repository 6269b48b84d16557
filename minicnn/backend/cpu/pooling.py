"""Pooling kernels: max, average and adaptive average over (N, C, H, W) arrays.

Max and average pooling see their windows through ``im2col``: the column
buffer (C, KH, KW, N, OH, OW) holds window offset (i, j) of every output pixel
as one contiguous slab, so a pool is a reduction over the two kernel axes, and
its backward builds column gradients and lets ``col2im`` scatter them home.
Outputs are (N, C, OH, OW) views of channel-major (C, N, OH, OW) buffers, the
layout the next layer's im2col wants.

Adaptive average pooling is linear and separable, so it is two small matrix
products: y = A_h · x · A_wᵀ, where row i of A_h averages input rows
floor(i·H/OH) … ceil((i+1)·H/OH) − 1; its backward is dx = A_hᵀ · gy · A_w.
"""
from minicnn.backend.cpu.im2col import (
    col2im,
    im2col,
    pad_channels_first,
    unpad_channels_first,
    window,
    zeros_padded,
)
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


# --- max pooling -------------------------------------------------------------
def max_pool2d_forward(x, kernel_size, stride, padding, dilation, out_size):
    """Max over every window; returns (y, window_argmax), both (N, C, OH, OW).

    ``window_argmax`` (int32) is the winning offset i·KW + j inside the window;
    on ties the first in row-major order wins, as in PyTorch.  Padding is −inf,
    so a padded position never beats a real value (0-padding would, for
    negative inputs).  A dilated window lying wholly in the padding gives −inf,
    as in PyTorch, and passes no gradient.  A window holding NaN gives NaN with
    offset 0 (the CUDA kernel does the same).

    A running maximum over the KH·KW shifted views of the padded input: no
    column buffer, one comparison per kernel offset.
    """
    xp = get_array_module(x)
    kw = kernel_size[1]
    padded = pad_channels_first(x, kernel_size, stride, padding, dilation, out_size, pad_value=-xp.inf)
    y = window(padded, 0, 0, stride, dilation, out_size).copy()  # (C, N, OH, OW)
    window_argmax = xp.zeros(y.shape, dtype=xp.int32)
    for offset in range(1, kernel_size[0] * kw):
        candidate = window(padded, offset // kw, offset % kw, stride, dilation, out_size)
        xp.copyto(window_argmax, offset, where=candidate > y)  # strictly greater: the first maximum keeps a tie
        xp.maximum(y, candidate, out=y)  # propagates NaN, as max() does
    window_argmax[xp.isnan(y)] = 0
    return y.transpose(1, 0, 2, 3), window_argmax.transpose(1, 0, 2, 3)


def max_pool2d_backward(gy, window_argmax, x_shape, kernel_size, stride, padding, dilation):
    """Route each output gradient to its window's maximum; overlapping windows add up.

    For each kernel offset, the outputs whose maximum sat there add their
    gradient into that shifted view of a zero buffer (col2im's loop, without
    building the one-hot column buffer first).
    """
    xp = get_array_module(gy)
    kw = kernel_size[1]
    out_size = gy.shape[2:]
    gy_channels_first = gy.transpose(1, 0, 2, 3)  # (C, N, OH, OW)
    argmax_channels_first = window_argmax.transpose(1, 0, 2, 3)
    grad_padded = zeros_padded(x_shape, kernel_size, stride, padding, dilation, out_size, gy.dtype, xp)
    for offset in range(kernel_size[0] * kw):
        routed = gy_channels_first * (argmax_channels_first == offset)
        window(grad_padded, offset // kw, offset % kw, stride, dilation, out_size)[...] += routed
    return unpad_channels_first(grad_padded, x_shape, padding)


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


def avg_pool2d_forward(x, kernel_size, stride, padding, out_size, count_include_pad=True, divisor_override=None):
    """Mean over every window (padding counts as zeros); returns (N, C, OH, OW)."""
    xp = get_array_module(x)
    cols = im2col(x, kernel_size, stride, padding, (1, 1), out_size)  # (C, KH, KW, N, OH, OW)
    window_sums = cols.sum(axis=(1, 2))  # (C, N, OH, OW)
    divisor = _avg_pool_divisor(xp, x.shape, out_size, kernel_size, stride, padding,
                                count_include_pad, divisor_override, x.dtype)
    return (window_sums / divisor).transpose(1, 0, 2, 3)


def avg_pool2d_backward(gy, x_shape, kernel_size, stride, padding, count_include_pad=True, divisor_override=None):
    """Every input in a window receives gy / divisor; col2im adds the overlapping shares."""
    xp = get_array_module(gy)
    n, c = x_shape[:2]
    kh, kw = kernel_size
    out_size = gy.shape[2:]
    divisor = _avg_pool_divisor(xp, x_shape, out_size, kernel_size, stride, padding,
                                count_include_pad, divisor_override, gy.dtype)
    share = (gy / divisor).transpose(1, 0, 2, 3)  # (C, N, OH, OW)
    # One share per kernel offset: a broadcast view, never materialised.
    grad_cols = xp.broadcast_to(share[:, None, None], (c, kh, kw, n, *out_size))
    return col2im(grad_cols, x_shape, kernel_size, stride, padding, (1, 1))


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


def adaptive_avg_pool2d_forward(x, out_size):
    """Average over PyTorch's adaptive windows, any (OH, OW) (even larger than H, W)."""
    xp = get_array_module(x)
    if tuple(out_size) == (1, 1):
        # Global average pooling (ResNet, MobileNet, GoogLeNet heads): one plain mean.
        return x.mean(axis=(2, 3), keepdims=True)
    a_h = _adaptive_average_matrix(xp, x.shape[2], out_size[0], x.dtype)
    a_w = _adaptive_average_matrix(xp, x.shape[3], out_size[1], x.dtype)
    return _apply_separable(xp, x, a_h, a_w)


def adaptive_avg_pool2d_backward(gy, x_shape):
    """dx = A_hᵀ · gy · A_w: the transpose of the forward's linear map."""
    xp = get_array_module(gy)
    if gy.shape[2:] == (1, 1):
        # Every input of a plane shares its mean's gradient equally: a broadcast view.
        return xp.broadcast_to(gy / gy.dtype.type(x_shape[2] * x_shape[3]), x_shape)
    a_h = _adaptive_average_matrix(xp, x_shape[2], gy.shape[2], gy.dtype)
    a_w = _adaptive_average_matrix(xp, x_shape[3], gy.shape[3], gy.dtype)
    return _apply_separable(xp, gy, a_h.T, a_w.T)
