// Batch normalisation kernels: the CUDA twins of minicnn/backend/cpu/normalization.py.
//
// Every kernel sees x as (N, C, L), contiguous: the value of sample n, channel c,
// position l sits at x[(n*C + c)*L + l] (L = H*W for images, 1 for BatchNorm1d).
// Per channel the statistics run over its M = N*L values.
//
// Kernels (each as <name>_f32 and <name>_f64, one template for both):
//
//   batch_norm_statistics(x, mean, var, invstd, N, C, L, eps)
//       mirrors batch_norm_statistics: per channel the mean, the biased variance
//       (two passes: the second sums (x - mean)^2, accurate when |mean| >> std)
//       and invstd = 1/sqrt(var + eps).
//       Launch: one block per channel (grid = C, a grid-stride loop covers more),
//       block = a multiple of 32 threads, at most 1024 (launch.py uses 128);
//       static shared memory: 32 doubles (one partial sum per warp).
//
//   batch_norm_invstd(var, invstd, C, eps)
//       mirrors batch_norm_invstd: invstd = 1/sqrt(var + eps), elementwise over C
//       (used with the running variance in evaluation).
//       Launch: elementwise (grid-stride), no shared memory.
//
//   batch_norm_forward(x, mean, invstd, weight, bias, y, N, C, L)
//       mirrors batch_norm_forward: y = x*scale + shift with scale = invstd*weight,
//       shift = bias - mean*scale per channel; weight and bias may be null.
//       Launch: elementwise over N*C*L (grid-stride), no shared memory.
//
//   batch_norm_backward_reduce(gy, x, mean, invstd, grad_weight, grad_bias, N, C, L)
//       the two per-channel sums of batch_norm_backward:
//       grad_bias = sum gy, grad_weight = sum gy*(x - mean) * invstd = sum gy*x_hat.
//       Launch: as batch_norm_statistics (one block per channel, 32 doubles of shared memory).
//
//   batch_norm_backward_input(gy, x, mean, invstd, weight, grad_weight, grad_bias,
//                             grad_x, N, C, L, batch_statistics)
//       the dx of batch_norm_backward from the sums above, elementwise:
//       batch statistics:  dx = ((gy - sum gy/M) - (x - mean)*invstd*(grad_weight/M)) * scale
//                          (the fused invstd/M * (M*g - sum g - x_hat*sum(g*x_hat)) of the NumPy
//                          docstring, g = gy*weight, written in the NumPy kernel's order),
//       running statistics: dx = gy * scale,  scale = invstd*weight (invstd when weight is null).
//       Launch: elementwise over N*C*L (grid-stride), no shared memory.
//
//   batch_norm_update_running_stats(running_mean, running_var, mean, var, C, count, momentum)
//       mirrors batch_norm_update_running_stats, in place, PyTorch's convention:
//       running_mean = (1 - momentum)*running_mean + momentum*mean,
//       running_var  = (1 - momentum)*running_var  + momentum*M/(M - 1)*var  (unbiased).
//       Either running pointer may be null. Launch: elementwise over C.
//
// The per-channel sums accumulate in double for both dtypes: one thread may add up
// N*L/blockDim values (25,000 for a 256x112x112 batch at 128 threads), and a float
// running sum that long loses digits; reading float and summing in double costs
// nothing here (the reductions wait on memory) and lands within float rounding of
// NumPy's pairwise float32 sums. Results are rounded to T once, when stored.
//
// Hyper-parameters (eps, count, momentum) arrive as double and are rounded to T
// the way the NumPy kernels round their Python floats (dtype.type(eps), ...).
// The block reduction (block_sum) needs every thread of the block to call it:
// the channel loop depends on blockIdx only, so whole blocks move together.

#define FULL_WARP_MASK 0xffffffffu

// 1/sqrt in the precision of T (sqrtf for float: correctly rounded, unlike rsqrtf).
__device__ inline float bn_sqrt(float value) { return sqrtf(value); }
__device__ inline double bn_sqrt(double value) { return sqrt(value); }

// Sum of `value` over every thread of the block, returned to every thread.
// blockDim.x must be a multiple of warpSize and at most 32 warps; warp_sums is a
// __shared__ array of 32 double. Stage 1: each warp folds its 32 values into lane 0
// with __shfl_down_sync (16, 8, 4, 2, 1 lanes apart) and parks the result in
// shared memory. Stage 2: every warp reloads the per-warp partials and folds them
// with a butterfly (__shfl_xor_sync), after which every lane of every warp holds
// the same total: no extra broadcast through shared memory is needed.
__device__ double block_sum(double value, double* warp_sums) {
    const int lane = threadIdx.x % warpSize;
    const int warp = threadIdx.x / warpSize;
    const int warps = blockDim.x / warpSize;
    for (int offset = warpSize / 2; offset > 0; offset /= 2)
        value += __shfl_down_sync(FULL_WARP_MASK, value, offset);
    if (lane == 0) warp_sums[warp] = value;
    __syncthreads();
    value = lane < warps ? warp_sums[lane] : 0.0;
    for (int offset = warpSize / 2; offset > 0; offset /= 2)
        value += __shfl_xor_sync(FULL_WARP_MASK, value, offset);
    __syncthreads();  // every warp has read warp_sums before the next call overwrites it
    return value;
}

// Index in (N, C, L) of the i-th value of channel c, i in [0, N*L).
__device__ inline long long channel_value_index(long long i, long long channel, long long channels,
                                                long long length) {
    const long long n = i / length;
    const long long l = i - n * length;
    return (n * channels + channel) * length + l;
}

template <typename T>
__device__ void batch_norm_statistics_impl(const T* x, T* mean, T* var, T* invstd, long long batch,
                                           long long channels, long long length, double eps) {
    __shared__ double warp_sums[32];
    const long long count = batch * length;
    for (long long c = blockIdx.x; c < channels; c += gridDim.x) {
        double sum = 0.0;
        for (long long i = threadIdx.x; i < count; i += blockDim.x)
            sum += x[channel_value_index(i, c, channels, length)];
        // The mean is rounded to T before the second pass, as the NumPy kernel's is.
        const T channel_mean = T(block_sum(sum, warp_sums) / double(count));
        // Second pass around the mean: no E[x^2] - E[x]^2 cancellation.
        double squares = 0.0;
        for (long long i = threadIdx.x; i < count; i += blockDim.x) {
            const double centered = double(x[channel_value_index(i, c, channels, length)] - channel_mean);
            squares += centered * centered;
        }
        const T channel_var = T(block_sum(squares, warp_sums) / double(count));
        if (threadIdx.x == 0) {
            mean[c] = channel_mean;
            var[c] = channel_var;
            invstd[c] = T(1) / bn_sqrt(channel_var + T(eps));
        }
    }
}

template <typename T>
__device__ void batch_norm_invstd_impl(const T* var, T* invstd, long long channels, double eps) {
    for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < channels;
         c += (long long)blockDim.x * gridDim.x)
        invstd[c] = T(1) / bn_sqrt(var[c] + T(eps));
}

template <typename T>
__device__ void batch_norm_forward_impl(const T* x, const T* mean, const T* invstd, const T* weight,
                                        const T* bias, T* y, long long batch, long long channels,
                                        long long length) {
    const long long total = batch * channels * length;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const long long c = (i / length) % channels;
        const T scale = weight == nullptr ? invstd[c] : invstd[c] * weight[c];
        const T shift = bias == nullptr ? -mean[c] * scale : bias[c] - mean[c] * scale;
        y[i] = x[i] * scale + shift;
    }
}

template <typename T>
__device__ void batch_norm_backward_reduce_impl(const T* gy, const T* x, const T* mean, const T* invstd,
                                                T* grad_weight, T* grad_bias, long long batch,
                                                long long channels, long long length) {
    __shared__ double warp_sums[32];
    const long long count = batch * length;
    for (long long c = blockIdx.x; c < channels; c += gridDim.x) {
        const T channel_mean = mean[c];
        double sum_gy = 0.0;
        double sum_gy_centered = 0.0;
        for (long long i = threadIdx.x; i < count; i += blockDim.x) {
            const long long index = channel_value_index(i, c, channels, length);
            sum_gy += gy[index];
            sum_gy_centered += double(gy[index]) * double(x[index] - channel_mean);
        }
        sum_gy = block_sum(sum_gy, warp_sums);
        sum_gy_centered = block_sum(sum_gy_centered, warp_sums);
        if (threadIdx.x == 0) {
            grad_bias[c] = T(sum_gy);
            grad_weight[c] = T(sum_gy_centered) * invstd[c];
        }
    }
}

template <typename T>
__device__ void batch_norm_backward_input_impl(const T* gy, const T* x, const T* mean, const T* invstd,
                                               const T* weight, const T* grad_weight, const T* grad_bias,
                                               T* grad_x, long long batch, long long channels,
                                               long long length, int batch_statistics) {
    const long long total = batch * channels * length;
    const T count = T(batch * length);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const long long c = (i / length) % channels;
        const T scale = weight == nullptr ? invstd[c] : invstd[c] * weight[c];
        if (!batch_statistics) {
            grad_x[i] = gy[i] * scale;
            continue;
        }
        // The mean and variance came from this batch: the chain rule through them
        // removes the mean of gy and the part of gy along x_hat.
        const T mean_grad = grad_bias[c] / count;
        const T mean_grad_xhat = grad_weight[c] / count;
        const T centered = x[i] - mean[c];
        grad_x[i] = ((gy[i] - mean_grad) - centered * (invstd[c] * mean_grad_xhat)) * scale;
    }
}

template <typename T>
__device__ void batch_norm_update_running_stats_impl(T* running_mean, T* running_var, const T* mean,
                                                     const T* var, long long channels, double count,
                                                     double momentum) {
    const T keep = T(1.0 - momentum);
    const T mean_step = T(momentum);
    const T var_step = T(momentum * count / (count - 1.0));  // unbiased: var * M/(M - 1)
    for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < channels;
         c += (long long)blockDim.x * gridDim.x) {
        if (running_mean != nullptr) running_mean[c] = running_mean[c] * keep + mean_step * mean[c];
        if (running_var != nullptr) running_var[c] = running_var[c] * keep + var_step * var[c];
    }
}

// --- extern "C" entry points: <op>_f32 and <op>_f64 -----------------------------
#define BATCHNORM_ENTRY_POINTS(T, SUFFIX)                                                              \
    extern "C" __global__ void batch_norm_statistics_##SUFFIX(                                         \
        const T* x, T* mean, T* var, T* invstd, long long batch, long long channels, long long length, \
        double eps) {                                                                                  \
        batch_norm_statistics_impl<T>(x, mean, var, invstd, batch, channels, length, eps);             \
    }                                                                                                  \
    extern "C" __global__ void batch_norm_invstd_##SUFFIX(const T* var, T* invstd, long long channels, \
                                                          double eps) {                                \
        batch_norm_invstd_impl<T>(var, invstd, channels, eps);                                         \
    }                                                                                                  \
    extern "C" __global__ void batch_norm_forward_##SUFFIX(                                            \
        const T* x, const T* mean, const T* invstd, const T* weight, const T* bias, T* y,              \
        long long batch, long long channels, long long length) {                                       \
        batch_norm_forward_impl<T>(x, mean, invstd, weight, bias, y, batch, channels, length);         \
    }                                                                                                  \
    extern "C" __global__ void batch_norm_backward_reduce_##SUFFIX(                                    \
        const T* gy, const T* x, const T* mean, const T* invstd, T* grad_weight, T* grad_bias,         \
        long long batch, long long channels, long long length) {                                       \
        batch_norm_backward_reduce_impl<T>(gy, x, mean, invstd, grad_weight, grad_bias, batch,         \
                                           channels, length);                                          \
    }                                                                                                  \
    extern "C" __global__ void batch_norm_backward_input_##SUFFIX(                                     \
        const T* gy, const T* x, const T* mean, const T* invstd, const T* weight,                      \
        const T* grad_weight, const T* grad_bias, T* grad_x, long long batch, long long channels,      \
        long long length, int batch_statistics) {                                                      \
        batch_norm_backward_input_impl<T>(gy, x, mean, invstd, weight, grad_weight, grad_bias, grad_x, \
                                          batch, channels, length, batch_statistics);                  \
    }                                                                                                  \
    extern "C" __global__ void batch_norm_update_running_stats_##SUFFIX(                               \
        T* running_mean, T* running_var, const T* mean, const T* var, long long channels,              \
        double count, double momentum) {                                                               \
        batch_norm_update_running_stats_impl<T>(running_mean, running_var, mean, var, channels, count, \
                                                momentum);                                             \
    }

BATCHNORM_ENTRY_POINTS(float, f32)
BATCHNORM_ENTRY_POINTS(double, f64)
