"""Launch configurations of the CUDA kernels, written once.

The CuPy backend launches every kernel with the entry of ``LAUNCH`` named after
it, and the CPU emulation tests (tests/cuda_emulation/) launch the very same
configuration, so what the tests prove is what runs on the GPU.

Format::

    LAUNCH["<op>"] = dict(block=(bx, by, bz), grid=<callable>, shared_mem=<bytes or callable>)

``grid`` is a callable of the op's work sizes (its positional arguments are
documented on the entry; for the 1-D grid-stride kernels it is the number of
elements the loop walks) returning a 3-tuple of blocks.  ``shared_mem`` is the
dynamic shared memory in bytes (``extern __shared__``), an int or a callable of
the same work sizes.  ``launch_config(op, *work)`` evaluates an entry.
"""
__all__ = ["LAUNCH", "MAX_GRID_BLOCKS", "grid_stride", "launch_config"]

# 1-D grid-stride kernels never need more blocks than this: extra work is taken
# by the loop.  65535·4 keeps every SM busy on today's GPUs and fits any grid.x.
MAX_GRID_BLOCKS = 65535 * 4
GEMM_TILE = 16
GEMM_BLOCKED_TILE, GEMM_BLOCKED_THREADS = 128, 256


def grid_stride(total, block=256):
    """Blocks for a 1-D grid-stride loop over ``total`` elements: ceil(total/block), capped."""
    return (max(1, min(-(-int(total) // block), MAX_GRID_BLOCKS)), 1, 1)


def launch_config(op, *work):
    """(grid, block, shared_mem) for ``op`` on work sizes ``work``, from ``LAUNCH``."""
    try:
        entry = LAUNCH[op]
    except KeyError:
        raise KeyError(f"no launch configuration for CUDA kernel {op!r} in minicnn/backend/cuda/launch.py") from None
    shared_mem = entry.get("shared_mem", 0)
    if callable(shared_mem):
        shared_mem = shared_mem(*work)
    return tuple(entry["grid"](*work)), tuple(entry["block"]), int(shared_mem)


LAUNCH = {
    # ---- im2col.cu: work = total elements written (cols for im2col, N·C·H·W for col2im)
    "im2col": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    "col2im": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    # ---- depthwise.cu: work = elements written (y, grad_x: N·C·H·W); grad_weight: one block per
    #      (c, i, j) weight entry, 256 threads reduce over N·OH·OW in shared memory.
    "depthwise_conv2d_forward": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    "depthwise_conv2d_backward_input": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    "depthwise_conv2d_backward_weight": dict(block=(256, 1, 1), grid=lambda weight_size: (int(weight_size), 1, 1),
                                             shared_mem=0),
    # ---- gemm.cu: work = (M, N) or (M, N, batch); one 16×16 tile of C per block (static shared tiles
    #      of A and B), grid.z runs over the batch.  grid.y and grid.z must stay ≤ 65535.
    "gemm": dict(block=(GEMM_TILE, GEMM_TILE, 1),
                 grid=lambda m, n, batch=1: (-(-int(n) // GEMM_TILE), -(-int(m) // GEMM_TILE), int(batch)),
                 shared_mem=0),
    #      gemm_blocked: 256 threads compute a 128×128 tile of C, an 8×8 patch each (static shared slices).
    "gemm_blocked": dict(block=(GEMM_BLOCKED_THREADS, 1, 1),
                         grid=lambda m, n, batch=1: (-(-int(n) // GEMM_BLOCKED_TILE), -(-int(m) // GEMM_BLOCKED_TILE),
                                                     int(batch)),
                         shared_mem=0),
    # ---- batchnorm.cu (x viewed as (N, C, L)); blocks must be whole warps (block_sum shuffles).
    #      statistics / backward_reduce: work = C; one block per channel reduces its N·L values
    #      (static shared memory: 32 partial sums). forward / backward_input: work = N·C·L;
    #      invstd / update_running_stats: work = C (1-D grid-stride).
    "batch_norm_statistics": dict(
        block=(128, 1, 1), grid=lambda channels: (max(1, min(int(channels), MAX_GRID_BLOCKS)), 1, 1),
        shared_mem=0),
    "batch_norm_backward_reduce": dict(
        block=(128, 1, 1), grid=lambda channels: (max(1, min(int(channels), MAX_GRID_BLOCKS)), 1, 1),
        shared_mem=0),
    "batch_norm_invstd": dict(block=(128, 1, 1), grid=lambda total: grid_stride(total, 128), shared_mem=0),
    "batch_norm_forward": dict(block=(128, 1, 1), grid=lambda total: grid_stride(total, 128), shared_mem=0),
    "batch_norm_backward_input": dict(
        block=(128, 1, 1), grid=lambda total: grid_stride(total, 128), shared_mem=0),
    "batch_norm_update_running_stats": dict(
        block=(128, 1, 1), grid=lambda total: grid_stride(total, 128), shared_mem=0),
    # ---- softmax.cu: work = rows = outer·inner (N·prod(rest) for cross-entropy); one warp per row,
    #      4 rows per 128-thread block, no shared memory (warp shuffles).
    "softmax_forward": dict(block=(128, 1, 1), grid=lambda rows: grid_stride(rows, 4), shared_mem=0),
    "softmax_backward": dict(block=(128, 1, 1), grid=lambda rows: grid_stride(rows, 4), shared_mem=0),
    "log_softmax_forward": dict(block=(128, 1, 1), grid=lambda rows: grid_stride(rows, 4), shared_mem=0),
    "log_softmax_backward": dict(block=(128, 1, 1), grid=lambda rows: grid_stride(rows, 4), shared_mem=0),
    "cross_entropy_forward": dict(block=(128, 1, 1), grid=lambda rows: grid_stride(rows, 4), shared_mem=0),
    "cross_entropy_backward": dict(block=(128, 1, 1), grid=lambda rows: grid_stride(rows, 4), shared_mem=0),
    # ---- lrn.cu: work = N·C·S elements written, 1-D grid-stride, each thread sums its channel window.
    "local_response_norm_forward": dict(
        block=(128, 1, 1), grid=lambda total: grid_stride(total, 128), shared_mem=0),
    "local_response_norm_backward": dict(
        block=(128, 1, 1), grid=lambda total: grid_stride(total, 128), shared_mem=0),
    # ---- pooling.cu: work = elements written, one thread each (outputs N·C·OH·OW for the forwards,
    #      inputs N·C·H·W for the backwards, which gather over the windows covering each input pixel).
    "max_pool2d_forward": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    "max_pool2d_backward": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    "avg_pool2d_forward": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    "avg_pool2d_backward": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    "adaptive_avg_pool2d_forward": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    "adaptive_avg_pool2d_backward": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    # ---- activation.cu: work = number of elements, 1-D grid-stride.
    **{f"{name}_{direction}": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0)
       for name in ("relu", "relu6", "leaky_relu", "sigmoid", "tanh", "hardsigmoid", "hardswish")
       for direction in ("forward", "backward")},
    # ---- dropout.cu: work = mask elements (counters for philox4x32), 1-D grid-stride.
    "dropout_mask": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    "philox4x32": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    # ---- bias.cu: bias_add: work = elements, 1-D grid-stride.  channel_sum: work = C; one block of
    #      exactly 256 threads per channel (its tree reduction halves 256), static shared memory.
    "bias_add": dict(block=(256, 1, 1), grid=grid_stride, shared_mem=0),
    "channel_sum": dict(
        block=(256, 1, 1), grid=lambda channels: (max(1, min(int(channels), MAX_GRID_BLOCKS)), 1, 1),
        shared_mem=0),
}
