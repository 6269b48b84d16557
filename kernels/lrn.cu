// Local response normalisation (AlexNet), across channels: the CUDA twins of
// local_response_norm_forward/backward in minicnn/backend/cpu/normalization.py,
// with PyTorch's semantics.
//
// x is (N, C, S), contiguous, S = the product of the spatial sizes (any rank >= 3
// flattens to this): the value of sample n, channel c, position s is
// x[(n*C + c)*S + s]. Each thread owns one output value and walks its channel
// window itself: no shared memory, no atomics, deterministic.
//
// Kernels (each as <name>_f32 and <name>_f64, one template for both):
//
//   local_response_norm_forward(x, y, scale, N, C, S, size, alpha, beta, k)
//       scale_c = k + alpha/size * sum_{j = c - size/2 .. c + (size-1)/2} x_j^2
//       (zero beyond the first and last channel),  y_c = x_c * scale_c^(-beta).
//       scale is kept for the backward.
//
//   local_response_norm_backward(gy, x, y, scale, grad_x, N, C, S, size, alpha, beta)
//       dx_c = gy_c * scale_c^(-beta) - (2*alpha*beta/size) * x_c * sum_j gy_j*y_j/scale_j,
//       the sum over every channel j whose window holds c: the window read
//       backwards, j = c - (size-1)/2 .. c + size/2.
//
// Launch: elementwise over N*C*S with a grid-stride loop; block = any size
// (launch.py uses 128), no shared memory.
// size is an int; alpha, beta and k arrive as double and are rounded to T the way
// the NumPy kernel rounds its Python floats (dtype(alpha / size), dtype(-beta), ...).
// The window sums run from the lowest channel up, the order of the NumPy kernel's
// shifted adds, so float64 results agree to the last bits.

__device__ inline float lrn_pow(float base, float exponent) { return powf(base, exponent); }
__device__ inline double lrn_pow(double base, double exponent) { return pow(base, exponent); }

template <typename T>
__device__ void local_response_norm_forward_impl(const T* x, T* y, T* scale, long long batch,
                                                 long long channels, long long spatial, int size,
                                                 double alpha, double beta, double k) {
    const long long total = batch * channels * spatial;
    const T alpha_over_size = T(alpha / size);
    const T minus_beta = T(-beta);
    const T offset = T(k);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const long long c = (i / spatial) % channels;
        const long long first = c - size / 2 < 0 ? 0 : c - size / 2;
        const long long last = c + (size - 1) / 2 >= channels ? channels - 1 : c + (size - 1) / 2;
        // x_j sits (j - c)*S values away from x_c.
        T squares = T(0);
        for (long long j = first; j <= last; ++j) {
            const T value = x[i + (j - c) * spatial];
            squares += value * value;
        }
        const T value_scale = squares * alpha_over_size + offset;
        scale[i] = value_scale;
        y[i] = x[i] * lrn_pow(value_scale, minus_beta);
    }
}

template <typename T>
__device__ void local_response_norm_backward_impl(const T* gy, const T* x, const T* y, const T* scale,
                                                  T* grad_x, long long batch, long long channels,
                                                  long long spatial, int size, double alpha, double beta) {
    const long long total = batch * channels * spatial;
    const T minus_beta = T(-beta);
    const T coefficient = T(2.0 * alpha * beta / size);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const long long c = (i / spatial) % channels;
        // The channels j whose window holds c: the forward window mirrored.
        const long long first = c - (size - 1) / 2 < 0 ? 0 : c - (size - 1) / 2;
        const long long last = c + size / 2 >= channels ? channels - 1 : c + size / 2;
        T through_scale = T(0);
        for (long long j = first; j <= last; ++j) {
            const long long index = i + (j - c) * spatial;
            through_scale += gy[index] * y[index] / scale[index];
        }
        grad_x[i] = gy[i] * lrn_pow(scale[i], minus_beta) - coefficient * x[i] * through_scale;
    }
}

// --- extern "C" entry points: <op>_f32 and <op>_f64 -----------------------------
#define LRN_ENTRY_POINTS(T, SUFFIX)                                                                    \
    extern "C" __global__ void local_response_norm_forward_##SUFFIX(                                   \
        const T* x, T* y, T* scale, long long batch, long long channels, long long spatial, int size,  \
        double alpha, double beta, double k) {                                                         \
        local_response_norm_forward_impl<T>(x, y, scale, batch, channels, spatial, size, alpha, beta, \
                                            k);                                                        \
    }                                                                                                  \
    extern "C" __global__ void local_response_norm_backward_##SUFFIX(                                  \
        const T* gy, const T* x, const T* y, const T* scale, T* grad_x, long long batch,               \
        long long channels, long long spatial, int size, double alpha, double beta) {                  \
        local_response_norm_backward_impl<T>(gy, x, y, scale, grad_x, batch, channels, spatial, size,  \
                                             alpha, beta);                                             \
    }

LRN_ENTRY_POINTS(float, f32)
LRN_ENTRY_POINTS(double, f64)
