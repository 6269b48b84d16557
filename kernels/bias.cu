// Bias add over a channel axis and the per-channel sum its gradient needs.
//
// Both kernels see the array as (outer, C, inner), contiguous: element (o, c, k)
// sits at o*C*inner + c*inner + k.  That one view covers every layout the ops use:
//   conv output (N, C, H, W):          outer = N, inner = H*W
//   channel-major conv output (C, N, OH, OW): outer = 1, inner = N*OH*OW
//   linear output (N, F):              outer = N, inner = 1
//
// kernel                one thread per       computes (NumPy equivalent)
// bias_add_<T>          element              y[o,c,k] = x[o,c,k] + bias[c]    (y = x + bias[:, None, None])
//                                            y may alias x (in-place add).
// channel_sum_<T>       block per channel    out[c] = sum over o, k of x[o,c,k] (gy.sum(axis=(0, 2, 3)),
//                                            the bias gradient of conv2d; gy.sum(axis=0) for linear)
//
// bias_add_<T>(const T* x, const T* bias, T* y, long long outer, long long C, long long inner)
// channel_sum_<T>(const T* x, T* out, long long outer, long long C, long long inner)
//
// Launch (minicnn/backend/cuda/launch.py):
//   bias_add:    1-D, block = 256, grid = min(ceil(outer*C*inner / 256), 65535 * 4), no shared memory;
//                grid-stride loop.
//   channel_sum: block = CHANNEL_SUM_THREADS = 256 threads (must be exactly that: the tree below halves
//                a power of two), grid = min(C, 65535 * 4) blocks (block b sums channels b, b + gridDim.x, ...),
//                static shared memory 256 doubles (the sums run in double for float32 too).  Each thread first sums its strided share of the
//                channel's outer*inner values in registers, then the block folds the 256 partial sums in a
//                shared-memory tree: 128 threads add pairs, 64, ..., 1, with __syncthreads between levels.
//                One block owns each output: no atomics, and the same order (so the same bits) every run.

#define GRID_STRIDE_LOOP(i, total)                                                  \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total); \
         i += (long long)blockDim.x * gridDim.x)

#define CHANNEL_SUM_THREADS 256

template <typename T>
__device__ void bias_add(const T* x, const T* bias, T* y, long long outer, long long C, long long inner) {
    const long long total = outer * C * inner;
    GRID_STRIDE_LOOP(i, total) y[i] = x[i] + bias[(i / inner) % C];
}

template <typename T>
__device__ void channel_sum(const T* __restrict__ x, T* __restrict__ out, long long outer, long long C,
                            long long inner) {
    __shared__ double partial[CHANNEL_SUM_THREADS];
    const unsigned int tid = threadIdx.x;
    const long long per_channel = outer * inner;
    // The channel loop depends on blockIdx only: the whole block takes every
    // iteration together, as __syncthreads requires.
    for (long long c = blockIdx.x; c < C; c += gridDim.x) {
        double sum = 0.0;  // double for float too: a thread may add up thousands of values
        for (long long m = tid; m < per_channel; m += CHANNEL_SUM_THREADS) {
            const long long o = m / inner, k = m % inner;
            sum += x[(o * C + c) * inner + k];
        }
        partial[tid] = sum;
        __syncthreads();
        for (unsigned int half = CHANNEL_SUM_THREADS / 2; half > 0; half >>= 1) {
            if (tid < half) partial[tid] += partial[tid + half];
            __syncthreads();
        }
        if (tid == 0) out[c] = T(partial[0]);
        __syncthreads();  // partial[0] is read before the next channel overwrites it
    }
}

extern "C" __global__ void bias_add_f32(const float* x, const float* bias, float* y, long long outer, long long C,
                                        long long inner) {
    bias_add<float>(x, bias, y, outer, C, inner);
}
extern "C" __global__ void bias_add_f64(const double* x, const double* bias, double* y, long long outer,
                                        long long C, long long inner) {
    bias_add<double>(x, bias, y, outer, C, inner);
}
extern "C" __global__ void channel_sum_f32(const float* x, float* out, long long outer, long long C,
                                           long long inner) {
    channel_sum<float>(x, out, outer, C, inner);
}
extern "C" __global__ void channel_sum_f64(const double* x, double* out, long long outer, long long C,
                                           long long inner) {
    channel_sum<double>(x, out, outer, C, inner);
}
