"""The communicators' collectives, the world a process joins, and each rank's share of the cores."""
import os
import subprocess
import sys

import numpy as np
import pytest

from minicnn import cuda, distributed
from minicnn.backend.cpu import threads
from minicnn.distributed.communicator import MPICommunicator, SingleProcess
from minicnn.distributed.world import cores_per_rank


def test_allreduce_broadcast_and_allgather_on_every_rank(world):
    summed = world.allreduce(np.arange(4, dtype=np.float32) * (world.rank + 1))
    sent = world.broadcast(np.full(3, float(world.rank)), root=world.size - 1)
    gathered = world.allgather(np.array([world.rank, 10 * world.rank], dtype=np.int64))
    note = world.broadcast_json({"from": world.rank, "text": "é"})
    ranks_total = world.size * (world.size + 1) / 2
    assert np.array_equal(summed, np.arange(4) * ranks_total)
    assert (sent == world.size - 1).all()
    assert gathered.tolist() == [[rank, 10 * rank] for rank in range(world.size)]
    assert note == {"from": 0, "text": "é"}


def test_the_host_staging_path_gives_the_same_sums(world):
    """The path CuPy arrays take without NCCL (copy out, reduce on the host, copy back), on NumPy arrays."""
    if world.size == 1:
        pytest.skip("staging needs MPI; this runs under mpiexec -n 2 (test_launch.py)")
    staged = MPICommunicator(stage_through_host=True)
    strided = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2] * (world.rank + 1)  # not contiguous
    staged.allreduce(strided)
    broadcast = staged.broadcast(np.full((2, 2), float(world.rank)), root=1)
    ranks_total = world.size * (world.size + 1) / 2
    assert np.array_equal(strided, np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2] * ranks_total)
    assert (broadcast == 1.0).all()


def test_the_ranks_share_the_cores(world):
    """Under mpiexec each rank gets cores // ranks-on-this-machine threads, for BLAS and minicnn's pool."""
    if world.size == 1:
        pytest.skip("one rank keeps every core; this runs under mpiexec -n 2 (test_launch.py)")
    from threadpoolctl import threadpool_info

    share = cores_per_rank(world.local_size)
    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert threads.num_threads() == share
    assert blas and all(count == share for count in blas)


def test_single_process_collectives_leave_arrays_alone():
    single = SingleProcess()
    array = np.arange(3.0)
    assert single.allreduce(array) is array and single.broadcast(array) is array
    assert single.allgather(array).shape == (1, 3) and single.broadcast_json([1]) == [1]
    assert (single.rank, single.size) == (0, 1)


def joined_without_mpiexec(backend):
    """(the world's class name, whether mpi4py got imported) in a fresh Python started without mpiexec."""
    code = ("import sys, minicnn, minicnn.distributed as d; from minicnn.train import fit; "
            f"w = d.init(backend={backend!r}); print(type(w).__name__, w.size, 'mpi4py' in sys.modules)")
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("PMI_", "OMPI_", "PMIX_", "MPI_", "HYDRA_"))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                            check=False, timeout=120)
    return result.stdout.split() or result.stderr


@pytest.mark.parametrize("backend", ["auto", "nccl"])
def test_without_mpiexec_the_world_is_one_process_and_mpi4py_is_never_imported(backend):
    assert joined_without_mpiexec(backend) == ["SingleProcess", "1", "False"]


def test_init_refuses_an_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of auto, mpi, nccl, none, got 'gloo'"):
        distributed.init(backend="gloo")


@pytest.mark.skipif(not cuda.is_available(), reason=f"NCCL needs a GPU: {cuda.unavailable_reason()}")
def test_nccl_reduces_gpu_arrays_on_the_device(world):
    """At one rank per GPU: NCCL refuses two ranks on one device, so on one GPU this runs at world size 1."""
    import cupy

    from minicnn.distributed.communicator import NCCLCommunicator

    communicator = NCCLCommunicator(world)  # the id travels over the world's MPI (no MPI needed at one rank)
    array = cupy.arange(6, dtype=cupy.float32) * (communicator.rank + 1)
    communicator.allreduce(array)
    communicator.broadcast(array)
    host = world.allreduce(np.ones(1))  # MPI alongside NCCL
    total = communicator.size * (communicator.size + 1) / 2
    assert cupy.asnumpy(array).tolist() == (np.arange(6) * total).tolist()
    assert host[0] == communicator.size



def test_tensor_collectives_in_torch_distributeds_names(world):
    import minicnn

    summed = distributed.all_reduce(minicnn.Tensor(np.full(3, world.rank + 1.0, dtype=np.float32)))
    mean = distributed.all_reduce(np.full(2, world.rank + 1.0), op="mean")
    sent = distributed.broadcast(minicnn.Tensor(np.full(2, world.rank, dtype=np.int64)), src=world.size - 1)
    gathered = distributed.all_gather(minicnn.Tensor(np.array([world.rank], dtype=np.int64)))
    distributed.barrier()
    ranks_total = world.size * (world.size + 1) / 2
    assert summed.numpy().tolist() == [ranks_total] * 3
    assert mean.tolist() == [ranks_total / world.size] * 2
    assert sent.numpy().tolist() == [world.size - 1] * 2
    assert gathered.shape == (world.size, 1) and gathered.numpy().ravel().tolist() == list(range(world.size))
    assert distributed.DistributedDataParallel is distributed.DataParallel


def test_tensor_collectives_refuse_what_they_cannot_do(world):
    with pytest.raises(ValueError, match="all_reduce: op must be one of sum, mean, got 'max'"):
        distributed.all_reduce(np.ones(2), op="max")
    with pytest.raises(TypeError, match="op='mean' needs a floating-point tensor"):
        distributed.all_reduce(np.ones(2, dtype=np.int64), op="mean")
    with pytest.raises(ValueError, match=r"broadcast: src must be a rank in \[0, "):
        distributed.broadcast(np.ones(2), src=world.size)
    with pytest.raises(TypeError, match="all_gather: expected a Tensor or an array, got list"):
        distributed.all_gather([1, 2])
