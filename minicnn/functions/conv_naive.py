"""Convolution by its definition: one output pixel at a time, in plain nested loops.

    y[n, oc, oh, ow] = bias[oc] + Σ_c Σ_i Σ_j  x[n, g·C/G + c, oh·sh − ph + i·dh, ow·sw − pw + j·dw] · w[oc, c, i, j]

where g = oc // (OC/G) is the group filter oc belongs to, c runs over that group's C/G input channels, and a
position outside x reads as 0 (the zero padding).  Nothing is flipped: like every CNN library, this is
cross-correlation, which deep learning calls convolution.

This is the formula a student checks ``conv2d`` (im2col plus one matrix product, ``functions/conv.py``)
against: slow, forward only, no autograd, written to be read.  Its arguments obey exactly conv2d's rules,
so conv2d itself checks them (one set of rules, in one place).
"""
import numpy as np

from minicnn.checks import check_image_batch, check_pair, check_type
from minicnn.functions.conv import conv2d
from minicnn.tensor import Tensor, no_grad, tensor

_OP = "conv2d_naive"


def _checked_output_size(input, weight, bias, stride, padding, dilation, groups):
    """(OH, OW), after conv2d's argument checks, with the errors naming conv2d_naive.

    conv2d runs on an empty batch (N = 0): it checks types, shapes, dtypes, groups and bias,
    then multiplies nothing.
    """
    check_type(_OP, "input", input, Tensor)
    check_image_batch(_OP, input)  # before slicing off the batch below
    try:
        with no_grad():
            empty = conv2d(Tensor(input.data[:0]), weight, bias, stride, padding, dilation, groups)
    except (TypeError, ValueError) as error:
        raise type(error)(str(error).replace("conv2d:", f"{_OP}:", 1)) from None
    return empty.shape[2:]


def conv2d_naive(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """The definition of ``conv2d``, in seven nested loops: same arguments, same checks, same result.

    For teaching and testing only: it is thousands of times slower than ``conv2d`` and it is not
    differentiable (the result is a new Tensor with no graph behind it).  Sums are taken in Python
    floats (float64) and stored in the input's dtype, on the input's device.

    >>> x, w = minicnn.randn(1, 3, 8, 8), minicnn.randn(4, 3, 3, 3)
    >>> y = conv2d_naive(x, w, padding=1)
    >>> np.allclose(y.numpy(), F.conv2d(x, w, padding=1).numpy(), atol=1e-5)
    True
    """
    out_h, out_w = _checked_output_size(input, weight, bias, stride, padding, dilation, groups)
    (sh, sw), (ph, pw) = check_pair(_OP, "stride", stride), check_pair(_OP, "padding", padding, minimum=0)
    dh, dw = check_pair(_OP, "dilation", dilation)
    x, w = input.numpy(), weight.numpy()  # loops index one number at a time: on the host
    b = None if bias is None else bias.numpy()
    batch, _, height, width = x.shape
    out_channels, group_channels, kh, kw = w.shape
    filters_per_group = out_channels // groups
    y = np.zeros((batch, out_channels, out_h, out_w), dtype=x.dtype)  # (N, OC, OH, OW)

    for n in range(batch):
        for oc in range(out_channels):
            first_channel = (oc // filters_per_group) * group_channels  # filter oc sees only its group
            for oh in range(out_h):
                for ow in range(out_w):
                    total = 0.0 if b is None else float(b[oc])
                    for c in range(group_channels):
                        for i in range(kh):
                            for j in range(kw):
                                row = oh * sh - ph + i * dh  # where kernel tap (i, j) lands in x
                                col = ow * sw - pw + j * dw
                                if 0 <= row < height and 0 <= col < width:  # outside: padding, adds 0
                                    total += float(x[n, first_channel + c, row, col]) * float(w[oc, c, i, j])
                    y[n, oc, oh, ow] = total
    return tensor(y, device=input.device)
