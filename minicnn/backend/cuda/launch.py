"""Every CUDA kernel of kernels/*.cu, named once: the file that defines it and how it is launched.

``KERNELS`` lists, file by file, each kernel's launch configuration.  The CuPy
backend finds a kernel's file (``kernel_family``) and its configuration
(``launch_config``) here, and the CPU emulation tests (tests/cuda_emulation/)
launch the very same configuration, so what the tests prove is what runs on the
GPU.  A kernel named ``<op>`` here has the entry points ``<op>_f32`` and
``<op>_f64`` in kernels/<family>.cu (``dtypes`` says otherwise for a kernel on
integers); tests/backend/test_cuda_names.py checks that these names and the
files' ``extern "C"`` entry points are the same set.

Format::

    KERNELS["<family>"]["<op>"] = dict(block=(bx, by, bz), grid=<callable>, shared_mem=<bytes or callable>)

``grid`` is a callable of the op's work sizes (its positional arguments are
documented on the entry; for the 1-D grid-stride kernels it is the number of
elements the loop walks) returning a 3-tuple of blocks.  ``shared_mem`` is the
dynamic shared memory in bytes (``extern __shared__``), an int or a callable of
the same work sizes.  ``LAUNCH`` is the same table by kernel name, each entry
with its ``family``.
"""
__all__ = ["KERNELS", "LAUNCH", "MAX_GRID_BLOCKS", "FLOAT_SUFFIXES", "grid_stride", "launch_config",
           "kernel_family", "entry_points"]

# 1-D grid-stride kernels never need more blocks than this: extra work is taken
# by the loop.  65535·4 keeps every SM busy on today's GPUs and fits any grid.x.
MAX_GRID_BLOCKS = 65535 * 4
GEMM_TILE = 16
GEMM_BLOCKED_TILE, GEMM_BLOCKED_THREADS = 128, 256
# The entry points of a kernel on floating-point data: <op>_f32 (float) and <op>_f64 (double).
FLOAT_SUFFIXES = ("f32", "f64")


def grid_stride(total, block=256):
    """Blocks for a 1-D grid-stride loop over ``total`` elements: ceil(total/block), capped."""
    return (max(1, min(-(-int(total) // block), MAX_GRID_BLOCKS)), 1, 1)


def _entry(op):
    try:
        return LAUNCH[op]
    except KeyError:
        raise KeyError(f"no CUDA kernel {op!r} in minicnn/backend/cuda/launch.py") from None


def launch_config(op, *work):
    """(grid, block, shared_mem) for ``op`` on work sizes ``work``, from ``LAUNCH``."""
    entry = _entry(op)
    shared_mem = entry.get("shared_mem", 0)
    if callable(shared_mem):
        shared_mem = shared_mem(*work)
    return tuple(entry["grid"](*work)), tuple(entry["block"]), int(shared_mem)


def kernel_family(op):
    """The file that defines kernel ``op``: kernels/<family>.cu."""
    return _entry(op)["family"]


def entry_points():
    """{entry point: family} for every kernel named here: what kernels/*.cu must define, no more, no less."""
    return {f"{op}_{suffix}": entry["family"]
            for op, entry in LAUNCH.items() for suffix in entry.get("dtypes", FLOAT_SUFFIXES)}


# The commonest configuration: one thread per element written, 256 threads a block, a 1-D grid-stride loop.
PER_ELEMENT = dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0)


def _per_element(threads):
    return dict(block=(threads, 1, 1), grid=lambda total: grid_stride(total, threads), shared_mem=0)


def _block_per_channel(threads):
    return dict(block=(threads, 1, 1),
                grid=lambda channels: (max(1, min(int(channels), MAX_GRID_BLOCKS)), 1, 1), shared_mem=0)


def _per_row(rows_per_block, threads):
    return dict(block=(threads, 1, 1), grid=lambda rows: grid_stride(rows, rows_per_block), shared_mem=0)


KERNELS = {
    # ---- im2col.cu: work = total elements written (cols for im2col, N·C·H·W for col2im)
    "im2col": {
        "im2col": PER_ELEMENT,
        "col2im": PER_ELEMENT,
    },
    # ---- depthwise.cu: work = elements written (y, grad_x: N·C·H·W); grad_weight: one block per
    #      (c, i, j) weight entry, 256 threads reduce over N·OH·OW in shared memory.
    "depthwise": {
        "depthwise_conv2d_forward": PER_ELEMENT,
        "depthwise_conv2d_backward_input": PER_ELEMENT,
        "depthwise_conv2d_backward_weight": dict(
            block=(256, 1, 1), grid=lambda weight_size: (int(weight_size), 1, 1), shared_mem=0),
    },
    # ---- gemm.cu: work = (M, N) or (M, N, batch); grid.z runs over the batch.
    #      grid.y and grid.z must stay ≤ 65535.
    "gemm": {
        #  gemm: one 16×16 tile of C per block (static shared tiles of A and B).
        "gemm": dict(block=(GEMM_TILE, GEMM_TILE, 1),
                     grid=lambda m, n, batch=1: (-(-int(n) // GEMM_TILE), -(-int(m) // GEMM_TILE),
                                                 int(batch)),
                     shared_mem=0),
        #  gemm_blocked: 256 threads compute a 128×128 tile of C, an 8×8 patch each (static shared slices).
        "gemm_blocked": dict(block=(GEMM_BLOCKED_THREADS, 1, 1),
                             grid=lambda m, n, batch=1: (-(-int(n) // GEMM_BLOCKED_TILE),
                                                         -(-int(m) // GEMM_BLOCKED_TILE), int(batch)),
                             shared_mem=0),
    },
    # ---- batchnorm.cu (x viewed as (N, C, L)); blocks must be whole warps (block_sum shuffles).
    #      statistics / backward_reduce: work = C; one block per channel reduces its N·L values
    #      (static shared memory: 32 partial sums). forward / backward_input: work = N·C·L;
    #      invstd / update_running_stats: work = C (1-D grid-stride).
    "batchnorm": {
        "batch_norm_statistics": _block_per_channel(128),
        "batch_norm_backward_reduce": _block_per_channel(128),
        "batch_norm_invstd": _per_element(128),
        "batch_norm_forward": _per_element(128),
        "batch_norm_backward_input": _per_element(128),
        "batch_norm_update_running_stats": _per_element(128),
    },
    # ---- softmax.cu: work = rows = outer·inner (N·prod(rest) for cross-entropy); one warp per row,
    #      4 rows per 128-thread block, no shared memory (warp shuffles).
    "softmax": {
        "softmax_forward": _per_row(4, 128),
        "softmax_backward": _per_row(4, 128),
        "log_softmax_forward": _per_row(4, 128),
        "log_softmax_backward": _per_row(4, 128),
        "cross_entropy_forward": _per_row(4, 128),
        "cross_entropy_backward": _per_row(4, 128),
    },
    # ---- lrn.cu: work = N·C·S elements written, 1-D grid-stride, each thread sums its channel window.
    "lrn": {
        "local_response_norm_forward": _per_element(128),
        "local_response_norm_backward": _per_element(128),
    },
    # ---- pooling.cu: work = elements written, one thread each (outputs N·C·OH·OW for the forwards,
    #      inputs N·C·H·W for the backwards, which gather over the windows covering each input pixel).
    "pooling": {
        "max_pool2d_forward": PER_ELEMENT,
        "max_pool2d_backward": PER_ELEMENT,
        "avg_pool2d_forward": PER_ELEMENT,
        "avg_pool2d_backward": PER_ELEMENT,
        "adaptive_avg_pool2d_forward": PER_ELEMENT,
        "adaptive_avg_pool2d_backward": PER_ELEMENT,
    },
    # ---- activation.cu: work = number of elements, 1-D grid-stride.
    "activation": {
        "relu_forward": PER_ELEMENT, "relu_backward": PER_ELEMENT,
        "relu6_forward": PER_ELEMENT, "relu6_backward": PER_ELEMENT,
        "leaky_relu_forward": PER_ELEMENT, "leaky_relu_backward": PER_ELEMENT,
        "sigmoid_forward": PER_ELEMENT, "sigmoid_backward": PER_ELEMENT,
        "tanh_forward": PER_ELEMENT, "tanh_backward": PER_ELEMENT,
        "hardsigmoid_forward": PER_ELEMENT, "hardsigmoid_backward": PER_ELEMENT,
        "hardswish_forward": PER_ELEMENT, "hardswish_backward": PER_ELEMENT,
    },
    # ---- dropout.cu: work = mask elements (counters for philox4x32), 1-D grid-stride.
    #      philox4x32 is the bare generator on unsigned ints, launched by the known-answer tests only.
    "dropout": {
        "dropout_mask": PER_ELEMENT,
        "philox4x32": dict(PER_ELEMENT, dtypes=("u32",)),
    },
    # ---- bias.cu: bias_add: work = elements, 1-D grid-stride.  channel_sum: work = C; one block of
    #      exactly 256 threads per channel (its tree reduction halves 256), static shared memory.
    "bias": {
        "bias_add": PER_ELEMENT,
        "channel_sum": _block_per_channel(256),
    },
}

# The same table by kernel name: LAUNCH["<op>"] = dict(family="<file>", block=..., grid=..., shared_mem=...).
LAUNCH = {op: dict(entry, family=family)
          for family, kernels in KERNELS.items() for op, entry in kernels.items()}
