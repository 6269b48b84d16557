"""Normalisation layers: BatchNorm1d/2d (per-channel batch statistics) and LocalResponseNorm.

Batch norm keeps two kinds of state.  ``weight`` (γ) and ``bias`` (β) are
learned.  ``running_mean`` and ``running_var`` are buffers: estimates of the
data's statistics, updated in training as
``running = (1 - momentum) · running + momentum · batch_statistic``
(PyTorch's convention: momentum is the weight of the *new* batch; the
variance folded in is the unbiased one) and used instead of batch statistics
in ``eval()`` mode.  ``momentum=None`` gives the plain cumulative average,
momentum = 1 / (number of batches seen so far).
"""
import math
import numbers

import numpy as np

import minicnn.nn.functional as F
from minicnn.checks import check_ndim, check_number, check_positive_int, check_type
from minicnn.nn import init
from minicnn.nn.module import Module
from minicnn.nn.parameter import Parameter
from minicnn.tensor import DEFAULT_DTYPE, Tensor


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d; they differ only in the input shapes they accept."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *,
                 bias=True):
        super().__init__()
        layer = type(self).__name__
        self.num_features = check_positive_int(layer, "num_features", num_features)
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or eps <= 0:
            raise ValueError(f"{layer}: eps must be a positive number, got {eps!r}")
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(momentum, numbers.Real)
                                     or not 0 <= momentum <= 1):
            raise ValueError(f"{layer}: momentum must be None or a number in [0, 1], got {momentum!r}")
        self.eps = eps
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        if self.affine:
            self.weight = Parameter(np.empty((num_features,), dtype=DEFAULT_DTYPE))
            if bias:
                self.bias = Parameter(np.empty((num_features,), dtype=DEFAULT_DTYPE))
            else:  # scale only, no shift (PyTorch 2.x's bias=False)
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros((num_features,), dtype=DEFAULT_DTYPE)))
            self.register_buffer("running_var", Tensor(np.ones((num_features,), dtype=DEFAULT_DTYPE)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self):
        """γ = 1 and β = 0: the layer starts as a pure standardisation."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input(self, x):
        layer = type(self).__name__
        check_type(layer, "input", x, Tensor)
        check_ndim(layer, x, self._input_dims, self._input_layout)
        if x.shape[1] != self.num_features:
            raise ValueError(f"{layer}: input has {x.shape[1]} channels but num_features is {self.num_features}")
        values_per_channel = x.shape[0] * math.prod(x.shape[2:])  # PyTorch's test: an empty batch (0) passes
        if self.training and values_per_channel == 1:
            raise ValueError(
                f"{layer}: expected more than 1 value per channel when training, got input of shape {tuple(x.shape)}"
            )

    def _running_momentum(self):
        """This batch's weight in the running statistics (momentum=None: 1 / batches so far, this one too)."""
        if self.momentum is None and self.training and self.track_running_stats:
            return 1.0 / (int(self.num_batches_tracked.data) + 1)
        return 0.0 if self.momentum is None else self.momentum

    def _batch_norm(self, x):
        """Update the batch counter and call F.batch_norm the way PyTorch's module does."""
        counting = self.training and self.track_running_stats
        momentum = self._running_momentum()
        # Batch statistics while training, and also in eval when there are no running ones.
        use_batch_stats = self.training or self.running_mean is None
        output = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              training=use_batch_stats, momentum=momentum, eps=self.eps)
        if counting:  # after the call, so a rejected input leaves the count alone
            self.num_batches_tracked.data += 1  # in place: the buffer's array is what state_dict saves
        return output

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm2d(_BatchNorm):
    """Normalise each channel of (N, C, H, W) over N, H and W.

    >>> bn = BatchNorm2d(64)
    >>> [name for name, _ in bn.named_buffers()]
    ['running_mean', 'running_var', 'num_batches_tracked']
    """

    _input_dims = (4,)
    _input_layout = "(N, C, H, W)"

    def forward(self, x):
        self._check_input(x)
        return self._batch_norm(x)


class BatchNorm1d(_BatchNorm):
    """Normalise each feature of (N, C) or (N, C, L) over N (and L)."""

    _input_dims = (2, 3)
    _input_layout = "(N, C) or (N, C, L)"

    def forward(self, x):
        self._check_input(x)
        return self._batch_norm(x)


class LocalResponseNorm(Module):
    """AlexNet's normalisation across ``size`` neighbouring channels:
    b_c = a_c / (k + alpha/size · Σ a²)^beta.
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = check_positive_int("LocalResponseNorm", "size", size)
        for name, value in (("alpha", alpha), ("beta", beta), ("k", k)):
            check_number("LocalResponseNorm", name, value)
        self.alpha, self.beta, self.k = alpha, beta, k

    def forward(self, x):
        check_type("LocalResponseNorm", "input", x, Tensor)
        check_ndim("LocalResponseNorm", x, (3, 4), "(N, C, L) or (N, C, H, W)")
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
