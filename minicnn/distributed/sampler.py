"""DistributedSampler: each rank's share of every epoch, so that the ranks together see one global batch.

Every rank computes the same epoch order, the one a single-process ``DataLoader(shuffle=True, seed=s)``
serves (a pure function of seed and epoch), and takes every ``num_replicas``-th index of it from
position ``rank`` on (PyTorch's split).  With per-rank batch b and global batch B = ranks · b, rank r's
k-th batch holds positions k·B + r, k·B + r + ranks, …: the ranks' k-th batches together are exactly
positions k·B … k·B + B − 1 of the order, the single-process run's k-th batch of B.

The tail, when the dataset does not split evenly over the ranks, is said by two flags:

    drop_last=False, pad=True  (default)  pad with the order's first indices to a multiple of the ranks:
                                          the last global batch gains up to ranks − 1 repeated images
    drop_last=True                        trim to a multiple of the ranks (up to ranks − 1 images unseen)
    pad=False                             uneven shares (ranks differ by one image): for evaluation,
                                          where no rank waits for another between batches

Passing ``drop_last=True`` to the DataLoader as well drops the incomplete last global batch, exactly as a
single process with ``drop_last=True`` does.
"""
import math
import numbers

import numpy as np

from minicnn.data.loader import shuffled_order
from minicnn.distributed.world import world

__all__ = ["DistributedSampler"]


def _check_int(what, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"DistributedSampler: {what} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"DistributedSampler: {what} must be >= {minimum}, got {value}")
    return int(value)


class DistributedSampler:
    """This rank's sample indices of each epoch (PyTorch's ``torch.utils.data.DistributedSampler``).

    Args:
        dataset: anything with ``len()``.
        num_replicas, rank: the world's size and this process's rank (default: ``distributed.world()``'s).
        shuffle: a new order every epoch, the same on every rank (a pure function of seed and epoch).
        seed: the order's seed, the same on every rank (0, as in PyTorch); None takes rank 0's draw from
            minicnn's global generator, sent to every rank, so ranks whose generators differ still agree.
        drop_last, pad: what happens to the tail (see the module docstring).

    ``DataLoader(dataset, batch_size=b, sampler=sampler)`` calls ``set_epoch`` itself at every epoch;
    iterating the sampler alone, call it as in PyTorch.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False,
                 pad=True):
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"DistributedSampler: dataset must have a length, got {type(dataset).__name__}")
        communicator = world() if num_replicas is None or rank is None or seed is None else None
        num_replicas = communicator.size if num_replicas is None else num_replicas
        self.num_replicas = _check_int("num_replicas", num_replicas, 1)
        rank = communicator.rank if rank is None else rank
        self.rank = _check_int("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {self.num_replicas}) for num_replicas "
                             f"{self.num_replicas}, got {self.rank}")
        for flag, value in (("shuffle", shuffle), ("drop_last", drop_last), ("pad", pad)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"DistributedSampler: {flag} must be True or False, "
                                f"got {type(value).__name__}")
        if seed is None:
            from minicnn import random as _random  # the global generator, as DataLoader(seed=None) uses

            draw = int(_random.generator().integers(0, 2**63))
            seed = communicator.broadcast_json(draw) if communicator.size > 1 else draw
        self.seed = _check_int("seed", seed, 0)
        self.dataset, self.shuffle = dataset, bool(shuffle)
        self.drop_last, self.pad = bool(drop_last), bool(pad)
        self.epoch = 0
        if len(dataset) < self.num_replicas and (self.drop_last or not self.pad):
            raise ValueError(f"DistributedSampler: {len(dataset)} samples cannot give each of "
                             f"{self.num_replicas} ranks one")

    def _total(self):
        """How many indices the ranks serve together this epoch."""
        samples, ranks = len(self.dataset), self.num_replicas
        if self.drop_last:
            return samples // ranks * ranks
        return math.ceil(samples / ranks) * ranks if self.pad else samples

    def __len__(self):
        """This rank's number of samples per epoch."""
        total, ranks = self._total(), self.num_replicas
        return total // ranks + (1 if self.rank < total % ranks else 0)

    def set_epoch(self, epoch):
        self.epoch = _check_int("epoch", epoch, 0)

    def indices(self, epoch):
        """This rank's indices of ``epoch`` (a pure function of seed, epoch, rank and the flags)."""
        samples = len(self.dataset)
        order = shuffled_order(samples, self.seed, epoch) if self.shuffle else np.arange(samples)
        total = self._total()
        if total > samples:  # pad: the order again from its start, as often as it takes
            order = np.resize(order, total)
        return order[self.rank:total:self.num_replicas]

    def __iter__(self):
        return iter(self.indices(self.epoch).tolist())

    def __repr__(self):
        return (f"DistributedSampler(rank={self.rank}, num_replicas={self.num_replicas}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, pad={self.pad})")
