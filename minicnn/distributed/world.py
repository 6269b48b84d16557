"""The world this process belongs to: its rank, how many ranks there are, and how they talk.

``init()`` looks at how the process was started.  ``mpiexec`` leaves its launcher's variables in each
process's environment (PMI_SIZE for MPICH and Intel MPI, OMPI_COMM_WORLD_SIZE for Open MPI); without them,
or with a world of one, the world is this process alone and mpi4py is never even imported, so a run
without MPI is exactly the single-process code.  With several ranks, ``init`` also

* gives each rank its share of the machine's cores (BLAS and minicnn's own threads), since ranks on one
  machine would otherwise each start a thread per core and fight over them;
* makes an uncaught exception end the whole job (MPI_Abort) after printing it, instead of leaving the
  other ranks waiting forever in their next collective.

>>> world = minicnn.distributed.init()        # under `mpiexec -n 4`: rank 0..3 of 4
>>> world.rank, world.size
"""
import contextlib
import os
import sys
import time
import traceback

from minicnn.distributed.communicator import MPICommunicator, NCCLCommunicator, SingleProcess

__all__ = ["abort_with_message", "get_rank", "get_world_size", "init", "is_initialized", "launch_rank",
           "launch_size", "single_process", "world"]

BACKENDS = ("auto", "mpi", "nccl", "none")
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
_RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")
# A rank that is not rank 0 waits this long before printing its fatal error: if rank 0 failed the same
# way, rank 0's abort ends this process first, and the error is printed once rather than once per rank.
_REPEAT_GRACE_SECONDS = 0.5

_world = None


def _env_int(names):
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return None


def launch_size():
    """The world size ``mpiexec`` announced in the environment; None when no MPI launcher started us."""
    size = _env_int(_SIZE_VARIABLES)
    if size is None and _env_int(_RANK_VARIABLES) is not None:  # a launcher that names ranks, not the size
        return -1
    return size


def launch_rank():
    """This process's rank as the launcher announced it (0 without a launcher); readable before ``init``."""
    return _env_int(_RANK_VARIABLES) or 0


def _join_mpi():
    try:
        return MPICommunicator()
    except ImportError as error:
        raise ImportError(f"minicnn.distributed: started by mpiexec as one of several ranks, but mpi4py "
                          f"cannot be imported ({error}); install it with pip install "
                          f"'minicnn[distributed]' (or mpi4py built against your cluster's MPI)") from None


def _join_nccl(mpi):
    """NCCL on this rank's GPU (local rank mod the GPUs here), or None and why (then stage through host)."""
    import cupy

    # Each rank its own GPU, NCCL or not: ranks sharing one GPU would queue behind each other.
    cupy.cuda.Device(mpi.local_rank % cupy.cuda.runtime.getDeviceCount()).use()
    try:
        from cupy.cuda import nccl  # noqa: F401  (CuPy without NCCL raises here)
    except Exception as error:  # noqa: BLE001  (a CuPy without NCCL fails in several ways)
        return None, f"NCCL is not available in CuPy ({type(error).__name__}: {error})"
    return NCCLCommunicator(mpi), None


def init(backend="auto", limit_threads=True):
    """Join the world this process was started in and return its communicator (idempotent).

    ``backend``: "auto" (MPI when mpiexec started several ranks, else one process), "nccl" (the same,
    with GPU arrays over NCCL and the rest over MPI; falls back to staging through host memory, with a
    note on stderr, when CuPy has no NCCL), "mpi" (join MPI even as a world of one), or "none" (this
    process alone, whatever the environment says).
    ``limit_threads``: give each rank its share of this machine's cores (skipped for variables the
    user set: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, MINICNN_NUM_THREADS).
    """
    global _world
    if backend not in BACKENDS:
        raise ValueError(f"minicnn.distributed.init: backend must be one of {', '.join(BACKENDS)}, "
                         f"got {backend!r}")
    if _world is not None:
        if backend == "nccl" and _world.size > 1 and _world.backend != "nccl":
            raise RuntimeError(f"minicnn.distributed.init: the world is already joined over "
                               f"{_world.backend}; ask for backend='nccl' in the first init() call")
        return _world
    size = launch_size()
    if backend == "none" or (backend in ("auto", "nccl") and (size is None or size == 1)):
        _world = SingleProcess()
        return _world
    world = _join_mpi()
    if world.size > 1 and backend == "nccl":
        nccl, reason = _join_nccl(world)
        if nccl is None:
            if world.rank == 0:
                print(f"minicnn.distributed: {reason}; GPU arrays are reduced through host memory over MPI",
                      file=sys.stderr)
        else:
            world = nccl
    if world.size > 1:
        if limit_threads:
            _limit_threads(world.local_size)
        _abort_on_uncaught_exceptions(world)
    _world = world
    return _world


@contextlib.contextmanager
def single_process():
    """Within it, this process is a world of its own: fit, evaluate and DataParallel see one rank.

    For work one rank does alone while the others wait (rank 0 evaluating the whole test set), and for
    the tests, which compare the ranks' run with one process's run in the same processes.
    """
    global _world
    before, _world = _world, SingleProcess()
    try:
        yield _world
    finally:
        _world = before


def world():
    """This process's communicator, joining the world on first use (``init()`` with its defaults)."""
    return _world if _world is not None else init()


def is_initialized():
    return _world is not None


def get_rank():
    return world().rank


def get_world_size():
    return world().size


def cores_per_rank(local_size):
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, local_size))


def _limit_threads(local_size):
    """BLAS and minicnn's thread pool: this rank's share of the cores, unless the user chose already."""
    from minicnn.backend.cpu import threads

    share = cores_per_rank(local_size)
    if "MINICNN_NUM_THREADS" not in os.environ:
        threads.set_num_threads(share)
    if any(name in os.environ for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")):
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("minicnn.distributed: threadpoolctl is not installed, so every rank's BLAS uses every core; "
              "pip install 'minicnn[distributed]' or set OMP_NUM_THREADS", file=sys.stderr)
        return
    threadpool_limits(limits=share, user_api="blas")  # stays in force: not used as a context manager


def abort_with_message(message, status=1, communicator=None):
    """Print ``message`` (prefixed by the rank) on stderr once, then end every rank of the job."""
    communicator = communicator or world()
    if communicator.rank != 0:
        time.sleep(_REPEAT_GRACE_SECONDS)
    prefix = f"[rank {communicator.rank} of {communicator.size}] " if communicator.size > 1 else ""
    print(prefix + message.rstrip("\n").replace("\n", "\n" + prefix), file=sys.stderr, flush=True)
    communicator.abort(status)


def _abort_on_uncaught_exceptions(communicator):
    """What ``python -m mpi4py`` does, for ``python script.py`` too: print the traceback, then MPI_Abort."""
    def hook(exc_type, exc, tb):
        # Ctrl-C too: mpiexec passes it to every rank, but a rank inside an allreduce only sees it once the
        # allreduce returns, which it never does when another rank has already stopped.
        status = 130 if issubclass(exc_type, KeyboardInterrupt) else 1
        abort_with_message("".join(traceback.format_exception(exc_type, exc, tb)), status, communicator)

    sys.excepthook = hook
