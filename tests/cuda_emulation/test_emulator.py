"""The emulator itself: each CUDA feature it maps does what the GPU does on a tiny kernel."""
import numpy as np
import pytest
from emulator import EmulationError

SOURCE = r'''
template <typename T>
__device__ T block_sum(T value) {
    __shared__ T partial[256];
    partial[threadIdx.x] = value;
    __syncthreads();
    for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    T total = partial[0];
    __syncthreads();
    return total;
}

// One partial sum per block through static shared memory.
extern "C" __global__ void block_sums_f64(const double* __restrict__ x, double* out, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    double s = block_sum<double>(i < n ? x[i] : 0.0);
    if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// Reverse each block's slice through dynamic shared memory.
extern "C" __global__ void reverse_blocks_f32(const float* x, float* y) {
    extern __shared__ __align__(16) unsigned char raw[];
    float* tile = reinterpret_cast<float*>(raw);
    long long base = blockIdx.x * (long long)blockDim.x;
    tile[threadIdx.x] = x[base + threadIdx.x];
    __syncthreads();
    y[base + threadIdx.x] = tile[blockDim.x - 1 - threadIdx.x];
}

// Warp sums with shuffles, then atomics across warps and blocks.
extern "C" __global__ void warp_sums_f32(const float* x, float* warp_out, float* total, int* count, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = i < n ? x[i] : 0.0f;
    for (int offset = warpSize / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    float mirrored = __shfl_xor_sync(0xffffffffu, v, 0);
    if ((threadIdx.x & 31) == 0) {
        warp_out[i / 32] = mirrored;
        atomicAdd(total, v);
        atomicAdd(count, 1);
    }
}

extern "C" __global__ void early_return_f32(float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;            // exited threads must not hang the others' __syncthreads
    __syncthreads();
    y[i] = 2.0f * i;
}

// Lane 0 waits for the block while the other lanes wait for the warp: neither barrier can complete.
extern "C" __global__ void deadlocks_f32(float* y) {
    if (threadIdx.x == 0) __syncthreads();
    else __syncwarp();
    y[threadIdx.x] = 1.0f;
}

extern "C" __global__ void writes_past_end_f32(float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    y[i] = 1.0f;                   // no bounds check: the last block writes past n
}

extern "C" __global__ void indices_f32(int* out) {
    int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    out[b * blockDim.x * blockDim.y * blockDim.z + t] = b * 1000 + t;
}
'''


@pytest.fixture(scope="module")
def kernels(emulator, tmp_path_factory):
    path = tmp_path_factory.mktemp("emu") / "demo.cu"
    path.write_text(SOURCE)
    return emulator.module(path)


def test_syncthreads_and_static_shared_memory_are_per_block(kernels):
    x = np.random.default_rng(0).standard_normal(1000)
    out = np.zeros(4)
    kernels["block_sums_f64"]((4,), (256,), [x, out, 1000])
    expected = [x[b * 256:(b + 1) * 256].sum() for b in range(4)]
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_dynamic_shared_memory(kernels):
    x = np.arange(3 * 64, dtype=np.float32)
    y = np.zeros_like(x)
    kernels["reverse_blocks_f32"]((3,), (64,), [x, y], shared_mem=64 * 4)
    np.testing.assert_array_equal(y, x.reshape(3, 64)[:, ::-1].reshape(-1))


def test_warp_shuffles_and_atomics(kernels):
    x = np.random.default_rng(1).standard_normal(200).astype(np.float32)
    warp_out = np.zeros(8, np.float32)
    total, count = np.zeros(1, np.float32), np.zeros(1, np.int32)
    kernels["warp_sums_f32"]((2,), (128,), [x, warp_out, total, count, 200])
    padded = np.concatenate([x, np.zeros(56, np.float32)])
    np.testing.assert_allclose(warp_out, padded.reshape(8, 32).sum(1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(total[0], x.sum(), rtol=1e-4)
    assert count[0] == 8


def test_threads_that_return_early_do_not_deadlock(kernels):
    y = np.zeros(100, np.float32)
    kernels["early_return_f32"]((2,), (64,), [y, 100])
    np.testing.assert_array_equal(y, 2.0 * np.arange(100))


def test_a_deadlock_is_reported_instead_of_hanging(kernels, emulator):
    if emulator.scheduler == "threads":
        pytest.skip("with OS threads a deadlocked std::barrier hangs; the fiber scheduler detects it")
    with pytest.raises(EmulationError, match=r"deadlocks_f32: launch .* failed: deadlock"):
        kernels["deadlocks_f32"]((1,), (32,), [np.zeros(32, np.float32)])


def test_out_of_bounds_write_is_caught(kernels):
    with pytest.raises(EmulationError, match="wrote outside"):
        kernels["writes_past_end_f32"]((2,), (64,), [np.zeros(100, np.float32), 100])


def test_3d_grid_and_block_indices(kernels):
    out = np.zeros(2 * 3 * 2 * 4 * 2 * 3, np.int32)
    kernels["indices_f32"]((2, 3, 2), (4, 2, 3), [out])
    block, thread = np.divmod(np.arange(out.size), 24)
    np.testing.assert_array_equal(out, block * 1000 + thread)


def test_wrong_arguments_are_type_errors(kernels):
    y = np.zeros(10, np.float32)
    with pytest.raises(TypeError, match="float64"):
        kernels["early_return_f32"]((1,), (32,), [y.astype(np.float64), 10])
    with pytest.raises(TypeError, match="takes 2 arguments"):
        kernels["early_return_f32"]((1,), (32,), [y])
    with pytest.raises(TypeError, match="contiguous"):
        kernels["early_return_f32"]((1,), (32,), [np.zeros(20, np.float32)[::2], 10])
    with pytest.raises(EmulationError, match="1..1024"):
        kernels["early_return_f32"]((1,), (2048,), [y, 10])


def test_a_kernel_g_plus_plus_cannot_compile_names_the_file(emulator, tmp_path):
    path = tmp_path / "broken.cu"
    path.write_text('extern "C" __global__ void broken_f32(float* y) { y[0] = undeclared; }\n')
    with pytest.raises(EmulationError, match="broken.cu"):
        emulator.module(path)
