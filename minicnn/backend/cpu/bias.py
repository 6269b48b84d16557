"""Bias add over a channel axis, and the per-channel sum that is its gradient.

conv2d's channel-major output (OC, N, OH, OW) takes its bias along axis 0, a
depthwise output (N, C, H, W) along axis 1, linear's (..., F) along the last;
the bias gradient sums the upstream gradient over every other axis.
"""
__all__ = ["bias_add", "channel_sum"]


def bias_add(y, bias, axis):
    """y += bias along ``axis``, in place; returns y."""
    shape = [1] * y.ndim
    shape[axis % y.ndim] = bias.shape[0]
    y += bias.reshape(shape)
    return y


def channel_sum(gy, axis):
    """Σ gy over every axis but ``axis``: the gradient of a bias added along ``axis``."""
    return gy.sum(axis=tuple(a for a in range(gy.ndim) if a != axis % gy.ndim))
