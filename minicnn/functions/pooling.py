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
from minicnn.checks import check_floating, check_image_batch, check_pair, check_pool_padding, check_type
from minicnn.functions.shape import reshape
from minicnn.shapes import conv_output_size
from minicnn.tensor import Function, Tensor


class MaxPool2d(Function):
    """y = the maximum of each window (padding is −inf); window_argmax keeps the winner's offset
    i·KW + j inside its window (the first one on ties).
    ∂L/∂x: each ∂L/∂y goes, whole, to its window's argmax; overlapping windows add up; zero elsewhere.

    Kernels: max_pool2d_forward, max_pool2d_backward (``max_pool2d()`` turns window_argmax into
    PyTorch's indices with max_pool2d_input_indices).
    """

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
    """y = Σ window / divisor, the divisor counting the padding when count_include_pad (else only
    real inputs), or divisor_override for every window;
    ∂L/∂x: every input of a window receives ∂L/∂y / divisor; overlapping windows add up (col2im).

    Kernels: avg_pool2d_forward, avg_pool2d_backward.
    """

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
    """y = A_h · x · A_wᵀ per plane;  ∂L/∂x = A_hᵀ · ∂L/∂y · A_w.

    Row i of A_h averages input rows floor(i·H/OH) … ceil((i+1)·H/OH) − 1 (A_w likewise for columns).

    Kernels: adaptive_avg_pool2d_forward, adaptive_avg_pool2d_backward.
    """

    def __init__(self, out_size):
        self.out_size = out_size

    def forward(self, x):
        self.x_shape = x.shape
        return kernels_for(x).adaptive_avg_pool2d_forward(x, self.out_size)

    def backward(self, gy):
        return kernels_for(gy).adaptive_avg_pool2d_backward(gy, self.x_shape)


# --- argument checks -----------------------------------------------------------
def _check_input(op, x):
    check_type(op, "input", x, Tensor)
    check_image_batch(op, x, unbatched=True)
    check_floating(op, "input", x)
    if 0 in x.shape[-3:]:  # PyTorch's rule: only the batch may be empty
        raise ValueError(f"{op}: expected non-zero channels, height and width, got shape {x.shape}")


def _pool_geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Check a pooling window the way PyTorch does; return the pairs and (OH, OW)."""
    kernel = check_pair(op, "kernel_size", kernel_size)
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)  # PyTorch: () too
    stride = kernel if no_stride else check_pair(op, "stride", stride)
    pad = check_pair(op, "padding", padding, minimum=0)
    dilation = check_pair(op, "dilation", dilation)
    check_pool_padding(op, padding, kernel_size)
    in_size = x.shape[-2:]
    out_size = tuple(
        conv_output_size(size, k, s, p, d, ceil_mode)
        for size, k, s, p, d in zip(in_size, kernel, stride, pad, dilation)
    )
    if min(out_size) < 1:
        raise ValueError(
            f"{op}: output size is {max(out_size[0], 0)}x{max(out_size[1], 0)} for input {in_size[0]}x{in_size[1]} with "
            f"kernel {kernel}, stride {stride}, padding {pad}, dilation {dilation}"
        )
    return kernel, stride, pad, dilation, out_size


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
    requested = check_pair(op, "output_size", output_size, allow_none=True)  # None: keep that input size
    out_size = tuple(size if s is None else s for s, size in zip(requested, input.shape[-2:]))
    return _batched(AdaptiveAvgPool2d(out_size), input)


__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "max_pool2d"]
