"""Conv2d: the layer that holds a convolution's filters; the arithmetic is ``F.conv2d``."""
import math

import numpy as np

import minicnn.nn.functional as F
from minicnn.checks import check_image_batch, check_pair, check_positive_int, check_type
from minicnn.nn import init
from minicnn.nn.module import Module
from minicnn.nn.parameter import Parameter
from minicnn.tensor import DEFAULT_DTYPE, Tensor


class Conv2d(Module):
    """2-D convolution over (N, C, H, W) (or unbatched (C, H, W)) inputs with ``out_channels`` learned filters.

    weight: (out_channels, in_channels // groups, kh, kw); bias: (out_channels,).
    ``groups`` splits the channels into independent convolutions (groups ==
    in_channels is depthwise).  ``padding`` may also be ``"valid"`` (0) or
    ``"same"`` (stride 1, symmetric padding only).

    >>> conv = Conv2d(3, 16, kernel_size=3, padding=1)
    >>> conv(minicnn.randn(2, 3, 32, 32)).shape
    (2, 16, 32, 32)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True):
        super().__init__()
        self.in_channels = check_positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = check_positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = check_pair("Conv2d", "kernel_size", kernel_size)
        self.stride = check_pair("Conv2d", "stride", stride)
        self.dilation = check_pair("Conv2d", "dilation", dilation)
        self.groups = check_positive_int("Conv2d", "groups", groups)
        if in_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"Conv2d: out_channels ({out_channels}) must be divisible by groups ({groups})")
        self.padding = padding if isinstance(padding, str) else check_pair("Conv2d", "padding", padding, minimum=0)
        self._padding_pair = self._resolve_padding(padding)

        weight_shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(np.empty(weight_shape, dtype=DEFAULT_DTYPE))
        if bias:
            self.bias = Parameter(np.empty((out_channels,), dtype=DEFAULT_DTYPE))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _resolve_padding(self, padding):
        if not isinstance(padding, str):
            return self.padding
        if padding == "valid":
            return (0, 0)
        if padding != "same":
            raise ValueError(f"Conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
        if self.stride != (1, 1):
            raise ValueError(f"Conv2d: padding='same' needs stride 1, got stride={self.stride}")
        # The output keeps H and W when both sides together add dilation·(k−1) pixels.
        totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
        if any(total % 2 for total in totals):
            raise ValueError(
                f"Conv2d: padding='same' with kernel_size={self.kernel_size}, dilation={self.dilation} "
                "needs uneven padding, which is not supported"
            )
        return tuple(total // 2 for total in totals)

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=√5), i.e. U(±1/√fan_in), for weight and bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        # Checked here, not left to F.conv2d, so the error names the layer and (C, H, W) is allowed.
        check_type("Conv2d", "input", x, Tensor)
        check_image_batch("Conv2d", x, unbatched=True)
        if x.shape[-3] != self.in_channels:
            raise ValueError(f"Conv2d: input has {x.shape[-3]} channels but in_channels is {self.in_channels}")
        if x.ndim == 3:  # unbatched: run as a batch of one, (C, H, W) → (1, C, H, W) and back
            y = self.forward(x.reshape(1, *x.shape))
            return y.reshape(*y.shape[1:])
        return F.conv2d(x, self.weight, self.bias, self.stride, self._padding_pair, self.dilation, self.groups)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
