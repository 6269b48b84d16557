"""The ``emulator`` fixture: our CUDA kernels on the CPU (README.md), under fibers always, OS threads sometimes.

Fibers run every test: their schedule is fixed, so a result never depends on luck, a missing barrier
before a read of a higher thread's write fails every time, and a deadlock is reported instead of hanging.
OS threads run a smoke subset, ``THREADS_SMOKE``: the emulator's own tests (barriers, shared memory,
warps, atomics, early exits) and one test per kernel family, chosen where the kernel's threads share
memory or are reduced across a block, since that is where an OS interleaving could show a race that the
fixed fiber order hides.  Running every case under threads as well doubled the cases and the barrier
wake-ups without testing anything the fibers had not: the arithmetic of a kernel does not depend on
which scheduler runs it.
"""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

# Tests that run under OS threads too, by kernel family (and every test of test_emulator.py).
THREADS_SMOKE = {
    "test_col2im_is_the_adjoint_of_im2col",  # im2col.cu: im2col and the col2im gather
    "test_depthwise_weight_reduction_over_more_entries_than_blocks",  # depthwise.cu: a block reduction
    "test_batched_gemm_multiplies_each_slab",  # gemm.cu: both kernels' shared-memory tiles and barriers
    "test_dropout_masks_of_consecutive_offsets_continue_one_stream",  # dropout.cu: Philox counters
    "test_batch_norm_reductions_do_not_depend_on_grid_or_block",  # batchnorm.cu: block reductions
    "test_softmax_does_not_depend_on_grid_or_block",  # softmax.cu: warp reductions over a row
    "test_cross_entropy_backward_takes_a_broadcast_gradient",  # softmax.cu: the cross-entropy kernels
    "test_local_response_norm_window_is_pytorchs",  # lrn.cu
    "test_max_pool_grid_stride_loop_covers_more_work_than_threads",  # pooling.cu
    "test_activation_grid_stride_loop_covers_more_work_than_threads",  # activation.cu
    "test_channel_sum_is_deterministic",  # bias.cu: the bias gradient, a block reduction
}


def pytest_generate_tests(metafunc):
    """Parametrise ``emulator`` by scheduler: fibers for every test, OS threads for the smoke subset."""
    if "emulator" not in metafunc.fixturenames:
        return
    smoke = metafunc.function.__name__ in THREADS_SMOKE or metafunc.module.__name__ == "test_emulator"
    metafunc.parametrize("emulator", ["threads", "fibers"] if smoke else ["fibers"], indirect=True,
                         scope="session")


@pytest.fixture(scope="session")
def emulator(request):
    """The CPU emulator under ``request.param``'s scheduler; skips (visibly) without g++."""
    from emulator import CXX, Emulator

    if shutil.which(CXX) is None:
        pytest.skip(f"CUDA emulation needs {CXX} (a C++20 compiler with <barrier>); none found")
    return Emulator(scheduler=request.param)
