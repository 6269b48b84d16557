"""Data-parallel training over MPI (processes, CPU collectives) and NCCL (GPU gradients).

Synchronous data-parallel SGD is one idea: every rank holds the same model, computes the gradient of
its share of the global batch, and one allreduce makes every rank's gradient the global batch's
gradient; every rank then takes the same optimizer step, so the models never drift apart.

    mpiexec -n 4 minicnn train ...                    # the CLI does all of the below
    mpiexec -n 4 python -m mpi4py my_script.py        # a script: an uncaught error aborts every rank

>>> from minicnn import distributed as dist
>>> world = dist.init()                                           # rank / size from mpiexec
>>> sampler = dist.DistributedSampler(train_set, seed=0)          # this rank's share of each epoch
>>> loader = DataLoader(train_set, batch_size=64 // world.size, sampler=sampler)
>>> model = dist.SyncBatchNorm.convert_sync_batchnorm(model)     # optional: global batch statistics
>>> model = dist.DataParallel(model)                              # rank 0's weights everywhere
>>> loss = F.cross_entropy(model(x), y); loss.backward()          # gradients averaged over ranks

Without mpiexec (or with one rank) the world is this process alone and none of it costs anything.
"""
from minicnn.distributed.collectives import all_gather, all_reduce, barrier, broadcast
from minicnn.distributed.data_parallel import (
    DataParallel,
    average_buffers,
    broadcast_module,
    broadcast_optimizer_state,
)
from minicnn.distributed.sampler import DistributedSampler

# PyTorch's name for the same thing (its own DataParallel is single-process, several GPUs).
DistributedDataParallel = DataParallel
from minicnn.distributed.sync_batchnorm import SyncBatchNorm
from minicnn.distributed.world import (
    abort_with_message,
    get_rank,
    get_world_size,
    init,
    is_initialized,
    single_process,
    world,
)

__all__ = ["DataParallel", "DistributedDataParallel", "DistributedSampler", "SyncBatchNorm",
           "abort_with_message", "all_gather", "all_reduce", "average_buffers", "barrier", "broadcast",
           "broadcast_module", "broadcast_optimizer_state", "get_rank", "get_world_size", "init",
           "is_initialized", "single_process", "world"]
