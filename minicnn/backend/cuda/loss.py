"""Softmax, log-softmax and the fused softmax–cross-entropy kernels on the GPU (kernels/softmax.cu).

Rows run along one axis, one warp per row; cross-entropy takes logits
(N, C, *rest) and integer targets (N, *rest), the class axis being 1.
"""
import math

import numpy as np

from minicnn.backend.cuda.normalization import _optional  # None → null pointer, else a contiguous array
from minicnn.backend.cuda.runtime import (
    check_size,
    contiguous,
    dtype_suffix,
    import_cupy,
    launch,
    long_long,
    shape_text,
)

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


def _softmax_like(op, x, axis):
    cupy = import_cupy(op)
    shapes = shape_text(x) + f", axis={axis}"
    suffix = dtype_suffix(op, x)
    outer, classes, inner = _outer_classes_inner(op, x.shape, axis)
    check_size(op, shapes, x.size)
    x = contiguous(x)
    y = cupy.empty_like(x)
    launch(op, suffix, (outer * inner,), (x, y, long_long(outer), long_long(classes), long_long(inner)), shapes)
    return y


def _softmax_like_backward(op, gy, y, axis):
    cupy = import_cupy(op)
    shapes = shape_text(gy, y) + f", axis={axis}"
    if gy.shape != y.shape:
        raise ValueError(f"{op}: gradient and output shapes differ: {shapes}")
    suffix = dtype_suffix(op, gy, y)
    outer, classes, inner = _outer_classes_inner(op, y.shape, axis)
    check_size(op, shapes, y.size)
    gy, y = contiguous(gy), contiguous(y)
    gx = cupy.empty_like(y)
    launch(op, suffix, (outer * inner,), (gy, y, gx, long_long(outer), long_long(classes), long_long(inner)), shapes)
    return gx


def softmax_forward(x, axis):
    return _softmax_like("softmax_forward", x, axis)


def softmax_backward(gy, y, axis):
    return _softmax_like_backward("softmax_backward", gy, y, axis)


def log_softmax_forward(x, axis):
    return _softmax_like("log_softmax_forward", x, axis)


def log_softmax_backward(gy, y, axis):
    return _softmax_like_backward("log_softmax_backward", gy, y, axis)


def _cross_entropy_sizes(op, logits_shape, target, weight, shapes):
    if len(logits_shape) < 2 or tuple(target.shape) != (logits_shape[0], *logits_shape[2:]):
        raise ValueError(f"{op}: expected logits (N, C, *rest) and target (N, *rest), got {shapes}")
    if weight is not None and tuple(weight.shape) != (logits_shape[1],):
        raise ValueError(f"{op}: class weights must have shape (C,), got {shapes}")
    return int(logits_shape[0]), int(logits_shape[1]), math.prod(logits_shape[2:])


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    cupy = import_cupy("cross_entropy_forward")
    shapes = shape_text(logits, target, weight)
    suffix = dtype_suffix("cross_entropy_forward", logits, *(a for a in (weight,) if a is not None))
    batch, classes, inner = _cross_entropy_sizes("cross_entropy_forward", logits.shape, target, weight, shapes)
    check_size("cross_entropy_forward", shapes, logits.size)
    logits, target = contiguous(logits), contiguous(target.astype(np.int64, copy=False))
    log_probs = cupy.empty_like(logits)
    losses = cupy.empty(target.shape, dtype=logits.dtype)
    target_weights = cupy.empty(target.shape, dtype=logits.dtype)
    launch("cross_entropy_forward", suffix, (batch * inner,),
            (logits, target, _optional(weight), log_probs, losses, target_weights, long_long(batch), long_long(classes),
             long_long(inner), long_long(ignore_index), np.float64(label_smoothing)), shapes)
    return losses, log_probs, target_weights


def cross_entropy_backward(grad_losses, log_probs, target, weight, ignore_index, label_smoothing):
    cupy = import_cupy("cross_entropy_backward")
    shapes = shape_text(grad_losses, log_probs, target, weight)
    suffix = dtype_suffix("cross_entropy_backward", grad_losses, log_probs, *(a for a in (weight,) if a is not None))
    batch, classes, inner = _cross_entropy_sizes("cross_entropy_backward", log_probs.shape, target, weight, shapes)
    if grad_losses.shape != target.shape:
        raise ValueError(f"cross_entropy_backward: grad_losses must have the target's shape, got {shapes}")
    check_size("cross_entropy_backward", shapes, log_probs.size)
    grad_losses, log_probs = contiguous(grad_losses), contiguous(log_probs)
    target = contiguous(target.astype(np.int64, copy=False))
    grad_logits = cupy.empty_like(log_probs)
    launch("cross_entropy_backward", suffix, (batch * inner,),
            (grad_losses, log_probs, target, _optional(weight), grad_logits, long_long(batch), long_long(classes),
             long_long(inner), long_long(ignore_index), np.float64(label_smoothing)), shapes)
    return grad_logits
