"""Softmax, log-softmax and the fused softmax–cross-entropy kernels on the GPU (kernels/softmax.cu).

Rows run along one axis, one warp per row; every kernel sees its input as
(outer, classes, inner) around that axis.  Cross-entropy takes logits
(N, C, *rest) and integer targets (N, *rest), the class axis being 1.
"""
import math

import numpy as np

from minicnn.backend.cuda.runtime import KernelCall

__all__ = [
    "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
    "cross_entropy_forward", "cross_entropy_backward",
]


# --- softmax family: rows along one axis, one warp per row ---------------------
def _outer_classes_inner(op, shape, axis):
    ndim = len(shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for shape {tuple(shape)}")
    axis %= ndim
    return math.prod(shape[:axis]), int(shape[axis]), math.prod(shape[axis + 1:])


def _softmax_like(kernel, x, axis):
    """y = softmax(x) or log_softmax(x) along ``axis``: kernel(x, y, outer, classes, inner)."""
    call = KernelCall(kernel, x, note=f"axis={axis}")
    outer, classes, inner = _outer_classes_inner(kernel, x.shape, axis)
    y = call.empty(x.shape)
    call.launch(outer * inner, x, y, outer, classes, inner)
    return y


def _softmax_like_backward(kernel, gy, y, axis):
    """gx from the output y: kernel(gy, y, gx, outer, classes, inner)."""
    call = KernelCall(kernel, gy, y, note=f"axis={axis}")
    if gy.shape != y.shape:
        raise ValueError(f"{kernel}: gradient and output shapes differ: {call.shapes}")
    outer, classes, inner = _outer_classes_inner(kernel, y.shape, axis)
    gx = call.empty(y.shape)
    call.launch(outer * inner, gy, y, gx, outer, classes, inner)
    return gx


def softmax_forward(x, axis):
    return _softmax_like("softmax_forward", x, axis)


def softmax_backward(gy, y, axis):
    return _softmax_like_backward("softmax_backward", gy, y, axis)


def log_softmax_forward(x, axis):
    return _softmax_like("log_softmax_forward", x, axis)


def log_softmax_backward(gy, y, axis):
    return _softmax_like_backward("log_softmax_backward", gy, y, axis)


# --- cross-entropy: softmax and the loss of each target in one kernel ------------
def _cross_entropy_sizes(op, logits_shape, target, weight, shapes):
    if len(logits_shape) < 2 or tuple(target.shape) != (logits_shape[0], *logits_shape[2:]):
        raise ValueError(f"{op}: expected logits (N, C, *rest) and target (N, *rest), got {shapes}")
    if weight is not None and tuple(weight.shape) != (logits_shape[1],):
        raise ValueError(f"{op}: class weights must have shape (C,), got {shapes}")
    return int(logits_shape[0]), int(logits_shape[1]), math.prod(logits_shape[2:])


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    call = KernelCall("cross_entropy_forward", logits, target, weight, dtype_of=[logits, weight])
    batch, classes, inner = _cross_entropy_sizes("cross_entropy_forward", logits.shape, target, weight,
                                                 call.shapes)
    log_probs = call.empty(logits.shape)
    losses, target_weights = call.empty(target.shape), call.empty(target.shape)
    call.launch(batch * inner, logits, target.astype(np.int64, copy=False), weight, log_probs, losses,
                target_weights, batch, classes, inner, int(ignore_index), np.float64(label_smoothing))
    return losses, log_probs, target_weights


def cross_entropy_backward(grad_losses, log_probs, target, weight, ignore_index, label_smoothing):
    call = KernelCall("cross_entropy_backward", grad_losses, log_probs, target, weight,
                      dtype_of=[grad_losses, log_probs, weight])
    batch, classes, inner = _cross_entropy_sizes("cross_entropy_backward", log_probs.shape, target, weight,
                                                 call.shapes)
    if grad_losses.shape != target.shape:
        raise ValueError(f"cross_entropy_backward: grad_losses must have the target's shape, "
                         f"got {call.shapes}")
    grad_logits = call.empty(log_probs.shape)
    call.launch(batch * inner, grad_losses, log_probs, target.astype(np.int64, copy=False), weight,
                grad_logits, batch, classes, inner, int(ignore_index), np.float64(label_smoothing))
    return grad_logits
