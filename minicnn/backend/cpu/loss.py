"""Softmax, log-softmax and the fused softmax–cross-entropy kernels.

All of them subtract the maximum before exponentiating, so logits of any
magnitude (1e4 included) give finite results: softmax(x) = softmax(x − max x).

Cross-entropy works on logits (N, C, *rest) with integer targets (N, *rest),
the class axis being 1, as in PyTorch.  Fusing it with log-softmax makes the
gradient the famous, cancellation-free p − onehot(target).
"""
from minicnn.device import get_array_module

__all__ = [
    "cross_entropy_backward",
    "cross_entropy_forward",
    "log_softmax_backward",
    "log_softmax_forward",
    "softmax_backward",
    "softmax_forward",
]


def softmax_forward(x, axis):
    """exp(x − max) / Σ exp(x − max) along ``axis``."""
    xp = get_array_module(x)
    if x.size == 0:  # max() over an empty axis has no identity; an empty input has an empty softmax
        return xp.empty_like(x)
    exps = xp.exp(x - x.max(axis=axis, keepdims=True))
    exps /= exps.sum(axis=axis, keepdims=True)
    return exps


def softmax_backward(gy, y, axis):
    """dx = y · (gy − Σ gy·y): the Jacobian diag(y) − y yᵀ applied to gy, never built."""
    return y * (gy - (gy * y).sum(axis=axis, keepdims=True))


def log_softmax_forward(x, axis):
    """(x − max) − log Σ exp(x − max) along ``axis``."""
    xp = get_array_module(x)
    if x.size == 0:  # as in softmax_forward
        return xp.empty_like(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    shifted -= xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted


def log_softmax_backward(gy, y, axis):
    """dx = gy − softmax · Σ gy, with softmax = exp(y)."""
    xp = get_array_module(y)
    return gy - xp.exp(y) * gy.sum(axis=axis, keepdims=True)


def _class_axis_view(vector, ndim):
    """(C,) → (1, C, 1, …), to broadcast along the class axis of an ndim-D array."""
    return vector.reshape((1, -1) + (1,) * (ndim - 2))


def _one_hot(xp, target, classes, dtype):
    """(N, *rest) integer labels → (N, C, *rest) one-hot in ``dtype``."""
    class_ids = _class_axis_view(xp.arange(classes), target.ndim + 1)
    return (target[:, None] == class_ids).astype(dtype)


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    """Per-element cross-entropy; returns (losses, log_probs, target_weights).

    With log-probabilities lp = log_softmax(logits), smoothing ε, C classes
    and class weights w (all 1 when ``weight`` is None):
        loss_n = (1 − ε)·(−w[y_n]·lp[n, y_n]) + ε/C · (−Σ_c w_c·lp[n, c])
    Elements whose target is ``ignore_index`` get loss 0 and target weight 0.
    ``target_weights`` holds w[y_n]: their sum is PyTorch's divisor for the mean.
    """
    xp = get_array_module(logits)
    dtype = logits.dtype.type
    log_probs = log_softmax_forward(logits, axis=1)  # (N, C, *rest)
    ignored = target == ignore_index
    safe_target = xp.where(ignored, 0, target)
    picked = xp.take_along_axis(log_probs, safe_target[:, None], axis=1)[:, 0]  # (N, *rest)
    kept = ~ignored
    target_weights = kept.astype(logits.dtype) if weight is None else weight[safe_target] * kept
    losses = picked * target_weights
    losses *= dtype(label_smoothing - 1)  # −(1 − ε)
    if label_smoothing > 0:
        classes = logits.shape[1]
        weighted = log_probs if weight is None else log_probs * _class_axis_view(weight, logits.ndim)
        smooth = weighted.sum(axis=1) * kept  # (N, *rest)
        losses -= dtype(label_smoothing / classes) * smooth
    return losses, log_probs, target_weights


def cross_entropy_backward(grad_losses, log_probs, target, weight, ignore_index, label_smoothing):
    """d losses / d logits, given the gradient of every per-element loss (N, *rest).

    Differentiating the forward's formula through log-softmax (p = exp(lp)):
        d loss_n / d logits_c = (1 − ε)·w[y_n]·(p_c − [c = y_n]) + ε/C·(p_c·Σw − w_c)
    which without weights is p − ((1 − ε)·onehot + ε/C).
    """
    xp = get_array_module(log_probs)
    dtype = log_probs.dtype.type
    classes = log_probs.shape[1]
    ignored = target == ignore_index
    safe_target = xp.where(ignored, 0, target)
    grad = grad_losses * ~ignored  # (N, *rest), 0 where ignored
    target_weights = 1 if weight is None else weight[safe_target]
    nll_grad = grad * target_weights * dtype(1 - label_smoothing)  # (N, *rest)
    smooth_grad = grad * dtype(label_smoothing / classes)
    weight_total = dtype(classes) if weight is None else weight.sum()
    probs = xp.exp(log_probs)  # (N, C, *rest)
    grad_logits = probs * (nll_grad + smooth_grad * weight_total)[:, None]
    grad_logits -= _one_hot(xp, safe_target, classes, log_probs.dtype) * nll_grad[:, None]
    if label_smoothing > 0:
        class_weights = xp.ones(classes, dtype=log_probs.dtype) if weight is None else weight
        grad_logits -= smooth_grad[:, None] * _class_axis_view(class_weights, log_probs.ndim)
    return grad_logits
