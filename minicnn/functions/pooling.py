"""Differentiable pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d (PyTorch's semantics).

Output size per axis (PyTorch's rule, ``conv_output_size``):
    OH = floor((H + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1
with ``ceil_mode`` rounding up instead, except that a last window starting in
the right padding is dropped.  Gradients:
    max  — all of gy goes to the window's maximum (the first one on ties);
    avg  — gy / divisor goes to every input of the window;
    adaptive avg — the transpose of the averaging matrices.
Inputs are (N, C, H, W), or unbatched (C, H, W).
"""
from minicnn.backend import kernels_for
from minicnn.backend.cpu.im2col import conv_output_size  # shape arithmetic, the same on every backend
from minicnn.functions.shape import reshape
from minicnn.tensor import Function, Tensor


class MaxPool2d(Function):
    def __init__(self, kernel_size, stride, padding, dilation, out_size):
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.out_size = out_size

    def forward(self, x):
        kernels = kernels_for(x)
        y, self.window_argmax = kernels.max_pool2d_forward(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.out_size)
        self.x_shape = x.shape
        return y

    def backward(self, gy):
        # gy (N, C, OH, OW) → dx (N, C, H, W), non-zero only at each window's maximum
        return kernels_for(gy).max_pool2d_backward(
            gy, self.window_argmax, self.x_shape, self.kernel_size, self.stride, self.padding, self.dilation)


class AvgPool2d(Function):
    def __init__(self, kernel_size, stride, padding, out_size, count_include_pad, divisor_override):
        self.kernel_size, self.stride, self.padding, self.out_size = kernel_size, stride, padding, out_size
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        self.x_shape = x.shape
        return kernels_for(x).avg_pool2d_forward(x, self.kernel_size, self.stride, self.padding, self.out_size,
                                                 self.count_include_pad, self.divisor_override)

    def backward(self, gy):
        return kernels_for(gy).avg_pool2d_backward(gy, self.x_shape, self.kernel_size, self.stride, self.padding,
                                                   self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool2d(Function):
    def __init__(self, out_size):
        self.out_size = out_size

    def forward(self, x):
        self.x_shape = x.shape
        return kernels_for(x).adaptive_avg_pool2d_forward(x, self.out_size)

    def backward(self, gy):
        return kernels_for(gy).adaptive_avg_pool2d_backward(gy, self.x_shape)


# --- argument checks -----------------------------------------------------------
def _pair(op, name, value, minimum):
    if isinstance(value, int):
        pair = (value, value)
    elif isinstance(value, (tuple, list)):
        pair = tuple(value) * 2 if len(value) == 1 else tuple(value)
    else:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        comparison = "greater than zero" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {comparison}, got {value!r}")
    return pair


def _check_input(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}")
    if 0 in x.shape[-3:]:
        raise ValueError(f"{op}: expected non-zero channels, height and width, got shape {x.shape}")


def _pool_geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Check a pooling window the way PyTorch does; return the pairs and (OH, OW)."""
    kernel_size = _pair(op, "kernel_size", kernel_size, 1)
    stride = kernel_size if stride is None or stride == () or stride == [] else _pair(op, "stride", stride, 1)
    padding = _pair(op, "padding", padding, 0)
    dilation = _pair(op, "dilation", dilation, 1)
    if padding[0] > kernel_size[0] // 2 or padding[1] > kernel_size[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half of kernel_size {kernel_size}")
    in_size = x.shape[-2:]
    out_size = tuple(
        conv_output_size(size, k, s, p, d, ceil_mode)
        for size, k, s, p, d in zip(in_size, kernel_size, stride, padding, dilation)
    )
    if min(out_size) < 1:
        raise ValueError(
            f"{op}: output size is {max(out_size[0], 0)}x{max(out_size[1], 0)} for input {in_size[0]}x{in_size[1]} with "
            f"kernel {kernel_size}, stride {stride}, padding {padding}, dilation {dilation}"
        )
    return kernel_size, stride, padding, dilation, out_size


def _batched(function, x):
    """Run a 4-D pooling function on unbatched (C, H, W) input too."""
    if x.ndim == 4:
        return function(x)
    y = function(reshape(x, (1,) + x.shape))
    return reshape(y, y.shape[1:])


# --- public functions --------------------------------------------------------
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over each kernel_size window, like ``torch.nn.functional.max_pool2d``.

    ``stride`` defaults to ``kernel_size``; padding is −inf and may be at most
    half the kernel.  With ``return_indices`` also returns, per output, the
    flat index h·W + w of the maximum in its input plane (int64).

    >>> max_pool2d(minicnn.randn(1, 64, 56, 56), 3, stride=2, padding=1).shape
    (1, 64, 28, 28)
    """
    op = "max_pool2d"
    _check_input(op, input)
    kernel_size, stride, padding, dilation, out_size = _pool_geometry(
        op, input, kernel_size, stride, padding, dilation, ceil_mode)
    function = MaxPool2d(kernel_size, stride, padding, dilation, out_size)
    output = _batched(function, input)
    if not return_indices:
        return output
    batched_shape = input.shape if input.ndim == 4 else (1,) + input.shape
    indices = kernels_for(input.data).max_pool2d_input_indices(
        function.window_argmax, batched_shape, kernel_size, stride, padding, dilation)
    return output, Tensor(indices.reshape(output.shape))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over each kernel_size window, like ``torch.nn.functional.avg_pool2d``.

    Padding counts as zeros in the divisor when ``count_include_pad`` (the
    ceil_mode overhang past the padding never does); ``divisor_override``
    replaces the divisor for every window.

    >>> avg_pool2d(minicnn.ones(1, 1, 4, 4), 2).shape
    (1, 1, 2, 2)
    """
    op = "avg_pool2d"
    _check_input(op, input)
    kernel_size, stride, padding, _, out_size = _pool_geometry(op, input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override == 0):
        raise ValueError(f"avg_pool2d: divisor_override must be a non-zero int or None, got {divisor_override!r}")
    return _batched(AvgPool2d(kernel_size, stride, padding, out_size, bool(count_include_pad), divisor_override),
                    input)


def adaptive_avg_pool2d(input, output_size):
    """Average into a fixed output_size whatever the input size (``torch.nn.functional.adaptive_avg_pool2d``).

    Output row i averages input rows floor(i·H/OH) … ceil((i+1)·H/OH) − 1 (and
    likewise for columns), so windows may overlap and OH may exceed H.
    ``output_size`` is an int, or a pair whose ``None`` entries keep the input size.

    >>> adaptive_avg_pool2d(minicnn.randn(2, 512, 1, 1), (7, 7)).shape
    (2, 512, 7, 7)
    """
    op = "adaptive_avg_pool2d"
    _check_input(op, input)
    requested = (output_size, output_size) if output_size is None or isinstance(output_size, int) \
        else tuple(output_size)
    if len(requested) != 2 or not all(s is None or (isinstance(s, int) and not isinstance(s, bool))
                                      for s in requested):
        raise TypeError(f"{op}: output_size must be an int or a pair of ints (or None), got {output_size!r}")
    out_size = tuple(size if s is None else s for s, size in zip(requested, input.shape[-2:]))
    if min(out_size) < 1:
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return _batched(AdaptiveAvgPool2d(out_size), input)


__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "max_pool2d"]
