// Element-wise activations, forward and backward; the GPU twins of
// minicnn/backend/cpu/activation.py, one function of x per element.
//
// kernel                  arguments (after the pointers)      computes
// relu_forward            n                                   y = max(x, 0)            (NaN stays NaN)
// relu_backward           n                                   gx = gy * (x > 0)        (0 at the kink, as PyTorch)
// relu6_forward           n                                   y = clip(x, 0, 6)
// relu6_backward          n                                   gx = gy * (0 < x < 6)
// leaky_relu_forward      n, negative_slope                   y = x > 0 ? x : x * slope
// leaky_relu_backward     n, negative_slope                   gx = x > 0 ? gy : gy * slope
// sigmoid_forward         n                                   y = (1 + tanh(x / 2)) / 2  (never overflows)
// sigmoid_backward        n   (takes the OUTPUT y)            gx = gy * y * (1 - y)
// tanh_forward            n                                   y = tanh(x)
// tanh_backward           n   (takes the OUTPUT y)            gx = gy * (1 - y * y)
// hardsigmoid_forward     n                                   y = clip(x + 3, 0, 6) / 6
// hardsigmoid_backward    n                                   gx = gy * (-3 < x < 3) / 6
// hardswish_forward       n                                   y = x * clip(x + 3, 0, 6) / 6
// hardswish_backward      n                                   gx = 0 (x < -3), gy * (x/3 + 1/2) (x <= 3), gy
//
// Forward kernels: (const T* x, T* y, long long n[, T negative_slope]).
// Backward kernels: (const T* gy, const T* x_or_y, T* gx, long long n[, T negative_slope]).
// Pointers may alias (y == x, gx == gy): each thread reads its element before writing it.
// The arithmetic is written in the NumPy kernel's order, so float64 results agree to the last bit
// (tanh aside, whose libm and CUDA versions may differ by an ulp).
//
// Launch (minicnn/backend/cuda/launch.py, LAUNCH["<kernel>"]): 1-D, block = 256,
// grid = min(ceil(n / 256), 65535 * 4), no shared memory; grid-stride loop.

#define GRID_STRIDE_LOOP(i, total)                                                  \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total); \
         i += (long long)blockDim.x * gridDim.x)

__device__ __forceinline__ float tanh_of(float v) { return tanhf(v); }
__device__ __forceinline__ double tanh_of(double v) { return tanh(v); }

// clip(v, low, high) as NumPy does it: a NaN passes through (fminf/fmaxf would drop it).
template <typename T> __device__ __forceinline__ T clip(T v, T low, T high) {
    return v < low ? low : (v > high ? high : v);
}

template <typename T> struct Relu {
    __device__ static T forward(T x) { return x < T(0) ? T(0) : x; }
    __device__ static T backward(T gy, T x) { return gy * T(x > T(0)); }
};
template <typename T> struct Relu6 {
    __device__ static T forward(T x) { return clip(x, T(0), T(6)); }
    __device__ static T backward(T gy, T x) { return gy * T(x > T(0) && x < T(6)); }
};
template <typename T> struct Sigmoid {
    __device__ static T forward(T x) { return T(0.5) * (T(1) + tanh_of(T(0.5) * x)); }
    __device__ static T backward(T gy, T y) { return gy * y * (T(1) - y); }
};
template <typename T> struct Tanh {
    __device__ static T forward(T x) { return tanh_of(x); }
    __device__ static T backward(T gy, T y) { return gy * (T(1) - y * y); }
};
template <typename T> struct Hardsigmoid {
    __device__ static T forward(T x) { return clip(x + T(3), T(0), T(6)) / T(6); }
    __device__ static T backward(T gy, T x) { return gy * T(x > T(-3) && x < T(3)) / T(6); }
};
template <typename T> struct Hardswish {
    __device__ static T forward(T x) { return x * (clip(x + T(3), T(0), T(6)) / T(6)); }
    __device__ static T backward(T gy, T x) {
        // PyTorch's derivative: 0 below -3, x/3 + 1/2 on [-3, 3], 1 above 3.
        return x < T(-3) ? T(0) : (x <= T(3) ? gy * (x / T(3) + T(0.5)) : gy);
    }
};

template <typename Op, typename T>
__device__ void activation_forward(const T* x, T* y, long long n) {
    GRID_STRIDE_LOOP(i, n) y[i] = Op::forward(x[i]);
}

template <typename Op, typename T>
__device__ void activation_backward(const T* gy, const T* saved, T* gx, long long n) {
    GRID_STRIDE_LOOP(i, n) gx[i] = Op::backward(gy[i], saved[i]);
}

// Leaky ReLU carries its slope, so it is spelled out rather than an Op.
template <typename T>
__device__ void leaky_relu_forward(const T* x, T* y, long long n, T negative_slope) {
    GRID_STRIDE_LOOP(i, n) {
        const T v = x[i];
        y[i] = v > T(0) ? v : v * negative_slope;
    }
}

template <typename T>
__device__ void leaky_relu_backward(const T* gy, const T* x, T* gx, long long n, T negative_slope) {
    GRID_STRIDE_LOOP(i, n) {
        const T g = gy[i];
        gx[i] = x[i] > T(0) ? g : g * negative_slope;
    }
}

// --- extern "C" entry points: <kernel>_f32 and <kernel>_f64 --------------------
#define DEFINE_ACTIVATION(NAME, OP, T, SUFFIX)                                                         \
    extern "C" __global__ void NAME##_forward_##SUFFIX(const T* x, T* y, long long n) {                \
        activation_forward<OP<T>, T>(x, y, n);                                                         \
    }                                                                                                  \
    extern "C" __global__ void NAME##_backward_##SUFFIX(const T* gy, const T* saved, T* gx, long long n) { \
        activation_backward<OP<T>, T>(gy, saved, gx, n);                                               \
    }

#define DEFINE_ACTIVATIONS(T, SUFFIX)                                                                  \
    DEFINE_ACTIVATION(relu, Relu, T, SUFFIX)                                                           \
    DEFINE_ACTIVATION(relu6, Relu6, T, SUFFIX)                                                         \
    DEFINE_ACTIVATION(sigmoid, Sigmoid, T, SUFFIX)                                                     \
    DEFINE_ACTIVATION(tanh, Tanh, T, SUFFIX)                                                           \
    DEFINE_ACTIVATION(hardsigmoid, Hardsigmoid, T, SUFFIX)                                             \
    DEFINE_ACTIVATION(hardswish, Hardswish, T, SUFFIX)                                                 \
    extern "C" __global__ void leaky_relu_forward_##SUFFIX(const T* x, T* y, long long n, T negative_slope) { \
        leaky_relu_forward<T>(x, y, n, negative_slope);                                                \
    }                                                                                                  \
    extern "C" __global__ void leaky_relu_backward_##SUFFIX(const T* gy, const T* x, T* gx, long long n,   \
                                                            T negative_slope) {                        \
        leaky_relu_backward<T>(gy, x, gx, n, negative_slope);                                          \
    }

DEFINE_ACTIVATIONS(float, f32)
DEFINE_ACTIVATIONS(double, f64)
