"""The world's collectives on Tensors (or arrays), in ``torch.distributed``'s names, each in place.

    all_reduce(t)              every rank's t becomes the element-wise sum over the ranks ("mean": / ranks)
    broadcast(t, src=0)        every rank's t becomes rank src's
    all_gather(t)              a new (ranks, *t.shape) Tensor: every rank's t, rank by rank
    barrier()                  wait until every rank has reached this line

What DataParallel does after backward is ``all_reduce`` of the gradients, packed into a few buckets.
"""
import numpy as np

from minicnn.distributed.world import world
from minicnn.tensor import Tensor

__all__ = ["all_gather", "all_reduce", "barrier", "broadcast"]

OPS = ("sum", "mean")


def _array(function, tensor):
    if isinstance(tensor, Tensor):
        return tensor.data
    if hasattr(tensor, "dtype") and hasattr(tensor, "shape"):
        return tensor
    raise TypeError(f"minicnn.distributed.{function}: expected a Tensor or an array, "
                    f"got {type(tensor).__name__}")


def all_reduce(tensor, op="sum"):
    """Replace ``tensor`` on every rank by its sum (or mean) over the ranks; returns it."""
    if op not in OPS:
        raise ValueError(f"minicnn.distributed.all_reduce: op must be one of {', '.join(OPS)}, got {op!r}")
    array = _array("all_reduce", tensor)
    if op == "mean" and array.dtype.kind not in "fc":
        raise TypeError(f"minicnn.distributed.all_reduce: op='mean' needs a floating-point tensor, "
                        f"got {array.dtype}")
    communicator = world()
    communicator.allreduce(array)
    if op == "mean":
        array *= array.dtype.type(1 / communicator.size)
    return tensor


def broadcast(tensor, src=0):
    """Replace ``tensor`` on every rank by rank ``src``'s; returns it."""
    communicator = world()
    if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or not 0 <= src < communicator.size:
        raise ValueError(f"minicnn.distributed.broadcast: src must be a rank in [0, {communicator.size}), "
                         f"got {src!r}")
    communicator.broadcast(_array("broadcast", tensor), root=int(src))
    return tensor


def all_gather(tensor):
    """Every rank's ``tensor`` stacked in rank order: a new (ranks, ...) Tensor on the host."""
    return Tensor(world().allgather(_array("all_gather", tensor)))


def barrier():
    world().barrier()
