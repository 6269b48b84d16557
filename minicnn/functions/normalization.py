"""Differentiable normalisation: batch_norm and local_response_norm (PyTorch's semantics).

batch_norm, per channel c over every value of that channel (N·H·W of them):
    y = (x − mean_c) / sqrt(var_c + eps) · weight_c + bias_c
Training uses the batch's mean and biased variance and moves the running
statistics toward them; evaluation uses the running statistics.

local_response_norm (AlexNet), across channels:
    y_c = x_c / (k + α/size · Σ_{j near c} x_j²)^β
"""
import math

from minicnn.backend import get_array_module, kernels_for
from minicnn.checks import check_floating, check_positive_int, check_type
from minicnn.tensor import Function, Tensor


class BatchNorm(Function):
    """Batch norm per channel c of x viewed as (N, C, L), over its M = N·L values.

    Inputs are x, then the weight γ and bias β where given; running statistics are state, not inputs.
    Forward:  x̂ = (x − mean_c)·invstd_c, invstd = 1/√(var + eps);   y = γ·x̂ + β.
        Training: this batch's mean and biased var.  Eval: copies of the running statistics.
    Backward, with gy = ∂L/∂y, ĝ = γ·gy and sums over N and L:
        ∂L/∂β = Σ gy,   ∂L/∂γ = Σ gy·x̂,
        ∂L/∂x = invstd/M · (M·ĝ − Σ ĝ − x̂·Σ ĝ·x̂)   with batch statistics (they depend on x),
        ∂L/∂x = ĝ·invstd                           with running statistics (constants).

    Kernels: batch_norm_statistics (training), batch_norm_invstd (eval), batch_norm_forward,
    batch_norm_backward; ``batch_norm()`` then moves the running statistics with
    batch_norm_update_running_stats.
    """

    def __init__(self, eps, running_mean, running_var, batch_statistics, has_weight, has_bias):
        self.eps = eps
        self.running_mean, self.running_var = running_mean, running_var
        self.batch_statistics = batch_statistics
        self.has_weight, self.has_bias = has_weight, has_bias

    def forward(self, x, *params):
        kernels = kernels_for(x)
        params = list(params)
        weight = params.pop(0) if self.has_weight else None
        bias = params.pop(0) if self.has_bias else None
        length = math.prod(x.shape[2:])
        x_channels = x.reshape(x.shape[0], x.shape[1], length)  # (N, C, L), L = H·W (1 for BatchNorm1d)
        if self.batch_statistics and x.size == 0:
            # An empty batch has no statistics (its mean is 0/0).  PyTorch then returns the empty
            # output, leaves the running statistics alone and gives weight and bias zero gradients:
            # constants in place of mean and invstd do all three, since nothing depends on the batch.
            xp = get_array_module(x)
            mean, invstd = xp.zeros((x.shape[1],), dtype=x.dtype), xp.ones((x.shape[1],), dtype=x.dtype)
            self.batch_statistics = False  # backward: dx = ĝ·invstd, and batch_norm() updates nothing
        elif self.batch_statistics:
            mean, self.batch_var, invstd = kernels.batch_norm_statistics(x_channels, self.eps)
            self.batch_mean = mean
        else:
            # Copies: the running statistics may move (in place) before this graph's backward.
            mean = self.running_mean.astype(x.dtype, copy=True)
            invstd = kernels.batch_norm_invstd(self.running_var.astype(x.dtype, copy=True), self.eps)
        self.x_channels, self.mean, self.invstd, self.weight = x_channels, mean, invstd, weight
        return kernels.batch_norm_forward(x_channels, mean, invstd, weight, bias).reshape(x.shape)

    def backward(self, gy):
        gy_channels = gy.reshape(self.x_channels.shape)  # (N, C, L)
        grad_x, grad_weight, grad_bias = kernels_for(gy).batch_norm_backward(
            gy_channels, self.x_channels, self.mean, self.invstd, self.weight,
            self.batch_statistics, self.needs_input_grad[0])
        grads = [None if grad_x is None else grad_x.reshape(gy.shape)]
        if self.has_weight:
            grads.append(grad_weight)
        if self.has_bias:
            grads.append(grad_bias)
        return tuple(grads)


class LocalResponseNorm(Function):
    """y_c = x_c / s_c^β,  s_c = k + α/size · Σ_j x_j²  over channels j = c − size//2 … c + (size−1)//2
    (zero beyond the edge channels).  With gy = ∂L/∂y:
    ∂L/∂x_c = gy_c · s_c^−β − (2αβ/size) · x_c · Σ_j gy_j·y_j/s_j
    over every channel j whose window holds c.

    Kernels: local_response_norm_forward, local_response_norm_backward.
    """

    def __init__(self, size, alpha, beta, k):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        y, self.scale = kernels_for(x).local_response_norm_forward(x, self.size, self.alpha, self.beta, self.k)
        self.x, self.y = x, y
        return y

    def backward(self, gy):
        return kernels_for(gy).local_response_norm_backward(
            gy, self.x, self.y, self.scale, self.size, self.alpha, self.beta)


def _check_channel_vector(op, name, value, channels, like):
    if value is None:
        return
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(value).__name__}")
    if value.shape != (channels,):
        raise ValueError(f"{op}: {name} has shape {value.shape} but the input has {channels} channels")
    if value.device != like.device:
        raise ValueError(f"{op}: input is on {like.device} but {name} is on {value.device}")


def _check_channels_first_input(op, x, min_ndim):
    """``x``, a floating-point Tensor laid out (N, C, ...) with at least ``min_ndim`` axes."""
    check_type(op, "input", x, Tensor)
    if x.ndim < min_ndim:
        raise ValueError(f"{op}: expected input of shape (N, C, ...) with at least {min_ndim} dimensions, "
                         f"got {tuple(x.shape)}")
    check_floating(op, "input", x)
    return x


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over channel axis 1, like ``torch.nn.functional.batch_norm``.

    Input is (N, C), (N, C, L) or (N, C, H, W).  With ``training`` (or without
    running statistics) the batch's own mean and biased variance normalise it,
    and ``running_mean``/``running_var`` (Tensors, updated in place) move by
    ``momentum`` toward the batch mean and unbiased variance; otherwise the
    running statistics are used as they are.  An empty batch (N = 0) gives an
    empty output and moves nothing, as in PyTorch.

    >>> x = minicnn.randn(8, 3, 4, 4)
    >>> y = batch_norm(x, None, None, training=True)   # every channel: mean 0, variance 1
    """
    op = "batch_norm"
    x = _check_channels_first_input(op, input, min_ndim=2)
    channels = x.shape[1]
    for name, value in (("weight", weight), ("bias", bias),
                        ("running_mean", running_mean), ("running_var", running_var)):
        _check_channel_vector(op, name, value, channels, x)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: running_mean and running_var must both be Tensors or both be None")
    batch_statistics = bool(training) or running_mean is None
    values_per_channel = x.shape[0] * math.prod(x.shape[2:])  # N·L; 0 (an empty batch) is allowed
    if batch_statistics and values_per_channel == 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got input of shape {x.shape}")

    function = BatchNorm(eps, None if running_mean is None else running_mean.data,
                         None if running_var is None else running_var.data,
                         batch_statistics, weight is not None, bias is not None)
    params = [p for p in (weight, bias) if p is not None]
    output = function(x, *params)
    if function.batch_statistics and running_mean is not None:  # False after an empty batch
        kernels_for(x.data).batch_norm_update_running_stats(
            running_mean.data, running_var.data, function.batch_mean, function.batch_var,
            values_per_channel, momentum)
    return output


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Normalise each value by its neighbours across channels (``torch.nn.functional.local_response_norm``).

    b_c = a_c / (k + α/size · Σ a_j²)^β, j from c − size//2 to c + (size−1)//2
    (zero beyond the first and last channel).  Input is (N, C, ...), at least 3-D.

    >>> y = local_response_norm(minicnn.randn(1, 96, 55, 55), size=5, alpha=1e-4, beta=0.75, k=2.0)
    """
    op = "local_response_norm"
    _check_channels_first_input(op, input, min_ndim=3)
    check_positive_int(op, "size", size)
    return LocalResponseNorm(size, float(alpha), float(beta), float(k))(input)


__all__ = ["batch_norm", "local_response_norm"]
