"""Sliding windows as a matrix: im2col and its adjoint col2im (NumPy reference kernels).

A convolution is a matrix product once every receptive field is laid out as a
column.  The column buffer is ordered (C, KH, KW, N, OH, OW): reshaped to
(C·KH·KW, N·OH·OW) it is the right operand of ``weight @ cols`` for the whole
batch at once, and per group it is a contiguous slab, so grouped convolution is
one batched matmul.  The copy is done with one strided slice per kernel offset
(KH·KW slices), never with a loop over pixels.
"""
from minicnn.device import get_array_module
from minicnn.shapes import conv_output_size  # shape arithmetic, shared with the functions and the models

__all__ = ["conv_output_size", "im2col", "col2im"]  # the helpers below are NumPy-side building blocks


def _window_extent(out, kernel, stride, dilation):
    """Rows (or columns) of padded input that ``out`` windows touch."""
    return (out - 1) * stride + dilation * (kernel - 1) + 1


def pad_channels_first(x, kernel_size, stride, padding, dilation, out_size, pad_value=0.0):
    """``x`` (N, C, H, W) as (C, N, H', W'), with ``pad_value`` wherever a window reaches outside x.

    Channels first because that is the layout the column buffer (and the conv
    output) uses; ceil_mode windows may overhang the bottom/right padding, so
    the border grows to hold them too.  Without any padding this is a view.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel_size, stride, padding, dilation, out_size
    extra_h = max(_window_extent(oh, kh, sh, dh) - h - ph, 0)
    extra_w = max(_window_extent(ow, kw, sw, dw) - w - pw, 0)
    channels_first = x.transpose(1, 0, 2, 3)  # (C, N, H, W): a view, copied once below
    if not (ph or pw or extra_h or extra_w):
        return channels_first
    padded = xp.full((c, n, ph + h + extra_h, pw + w + extra_w), pad_value, dtype=x.dtype)
    padded[:, :, ph : ph + h, pw : pw + w] = channels_first
    return padded


def zeros_padded(x_shape, kernel_size, stride, padding, dilation, out_size, dtype, xp):
    """A zero (C, N, H', W') buffer shaped like ``pad_channels_first``'s, to add window gradients into."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel_size, stride, padding, dilation, out_size
    padded_h = max(ph + h, _window_extent(oh, kh, sh, dh))
    padded_w = max(pw + w, _window_extent(ow, kw, sw, dw))
    return xp.zeros((c, n, padded_h, padded_w), dtype=dtype)


def unpad_channels_first(padded, x_shape, padding):
    """The inverse view of ``pad_channels_first``: drop the border, back to (N, C, H, W)."""
    h, w = x_shape[2:]
    ph, pw = padding
    return padded[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3)


def window(padded, i, j, stride, dilation, out_size):
    """The (C, N, OH, OW) values kernel offset (i, j) meets at every output pixel: a strided view."""
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_size
    top, left = i * dh, j * dw
    return padded[:, :, top : top + sh * (oh - 1) + 1 : sh, left : left + sw * (ow - 1) + 1 : sw]


def im2col(x, kernel_size, stride, padding, dilation, out_size, pad_value=0.0):
    """Gather every window of ``x`` (N, C, H, W) into cols (C, KH, KW, N, OH, OW).

    cols[c, i, j, n, oh, ow] = x[n, c, oh·sh − ph + i·dh, ow·sw − pw + j·dw], or
    ``pad_value`` where that position lies outside x (0 for conv, −inf for max-pool).
    """
    xp = get_array_module(x)
    n, c = x.shape[:2]
    kh, kw = kernel_size
    padded = pad_channels_first(x, kernel_size, stride, padding, dilation, out_size, pad_value)
    cols = xp.empty((c, kh, kw, n, *out_size), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = window(padded, i, j, stride, dilation, out_size)
    return cols


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """Adjoint of im2col: add every column entry back to its input position.

    Windows overlap when stride < kernel, so contributions are summed; entries
    that fall into the padding are dropped.  Returns (N, C, H, W).
    """
    xp = get_array_module(cols)
    _, kh, kw, _, oh, ow = cols.shape
    padded = zeros_padded(x_shape, (kh, kw), stride, padding, dilation, (oh, ow), cols.dtype, xp)
    for i in range(kh):
        for j in range(kw):
            window(padded, i, j, stride, dilation, (oh, ow))[...] += cols[:, i, j]
    return unpad_channels_first(padded, x_shape, padding)
