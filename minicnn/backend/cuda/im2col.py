"""im2col and its adjoint col2im on the GPU (kernels/im2col.cu), one thread per element written.

The column buffer is ordered (C, KH, KW, N, OH, OW), as in the NumPy kernels;
col2im is a gather (each input pixel sums the column entries that read it), so
it needs no atomics and is deterministic.
"""
from minicnn.backend.cpu.im2col import conv_output_size  # shape arithmetic, the same on every backend
from minicnn.backend.cuda.pooling import _pool_shapes  # (N, C, H, W, OH, OW) as ints
from minicnn.backend.cuda.runtime import (
    check_size,
    contiguous,
    dtype_suffix,
    import_cupy,
    launch,
    long_long,
    shape_text,
)

__all__ = ["conv_output_size", "im2col", "col2im"]


# --- im2col / col2im: one thread per element written ---------------------------
def _geometry(kernel_size, stride, padding, dilation):
    return tuple(long_long(v) for v in (*kernel_size, *stride, *padding, *dilation))


def im2col(x, kernel_size, stride, padding, dilation, out_size, pad_value=0.0):
    """cols (C, KH, KW, N, OH, OW), one thread per column entry."""
    cupy = import_cupy("im2col")
    shapes = shape_text(x) + f", kernel_size={tuple(kernel_size)}, out_size={tuple(out_size)}"
    suffix = dtype_suffix("im2col", x)
    n, c, h, w, oh, ow = _pool_shapes(x.shape, out_size)
    kh, kw = (int(v) for v in kernel_size)
    total = c * kh * kw * n * oh * ow
    check_size("im2col", shapes, x.size, total)
    x = contiguous(x)
    cols = cupy.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    launch("im2col", suffix, (total,),
            (x, cols, *map(long_long, (n, c, h, w, oh, ow)), *_geometry(kernel_size, stride, padding, dilation),
             x.dtype.type(pad_value)), shapes)
    return cols


def col2im(cols, x_shape, kernel_size, stride, padding, dilation):
    """(N, C, H, W): each input pixel gathers the column entries that read it (no atomics)."""
    cupy = import_cupy("col2im")
    shapes = shape_text(cols) + f", x_shape={tuple(x_shape)}"
    suffix = dtype_suffix("col2im", cols)
    if cols.ndim != 6 or tuple(cols.shape[1:3]) != tuple(kernel_size):
        raise ValueError(f"col2im: expected cols (C, KH, KW, N, OH, OW) for kernel {tuple(kernel_size)}, "
                         f"got {shapes}")
    n, c, h, w, oh, ow = _pool_shapes(x_shape, cols.shape[4:])
    check_size("col2im", shapes, cols.size, n * c * h * w)
    cols = contiguous(cols)  # a broadcast view (avg-pool backward) becomes a real buffer here
    x = cupy.empty((n, c, h, w), dtype=cols.dtype)
    launch("col2im", suffix, (x.size,),
            (cols, x, *map(long_long, (n, c, h, w, oh, ow)), *_geometry(kernel_size, stride, padding, dilation)),
            shapes)
    return x
