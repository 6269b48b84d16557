"""DataParallel: one model per rank, kept identical by averaging gradients after every backward.

At construction rank 0's parameters and buffers are broadcast, so every rank starts from the same
weights.  After each ``loss.backward()`` through the wrapped model the gradients are averaged over the
ranks, weighted by each rank's batch size (a rank that saw n_r of the N images of the global batch
counts n_r/N), so the optimizer step that follows is the same step on every rank, the step of one
process on the whole global batch.

The averaging packs gradients into buckets of ``bucket_cap_mb`` (25 MB, PyTorch DDP's default), last
layers first, and runs one allreduce per bucket: VGG-16's 32 parameter tensors travel in 7 (its 411 MB
first classifier weight alone in one), each long enough to reach the network's bandwidth, where 20 of
the 32 are under 1 MB on their own (a conv bias is a few hundred bytes).  Each bucket is

    [ n_r · grad of every parameter in it | 1 per parameter that has a grad | n_r ]

so after its sum every rank reads Σ n_r·g_r, which parameters got a gradient anywhere, and N.

The reduction starts when backward has finished (``minicnn.tensor.queue_callback``): the wrapped
model's outputs pass through an identity op whose backward queues it, so a plain training loop needs
no extra call.  ``with model.no_sync():`` accumulates gradients locally instead (gradient accumulation).
"""
import contextlib
import time

import numpy as np

from minicnn.device import get_array_module
from minicnn.distributed.world import world
from minicnn.nn import Module
from minicnn.tensor import Function, Tensor, is_grad_enabled, queue_callback

__all__ = ["DataParallel", "average_buffers", "broadcast_module", "broadcast_optimizer_state"]

DEFAULT_BUCKET_CAP_MB = 25.0


def _check_same_everywhere(communicator, what, description):
    """Every rank compares ``description`` (JSON-able) with rank 0's; if one differs, all ranks raise."""
    reference = communicator.broadcast_json(description)
    differs = np.array([int(reference != description)], dtype=np.int64)
    flags = communicator.allgather(differs).ravel()
    if flags.any():
        ranks = ", ".join(str(rank) for rank in np.flatnonzero(flags))
        raise ValueError(f"minicnn.distributed: {what} on rank(s) {ranks} differ(s) from rank 0's; "
                         f"every rank must build the same model and optimizer (same code, same arguments)")


def broadcast_module(module, communicator=None):
    """Copy rank 0's parameters and buffers into every rank's ``module`` (in place)."""
    communicator = communicator or world()
    if communicator.size == 1:
        return module
    state = list(module._named_state())
    _check_same_everywhere(communicator, "the model's parameters and buffers",
                           [[name, list(tensor.shape), str(tensor.dtype)] for name, tensor in state])
    for _, tensor in state:
        communicator.broadcast(tensor.data)
    return module


def broadcast_optimizer_state(optimizer, communicator=None):
    """Give every rank rank 0's optimizer state (momentum, Adam's moments, steps, learning rates)."""
    communicator = communicator or world()
    if communicator.size == 1:
        return optimizer
    state_dict = optimizer.state_dict()
    layout = {"param_groups": state_dict["param_groups"],
              "state": {str(index): {name: [list(np.shape(value)), str(np.asarray(value).dtype)]
                                     for name, value in entries.items()}
                        for index, entries in state_dict["state"].items()}}
    layout = communicator.broadcast_json(layout)  # rank 0's: the other ranks may not have stepped yet
    _check_same_everywhere(communicator, "the optimizer's parameter groups",
                           [len(group["params"]) for group in state_dict["param_groups"]])
    received = {}
    for index, entries in layout["state"].items():
        received[int(index)] = {}
        for name, (shape, dtype) in entries.items():
            if communicator.rank == 0:
                array = np.array(state_dict["state"][int(index)][name], dtype=dtype, order="C", ndmin=0)
            else:
                array = np.empty(shape, dtype=dtype)
            communicator.broadcast(array)
            received[int(index)][name] = int(array) if array.ndim == 0 and name == "step" else array
    if communicator.rank != 0:
        optimizer.load_state_dict({"state": received, "param_groups": layout["param_groups"]})
    return optimizer


def average_buffers(module, communicator=None):
    """Replace every floating-point buffer (batch norm's running statistics) by its mean over the ranks.

    With local batch statistics each rank's running mean and variance follow its own images; their mean
    is what evaluation and checkpoints use, the same on every rank.  Integer buffers (batch counters)
    are equal everywhere and left alone.
    """
    communicator = communicator or world()
    if communicator.size == 1:
        return module
    for _, buffer in module.named_buffers():
        array = buffer.data
        if array.dtype.kind == "f":
            communicator.allreduce(array)
            array *= array.dtype.type(1.0 / communicator.size)
    return module


class _ReduceAfterBackward(Function):
    """Identity on the model's outputs; its backward (the first to run) queues the gradient reduction."""

    def __init__(self, data_parallel):
        self.data_parallel = data_parallel

    def forward(self, x):
        return x

    def backward(self, gy):
        self.data_parallel._queue_reduction()
        return gy


class DataParallel(Module):
    """Data-parallel training of ``module`` over the world's ranks (PyTorch's DistributedDataParallel).

    >>> model = DataParallel(vgg11_bn(num_classes=10))       # rank 0's weights on every rank
    >>> loss = F.cross_entropy(model(x), y)                  # x: this rank's share of the batch
    >>> loss.backward()                                      # gradients now averaged over the ranks
    >>> optimizer.step()                                     # the same step everywhere

    The wrapped model is ``model.module``; its state dict keys carry the prefix ``module.`` as in
    PyTorch (``fit`` and its checkpoints use the inner model's).  ``synchronized_steps`` counts the
    gradient averagings, ``communication_seconds`` their time (packing included), ``allreduce_seconds``
    the time inside the collectives alone.
    """

    def __init__(self, module, communicator=None, bucket_cap_mb=DEFAULT_BUCKET_CAP_MB):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: module must be a minicnn.nn.Module, got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) \
                or not bucket_cap_mb > 0:
            raise ValueError(f"DataParallel: bucket_cap_mb must be a positive number, got {bucket_cap_mb!r}")
        self.module = module
        self.communicator = communicator or world()
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.communication_seconds, self.allreduce_seconds, self.synchronized_steps = 0.0, 0.0, 0
        self._sync, self._queued, self._batch_size = True, False, None
        self._buckets_memory = None
        broadcast_module(module, self.communicator)
        self.buckets = self._plan_buckets()

    def _plan_buckets(self):
        """Lists of parameters, last layers first (their gradients are ready first), each ≤ the cap."""
        cap = self.bucket_cap_mb * 2**20
        buckets, current, size = [], [], 0
        for param in reversed([p for p in self.module.parameters() if p.requires_grad]):
            if current and (size + param.data.nbytes > cap or param.dtype != current[0].dtype
                            or param.device != current[0].device):
                buckets.append(current)
                current, size = [], 0
            current.append(param)
            size += param.data.nbytes
        return buckets + ([current] if current else [])

    def forward(self, *inputs, **kwargs):
        outputs = self.module(*inputs, **kwargs)
        if self.communicator.size == 1 or not (self.training and self._sync and is_grad_enabled()):
            return outputs
        first = inputs[0] if inputs else next(iter(kwargs.values()))
        self._batch_size = int(first.shape[0])
        return self._mark(outputs)

    def _mark(self, outputs):
        if isinstance(outputs, Tensor):
            return _ReduceAfterBackward(self)(outputs) if outputs.requires_grad else outputs
        if isinstance(outputs, tuple):  # GoogLeNet's (logits, aux2, aux1), namedtuples included
            marked = [output if output is None else self._mark(output) for output in outputs]
            return type(outputs)(*marked) if hasattr(outputs, "_fields") else tuple(marked)
        raise TypeError(f"DataParallel: the model returned a {type(outputs).__name__}; expected a Tensor or "
                        f"a tuple of Tensors, so that gradients can be averaged after backward")

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients accumulate on each rank unaveraged; the first backward after the block averages them."""
        before, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = before

    def _queue_reduction(self):
        if not self._queued:  # once per backward, however many outputs the loss used
            self._queued = True
            queue_callback(self.reduce_gradients)

    def reduce_gradients(self):
        """Average every parameter's gradient over the ranks, weighted by batch size (module docstring)."""
        self._queued = False
        batch_size = self._batch_size
        started = time.perf_counter()
        for params, bucket in zip(self.buckets, self._bucket_arrays()):
            xp = get_array_module(bucket)
            total = bucket.size - len(params) - 1
            offset = 0
            for index, param in enumerate(params):
                size = param.data.size
                if param.grad is not None:
                    xp.multiply(param.grad.data.reshape(-1), batch_size, out=bucket[offset:offset + size])
                else:
                    bucket[offset:offset + size] = 0
                bucket[total + index] = param.grad is not None
                offset += size
            bucket[-1] = batch_size
            reduce_started = time.perf_counter()
            self.communicator.allreduce(bucket)
            self.allreduce_seconds += time.perf_counter() - reduce_started
            tail = bucket[total:]
            tail = tail.get() if hasattr(tail, "get") else tail  # one copy from a GPU, not one per parameter
            scale = bucket.dtype.type(1 / tail[-1])  # 1 / N, the global batch
            offset = 0
            for index, param in enumerate(params):
                size = param.data.size
                if tail[index] > 0:  # some rank's loss reached this parameter
                    self._set_grad(param, bucket[offset:offset + size], scale)
                offset += size
        self.communication_seconds += time.perf_counter() - started
        self.synchronized_steps += 1

    def _bucket_arrays(self):
        """One flat array per bucket, (gradients | has-gradient flags | batch size), made once and reused:
        a fresh 25 MB array each step would cost its page faults every step."""
        if self._buckets_memory is None:
            self._buckets_memory = [
                get_array_module(params[0].data).empty(sum(p.data.size for p in params) + len(params) + 1,
                                                       dtype=params[0].dtype)
                for params in self.buckets]
        return self._buckets_memory

    @staticmethod
    def _set_grad(param, summed, scale):
        """param.grad = summed · scale, written into the gradient's own array when there is one."""
        grad = param.grad
        if grad is not None and grad.data.flags.c_contiguous and grad.dtype == summed.dtype:
            get_array_module(summed).multiply(summed, scale, out=grad.data.reshape(-1))
        else:
            param.grad = Tensor((summed * scale).reshape(param.shape))

    def average_buffers(self):
        """Running statistics averaged over the ranks (before evaluation and checkpoints)."""
        return average_buffers(self.module, self.communicator)

    def extra_repr(self):
        return (f"ranks={self.communicator.size}, buckets={len(self.buckets)}, "
                f"bucket_cap_mb={self.bucket_cap_mb}")
