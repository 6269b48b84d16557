"""im2col and its adjoint col2im on the GPU (kernels/im2col.cu), one thread per element written.

The column buffer is ordered (C, KH, KW, N, OH, OW), as in the NumPy kernels;
col2im is a gather (each input pixel sums the column entries that read it), so
it needs no atomics and is deterministic.
"""
from minicnn.backend.cuda.runtime import KernelCall, nchw_sizes, window
from minicnn.shapes import conv_output_size  # shape arithmetic, the same on every backend

__all__ = ["conv_output_size", "im2col", "col2im"]


def im2col(x, kernel_size, stride, padding, dilation, out_size, pad_value=0.0):
    """cols (C, KH, KW, N, OH, OW), one thread per column entry."""
    call = KernelCall("im2col", x, note=f"kernel_size={tuple(kernel_size)}, out_size={tuple(out_size)}")
    n, c, h, w, oh, ow = nchw_sizes(x.shape, out_size)
    kh, kw = (int(v) for v in kernel_size)
    cols = call.empty((c, kh, kw, n, oh, ow))
    call.launch(cols.size, x, cols, n, c, h, w, oh, ow, *window(kernel_size, stride, padding, dilation),
                call.scalar(pad_value))
    return cols


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """(N, C, H, W): each input pixel gathers the column entries that read it (no atomics)."""
    call = KernelCall("col2im", cols, note=f"x_shape={tuple(x_shape)}")
    if cols.ndim != 6 or tuple(cols.shape[1:3]) != tuple(kernel_size):
        raise ValueError(f"col2im: expected cols (C, KH, KW, N, OH, OW) for kernel {tuple(kernel_size)}, "
                         f"got {call.shapes}")
    n, c, h, w, oh, ow = nchw_sizes(x_shape, cols.shape[4:])
    x = call.empty((n, c, h, w))
    # launch makes cols contiguous: a broadcast view (avg-pool backward) becomes a real buffer there
    call.launch(x.size, cols, x, n, c, h, w, oh, ow, *window(kernel_size, stride, padding, dilation))
    return x
