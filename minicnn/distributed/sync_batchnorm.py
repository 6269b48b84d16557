"""SyncBatchNorm: batch norm whose statistics are those of the global batch, summed over every rank.

Data-parallel training splits one global batch over the ranks.  A plain BatchNorm2d inside DataParallel
normalises each rank's share with that share's own mean and variance: no communication at all, and
with a few dozen samples per rank the local statistics are as good as the global ones, which is why
it stays the default (as in PyTorch's DistributedDataParallel).  With only a handful of samples per
rank (big models, detection, segmentation) they turn noisy; SyncBatchNorm then normalises every rank
with the statistics of the whole global batch, for two small allreduces per layer, C-sized and float64:

    forward   [Σx (C), Σx² (C), count (1)]    → the global mean and biased variance of each channel
    backward  [n_r·Σgy (C), n_r·Σgy·x̂ (C)]    → the two sums ∂L/∂x needs (n_r: rank r's batch size)

The running statistics move with the global ones, so they are identical on every rank.  γ and β and
their gradients are left alone: DataParallel averages those like any other parameter.  In eval mode,
or with one rank, SyncBatchNorm runs exactly BatchNorm2d's code.
"""
import math

from minicnn.backend import get_array_module, kernels_for
from minicnn.checks import check_floating, check_type
from minicnn.distributed.world import world
from minicnn.nn.layers.normalization import BatchNorm1d, BatchNorm2d, _BatchNorm
from minicnn.tensor import Function, Tensor

__all__ = ["SyncBatchNorm"]


class SyncBatchNormFunction(Function):
    """Batch norm of x viewed as (N, C, L), the statistics of channel c over its M values on *all* ranks.

    Forward:  mean = Σx/M, var = Σx²/M − mean² (biased), sums and M from one allreduce;
              x̂ = (x − mean)·invstd, invstd = 1/√(var + eps);  y = γ·x̂ + β.
    Backward: ∂L/∂β = Σgy, ∂L/∂γ = Σgy·x̂ over this rank's values (DataParallel averages them);
              ∂L/∂x from the two sums of every rank, weighted by batch size (see _input_grad).
    """

    def __init__(self, eps, communicator, has_weight, has_bias):
        self.eps, self.communicator = eps, communicator
        self.has_weight, self.has_bias = has_weight, has_bias

    def forward(self, x, *params):
        xp = get_array_module(x)
        params = list(params)
        weight = params.pop(0) if self.has_weight else None
        bias = params.pop(0) if self.has_bias else None
        n, c = x.shape[0], x.shape[1]
        length = math.prod(x.shape[2:])
        x_channels = x.reshape(n, c, length)  # (N, C, L), L = H·W (1 for (N, C) input)
        # Sums in float64: Σx²/M − mean² cancels digits, which float64 has to spare (float32 would not).
        x64 = x_channels.astype(xp.float64, copy=False)
        packed = xp.concatenate([x64.sum(axis=(0, 2)), (x64 * x64).sum(axis=(0, 2)),
                                 xp.full((1,), n * length, dtype=xp.float64)])  # (2C + 1,)
        self.communicator.allreduce(packed)
        self.count = int(packed[2 * c])  # M: every value of channel c on every rank
        if self.count == 1:  # every rank sees the same M, so every rank raises together
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel when training, got one "
                             f"value per channel over all {self.communicator.size} ranks")
        divisor = max(self.count, 1)  # all ranks empty: mean 0; the caller then moves no running statistic
        mean = packed[:c] / divisor
        var = xp.maximum(packed[c:2 * c] / divisor - mean * mean, 0)  # rounding may leave −0.000…1
        invstd = 1 / xp.sqrt(var + self.eps)
        # In x's dtype, like BatchNorm's statistics, for the kernels and the running statistics.
        self.mean, self.var, self.invstd = mean.astype(x.dtype), var.astype(x.dtype), invstd.astype(x.dtype)
        self.x_channels, self.weight = x_channels, weight
        y = kernels_for(x).batch_norm_forward(x_channels, self.mean, self.invstd, weight, bias)
        return y.reshape(x.shape)

    def backward(self, gy):
        gy_channels = gy.reshape(self.x_channels.shape)  # (N, C, L)
        need_input_grad = self.needs_input_grad[0]
        # batch_statistics=False: the kernel's dx is gy·γ·invstd alone, the part that needs no other rank.
        scaled_gy, sum_gy_x_hat, sum_gy = kernels_for(gy).batch_norm_backward(
            gy_channels, self.x_channels, self.mean, self.invstd, self.weight, False, need_input_grad)
        # No allreduce when dx is not wanted: the same model on every rank makes the same choice.
        grad_x = self._input_grad(scaled_gy, sum_gy, sum_gy_x_hat) if need_input_grad else None
        grads = [None if grad_x is None else grad_x.reshape(gy.shape)]
        if self.has_weight:
            grads.append(sum_gy_x_hat)
        if self.has_bias:
            grads.append(sum_gy)
        return tuple(grads)

    def _input_grad(self, scaled_gy, sum_gy, sum_gy_x_hat):
        """dx of this rank's values, from gy·γ·invstd and this rank's two sums.

        DataParallel averages gradients weighted by batch size (grad = Σ_r n_r·g_r / N), so the
        objective is J = Σ_r (n_r/N)·L_r, L_r the mean loss over rank r's batch: a value j of rank s
        gets ∂J/∂y_j = (n_s/N)·gy_j.  Single-process BN with ĝ = γ·gy gives
            ∂J/∂x = invstd/M·(M·ĝ − Σĝ − x̂·Σĝ·x̂)    (sums and M over every rank),
        and rank r must hand back N/n_r times it (DataParallel multiplies by n_r/N again), hence
            dx = invstd·γ·(gy − (S1 + x̂·S2)/(n_r·M)),   S1 = Σ_s n_s·Σgy,  S2 = Σ_s n_s·Σgy·x̂.
        With equal batches S1/(n_r·M) = Σgy/M over all ranks: PyTorch's SyncBatchNorm exactly.
        """
        xp = get_array_module(scaled_gy)
        batch = self.x_channels.shape[0]  # n_r
        c = sum_gy.shape[0]
        packed = xp.concatenate([sum_gy.astype(xp.float64), sum_gy_x_hat.astype(xp.float64)]) * batch  # (2C,)
        self.communicator.allreduce(packed)
        weighted_sum_gy, weighted_sum_gy_x_hat = packed[:c], packed[c:]
        scale = self.invstd if self.weight is None else self.invstd * self.weight  # γ·invstd
        per_sum = scale.astype(xp.float64) / (max(batch, 1) * max(self.count, 1))  # γ·invstd/(n_r·M)
        # The correction −γ·invstd·(S1 + x̂·S2)/(n_r·M) is affine in x̂ per channel: the forward
        # kernel with weight −per_sum·S2 and bias −per_sum·S1 computes it in one pass.
        slope = (-per_sum * weighted_sum_gy_x_hat).astype(scaled_gy.dtype)
        offset = (-per_sum * weighted_sum_gy).astype(scaled_gy.dtype)
        correction = kernels_for(scaled_gy).batch_norm_forward(self.x_channels, self.mean, self.invstd,
                                                               slope, offset)
        scaled_gy += correction  # the kernel's fresh array, not the incoming gradient
        return scaled_gy


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, ...) with the global batch's statistics while training under several ranks.

    ``process_group`` is the communicator to reduce over; None means ``world()`` at each forward.

    >>> model = SyncBatchNorm.convert_sync_batchnorm(model)   # before DataParallel(model)
    >>> bn = SyncBatchNorm(64)                                # or built directly
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        is_communicator = all(hasattr(process_group, name) for name in ("allreduce", "size"))
        if process_group is not None and not is_communicator:
            raise TypeError(f"SyncBatchNorm: process_group must be None or a communicator (with allreduce "
                            f"and size), got {type(process_group).__name__}")
        self.process_group = process_group

    def _check_input(self, x, check_local_count):
        check_type("SyncBatchNorm", "input", x, Tensor)
        if x.ndim < 2:
            raise ValueError(f"SyncBatchNorm: expected input of shape (N, C, ...) with at least 2 "
                             f"dimensions, got {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: input has {x.shape[1]} channels but num_features is "
                             f"{self.num_features}")
        check_floating("SyncBatchNorm", "input", x)
        # Under several ranks only the global count matters, and one rank raising here alone would leave
        # the others waiting in the allreduce; SyncBatchNormFunction checks it after the sum, on every rank.
        values_per_channel = x.shape[0] * math.prod(x.shape[2:])
        if check_local_count and self.training and values_per_channel == 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel when training, "
                             f"got input of shape {tuple(x.shape)}")

    def forward(self, x):
        communicator = world() if self.process_group is None else self.process_group
        synchronised = self.training and communicator.size > 1
        self._check_input(x, check_local_count=not synchronised)
        if not synchronised:
            return self._batch_norm(x)  # BatchNorm2d's own path, so one rank is BatchNorm2d bit for bit
        momentum = self._running_momentum()
        has_weight, has_bias = self.weight is not None, self.bias is not None
        function = SyncBatchNormFunction(self.eps, communicator, has_weight, has_bias)
        output = function(x, *(p for p in (self.weight, self.bias) if p is not None))
        if self.track_running_stats:  # after the call, so a rejected input leaves the statistics alone
            if function.count > 0:  # unbiased global variance: the kernel applies M/(M − 1)
                kernels_for(x.data).batch_norm_update_running_stats(
                    self.running_mean.data, self.running_var.data, function.mean, function.var,
                    function.count, momentum)
            self.num_batches_tracked.data += 1
        return output

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every BatchNorm1d/BatchNorm2d in it (or itself) replaced by a SyncBatchNorm.

        The new layers hold the very same Parameter and buffer objects, so an optimizer built before the
        conversion still steps them, and the state_dict keys do not change.

        >>> model = SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)))
        >>> type(model[1]).__name__
        'SyncBatchNorm'
        """
        return cls._convert(module, process_group, converted={})

    @classmethod
    def _convert(cls, module, process_group, converted):
        if id(module) in converted:  # a layer shared in two places stays one layer
            return converted[id(module)]
        if isinstance(module, (BatchNorm1d, BatchNorm2d)):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats, process_group)
            sync.weight, sync.bias = module.weight, module.bias
            sync.running_mean, sync.running_var = module.running_mean, module.running_var
            sync.num_batches_tracked = module.num_batches_tracked
            sync.training = module.training
            converted[id(module)] = sync
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls._convert(child, process_group, converted)
        return module
