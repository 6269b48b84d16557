"""A gradient check of every differentiable op on small float64 inputs: the table `minicnn gradcheck` prints.

Inputs avoid the kinks where a derivative jumps (ReLU at 0, max-pool ties),
so central differences are exact to rounding there too.
"""
import numpy as np

import minicnn
import minicnn.nn.functional as F
from minicnn.gradcheck import gradcheck, numeric_gradients


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _tie_free(*shape, seed=0):
    """Distinct values spaced 0.1 apart, shuffled: no two candidates of a max are close."""
    values = (np.arange(int(np.prod(shape))) - np.prod(shape) / 2) * 0.1
    return np.random.default_rng(seed).permutation(values).reshape(shape)


def _away_from_kinks(*shape, seed=0):
    x = np.random.default_rng(seed).uniform(-7, 7, size=shape)
    for kink in (0.0, 3.0, -3.0, 6.0):
        x[np.abs(x - kink) < 0.05] = kink + 0.1
    return x


def _batch_norm(x, weight, bias):
    return F.batch_norm(x, None, None, weight, bias, training=True)


def _cross_entropy(logits):
    labels = minicnn.tensor(np.array([0, 2, 1]), device=logits.device)
    return F.cross_entropy(logits, labels, label_smoothing=0.1)


# name → (function of tensors, list of input arrays)
OP_CHECKS = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
               [_normal(2, 3, 5, 5), _normal(4, 3, 3, 3, seed=1), _normal(4, seed=2)]),
    "conv2d groups+dilation": (lambda x, w: F.conv2d(x, w, padding=2, dilation=2, groups=2),
                               [_normal(1, 4, 5, 5), _normal(2, 2, 3, 3, seed=1)]),
    "conv2d depthwise": (lambda x, w: F.conv2d(x, w, padding=1, groups=3),
                         [_normal(2, 3, 4, 4), _normal(3, 1, 3, 3, seed=1)]),
    "linear": (F.linear, [_normal(3, 4), _normal(2, 4, seed=1), _normal(2, seed=2)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), [_tie_free(1, 2, 5, 5)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), [_normal(1, 2, 5, 5)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [_normal(1, 2, 5, 4)]),
    "relu": (F.relu, [_away_from_kinks(3, 4)]),
    "relu6": (F.relu6, [_away_from_kinks(3, 4)]),
    "leaky_relu": (F.leaky_relu, [_away_from_kinks(3, 4)]),
    "sigmoid": (F.sigmoid, [_normal(3, 4)]),
    "tanh": (F.tanh, [_normal(3, 4)]),
    "hardswish": (F.hardswish, [_away_from_kinks(3, 4)]),
    "hardsigmoid": (F.hardsigmoid, [_away_from_kinks(3, 4)]),
    "dropout": (None, [_normal(3, 4)]),  # filled in below: it needs a fixed mask
    # seed 3, not 0: gradcheck projects onto a direction drawn with seed 0, and moving x along itself
    # only rescales each channel, which normalisation undoes: the input gradient would vanish.
    "batch_norm": (_batch_norm, [_normal(4, 3, 2, 2, seed=3), _normal(3, seed=1), _normal(3, seed=2)]),
    "local_response_norm": (lambda x: F.local_response_norm(x, size=3, alpha=0.1, beta=0.75, k=2.0),
                            [_normal(2, 5, 2, 2)]),
    "softmax": (lambda x: F.softmax(x, dim=1), [_normal(3, 4)]),
    "log_softmax": (lambda x: F.log_softmax(x, dim=1), [_normal(3, 4)]),
    "cross_entropy": (_cross_entropy, [_normal(3, 4)]),
    "mse_loss": (lambda a, b: F.mse_loss(a, b), [_normal(3, 4), _normal(3, 4, seed=1)]),
    "cat": (lambda a, b: F.cat([a, b], dim=1), [_normal(2, 3), _normal(2, 2, seed=1)]),
}


def _dropout_with_fixed_mask(x):
    minicnn.manual_seed(0)  # every evaluation must draw the same mask
    return F.dropout(x, p=0.3)


OP_CHECKS["dropout"] = (_dropout_with_fixed_mask, OP_CHECKS["dropout"][1])


def run_op_checks(names=None, atol=1e-5, rtol=1e-4, device="cpu"):
    """Gradient-check the named ops (all by default) on ``device``; one dict per op with its worst errors."""
    results = []
    for name in names or list(OP_CHECKS):
        function, inputs = OP_CHECKS[name]
        analytic, numeric = numeric_gradients(function, inputs, device=device)
        difference = [np.abs(a - n).max(initial=0.0) for a, n in zip(analytic, numeric)]
        scale = [np.abs(n).max(initial=0.0) for n in numeric]
        max_abs = float(max(difference))
        max_rel = float(max(d / max(s, 1e-12) for d, s in zip(difference, scale)))
        passed = gradcheck(function, inputs, atol=atol, rtol=rtol, raise_exception=False, device=device)
        results.append(dict(op=name, max_abs_error=max_abs, max_rel_error=max_rel, passed=bool(passed)))
    return results
