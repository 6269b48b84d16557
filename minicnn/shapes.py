"""Shape arithmetic of sliding windows: how long an axis is after a conv or a pool.

Plain integers in and out, the same on every backend, so it sits on the bottom
floor: the kernels (im2col, pooling), the functions (conv2d, max_pool2d) and
the models (checking an input is large enough) all import it downward.
"""
__all__ = ["conv_output_size", "is_depthwise", "winograd_bytes_per_image", "winograd_tiles"]


def conv_output_size(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """Output length along one axis: floor((size + 2p − d(k−1) − 1) / s) + 1.

    With ``ceil_mode`` the division rounds up, but (as in PyTorch) a last window
    that would start in the right padding is dropped.  A result below 1 means
    the window does not fit.

    >>> conv_output_size(224, kernel=11, stride=4, padding=2)   # AlexNet's conv1
    55
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def is_depthwise(in_channels, out_channels, groups):
    """One filter per channel, nothing mixed across channels: groups == in_channels == out_channels."""
    return groups == in_channels == out_channels


def winograd_tiles(out_size):
    """Winograd F(2×2, 3×3) tiles per axis: each covers 2 outputs; an odd size gets a half-empty last tile."""
    return tuple((size + 1) // 2 for size in out_size)


def winograd_bytes_per_image(x_shape, weight_shape, out_size, itemsize):
    """Winograd's transformed input and output for one image: 16 values per tile and channel, in and out.

    Each row of TW tiles carries one junk tile (see minicnn/backend/cpu/winograd.py), hence TW + 1.
    """
    th, tw = winograd_tiles(out_size)
    return 16 * (x_shape[1] + weight_shape[0]) * th * (tw + 1) * itemsize
