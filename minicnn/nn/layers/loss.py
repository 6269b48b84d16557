"""CrossEntropyLoss: softmax and negative log-likelihood of the right class, in one step."""
import minicnn.nn.functional as F
from minicnn.checks import check_int, check_probability
from minicnn.nn.module import Module
from minicnn.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropyLoss(Module):
    """``loss(logits (N, C), target (N,) class indices)``, averaged over the batch by default.

    ``weight`` (C,) rescales each class (kept as a buffer, as in PyTorch);
    targets equal to ``ignore_index`` count for nothing; ``label_smoothing`` ε
    mixes the one-hot target with the uniform distribution (ε/C on every class).
    All but ``weight`` are keyword-only: PyTorch's positional slots in between
    are long-deprecated arguments minicnn does not have.

    >>> criterion = CrossEntropyLoss(label_smoothing=0.1)
    >>> loss = criterion(model(images), labels)
    """

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"CrossEntropyLoss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        label_smoothing = check_probability("CrossEntropyLoss", "label_smoothing", label_smoothing, allow_one=True)
        ignore_index = check_int("CrossEntropyLoss", "ignore_index", ignore_index)
        if weight is not None:
            weight = weight if isinstance(weight, Tensor) else Tensor(weight)
            if weight.ndim != 1:
                raise ValueError(f"CrossEntropyLoss: weight must be 1-D (one per class), got shape {weight.shape}")
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class MSELoss(Module):
    """Mean squared error between ``input`` and ``target`` (both may carry gradients)."""

    def __init__(self, *, reduction="mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"MSELoss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)
