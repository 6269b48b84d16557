"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d.

They hold no weights, only the window geometry; ``F`` does the work.  Like
PyTorch they keep the arguments as given (an int stays an int) so that
``print(model)`` reads the same as the PyTorch model.
"""
import minicnn.nn.functional as F
from minicnn.checks import check_pair, check_pool_padding
from minicnn.nn.module import Module


def _check_window(layer, kernel_size, stride, padding, dilation=1):
    """The window checks ``F`` makes on every call, made once at construction so the error names the layer."""
    check_pair(layer, "kernel_size", kernel_size)
    if stride is not None:
        check_pair(layer, "stride", stride)
    check_pair(layer, "padding", padding, minimum=0)
    check_pair(layer, "dilation", dilation)
    check_pool_padding(layer, padding, kernel_size)


class MaxPool2d(Module):
    """The largest value of each window; ``stride`` defaults to ``kernel_size``.

    Input is (N, C, H, W) or (C, H, W); ``return_indices=True`` also returns
    where each maximum came from.

    >>> MaxPool2d(2)(minicnn.randn(1, 8, 32, 32)).shape
    (1, 8, 16, 16)
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        _check_window("MaxPool2d", kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = bool(return_indices)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """The mean of each window; ``count_include_pad`` says whether padded zeros count in the mean."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        _check_window("AvgPool2d", kernel_size, stride, padding)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average into a fixed (H, W) output whatever the input size (``1`` gives global pooling).

    >>> AdaptiveAvgPool2d((1, 1))(minicnn.randn(2, 512, 7, 7)).shape
    (2, 512, 1, 1)
    """

    def __init__(self, output_size):
        super().__init__()
        check_pair("AdaptiveAvgPool2d", "output_size", output_size, allow_none=True)  # None: keep that input size
        self.output_size = tuple(output_size) if isinstance(output_size, list) else output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"
