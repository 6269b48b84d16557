"""Normalisation kernels: batch norm statistics/forward/backward and local response norm.

Batch norm works on x viewed as (N, C, L): per channel c the statistics run
over the M = N·L values x[:, c, :] (L = H·W for images, 1 for BatchNorm1d).
Local response norm divides each value by a power of the sum of squares of
its neighbours across channels (axis 1), for inputs of any rank ≥ 3.
"""
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


# --- batch norm ----------------------------------------------------------------
def _per_channel(values):
    """(C,) → (1, C, 1), to broadcast against (N, C, L)."""
    return values[None, :, None]


def batch_norm_statistics(x, eps):
    """Mean, biased variance and 1/sqrt(variance + eps) of each channel of x (N, C, L); each (C,).

    The variance is computed around the mean (two passes), which stays
    accurate in float32 when |mean| ≫ std, unlike E[x²] − E[x]².
    """
    mean = x.mean(axis=(0, 2))
    centered = x - _per_channel(mean)
    var = (centered * centered).mean(axis=(0, 2))
    return mean, var, batch_norm_invstd(var, eps)


def batch_norm_invstd(var, eps):
    """1 / sqrt(var + eps), in var's dtype."""
    return 1 / get_array_module(var).sqrt(var + var.dtype.type(eps))


def batch_norm_forward(x, mean, invstd, weight, bias):
    """y = (x − mean)·invstd·weight + bias per channel, as one scale and one shift.

    x is (N, C, L); mean, invstd, weight, bias are (C,); weight and bias may be None.
    """
    scale = invstd if weight is None else invstd * weight
    shift = -mean * scale if bias is None else bias - mean * scale
    return x * _per_channel(scale) + _per_channel(shift)


def batch_norm_backward(gy, x, mean, invstd, weight, batch_statistics, need_input_grad=True):
    """Gradients (dx, dweight, dbias) of batch norm; dx is None unless ``need_input_grad``.

    With x̂ = (x − mean)·invstd and ĝ = gy·weight:
        dbias = Σ gy,   dweight = Σ gy·x̂     (sums over N and L)
    When the mean and variance came from this batch they depend on x too, and
    the chain rule through them collapses into the fused formula
        dx = invstd/M · (M·ĝ − Σĝ − x̂·Σ(ĝ·x̂));
    with running statistics (eval) they are constants and dx = ĝ·invstd.
    """
    grad_bias = gy.sum(axis=(0, 2))
    centered = x - _per_channel(mean)
    grad_weight = (gy * centered).sum(axis=(0, 2)) * invstd
    if not need_input_grad:
        return None, grad_weight, grad_bias
    scale = invstd if weight is None else invstd * weight
    if not batch_statistics:
        return gy * _per_channel(scale), grad_weight, grad_bias
    count = x.dtype.type(x.shape[0] * x.shape[2])
    # Σĝ = weight·Σgy and Σ(ĝ·x̂) = weight·dweight: both per-channel, from the sums above.
    mean_grad = grad_bias / count
    mean_grad_xhat = grad_weight / count
    grad_x = (gy - _per_channel(mean_grad)) - centered * _per_channel(invstd * mean_grad_xhat)
    grad_x *= _per_channel(scale)
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
