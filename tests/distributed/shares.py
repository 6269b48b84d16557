"""Helpers of the distributed tests: this rank's share of a batch, and values gathered from every rank."""
import numpy as np


def rank_rows(array, world):
    """This rank's rows of a global batch, strided as DistributedSampler splits it: rank, rank + size, ...."""
    return array[world.rank::world.size]


def gathered_checksums(arrays, world):
    """(ranks, len(arrays)) float64 sums of every array on every rank."""
    sums = np.array([float(np.asarray(array, dtype=np.float64).sum()) for array in arrays])
    return world.allgather(sums)
