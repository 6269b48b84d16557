"""Normalisation kernels: batch norm statistics/forward/backward and local response norm.

Batch norm works on x viewed as (N, C, L): per channel c the statistics run
over the M = N·L values x[:, c, :] (L = H·W for images, 1 for BatchNorm1d).
Every batch-norm kernel works through blocks of whole channels, a block small
enough to stay in the L2 cache, the blocks shared between threads (threads.py):
a channel's sums, its centring and its element-wise pass then all reuse the
same cached values, and each channel is finished by one thread, so one thread
or two give identical numbers.  Sums over a channel add each row in the array's
dtype, then the rows in float64.
Local response norm divides each value by a power of the sum of squares of
its neighbours across channels (axis 1), for inputs of any rank ≥ 3.
"""
import numpy as np

from minicnn.backend.cpu.threads import parallel_for
from minicnn.device import get_array_module

__all__ = [
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_invstd",
    "batch_norm_statistics",
    "batch_norm_update_running_stats",
    "local_response_norm_backward",
    "local_response_norm_forward",
]

# Values per block of channels: the block and its centred copy stay in a 2 MiB L2 cache.
BLOCK_ELEMENTS = 1 << 17
# Rows shorter than this get their per-channel values spelled out along L (see _per_channel).
SHORT_ROW = 256
# OpenBLAS splits a dot product longer than 10 000 values across its own threads.
DOT_LENGTH = 8192
# NumPy would copy a broadcast operand through an 8192-value buffer to lengthen its inner loop
# (several times slower here); with buffers this small it never does.
UFUNC_BUFFER = 16


# --- batch norm ----------------------------------------------------------------
def _over_channel_blocks(x, work):
    """work(channels, scratch) for slices of whole channels of x (N, C, L), the slices shared between threads.

    ``scratch`` is the thread's own (N, channels, L) buffer, reused from block to block.
    """
    n, c, length = x.shape
    per_channel = max(1, n * length)
    channels = max(1, min(c, BLOCK_ELEMENTS // per_channel))

    def blocks(start, stop):
        scratch = np.empty((n, channels, length), dtype=x.dtype)
        with np.errstate():
            np.setbufsize(UFUNC_BUFFER)
            for block in range(start, stop):
                first, last = block * channels, min(c, (block + 1) * channels)
                work(slice(first, last), scratch[:, : last - first])

    parallel_for(-(-c // channels), blocks, elements_per_item=channels * per_channel)


def _per_channel(values, length):
    """(c,) → a shape that broadcasts against (N, c, L).

    For short rows the values are written out as (c, L), so that NumPy's inner loop
    runs over c·L contiguous values instead of restarting every L of them.
    """
    if length < SHORT_ROW:
        return np.repeat(values, length).reshape(1, -1, length)
    return values[None, :, None]


def _channel_sum(a):
    """Σ over N and L of a (N, c, L) → (c,) in float64.

    Long rows are summed one by one in a's dtype, short ones across N (an inner loop over c·L
    values), then the partial sums in float64.  einsum rather than a.sum(): NumPy's pairwise sum
    runs at a third of einsum's speed here.
    """
    if a.shape[2] >= SHORT_ROW:
        return np.einsum("ncl->nc", a).sum(axis=0, dtype=np.float64)
    return np.einsum("ncl->cl", a).sum(axis=1, dtype=np.float64)


def _channel_dot(a, b):
    """Σ over N and L of a·b, both (N, c, L), summed like _channel_sum; (c,) in float64.

    Long rows go to BLAS (np.vecdot, twice einsum's speed), cut into pieces below DOT_LENGTH:
    OpenBLAS hands longer dot products to its own threads, which would fight ours.
    """
    n, c, length = a.shape
    pieces = next((p for p in range(1, 9) if length % p == 0 and length // p <= DOT_LENGTH), None)
    if length >= SHORT_ROW and pieces:
        piece = (n, c, pieces, length // pieces)  # sizes spelled out: -1 is undetermined for an empty batch
        rows = np.vecdot(a.reshape(piece), b.reshape(piece))  # (N, c, pieces)
        return rows.sum(axis=(0, 2), dtype=np.float64)
    if length >= SHORT_ROW:
        return np.einsum("ncl,ncl->nc", a, b).sum(axis=0, dtype=np.float64)
    return np.einsum("ncl,ncl->cl", a, b).sum(axis=1, dtype=np.float64)


def batch_norm_statistics(x, eps):
    """Mean, biased variance and 1/sqrt(variance + eps) of each channel of x (N, C, L); each (C,).

    Two passes over each cached block (the corrected two-pass algorithm): a first mean m,
    then d = x − m, whose sum corrects the mean's rounding, m' = m + Σd/M, and
    var = Σd²/M − (Σd/M)².  Unlike E[x²] − E[x]² this stays accurate in float32
    when |mean| ≫ std.
    """
    n, c, length = x.shape
    count = n * length
    mean, var = np.empty(c, dtype=x.dtype), np.empty(c, dtype=x.dtype)

    def block(channels, centered):
        with np.errstate(invalid="ignore", divide="ignore"):  # an empty batch: 0/0 = nan, as x.mean() gives
            first = (_channel_sum(x[:, channels]) / count).astype(x.dtype)
            np.subtract(x[:, channels], _per_channel(first, length), out=centered)
            correction = _channel_sum(centered) / count
            mean[channels] = first + correction
            var[channels] = np.maximum(_channel_dot(centered, centered) / count - correction * correction, 0)

    _over_channel_blocks(x, block)
    return mean, var, batch_norm_invstd(var, eps)


def batch_norm_invstd(var, eps):
    """1 / sqrt(var + eps), in var's dtype."""
    return 1 / get_array_module(var).sqrt(var + var.dtype.type(eps))


def _scale_and_shift(mean, invstd, weight, bias):
    """y = x·scale + shift per channel: scale = invstd·weight, shift = bias − mean·scale."""
    scale = invstd if weight is None else invstd * weight
    shift = -mean * scale if bias is None else bias - mean * scale
    return scale, shift


def batch_norm_forward(x, mean, invstd, weight, bias):
    """y = (x − mean)·invstd·weight + bias per channel, as one scale and one shift.

    x is (N, C, L); mean, invstd, weight, bias are (C,); weight and bias may be None.
    y keeps x's memory layout (a channel-major x gives a channel-major y).
    """
    scale, shift = _scale_and_shift(mean, invstd, weight, bias)
    length = x.shape[2]
    y = np.empty_like(x)

    def block(channels, _):
        y_block = y[:, channels]
        np.multiply(x[:, channels], _per_channel(scale[channels], length), out=y_block)
        np.add(y_block, _per_channel(shift[channels], length), out=y_block)

    _over_channel_blocks(x, block)
    return y


def batch_norm_backward(gy, x, mean, invstd, weight, batch_statistics, need_input_grad=True):
    """Gradients (dx, dweight, dbias) of batch norm; dx is None unless ``need_input_grad``.

    With x̂ = (x − mean)·invstd and ĝ = gy·weight:
        dbias = Σ gy,   dweight = Σ gy·x̂     (sums over N and L)
    When the mean and variance came from this batch they depend on x too, and
    the chain rule through them collapses into the fused formula
        dx = invstd/M · (M·ĝ − Σĝ − x̂·Σ(ĝ·x̂));
    with running statistics (eval) they are constants and dx = ĝ·invstd.
    Per channel, with scale = weight·invstd, that is
        dx = scale·gy − scale·Σgy/M − (x − mean)·scale·invstd²·Σ(gy·(x − mean))/M.
    """
    n, c, length = x.shape
    count = max(1, n * length)  # an empty batch sums nothing: zero gradients
    scale = invstd if weight is None else invstd * weight
    # The two corrections, per unit of Σgy and of Σ(gy·(x − mean)).
    per_sum = -scale.astype(np.float64) / count
    per_dot = -(scale * invstd * invstd).astype(np.float64) / count
    grad_weight, grad_bias = np.empty(c, dtype=gy.dtype), np.empty(c, dtype=gy.dtype)
    grad_x = np.empty_like(gy) if need_input_grad else None

    def block(channels, centered):
        gy_block = gy[:, channels]
        np.subtract(x[:, channels], _per_channel(mean[channels], length), out=centered)
        sum_gy, sum_gy_centered = _channel_sum(gy_block), _channel_dot(gy_block, centered)
        grad_bias[channels] = sum_gy
        grad_weight[channels] = sum_gy_centered * invstd[channels]
        if grad_x is None:
            return
        grad_block = grad_x[:, channels]
        np.multiply(gy_block, _per_channel(scale[channels], length), out=grad_block)
        if batch_statistics:
            slope = (per_dot[channels] * sum_gy_centered).astype(gy.dtype)
            offset = (per_sum[channels] * sum_gy).astype(gy.dtype)
            np.multiply(centered, _per_channel(slope, length), out=centered)
            np.add(centered, _per_channel(offset, length), out=centered)
            np.add(grad_block, centered, out=grad_block)

    _over_channel_blocks(x, block)
    return grad_x, grad_weight, grad_bias


def batch_norm_update_running_stats(running_mean, running_var, mean, var, count, momentum):
    """In place: running = (1 − momentum)·running + momentum·batch (PyTorch's convention).

    The running variance tracks the unbiased batch variance var·M/(M − 1),
    though the batch itself was normalised with the biased one.
    """
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
    if running_var is not None:
        running_var *= 1 - momentum
        running_var += (momentum * count / (count - 1)) * var


# --- local response norm -------------------------------------------------------
def _channel_window_sum(values, before, after):
    """out[:, c] = Σ values[:, c − before … c + after] along axis 1, zero beyond the edges.

    One shifted add per window offset on a zero-padded copy: exact (no
    cumulative-sum cancellation) and no loop over channels.
    """
    xp = get_array_module(values)
    channels = values.shape[1]
    padded_shape = (values.shape[0], channels + before + after) + values.shape[2:]
    padded = xp.zeros(padded_shape, dtype=values.dtype)
    padded[:, before:before + channels] = values
    window_sum = padded[:, 0:channels].copy()
    for offset in range(1, before + after + 1):
        window_sum += padded[:, offset:offset + channels]
    return window_sum


def local_response_norm_forward(x, size, alpha, beta, k):
    """y = x / scale^β with scale = k + α/size · Σ x² over the channel window; returns (y, scale).

    The window of channel c is c − size//2 … c + (size−1)//2 (PyTorch's),
    zero-padded at the edges; x is (N, C, ...).
    """
    dtype = x.dtype.type
    scale = _channel_window_sum(x * x, size // 2, (size - 1) // 2)
    scale *= dtype(alpha / size)
    scale += dtype(k)
    return x * scale ** dtype(-beta), scale


def local_response_norm_backward(gy, x, y, scale, size, alpha, beta):
    """dx_c = gy_c·scale_c^−β − (2αβ/size)·x_c·Σ_j gy_j·y_j/scale_j.

    The sum runs over every channel j whose window holds c: the window read
    backwards, c − (size−1)//2 … c + size//2.
    """
    dtype = x.dtype.type
    through_scale = _channel_window_sum(gy * y / scale, (size - 1) // 2, size // 2)
    grad_x = gy * scale ** dtype(-beta)
    grad_x -= dtype(2 * alpha * beta / size) * x * through_scale
    return grad_x
