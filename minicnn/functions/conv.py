"""2-D convolution through im2col: every window becomes a column, the conv a matrix product.

Forward, per group g (shapes with G groups, K = C/G·KH·KW, M = N·OH·OW):
    cols = im2col(x)                       # (G, K, M)
    y    = weight_g @ cols                 # (G, OC/G, K) @ (G, K, M) → (G, OC/G, M)
Backward is the same product transposed:
    d weight_g = gy_g @ colsᵀ              # (G, OC/G, M) @ (G, M, K)
    d cols     = weight_gᵀ @ gy_g          # (G, K, OC/G) @ (G, OC/G, M), then col2im → d x
All groups go through one batched matmul.  Depthwise conv (G = C = OC) has
nothing to multiply per group but KH·KW numbers, so it takes a direct kernel
that sums KH·KW shifted copies of the input instead.  On the CPU a 3×3 stride-1
conv may take Winograd F(2×2, 3×3) instead: the backend's ``conv2d_algorithm``
decides per shape (minicnn/backend/cpu/conv_algorithm.py).

Outputs come back as (N, OC, OH, OW) views of a channel-major (OC, N, OH, OW)
buffer: the next layer's im2col wants channels first, so the transpose is free.
"""
from minicnn.backend import get_array_module, kernels_for
from minicnn.checks import (
    check_image_batch,
    check_input_and_weight,
    check_pair,
    check_positive_int,
    check_type,
)
from minicnn.shapes import conv_output_size, is_depthwise, winograd_bytes_per_image
from minicnn.tensor import Function, Tensor

# im2col's column matrix is 9× its input for a 3×3 conv (925 MB for VGG's conv1_2 at 224², batch 8), and
# Winograd's transformed input and output 8.5×.  Above this size they are built for a slab of images at a time
# and rebuilt in backward, so the conv keeps only x (as PyTorch does).
WORKSPACE_BYTES = 256 << 20


class Conv2d(Function):
    """y = W ⋆ x + b: cross-correlation per group, by the algorithm the backend picks for this shape.

    Forward:   cols = im2col(x)  (G, K, M);   y = W_g · cols  (G, OC/G, M);   y += b per output channel.
    Backward, with gy = ∂L/∂y grouped as (G, OC/G, M):
               grad_cols = W_gᵀ · gy, then col2im → ∂L/∂x (overlapping windows add up);
               ∂L/∂W = gy · colsᵀ;   ∂L/∂b = Σ gy over N, OH, OW.
    Depthwise ("direct": groups == in_channels == out_channels), no columns:
               y[n, c, oh, ow] = Σ_ij W[c, 0, i, j] · x_pad[n, c, oh·s + i·d, ow·s + j·d];
               each x_pad value read gets gy · W[c, 0, i, j] back;   ∂L/∂W[c, 0, i, j] = Σ gy · x_pad.
    Winograd F(2×2, 3×3) (CPU, 3×3 stride 1): y = Aᵀ[(G W Gᵀ) ⊙ (Bᵀ x_tile B)]A, the same sum with 2.25×
               fewer multiplications; backward is its exact adjoint (minicnn/backend/cpu/winograd.py).

    Kernels: conv2d_algorithm picks one of: im2col, matmul, col2im (with bias_add, channel_sum);
    depthwise_conv2d_forward and depthwise_conv2d_backward; winograd_conv2d_forward and
    winograd_conv2d_backward, with winograd_transform_input to rebuild V in backward (CPU only).
    A 1×1 stride-1 unpadded conv skips im2col and col2im: x, channels first, already is the column matrix.
    A layer whose im2col columns or Winograd transforms exceed WORKSPACE_BYTES runs a slab of images
    at a time and keeps only x: backward rebuilds each slab's columns (or V).
    """

    def __init__(self, stride, padding, dilation, groups, out_size, in_channels, out_channels):
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.out_size = out_size
        self.kernel_size = None  # set in forward, from the weight
        self.depthwise = is_depthwise(in_channels, out_channels, groups)  # summary_memory asks: it has no columns

    def forward(self, x, weight, bias=None):
        kernels = kernels_for(x)
        self.algorithm = kernels.conv2d_algorithm(x.shape, weight.shape, self.stride, self.dilation, self.groups)
        self.kernel_size, self.weight_shape = weight.shape[2:], weight.shape
        keep = self.needs_input_grad[0] or self.needs_input_grad[1]
        if self.algorithm == "direct":
            self.x, self.weight = x, weight
            y = kernels.depthwise_conv2d_forward(x, weight, self.stride, self.padding, self.dilation, self.out_size)
            if bias is not None:
                y = kernels.bias_add(y, bias, axis=1)  # (N, C, H, W)
            return y
        if self.algorithm == "winograd":
            y = self.winograd_forward(kernels, x, weight, keep)
        else:
            y = self.im2col_forward(kernels, x, weight, keep)
        if bias is not None:
            y = kernels.bias_add(y, bias, axis=0)  # channel-major (OC, N, OH, OW)
        return y.transpose(1, 0, 2, 3)

    def winograd_forward(self, kernels, x, weight, keep):
        """y (OC, N, OH, OW) by Winograd; its transformed input V is kept if it fits the workspace."""
        slabs = image_slabs(x.shape[0], winograd_bytes_per_image(x.shape, weight.shape, self.out_size,
                                                                 x.dtype.itemsize))
        if len(slabs) == 1:
            y, transformed_x, transformed_weight = kernels.winograd_conv2d_forward(x, weight, self.padding,
                                                                                   self.out_size)
        else:  # a slab of images at a time; backward rebuilds V from x, a slab at a time
            transformed_x = None
            y = get_array_module(x).empty((weight.shape[0], x.shape[0], *self.out_size), dtype=x.dtype)
            for start, stop in slabs:
                y[:, start:stop], _, transformed_weight = kernels.winograd_conv2d_forward(
                    x[start:stop], weight, self.padding, self.out_size)
        if keep:
            self.x, self.x_shape, self.transformed, self.slabs = x, x.shape, (transformed_x, transformed_weight), slabs
        return y

    def winograd_backward(self, kernels, gy, need_x, need_weight):
        transformed_x, transformed_weight = self.transformed
        if transformed_x is not None:
            return kernels.winograd_conv2d_backward(gy, transformed_x, transformed_weight, self.x_shape,
                                                    self.padding, need_x, need_weight)

        def slab(start, stop):
            x = self.x[start:stop]
            transformed_x = kernels.winograd_transform_input(x, self.padding, self.out_size)
            return kernels.winograd_conv2d_backward(gy[start:stop], transformed_x, transformed_weight, x.shape,
                                                    self.padding, need_x, need_weight)
        return gradients_by_slab(gy, self.slabs, slab, self.x_shape, self.weight_shape, need_x, need_weight)

    def im2col_forward(self, kernels, x, weight, keep):
        """y (OC, N, OH, OW) = W_g · im2col(x), all groups in one batched product, a slab of images at a time."""
        n = x.shape[0]
        out_channels = weight.shape[0]
        slabs = image_slabs(n, self.cols_bytes_per_image(x, weight))
        if len(slabs) == 1:  # the columns fit the workspace: keep them for backward
            cols = self.columns(kernels, x)
            if keep:
                self.x_shape, self.cols, self.weight = x.shape, cols, weight
            return self.product(kernels, weight, cols)
        # A large layer: columns for a few images at a time into a bounded workspace; backward rebuilds them.
        y = get_array_module(x).empty((out_channels, n, *self.out_size), dtype=x.dtype)
        for start, stop in slabs:
            y[:, start:stop] = self.product(kernels, weight, self.columns(kernels, x[start:stop]))
        if keep:
            self.x_shape, self.cols, self.x, self.weight = x.shape, None, x, weight
        return y

    def cols_bytes_per_image(self, x, weight):
        """What im2col's matrix costs per image; a pointwise conv's columns are a view of x, costing nothing."""
        if self.pointwise():
            return 0
        kh, kw = weight.shape[2:]
        return x.shape[1] * kh * kw * self.out_size[0] * self.out_size[1] * x.dtype.itemsize

    def columns(self, kernels, x):
        """im2col(x) as (G, K, M): K = C/G·KH·KW rows, one column per output position of every image."""
        n, c = x.shape[:2]
        kh, kw = self.kernel_size
        if self.pointwise():  # x itself, channels first, is the column matrix: a view of a channel-major x
            cols = x.transpose(1, 0, 2, 3)
        else:
            cols = kernels.im2col(x, (kh, kw), self.stride, self.padding, self.dilation, self.out_size)
        # Sizes spelled out, not -1: an empty batch (M = 0) leaves -1 undetermined.
        return cols.reshape(self.groups, c // self.groups * kh * kw, n * self.out_size[0] * self.out_size[1])

    def pointwise(self):
        """A 1×1 conv with stride 1 and no padding: every window is one pixel, so no im2col and no col2im."""
        return tuple(self.kernel_size) == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)

    def product(self, kernels, weight, cols):
        """W_g · cols for every group: (G, OC/G, K) · (G, K, M) → (OC, N, OH, OW)."""
        out_channels, g = weight.shape[0], self.groups
        y = kernels.matmul(weight.reshape(g, out_channels // g, -1), cols)  # (G, OC/G, M)
        return y.reshape(out_channels, -1, *self.out_size)

    def backward(self, gy):
        kernels = kernels_for(gy)
        grad_bias = None
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            grad_bias = kernels.channel_sum(gy, axis=1)
        need_x, need_weight = self.needs_input_grad[0], self.needs_input_grad[1]
        if self.algorithm == "direct":
            grad_x, grad_weight = kernels.depthwise_conv2d_backward(
                gy, self.x, self.weight, self.stride, self.padding, self.dilation, need_x, need_weight)
        elif self.algorithm == "winograd":
            grad_x, grad_weight = self.winograd_backward(kernels, gy, need_x, need_weight)
        else:
            grad_x, grad_weight = self.im2col_backward(kernels, gy, need_x, need_weight)
        return grad_x, grad_weight, grad_bias

    def im2col_backward(self, kernels, gy, need_x, need_weight):
        if self.cols is not None:
            return self.columns_backward(kernels, gy, self.cols, self.x_shape, need_x, need_weight)
        # Chunked forward: rebuild each slab's columns, add up its weight gradient, write its input gradient.
        slabs = image_slabs(self.x_shape[0], self.cols_bytes_per_image(self.x, self.weight))

        def slab(start, stop):
            x = self.x[start:stop]
            return self.columns_backward(kernels, gy[start:stop], self.columns(kernels, x), x.shape, need_x,
                                         need_weight)
        return gradients_by_slab(gy, slabs, slab, self.x_shape, self.weight.shape, need_x, need_weight)

    def columns_backward(self, kernels, gy, cols, x_shape, need_x, need_weight):
        """grad_cols = W_gᵀ · gy then col2im → ∂x;   ∂W = gy · colsᵀ."""
        g = self.groups
        out_channels, _, kh, kw = self.weight.shape
        n = gy.shape[0]
        m = n * gy.shape[2] * gy.shape[3]  # 0 for an empty batch: dW = gy @ colsᵀ then sums nothing, zeros
        gy_grouped = gy.transpose(1, 0, 2, 3).reshape(g, out_channels // g, m)  # (G, OC/G, M)
        grad_x = grad_weight = None
        if need_x:
            weight_grouped = self.weight.reshape(g, out_channels // g, -1)
            grad_cols = kernels.matmul(weight_grouped.transpose(0, 2, 1), gy_grouped)  # (G, K, M)
            grad_cols = grad_cols.reshape(x_shape[1], kh, kw, n, *gy.shape[2:])
            if self.pointwise():  # each pixel fed one column entry: ∂x is ∂cols, channels first
                grad_x = grad_cols.reshape(x_shape[1], n, *x_shape[2:]).transpose(1, 0, 2, 3)
            else:
                grad_x = kernels.col2im(grad_cols, x_shape, (kh, kw), self.stride, self.padding, self.dilation)
        if need_weight:
            grad_weight = kernels.matmul(gy_grouped, cols.transpose(0, 2, 1)).reshape(self.weight.shape)
        return grad_x, grad_weight


def gradients_by_slab(gy, slabs, slab_gradients, x_shape, weight_shape, need_x, need_weight):
    """(∂x, ∂W) from slab_gradients(start, stop) of each slab: ∂x slabs written in place, ∂W slabs summed."""
    xp = get_array_module(gy)
    grad_x = xp.empty(x_shape, dtype=gy.dtype) if need_x else None
    grad_weight = xp.zeros(weight_shape, dtype=gy.dtype) if need_weight else None
    for start, stop in slabs:
        slab_grad_x, slab_grad_weight = slab_gradients(start, stop)
        if need_x:
            grad_x[start:stop] = slab_grad_x
        if need_weight:
            grad_weight += slab_grad_weight
    return grad_x, grad_weight


def image_slabs(batch, bytes_per_image):
    """[(start, stop), ...] covering the batch, each slab's columns within WORKSPACE_BYTES (one image at least)."""
    per_slab = max(1, WORKSPACE_BYTES // max(bytes_per_image, 1))
    if per_slab >= batch:
        return [(0, batch)]
    return [(start, min(start + per_slab, batch)) for start in range(0, batch, per_slab)]


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-D convolution over (N, C, H, W) with weight (OC, C/groups, KH, KW), like ``torch.nn.functional.conv2d``.

    Output size per axis: (H + 2·padding − dilation·(K − 1) − 1) // stride + 1.

    >>> y = conv2d(minicnn.randn(1, 3, 32, 32), minicnn.randn(10, 3, 5, 5), padding=2)
    >>> y.shape          # a 5×5 conv with padding 2 keeps 32×32
    (1, 10, 32, 32)
    """
    x = input
    op = "conv2d"
    check_type(op, "input", x, Tensor)
    check_type(op, "weight", weight, Tensor)
    check_image_batch(op, x)
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected 4-D weight (out_channels, in_channels/groups, kH, kW), got {weight.shape}")
    groups = check_positive_int(op, "groups", groups)
    stride = check_pair(op, "stride", stride)
    padding = check_pair(op, "padding", padding, minimum=0)
    dilation = check_pair(op, "dilation", dilation)
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
    function = Conv2d(stride, padding, dilation, groups, out_size, c, out_channels)
    return function(x, weight) if bias is None else function(x, weight, bias)
