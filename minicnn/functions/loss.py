"""Differentiable softmax, log_softmax and the losses: cross_entropy and mse_loss.

    softmax(x)_i     = e^{x_i} / Σ_j e^{x_j}           dx = y·(gy − Σ gy·y)
    log_softmax(x)_i = x_i − log Σ_j e^{x_j}           dx = gy − softmax(x)·Σ gy
    cross_entropy    = −log_softmax(logits)[target]    d logits = softmax − onehot(target)
    mse_loss         = mean (input − target)²          d input = 2·(input − target)/n

cross_entropy is one fused function rather than log_softmax followed by a
pick: its gradient needs no division by a probability, so it stays exact for
logits in the thousands.
"""
import numpy as np

from minicnn.device import device_of
from minicnn.backend import get_array_module, kernels_for
from minicnn.functions.shape import reshape
from minicnn.tensor import Function, Tensor, as_array

_REDUCTIONS = ("mean", "sum", "none")


class Softmax(Function):
    """y_i = e^{x_i} / Σ_j e^{x_j} along ``axis`` (max subtracted first);
    ∂L/∂x = y · (gy − Σ gy·y), gy = ∂L/∂y, summed along ``axis``: the Jacobian diag(y) − y yᵀ applied
    to gy, never built.

    Kernels: softmax_forward, softmax_backward.
    """

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        self.y = kernels_for(x).softmax_forward(x, self.axis)
        return self.y

    def backward(self, gy):
        return kernels_for(gy).softmax_backward(gy, self.y, self.axis)


class LogSoftmax(Function):
    """y_i = x_i − log Σ_j e^{x_j} along ``axis``;  ∂L/∂x = gy − eʸ · Σ gy, with eʸ = softmax(x)
    and gy = ∂L/∂y summed along ``axis``.

    Kernels: log_softmax_forward, log_softmax_backward.
    """

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        self.y = kernels_for(x).log_softmax_forward(x, self.axis)
        return self.y

    def backward(self, gy):
        return kernels_for(gy).log_softmax_backward(gy, self.y, self.axis)


class CrossEntropy(Function):
    """Softmax cross-entropy of logits (N, C, *rest) against labels t (N, *rest); t and w are constants.

    Forward, with lp = log_softmax(logits) over the C classes, smoothing ε and w = 1 when no weight is given:
        loss_n = −(1 − ε)·w[t_n]·lp[n, t_n] − ε/C · Σ_c w_c·lp[n, c]    (0 where t_n = ignore_index)
    reduced as 'none' (loss_n), 'sum' (Σ loss_n) or 'mean' (Σ loss_n / Σ w[t_n] over the counted targets).
    Backward, with p = softmax(logits) and g_n = ∂L/∂loss_n (∂L/∂y / Σ w[t_n] for 'mean'):
        ∂L/∂logits[n, c] = g_n · ((1 − ε)·w[t_n]·(p_c − [c = t_n]) + ε/C · (p_c·Σ w − w_c))
    which without weights or smoothing is g_n · (p − onehot(t_n)).

    Kernels: cross_entropy_forward, cross_entropy_backward.
    """

    def __init__(self, target, weight, ignore_index, label_smoothing, reduction):
        self.target, self.weight = target, weight
        self.ignore_index, self.label_smoothing, self.reduction = ignore_index, label_smoothing, reduction

    def forward(self, logits):
        xp = get_array_module(logits)
        losses, self.log_probs, target_weights = kernels_for(logits).cross_entropy_forward(
            logits, self.target, self.weight, self.ignore_index, self.label_smoothing)
        self.losses_shape = losses.shape
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return xp.asarray(losses.sum())
        # PyTorch's weighted mean: divide by the total weight of the counted targets.  With none
        # (an empty batch, every target ignored) that is 0/0 = nan, as in PyTorch; no warning.
        self.total_weight = target_weights.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.asarray(losses.sum() / self.total_weight)

    def backward(self, gy):
        xp = get_array_module(gy)
        if self.reduction == "mean":
            with np.errstate(divide="ignore", invalid="ignore"):  # total weight 0: see forward
                gy = gy / self.total_weight
        grad_losses = xp.broadcast_to(gy, self.losses_shape)  # (N, *rest)
        return kernels_for(gy).cross_entropy_backward(
            grad_losses, self.log_probs, self.target, self.weight, self.ignore_index, self.label_smoothing)


class MSELoss(Function):
    """d = input − target;  y = d² per element, reduced as 'none', 'sum' (Σ d²) or 'mean' (Σ d² / n);
    ∂L/∂input = 2·d·∂L/∂y (divided by n for 'mean'),  ∂L/∂target = −∂L/∂input.
    """

    def __init__(self, reduction):
        self.reduction = reduction

    def forward(self, input, target):
        xp = get_array_module(input)
        self.difference = input - target
        squared = self.difference * self.difference
        if self.reduction == "none":
            return squared
        if self.reduction == "sum":
            return xp.asarray(squared.sum())
        with np.errstate(invalid="ignore"):  # the mean of no elements is 0/0 = nan, as in PyTorch
            return xp.asarray(squared.sum() / squared.dtype.type(squared.size))

    def backward(self, gy):
        # An empty input has an empty gradient whatever the scale: max() only avoids dividing by 0.
        scale = gy.dtype.type(2 / max(self.difference.size, 1) if self.reduction == "mean" else 2)
        grad_input = self.difference * (gy * scale)
        grad_target = -grad_input if self.needs_input_grad[1] else None
        return grad_input, grad_target


# --- argument checks -----------------------------------------------------------
def _softmax_axis(op, x, dim):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if dim is None:
        raise ValueError(f"{op}: dim must be given (the axis that sums to one), e.g. {op}(x, dim=1)")
    rank = max(x.ndim, 1)
    if not isinstance(dim, int) or isinstance(dim, bool) or not -rank <= dim < rank:
        raise ValueError(f"{op}: dim {dim!r} is out of range for a tensor with {x.ndim} dimensions")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}")
    return dim % rank


def _check_reduction(op, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_device(op, name, array, logits):
    """A label or weight array must live where the logits do: the kernels read both."""
    if get_array_module(array) is not get_array_module(logits.data):
        where = device_of(array)
        raise ValueError(f"{op}: input is on {logits.device} but {name} is on {where}; "
                         f"move {name} with .to({logits.device!r})")


def _check_target(op, logits, target, ignore_index):
    """Return the target as an integer array of shape (N, *rest), checked against logits (N, C, *rest)."""
    target = as_array(target)
    _check_device(op, "target", target, logits)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {target.dtype}")
    expected = logits.shape[:1] + logits.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{op}: target has shape {target.shape} but input of shape {logits.shape} "
                         f"needs target shape {expected}")
    classes = logits.shape[1]
    counted = target[target != ignore_index]
    if counted.size and (int(counted.min()) < 0 or int(counted.max()) >= classes):
        bad = int(counted.min()) if int(counted.min()) < 0 else int(counted.max())
        raise ValueError(f"{op}: target holds class {bad} but input has {classes} classes "
                         f"(valid labels are 0..{classes - 1})")
    return target


# --- public functions --------------------------------------------------------
def softmax(input, dim=None):
    """Exponentiate and normalise along ``dim`` so it sums to one (``torch.nn.functional.softmax``).

    >>> softmax(minicnn.tensor([[1.0, 2.0, 3.0]]), dim=1)
    Tensor([[0.09003057 0.24472846 0.66524094]])
    """
    return Softmax(_softmax_axis("softmax", input, dim))(input)


def log_softmax(input, dim=None):
    """log(softmax(x)) along ``dim``, computed without ever forming a tiny probability."""
    return LogSoftmax(_softmax_axis("log_softmax", input, dim))(input)


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy of logits against integer labels (``torch.nn.functional.cross_entropy``).

    ``input`` is (N, C) logits (or (N, C, d1, ...) for per-pixel labels, or (C,)
    for one sample); ``target`` holds class indices (N,) (or (N, d1, ...)).
    ``weight`` (C,) rescales each class; ``reduction='mean'`` divides by the total
    weight of the targets; ``ignore_index`` labels contribute nothing;
    ``label_smoothing`` ε mixes the one-hot target with ε/C on every class.

    >>> logits = minicnn.tensor([[2.0, 0.5, -1.0]])
    >>> cross_entropy(logits, minicnn.tensor([0]))
    Tensor(0.24131124)
    """
    op = "cross_entropy"
    logits = input
    if not isinstance(logits, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(logits).__name__}")
    if logits.dtype.kind != "f":
        raise TypeError(f"{op}: expected floating-point logits, got dtype {logits.dtype}")
    _check_reduction(op, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    if logits.ndim == 1:  # one unbatched sample: (C,) logits, a scalar label
        target_array = as_array(target)
        if target_array.ndim != 0:
            raise ValueError(f"{op}: unbatched input of shape {logits.shape} needs a scalar target, "
                             f"got shape {target_array.shape}")
        loss = cross_entropy(reshape(logits, 1, -1), target_array.reshape(1), weight,
                             ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
        return reshape(loss, ()) if reduction == "none" else loss
    if logits.ndim < 2:
        raise ValueError(f"{op}: expected input of shape (N, C) or (N, C, d1, ...), got shape {logits.shape}")
    target_array = _check_target(op, logits, target, ignore_index)
    weight_array = None
    if weight is not None:
        weight_array = as_array(weight)
        _check_device(op, "weight", weight_array, logits)
        if weight_array.shape != (logits.shape[1],):
            raise ValueError(f"{op}: weight has shape {weight_array.shape} but input has {logits.shape[1]} classes")
        weight_array = weight_array.astype(logits.dtype, copy=False)
    function = CrossEntropy(target_array, weight_array, int(ignore_index), float(label_smoothing), reduction)
    return function(logits)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error (``torch.nn.functional.mse_loss``); both arguments get gradients.

    Unlike PyTorch, which broadcasts mismatched shapes with a warning, a shape
    mismatch is an error: it is almost always a bug ((N, 1) against (N,)).
    """
    op = "mse_loss"
    for name, value in (("input", input), ("target", target)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")
    _check_reduction(op, reduction)
    if input.shape != target.shape:
        raise ValueError(f"{op}: input has shape {input.shape} but target has shape {target.shape}")
    if input.dtype != target.dtype:
        raise TypeError(f"{op}: input dtype {input.dtype} differs from target dtype {target.dtype}")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: expected floating-point tensors, got dtype {input.dtype}")
    return MSELoss(reduction)(input, target)


def cross_entropy_of_heads(weighted_logits, target):
    """Σ weight · cross_entropy(logits, target) over ``[(weight, logits)]``: one loss for a network with
    several classifier heads (GoogLeNet's auxiliary classifiers).  A weight of 1 multiplies nothing, so one
    head at weight 1 gives exactly ``cross_entropy(logits, target)``.
    """
    loss = None
    for weight, logits in weighted_logits:
        term = cross_entropy(logits, target)
        if weight != 1:
            term = weight * term
        loss = term if loss is None else loss + term
    if loss is None:
        raise ValueError("cross_entropy_of_heads: expected at least one (weight, logits) pair, got none")
    return loss


__all__ = ["cross_entropy", "cross_entropy_of_heads", "log_softmax", "mse_loss", "softmax"]
