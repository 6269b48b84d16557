"""What ``fit`` and ``evaluate`` do differently when several ranks train together.

Four things, each a few lines here so that the training loop reads the same for one rank or many:

* ``prepare``: wrap the model in DataParallel (rank 0's weights everywhere), give every rank rank 0's
  optimizer and scheduler state (a resumed run continues from one state, whatever each rank read), and
  refuse a training loader that is not split over the ranks or whose ranks would serve different
  numbers of batches (the rank with fewer would leave the others waiting in an allreduce forever);
* ``sum_over_ranks``: the metrics of an epoch, summed over the ranks in one allreduce;
* ``is_sharded``: whether a loader serves this rank's share only (then evaluation sums over the ranks);
* ``unwrap``: the model inside a DataParallel, the one checkpoints save.
"""
import numpy as np

from minicnn.distributed.data_parallel import DataParallel, broadcast_optimizer_state
from minicnn.distributed.world import world

__all__ = ["is_sharded", "prepare", "sum_over_ranks", "unwrap"]


def unwrap(model):
    return model.module if isinstance(model, DataParallel) else model


def is_sharded(loader):
    """True when ``loader`` serves one rank's share of its data (a DistributedSampler over several ranks)."""
    return getattr(getattr(loader, "sampler", None), "num_replicas", 1) > 1


def _check_train_loader(function, loader, communicator):
    sampler = getattr(loader, "sampler", "no sampler")
    if hasattr(loader, "sampler") and getattr(sampler, "num_replicas", None) != communicator.size:
        given = "no sampler" if sampler is None else repr(sampler)
        raise ValueError(f"{function}: running on {communicator.size} ranks, but train_loader has {given}, "
                         f"so the ranks would not split the data between them; build it as "
                         f"DataLoader(dataset, batch_size=global_batch // {communicator.size}, "
                         f"sampler=minicnn.distributed.DistributedSampler(dataset, seed=...))")
    try:
        batches = len(loader)
    except TypeError:
        raise TypeError(f"{function}: on {communicator.size} ranks train_loader must have a len() (batches "
                        f"per epoch), so that every rank can check they all run as many steps") from None
    counts = communicator.allgather(np.array([batches], dtype=np.int64)).ravel()
    if (counts != counts[0]).any():
        listed = ", ".join(f"rank {rank}: {count}" for rank, count in enumerate(counts))
        raise ValueError(f"{function}: the ranks' train loaders serve different numbers of batches per epoch "
                         f"({listed}); a rank that ran out would leave the others waiting. Give every rank "
                         f"the same per-rank batch size and a DistributedSampler with pad=True or drop_last")


def prepare(function, model, optimizer, scheduler, train_loader, communicator=None):
    """The model to train on this rank (DataParallel over several ranks, else ``model`` itself)."""
    communicator = communicator or world()
    if communicator.size == 1:
        return model
    _check_train_loader(function, train_loader, communicator)
    if not isinstance(model, DataParallel):
        model = DataParallel(model, communicator)
    if optimizer is not None:
        broadcast_optimizer_state(optimizer, communicator)
    if scheduler is not None and callable(getattr(scheduler, "state_dict", None)):
        scheduler.load_state_dict(communicator.broadcast_json(scheduler.state_dict()))
    return model


def sum_over_ranks(values, communicator=None):
    """``values`` (numbers) summed over the ranks, as float64, in one allreduce."""
    communicator = communicator or world()
    array = np.asarray(values, dtype=np.float64).copy()
    return communicator.allreduce(array) if communicator.size > 1 else array
