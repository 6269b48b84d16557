"""A fully connected layer is a convolution whose kernel covers its whole input.

A Linear(C·kH·kW, out) that reads a flattened (C, kH, kW) volume computes, for
each output unit, one weighted sum over all C·kH·kW values: exactly what one
filter of a Conv2d(C, out, (kH, kW)) computes on that same volume.  Reshaping
the Linear's weight (out, C·kH·kW) to (out, C, kH, kW) gives those filters,
because flatten reads (C, H, W) in that order (channel first, then rows, then
columns, as PyTorch does; Keras flattens channels last and needs a transpose).

The conv then works on any input at least kH×kW: on a larger one it slides the
old fully connected layer over every kH×kW window.  VGG's dense evaluation
(vgg.py, ``vgg_to_fully_convolutional``) is this rule applied to its three FC
layers: the first as a 7×7 conv, the other two as 1×1 convs.
"""
from minicnn import nn
from minicnn.checks import check_pair, check_positive_int

__all__ = ["linear_to_conv"]


def linear_to_conv(linear, in_channels, kernel_size):
    """A Conv2d that computes ``linear`` on (N, in_channels, kH, kW) inputs, with the same weights.

    ``conv(x)`` equals ``linear(flatten(x, 1))`` reshaped to (N, out_features, 1, 1), provided
    ``linear.in_features == in_channels · kH · kW``; on larger inputs the conv applies the Linear to
    every kH×kW window.  The conv shares memory with ``linear``: its weight is a view of the Linear's
    weight array reshaped to (out_features, in_channels, kH, kW), and its bias is the Linear's bias
    Parameter itself (None if the Linear has none), so changing one changes the other.

    The course's example, a 3×3×5 volume into 4096 units:

    >>> fc = nn.Linear(5 * 3 * 3, 4096)
    >>> conv = linear_to_conv(fc, in_channels=5, kernel_size=3)
    >>> conv.weight.shape
    (4096, 5, 3, 3)
    >>> x = minicnn.randn(2, 5, 3, 3)
    >>> np.allclose(conv(x).numpy()[:, :, 0, 0], fc(minicnn.flatten(x, 1)).numpy(), atol=1e-6)
    True
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear_to_conv: expected an nn.Linear, got {type(linear).__name__}")
    in_channels = check_positive_int("linear_to_conv", "in_channels", in_channels)
    kernel_height, kernel_width = check_pair("linear_to_conv", "kernel_size", kernel_size)
    if linear.in_features != in_channels * kernel_height * kernel_width:
        raise ValueError(
            f"linear_to_conv: the Linear has in_features={linear.in_features}, but in_channels·kH·kW = "
            f"{in_channels}·{kernel_height}·{kernel_width} = {in_channels * kernel_height * kernel_width}"
        )
    out_channels = linear.out_features
    # Its random filters and bias are replaced at once by the Linear's own.
    conv = nn.Conv2d(in_channels, out_channels, (kernel_height, kernel_width), bias=linear.bias is not None)
    # (out, C·kH·kW) → (out, C, kH, kW): flatten's order, so a view of the same memory.
    filters = linear.weight.data.reshape(out_channels, in_channels, kernel_height, kernel_width)
    conv.weight = nn.Parameter(filters, requires_grad=linear.weight.requires_grad)
    if linear.bias is not None:
        conv.bias = linear.bias
    return conv
