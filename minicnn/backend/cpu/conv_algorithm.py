"""Which convolution algorithm the CPU runs for a layer: one selection point, like cuDNN's.

Three algorithms compute the same convolution:
    "im2col"    every window copied into a column, then one matrix product (functions/conv.py);
    "winograd"  F(2×2, 3×3), 2.25× fewer multiplications; 3×3, stride 1, dilation 1, groups 1 only
                (winograd.py);
    "direct"    depthwise conv as KH·KW shifted multiply-adds, no product at all (depthwise.py).
``conv2d_algorithm`` picks one per layer shape.  By default ("auto") it follows a rule
written from timing the two on VGG's layers on a 2-core machine (auto_rule below;
``benchmarks/bench_ops.py`` prints the per-algorithm table); ``set_conv_algorithm("im2col")`` forces one everywhere it
applies, to compare them, and ``using_conv_algorithm`` does the same for a ``with`` block.
A forced algorithm that cannot compute a layer (Winograd on a 5×5 filter) falls back
to the one "auto" would pick there, as cuDNN does.
"""
import contextlib

from minicnn.shapes import is_depthwise

__all__ = ["CONV_ALGORITHMS", "conv2d_algorithm", "get_conv_algorithm", "set_conv_algorithm",
           "using_conv_algorithm", "winograd_applies"]

CONV_ALGORITHMS = ("im2col", "winograd", "direct")
_setting = "auto"


def set_conv_algorithm(name):
    """Use ``name`` ("auto", "im2col", "winograd" or "direct") for every CPU convolution it can compute."""
    global _setting
    if not isinstance(name, str):
        raise TypeError(f"set_conv_algorithm: name must be a str, got {type(name).__name__}")
    if name not in ("auto", *CONV_ALGORITHMS):
        raise ValueError(f"set_conv_algorithm: expected one of {('auto', *CONV_ALGORITHMS)}, got {name!r}")
    _setting = name


def get_conv_algorithm():
    """The current setting: "auto" unless set_conv_algorithm chose one."""
    return _setting


@contextlib.contextmanager
def using_conv_algorithm(name):
    """``with using_conv_algorithm("winograd"): ...`` sets the algorithm for the block, then restores it."""
    previous = get_conv_algorithm()
    set_conv_algorithm(name)
    try:
        yield
    finally:
        set_conv_algorithm(previous)


def winograd_applies(weight_shape, stride, dilation, groups):
    """F(2×2, 3×3) computes exactly a 3×3 filter sliding one pixel at a time over ungrouped channels."""
    return tuple(weight_shape[2:]) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) \
        and groups == 1


def auto_rule(x_shape, weight_shape, stride, dilation, groups):
    """AUTO_RULE: depthwise → direct; Winograd where it measured faster than im2col; else im2col.

    Winograd saves multiplications and pays in memory passes over its transforms.  Timed
    against each other, alternating, on a 2-core AVX-512 machine (forward + backward, float32,
    speed of Winograd over im2col, batch × channels × map):
        8×64×112² 1.06   8×128×56² 1.05   8×256×28² 1.11   8×512×14² 1.11
        32×64×32² 0.88   32×128×16² 0.82  32×256×8² 0.96
    so Winograd on large maps, or on 14² and up once there are 256 channels to multiply.
    """
    if is_depthwise(x_shape[1], weight_shape[0], groups):
        return "direct"
    if winograd_applies(weight_shape, stride, dilation, groups):
        channels, side = x_shape[1], min(x_shape[2:])
        if side >= 56 or (channels >= 256 and side >= 14):
            return "winograd"
    return "im2col"


def conv2d_algorithm(x_shape, weight_shape, stride, dilation, groups):
    """The algorithm the CPU uses for this convolution: "im2col", "winograd" or "direct"."""
    choice = _setting
    if choice == "winograd" and winograd_applies(weight_shape, stride, dilation, groups):
        return "winograd"
    if choice == "direct" and is_depthwise(x_shape[1], weight_shape[0], groups):
        return "direct"
    if choice == "im2col":
        return "im2col"
    return auto_rule(x_shape, weight_shape, stride, dilation, groups)
