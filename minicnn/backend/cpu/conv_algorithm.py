"""Which convolution algorithm the CPU runs for a layer: one selection point, like cuDNN's.

Three algorithms compute the same convolution:
    "im2col"    every window copied into a column, then one matrix product (functions/conv.py);
    "winograd"  F(2×2, 3×3), 2.25× fewer multiplications; 3×3, stride 1, dilation 1, groups 1 only
                (winograd.py);
    "direct"    depthwise conv as KH·KW shifted multiply-adds, no product at all (depthwise.py).
``conv2d_algorithm`` picks one per layer shape.  By default ("auto") it follows a rule
written from ``benchmarks/bench_ops.py``'s per-algorithm table on a 2-core machine
(see AUTO_RULE below); ``set_conv_algorithm("im2col")`` forces one everywhere it
applies, to compare them, and ``using_conv_algorithm`` does the same for a ``with`` block.
A forced algorithm that cannot compute a layer (Winograd on a 5×5 filter) falls back
to the one "auto" would pick there, as cuDNN does.
"""
import contextlib

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


def is_depthwise(x_shape, weight_shape, groups):
    return groups == x_shape[1] == weight_shape[0] and weight_shape[1] == 1


def auto_rule(x_shape, weight_shape, stride, dilation, groups):
    """AUTO_RULE: depthwise → direct; Winograd where its transforms cost less than im2col's copies; else im2col.

    Winograd's saving is in the products, its cost in memory passes over 4× the input.
    On the benchmark's shapes it won only on large maps with few channels, where
    im2col's 9× column buffer no longer fits any cache (VGG conv1_2, conv2_2 at 112², 56²).
    """
    if is_depthwise(x_shape, weight_shape, groups):
        return "direct"
    if winograd_applies(weight_shape, stride, dilation, groups):
        height, width = x_shape[2:]
        if height * width >= 56 * 56 and x_shape[1] <= 128:
            return "winograd"
    return "im2col"


def conv2d_algorithm(x_shape, weight_shape, stride, dilation, groups):
    """The algorithm the CPU uses for this convolution: "im2col", "winograd" or "direct"."""
    choice = _setting
    if choice == "winograd" and winograd_applies(weight_shape, stride, dilation, groups):
        return "winograd"
    if choice == "direct" and is_depthwise(x_shape, weight_shape, groups):
        return "direct"
    if choice == "im2col":
        return "im2col"
    return auto_rule(x_shape, weight_shape, stride, dilation, groups)
