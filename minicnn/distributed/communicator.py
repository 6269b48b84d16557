"""Communicators: the three collectives data-parallel training needs, on MPI or on NCCL.

Synchronous data-parallel SGD uses only these, each on every rank at once:

    broadcast(array, root)   rank ``root``'s values into every rank's array (starting weights, resumed state)
    allreduce(array)         every rank's array replaced by the element-wise sum over ranks (gradients)
    allgather(array)         every rank's small array, stacked rank by rank (batch counts, checksums)

A communicator works on arrays in place and knows nothing of Tensors or models, the floor the kernels
live on.  Three of them answer the same calls:

* ``SingleProcess``: one rank, every collective a no-op; what a run without MPI gets.
* ``MPICommunicator``: processes started by ``mpiexec``, through mpi4py's buffer interface (no pickle:
  structure travels as JSON text, values as raw arrays).  A CuPy array is staged through host memory,
  since CUDA-aware MPI is not assumed.
* ``NCCLCommunicator``: CuPy arrays reduced on the GPUs by NCCL, its id sent over MPI; host arrays and
  JSON still go over MPI.
"""
import json
import os
import sys
import time

import numpy as np

from minicnn.device import get_array_module, is_gpu_array

__all__ = ["MPICommunicator", "NCCLCommunicator", "SingleProcess"]

NCCL_UNIQUE_ID_BYTES = 128  # nccl.h's ncclUniqueId; CuPy hands it over as a tuple of that many ints


class SingleProcess:
    """The world of a run without MPI: rank 0 of 1, every collective leaves its array as it is."""

    rank, size, local_rank, local_size = 0, 1, 0, 1
    backend = "none"

    def allreduce(self, array):
        return array

    def broadcast(self, array, root=0):
        return array

    def allgather(self, array):
        return np.asarray(array)[None]

    def broadcast_json(self, value, root=0):
        return value

    def barrier(self):
        pass

    def abort(self, status):
        sys.exit(status)

    def __repr__(self):
        return "SingleProcess()"


def _json_bytes(value):
    return np.frombuffer(json.dumps(value).encode("utf-8"), dtype=np.uint8)


class MPICommunicator:
    """Collectives over an mpi4py communicator (``MPI.COMM_WORLD`` unless another is given).

    ``stage_through_host=True`` copies even NumPy arrays through a separate host buffer, the path
    CuPy arrays always take; the tests use it to run that path on a machine without a GPU.
    """

    backend = "mpi"

    def __init__(self, comm=None, stage_through_host=False):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        # The ranks sharing this machine's memory: they share its cores too.
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self.stage_through_host = stage_through_host

    def _staged(self, array, collective):
        """``collective(host_array)`` on ``array``, or on a contiguous host copy of it that is copied back."""
        direct = (not is_gpu_array(array) and not self.stage_through_host
                  and isinstance(array, np.ndarray) and array.flags.c_contiguous)
        if direct:
            collective(array)
            return array
        host = np.array(array.get() if is_gpu_array(array) else array, order="C", copy=True)
        collective(host)
        array[...] = get_array_module(array).asarray(host)
        return array

    def allreduce(self, array):
        return self._staged(array, lambda host: self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM))

    def broadcast(self, array, root=0):
        return self._staged(array, lambda host: self.comm.Bcast(host, root=root))

    def allgather(self, array):
        array = np.ascontiguousarray(array.get() if is_gpu_array(array) else array)
        gathered = np.empty((self.size, *array.shape), dtype=array.dtype)
        self.comm.Allgather(array, gathered)
        return gathered

    def broadcast_json(self, value, root=0):
        """``value`` from rank ``root`` (JSON-able) on every rank: its length first, then its bytes."""
        payload = _json_bytes(value) if self.rank == root else np.empty(0, dtype=np.uint8)
        length = np.array([payload.size], dtype=np.int64)
        self.comm.Bcast(length, root=root)
        if self.rank != root:
            payload = np.empty(int(length[0]), dtype=np.uint8)
        self.comm.Bcast(payload, root=root)
        return json.loads(payload.tobytes().decode("utf-8"))

    def barrier(self):
        self.comm.Barrier()

    def abort(self, status):
        """End every rank of the job now (MPI_Abort); used once this rank has printed why."""
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.05)  # let the last line reach mpiexec before the job is torn down
        self.comm.Abort(status)
        os._exit(status)  # MPICH's MPI_Abort can return to its caller before mpiexec ends the process

    def __repr__(self):
        return f"MPICommunicator(rank={self.rank}, size={self.size}, local_size={self.local_size})"


class NCCLCommunicator:
    """NCCL for CuPy arrays (the GPUs talk directly), MPI for everything else.

    Rank 0 draws NCCL's unique id and broadcasts it over MPI; every rank then joins the NCCL
    communicator with it.  One GPU per rank: NCCL refuses two ranks on the same device.
    """

    backend = "nccl"

    def __init__(self, mpi):
        import cupy
        from cupy.cuda import nccl

        self.mpi, self.cupy, self.nccl = mpi, cupy, nccl
        self.rank, self.size = mpi.rank, mpi.size
        self.local_rank, self.local_size = mpi.local_rank, mpi.local_size
        unique_id = np.array(nccl.get_unique_id() if mpi.rank == 0 else [0] * NCCL_UNIQUE_ID_BYTES,
                             dtype=np.int64)
        mpi.broadcast(unique_id)
        self.comm = nccl.NcclCommunicator(self.size, tuple(int(value) for value in unique_id), self.rank)
        self._types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64,
                       np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.int32): nccl.NCCL_INT32,
                       np.dtype(np.int64): nccl.NCCL_INT64}

    def _on_device(self, array):
        return is_gpu_array(array) and array.flags.c_contiguous and array.dtype in self._types

    def allreduce(self, array):
        if not self._on_device(array):
            return self.mpi.allreduce(array)
        stream = self.cupy.cuda.get_current_stream().ptr
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, self._types[array.dtype],
                            self.nccl.NCCL_SUM, stream)
        return array

    def broadcast(self, array, root=0):
        if not self._on_device(array):
            return self.mpi.broadcast(array, root)
        stream = self.cupy.cuda.get_current_stream().ptr
        self.comm.bcast(array.data.ptr, array.size, self._types[array.dtype], root, stream)
        return array

    def allgather(self, array):
        return self.mpi.allgather(array)

    def broadcast_json(self, value, root=0):
        return self.mpi.broadcast_json(value, root)

    def barrier(self):
        self.cupy.cuda.get_current_stream().synchronize()
        self.mpi.barrier()

    def abort(self, status):
        self.mpi.abort(status)

    def __repr__(self):
        return f"NCCLCommunicator(rank={self.rank}, size={self.size})"
