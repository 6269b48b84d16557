"""Argument checks shared by every op, layer and model: one rule and one message per kind of mistake.

An op checks its arguments once, where the user called it, and the error says three things: the op,
what it expected, what came (``conv2d: stride must be positive, got 0``).  A bad value raises
ValueError, a bad type TypeError, as Python's own functions do.  The rules are PyTorch 2.x's:

* an int is an int, never a bool (``stride=True`` is refused, as ``F.conv2d`` refuses it);
* where a pair is wanted, ``3``, ``(3,)`` and ``(3, 3)`` (or lists) all mean (3, 3), as in
  ``F.conv2d`` and ``F.max_pool2d``;
* floating-point operands of one dtype, since NumPy would silently promote a mix to float64.

This module is the bottom floor: it imports only the standard library, so everything above it can
import it.  It cannot know the Tensor class, which lives one floor up; callers pass it to
``check_type``, and the shape checks take anything with ``.shape``.
"""
import numbers

__all__ = [
    "check_floating", "check_image_batch", "check_input_and_weight", "check_int", "check_ndim",
    "check_number", "check_pair", "check_pool_padding", "check_positive_int", "check_probability", "check_type",
]


def _at_least(minimum):
    """The words every message uses for "at least ``minimum``" (as minicnn.data and fit say it too)."""
    return "positive" if minimum == 1 else f">= {minimum}"


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # True is an int to Python


# --- types and numbers ----------------------------------------------------------------------------
def check_type(op, name, value, expected_type):
    """``value``, or a TypeError unless it is an ``expected_type``.

    >>> check_type("conv2d", "input", np.zeros(3), Tensor)
    TypeError: conv2d: input must be a Tensor, got ndarray
    """
    if not isinstance(value, expected_type):
        raise TypeError(f"{op}: {name} must be a {expected_type.__name__}, got {type(value).__name__}")
    return value


def check_int(op, name, value, minimum=None):
    """``value`` as a Python int, at least ``minimum`` when one is given.

    >>> check_int("Linear", "in_features", 0, minimum=1)
    ValueError: Linear: in_features must be positive, got 0
    """
    if not _is_int(value):
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{op}: {name} must be {_at_least(minimum)}, got {value}")
    return int(value)


def check_positive_int(op, name, value):
    """``value`` as an int >= 1: a count of channels, features, classes, groups."""
    return check_int(op, name, value, minimum=1)


def check_number(op, name, value):
    """``value`` unchanged, or a TypeError unless it is a real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__} {value!r}")
    return value


def check_probability(op, name, value, allow_one=False):
    """``value`` as a float in [0, 1), or [0, 1] with ``allow_one``."""
    check_number(op, name, value)
    if not (0 <= value < 1 or (allow_one and value == 1)):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{op}: {name} must be in {interval}, got {value}")
    return float(value)


# --- window geometry ------------------------------------------------------------------------------
def check_pair(op, name, value, minimum=1, allow_none=False):
    """(height, width) from ``value`` as PyTorch reads a 2-D kernel_size, stride, padding or dilation.

    ``n``, ``(n,)`` and ``(n, n)`` (or lists) all give (n, n); each entry must be an int of at least
    ``minimum``.  A sequence of another length is a bad value (ValueError), anything else a bad type.
    ``allow_none`` lets entries be None (adaptive pooling: keep that input size).

    >>> check_pair("conv2d", "stride", (2,))
    (2, 2)
    """
    expected = "an int or a pair of ints" + (" (or None)" if allow_none else "")
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, 2):
            raise ValueError(f"{op}: {name} must be {expected}, got {value!r}")
        entries = tuple(value) * (3 - len(value))  # (n,) → (n, n)
    else:
        entries = (value, value)
    if not all(_is_int(entry) or (allow_none and entry is None) for entry in entries):
        raise TypeError(f"{op}: {name} must be {expected}, got {type(value).__name__} {value!r}")
    if any(entry is not None and entry < minimum for entry in entries):
        raise ValueError(f"{op}: {name} must be {_at_least(minimum)}, got {value!r}")
    return tuple(None if entry is None else int(entry) for entry in entries)


def check_pool_padding(op, padding, kernel_size):
    """PyTorch's pooling rule: padding at most half the kernel on each axis (dilation does not widen it).

    Wider padding would add windows that are mostly, or wholly, padding.  Both arguments come as the
    user gave them (an int or a pair), and the message repeats them so.
    """
    pads, kernels = check_pair(op, "padding", padding, minimum=0), check_pair(op, "kernel_size", kernel_size)
    if any(pad > kernel // 2 for pad, kernel in zip(pads, kernels)):
        raise ValueError(f"{op}: padding must be at most half of kernel_size, "
                         f"got padding={padding!r}, kernel_size={kernel_size!r}")


# --- shapes ---------------------------------------------------------------------------------------
def check_ndim(op, x, dims, layout):
    """ValueError unless ``x`` has one of ``dims`` dimensions; ``layout`` spells them: "(N, C) or (N, C, L)"."""
    if x.ndim not in dims:
        raise ValueError(f"{op}: expected input of shape {layout}, got {tuple(x.shape)}")


def check_image_batch(op, x, channels=None, min_size=0, unbatched=False):
    """ValueError unless ``x`` is an image batch (N, C, H, W), or with ``unbatched`` also one image (C, H, W).

    ``channels`` pins C; ``min_size`` is the smallest H and W the op can work with.
    Check the type first (``check_type(op, "input", x, Tensor)``): this looks at ``x.shape`` only.

    >>> check_image_batch("alexnet", minicnn.zeros(1, 3, 32, 32), channels=3, min_size=63)
    ValueError: alexnet: input 32x32 is too small, the minimum is 63x63
    """
    c = "C" if channels is None else channels
    layout = f"(N, {c}, H, W) or ({c}, H, W)" if unbatched else f"(N, {c}, H, W)"
    check_ndim(op, x, (3, 4) if unbatched else (4,), layout)
    if channels is not None and x.shape[-3] != channels:
        raise ValueError(f"{op}: expected input of shape {layout}, got {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if min(height, width) < min_size:
        raise ValueError(f"{op}: input {height}x{width} is too small, the minimum is {min_size}x{min_size}")


# --- dtypes ---------------------------------------------------------------------------------------
def check_floating(op, name, x):
    """TypeError unless ``x`` holds floating-point numbers (gradients need them)."""
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point {name}, got dtype {x.dtype}; convert it with "
                        f".astype('float32') (images: transforms.ToTensor)")


def check_input_and_weight(op, input, weight):
    """TypeError unless ``input`` and ``weight`` are floating-point and of one dtype (conv2d, linear).

    NumPy would promote a float32 × float64 (or an integer image × float32) product to float64,
    silently doubling the cost of everything after it; PyTorch refuses such a mix too.
    """
    check_floating(op, "input", input)
    check_floating(op, "weight", weight)
    if input.dtype != weight.dtype:
        raise TypeError(f"{op}: input dtype {input.dtype} differs from weight dtype {weight.dtype}")
