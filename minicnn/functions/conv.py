"""2-D convolution through im2col: every window becomes a column, the conv a matrix product.

Forward, per group g (shapes with G groups, K = C/G·KH·KW, M = N·OH·OW):
    cols = im2col(x)                       # (G, K, M)
    y    = weight_g @ cols                 # (G, OC/G, K) @ (G, K, M) → (G, OC/G, M)
Backward is the same product transposed:
    d weight_g = gy_g @ colsᵀ              # (G, OC/G, M) @ (G, M, K)
    d cols     = weight_gᵀ @ gy_g          # (G, K, OC/G) @ (G, OC/G, M), then col2im → d x
All groups go through one batched matmul.  Depthwise conv (G = C = OC) has
nothing to multiply per group but KH·KW numbers, so it takes a direct kernel
that sums KH·KW shifted copies of the input instead.

Outputs come back as (N, OC, OH, OW) views of a channel-major (OC, N, OH, OW)
buffer: the next layer's im2col wants channels first, so the transpose is free.
"""
from minicnn.backend import kernels_for
from minicnn.backend.cpu.im2col import conv_output_size
from minicnn.functions.dtypes import check_input_and_weight
from minicnn.tensor import Function, Tensor


def _pair(op, name, value, minimum):
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return pair


class Conv2d(Function):
    def __init__(self, stride, padding, dilation, groups, out_size):
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.out_size = out_size
        self.depthwise = False  # set by conv2d when groups == in_channels == out_channels

    def forward(self, x, weight, bias=None):
        kernels = kernels_for(x)
        if self.depthwise:
            self.x, self.weight = x, weight
            y = kernels.depthwise_conv2d_forward(x, weight, self.stride, self.padding, self.dilation, self.out_size)
            if bias is not None:
                y = kernels.bias_add(y, bias, axis=1)  # (N, C, H, W)
            return y
        n, c, h, w = x.shape
        out_channels, _, kh, kw = weight.shape
        g = self.groups
        out_size = self.out_size
        cols = kernels.im2col(x, (kh, kw), self.stride, self.padding, self.dilation, out_size)
        # Sizes spelled out, not -1: an empty batch (M = 0) leaves -1 undetermined.
        cols = cols.reshape(g, c // g * kh * kw, n * out_size[0] * out_size[1])  # (G, K, M)
        y = kernels.matmul(weight.reshape(g, out_channels // g, -1), cols)  # (G, OC/G, M)
        y = y.reshape(out_channels, n, *out_size)  # (OC, N, OH, OW)
        if bias is not None:
            y = kernels.bias_add(y, bias, axis=0)  # channel-major (OC, N, OH, OW)
        if self.needs_input_grad[0] or self.needs_input_grad[1]:
            self.x_shape, self.cols, self.weight = x.shape, cols, weight
        return y.transpose(1, 0, 2, 3)

    def backward(self, gy):
        kernels = kernels_for(gy)
        grad_bias = None
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            grad_bias = kernels.channel_sum(gy, axis=1)
        if self.depthwise:
            grad_x, grad_weight = kernels.depthwise_conv2d_backward(
                gy, self.x, self.weight, self.stride, self.padding, self.dilation,
                self.needs_input_grad[0], self.needs_input_grad[1])
            return grad_x, grad_weight, grad_bias
        g = self.groups
        out_channels, _, kh, kw = self.weight.shape
        n = gy.shape[0]
        m = n * gy.shape[2] * gy.shape[3]  # 0 for an empty batch: dW = gy @ colsᵀ then sums nothing, zeros
        gy_grouped = gy.transpose(1, 0, 2, 3).reshape(g, out_channels // g, m)  # (G, OC/G, M)
        grad_x = grad_weight = None
        if self.needs_input_grad[0]:
            weight_grouped = self.weight.reshape(g, out_channels // g, -1)
            grad_cols = kernels.matmul(weight_grouped.transpose(0, 2, 1), gy_grouped)  # (G, K, M)
            c = self.x_shape[1]
            grad_cols = grad_cols.reshape(c, kh, kw, n, *gy.shape[2:])
            grad_x = kernels.col2im(grad_cols, self.x_shape, (kh, kw), self.stride, self.padding, self.dilation)
        if self.needs_input_grad[1]:
            grad_weight = kernels.matmul(gy_grouped, self.cols.transpose(0, 2, 1)).reshape(self.weight.shape)
        return grad_x, grad_weight, grad_bias


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-D convolution over (N, C, H, W) with weight (OC, C/groups, KH, KW), like ``torch.nn.functional.conv2d``.

    Output size per axis: (H + 2·padding − dilation·(K − 1) − 1) // stride + 1.

    >>> y = conv2d(minicnn.randn(1, 3, 32, 32), minicnn.randn(10, 3, 5, 5), padding=2)
    >>> y.shape          # a 5×5 conv with padding 2 keeps 32×32
    (1, 10, 32, 32)
    """
    x = input
    op = "conv2d"
    for name, t in (("input", x), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op}: expected 4-D input (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected 4-D weight (out_channels, in_channels/groups, kH, kW), got {weight.shape}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    stride = _pair(op, "stride", stride, 1)
    padding = _pair(op, "padding", padding, 0)
    dilation = _pair(op, "dilation", dilation, 1)
    n, c, h, w = x.shape
    out_channels, channels_per_group, kh, kw = weight.shape
    if c % groups:
        raise ValueError(f"{op}: groups={groups} does not divide the {c} input channels")
    if out_channels % groups:
        raise ValueError(f"{op}: groups={groups} does not divide the {out_channels} output channels")
    if channels_per_group * groups != c:
        raise ValueError(
            f"{op}: input has {c} channels but weight expects {channels_per_group * groups} (groups={groups})"
        )
    if bias is not None:
        if not isinstance(bias, Tensor):
            raise TypeError(f"{op}: bias must be a Tensor or None, got {type(bias).__name__}")
        if bias.shape != (out_channels,):
            raise ValueError(f"{op}: bias must have shape ({out_channels},), got {bias.shape}")
    check_input_and_weight(op, x, weight)
    out_size = tuple(
        conv_output_size(size, k, s, p, d)
        for size, k, s, p, d in zip((h, w), (kh, kw), stride, padding, dilation)
    )
    if min(out_size) < 1:
        raise ValueError(
            f"{op}: kernel {kh}x{kw} (dilation {dilation}) is larger than the padded input "
            f"{h + 2 * padding[0]}x{w + 2 * padding[1]}"
        )
    function = Conv2d(stride, padding, dilation, groups, out_size)
    function.depthwise = groups == c == out_channels
    return function(x, weight) if bias is None else function(x, weight, bias)
