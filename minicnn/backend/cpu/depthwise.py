"""Direct depthwise convolution: each channel convolved with its own KH×KW filter.

im2col would copy every input KH·KW times to feed a matmul whose inner
dimension is only KH·KW, so depthwise conv (MobileNet's workhorse) instead
accumulates one shifted, scaled view of the input per kernel offset.
"""
from minicnn.device import get_array_module

__all__ = ["depthwise_conv2d_forward", "depthwise_conv2d_backward"]


def _padded(x, padding):
    xp = get_array_module(x)
    ph, pw = padding
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    padded = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    padded[:, :, ph : ph + h, pw : pw + w] = x
    return padded


def _window(padded, i, j, stride, dilation, out_size):
    """The input values that kernel offset (i, j) meets at every output pixel: (N, C, OH, OW)."""
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_size
    top, left = i * dh, j * dw
    return padded[:, :, top : top + sh * (oh - 1) + 1 : sh, left : left + sw * (ow - 1) + 1 : sw]


def depthwise_conv2d_forward(x, weight, stride, padding, dilation, out_size):
    """y[n, c] = Σ_ij weight[c, 0, i, j] · x_padded[n, c, oh·s + i·d, ow·s + j·d];  weight (C, 1, KH, KW)."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    padded = _padded(x, padding)
    y = xp.zeros((n, c, *out_size), dtype=x.dtype)
    for i in range(weight.shape[2]):
        for j in range(weight.shape[3]):
            y += _window(padded, i, j, stride, dilation, out_size) * weight[:, 0, i, j, None, None]
    return y


def depthwise_conv2d_backward(gy, x, weight, stride, padding, dilation, need_x=True, need_weight=True):
    """Gradients of depthwise_conv2d_forward: (grad_x or None, grad_weight or None)."""
    xp = get_array_module(gy)
    out_size = gy.shape[2:]
    padded = _padded(x, padding)
    grad_padded = xp.zeros(padded.shape, dtype=gy.dtype) if need_x else None
    grad_weight = xp.zeros(weight.shape, dtype=gy.dtype) if need_weight else None
    for i in range(weight.shape[2]):
        for j in range(weight.shape[3]):
            if need_x:
                _window(grad_padded, i, j, stride, dilation, out_size)[...] += gy * weight[:, 0, i, j, None, None]
            if need_weight:
                grad_weight[:, 0, i, j] = xp.einsum("nchw,nchw->c", gy, _window(padded, i, j, stride, dilation,
                                                                               out_size))
    grad_x = None
    if need_x:
        ph, pw = padding
        grad_x = grad_padded[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
    return grad_x, grad_weight
