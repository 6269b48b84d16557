// Pooling kernels over (N, C, H, W) arrays, C-contiguous; the GPU twins of
// minicnn/backend/cpu/pooling.py.
//
// Every kernel is one thread per element it WRITES, in a grid-stride loop, so a
// backward pass is a gather: each input pixel walks the few windows that cover
// it and sums their shares itself.  No two threads write the same address: no
// atomics, and the result is the same on every run.  The kernel offsets are
// walked in the order col2im adds them (row i, then column j), so the sums are
// the NumPy backend's, bit for bit.
//
// kernel                      one thread per   mirrors (pooling.py)
// max_pool2d_forward          output (n,c,oh,ow)  max_pool2d_forward: y and window_argmax
// max_pool2d_backward         input  (n,c,h,w)    max_pool2d_backward
// avg_pool2d_forward          output              avg_pool2d_forward
// avg_pool2d_backward         input               avg_pool2d_backward
// adaptive_avg_pool2d_forward output              adaptive_avg_pool2d_forward
// adaptive_avg_pool2d_backward input              adaptive_avg_pool2d_backward
//
// Launch (minicnn/backend/cuda/launch.py, LAUNCH["<kernel>"]): 1-D, block = 256
// threads, grid = min(ceil(total / 256), 65535 * 4) blocks, no shared memory;
// the grid-stride loop covers whatever the grid does not.
//
// Conventions the NumPy kernels pin down:
// * window_argmax is the offset i*KW + j of the maximum inside its window (int32);
//   on ties the FIRST in row-major order wins (strict >), as in PyTorch.
// * Max-pool padding is -inf, never 0: a padded position never beats a real
//   value.  A window wholly in the padding gives -inf and argmax 0, and passes
//   no gradient (offset 0 is then a padded position, which no input claims).
// * ceil_mode: the caller computes OH/OW (conv_output_size); windows may then
//   overhang the bottom/right padding, and the bounds checks below treat the
//   overhang like padding.
// * Average-pool divisor (PyTorch's rule): the window clipped to the padded
//   input [-p, size + p); with count_include_pad the padding counts, otherwise
//   only the real input [0, size) does; a non-zero divisor_override replaces
//   both (0 means no override: PyTorch refuses 0 anyway).
// * Adaptive bins: output row i averages input rows floor(i*H/OH) ...
//   ceil((i+1)*H/OH) - 1 (bins may overlap when OH does not divide H).
// * A window holding a NaN gives NaN with argmax 0, as the NumPy kernel does
//   (max propagates NaN, and no offset compares equal to it).

#define GRID_STRIDE_LOOP(i, total)                                                  \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total); \
         i += (long long)blockDim.x * gridDim.x)

// -inf from its bit pattern: no header, no intrinsic, no division by zero.
template <typename T> __device__ __forceinline__ T negative_infinity();
template <> __device__ __forceinline__ float negative_infinity<float>() {
    union { unsigned int bits; float value; } pun = {0xff800000u};
    return pun.value;
}
template <> __device__ __forceinline__ double negative_infinity<double>() {
    union { unsigned long long bits; double value; } pun = {0xfff0000000000000ull};
    return pun.value;
}

// --- max pooling -------------------------------------------------------------
// y[n,c,oh,ow] = max over i<KH, j<KW of x[n,c, oh*SH - PH + i*DH, ow*SW - PW + j*DW]
template <typename T>
__device__ void max_pool2d_forward(const T* __restrict__ x, T* __restrict__ y, int* __restrict__ window_argmax,
                                   long long N, long long C, long long H, long long W, long long OH, long long OW,
                                   long long KH, long long KW, long long SH, long long SW, long long PH,
                                   long long PW, long long DH, long long DW) {
    const long long total = N * C * OH * OW;
    GRID_STRIDE_LOOP(index, total) {
        const long long ow = index % OW;
        const long long oh = (index / OW) % OH;
        const long long plane = index / (OW * OH);  // n*C + c
        const T* x_plane = x + plane * H * W;
        const long long top = oh * SH - PH, left = ow * SW - PW;
        T best = negative_infinity<T>();
        int best_offset = 0;
        for (long long i = 0; i < KH; ++i) {
            const long long h = top + i * DH;
            if (h < 0 || h >= H) continue;  // padding (and ceil_mode overhang): -inf, never wins
            for (long long j = 0; j < KW; ++j) {
                const long long w = left + j * DW;
                if (w < 0 || w >= W) continue;
                const T value = x_plane[h * W + w];
                if (value > best) {  // strict >: the first maximum keeps its place
                    best = value;
                    best_offset = (int)(i * KW + j);
                } else if (value != value && best == best) {  // NaN: as NumPy, y = NaN, argmax 0
                    best = value;
                    best_offset = 0;
                }
            }
        }
        y[index] = best;
        window_argmax[index] = best_offset;
    }
}

// gx[n,c,h,w] = sum of gy[n,c,oh,ow] over the windows whose argmax is (h, w)
template <typename T>
__device__ void max_pool2d_backward(const T* __restrict__ gy, const int* __restrict__ window_argmax,
                                    T* __restrict__ gx, long long N, long long C, long long H, long long W,
                                    long long OH, long long OW, long long KH, long long KW, long long SH,
                                    long long SW, long long PH, long long PW, long long DH, long long DW) {
    const long long total = N * C * H * W;
    GRID_STRIDE_LOOP(index, total) {
        const long long w = index % W;
        const long long h = (index / W) % H;
        const long long plane = index / (W * H);
        const T* gy_plane = gy + plane * OH * OW;
        const int* argmax_plane = window_argmax + plane * OH * OW;
        T sum = T(0);
        // Offset (i, j) of window (oh, ow) is input (h, w) iff h = oh*SH - PH + i*DH (same for w).
        for (long long i = 0; i < KH; ++i) {
            const long long row_origin = h + PH - i * DH;  // oh * SH
            if (row_origin < 0) break;  // decreases with i
            if (row_origin % SH != 0) continue;
            const long long oh = row_origin / SH;
            if (oh >= OH) continue;
            for (long long j = 0; j < KW; ++j) {
                const long long col_origin = w + PW - j * DW;
                if (col_origin < 0) break;
                if (col_origin % SW != 0) continue;
                const long long ow = col_origin / SW;
                if (ow >= OW) continue;
                if (argmax_plane[oh * OW + ow] == (int)(i * KW + j)) sum += gy_plane[oh * OW + ow];
            }
        }
        gx[index] = sum;
    }
}

// --- average pooling ---------------------------------------------------------
// How many positions window `o` averages over along one axis (PyTorch's rule).
__device__ __forceinline__ long long window_count(long long o, long long size, long long kernel, long long stride,
                                                  long long padding, bool count_include_pad) {
    long long start = o * stride - padding;
    long long end = start + kernel < size + padding ? start + kernel : size + padding;
    if (!count_include_pad) {
        start = start > 0 ? start : 0;
        end = end < size ? end : size;
    }
    return end - start;
}

template <typename T>
__device__ __forceinline__ T avg_pool_divisor(long long oh, long long ow, long long H, long long W, long long KH,
                                              long long KW, long long SH, long long SW, long long PH, long long PW,
                                              long long count_include_pad, T divisor_override) {
    if (divisor_override != T(0)) return divisor_override;  // 0: none (PyTorch refuses a zero override)
    const bool include = count_include_pad != 0;
    return T(window_count(oh, H, KH, SH, PH, include) * window_count(ow, W, KW, SW, PW, include));
}

// y[n,c,oh,ow] = (sum of the real inputs in the window; padding adds 0) / divisor
template <typename T>
__device__ void avg_pool2d_forward(const T* __restrict__ x, T* __restrict__ y, long long N, long long C, long long H,
                                   long long W, long long OH, long long OW, long long KH, long long KW, long long SH,
                                   long long SW, long long PH, long long PW, long long count_include_pad,
                                   T divisor_override) {
    const long long total = N * C * OH * OW;
    GRID_STRIDE_LOOP(index, total) {
        const long long ow = index % OW;
        const long long oh = (index / OW) % OH;
        const long long plane = index / (OW * OH);
        const T* x_plane = x + plane * H * W;
        const long long top = oh * SH - PH, left = ow * SW - PW;
        T sum = T(0);
        for (long long i = 0; i < KH; ++i) {
            const long long h = top + i;
            if (h < 0 || h >= H) continue;
            for (long long j = 0; j < KW; ++j) {
                const long long w = left + j;
                if (w < 0 || w >= W) continue;
                sum += x_plane[h * W + w];
            }
        }
        y[index] = sum / avg_pool_divisor<T>(oh, ow, H, W, KH, KW, SH, SW, PH, PW, count_include_pad,
                                             divisor_override);
    }
}

// gx[n,c,h,w] = sum over the windows covering (h, w) of gy[n,c,oh,ow] / divisor(oh, ow)
template <typename T>
__device__ void avg_pool2d_backward(const T* __restrict__ gy, T* __restrict__ gx, long long N, long long C,
                                    long long H, long long W, long long OH, long long OW, long long KH, long long KW,
                                    long long SH, long long SW, long long PH, long long PW,
                                    long long count_include_pad, T divisor_override) {
    const long long total = N * C * H * W;
    GRID_STRIDE_LOOP(index, total) {
        const long long w = index % W;
        const long long h = (index / W) % H;
        const long long plane = index / (W * H);
        const T* gy_plane = gy + plane * OH * OW;
        T sum = T(0);
        for (long long i = 0; i < KH; ++i) {
            const long long row_origin = h + PH - i;
            if (row_origin < 0) break;
            if (row_origin % SH != 0) continue;
            const long long oh = row_origin / SH;
            if (oh >= OH) continue;
            for (long long j = 0; j < KW; ++j) {
                const long long col_origin = w + PW - j;
                if (col_origin < 0) break;
                if (col_origin % SW != 0) continue;
                const long long ow = col_origin / SW;
                if (ow >= OW) continue;
                sum += gy_plane[oh * OW + ow] / avg_pool_divisor<T>(oh, ow, H, W, KH, KW, SH, SW, PH, PW,
                                                                     count_include_pad, divisor_override);
            }
        }
        gx[index] = sum;
    }
}

// --- adaptive average pooling ------------------------------------------------
__device__ __forceinline__ long long bin_start(long long o, long long in_size, long long out_size) {
    return (o * in_size) / out_size;
}
__device__ __forceinline__ long long bin_end(long long o, long long in_size, long long out_size) {
    return ((o + 1) * in_size + out_size - 1) / out_size;  // ceil division
}

// y[n,c,oh,ow] = mean of x over rows bin(oh) and columns bin(ow)
template <typename T>
__device__ void adaptive_avg_pool2d_forward(const T* __restrict__ x, T* __restrict__ y, long long N, long long C,
                                            long long H, long long W, long long OH, long long OW) {
    const long long total = N * C * OH * OW;
    GRID_STRIDE_LOOP(index, total) {
        const long long ow = index % OW;
        const long long oh = (index / OW) % OH;
        const long long plane = index / (OW * OH);
        const T* x_plane = x + plane * H * W;
        const long long h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
        const long long w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
        T sum = T(0);
        for (long long h = h0; h < h1; ++h)
            for (long long w = w0; w < w1; ++w) sum += x_plane[h * W + w];
        y[index] = sum / T((h1 - h0) * (w1 - w0));
    }
}

// gx[n,c,h,w] = sum over the bins holding (h, w) of gy[n,c,oh,ow] / bin size
template <typename T>
__device__ void adaptive_avg_pool2d_backward(const T* __restrict__ gy, T* __restrict__ gx, long long N, long long C,
                                             long long H, long long W, long long OH, long long OW) {
    const long long total = N * C * H * W;
    GRID_STRIDE_LOOP(index, total) {
        const long long w = index % W;
        const long long h = (index / W) % H;
        const long long plane = index / (W * H);
        const T* gy_plane = gy + plane * OH * OW;
        // The bins holding row h start at floor(h*OH/H); one row more on each side
        // is checked explicitly rather than trusted to the inverse formula.
        long long oh_first = (h * OH) / H - 1, oh_last = ((h + 1) * OH + H - 1) / H;
        long long ow_first = (w * OW) / W - 1, ow_last = ((w + 1) * OW + W - 1) / W;
        oh_first = oh_first > 0 ? oh_first : 0;
        ow_first = ow_first > 0 ? ow_first : 0;
        oh_last = oh_last < OH ? oh_last : OH;
        ow_last = ow_last < OW ? ow_last : OW;
        T sum = T(0);
        for (long long oh = oh_first; oh < oh_last; ++oh) {
            const long long h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH);
            if (h < h0 || h >= h1) continue;
            for (long long ow = ow_first; ow < ow_last; ++ow) {
                const long long w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
                if (w < w0 || w >= w1) continue;
                sum += gy_plane[oh * OW + ow] / T((h1 - h0) * (w1 - w0));
            }
        }
        gx[index] = sum;
    }
}

// --- extern "C" entry points: <kernel>_f32 and <kernel>_f64 --------------------
#define POOL_SHAPE long long N, long long C, long long H, long long W, long long OH, long long OW
#define POOL_WINDOW long long KH, long long KW, long long SH, long long SW, long long PH, long long PW

#define DEFINE_POOLING_KERNELS(T, SUFFIX)                                                                      \
    extern "C" __global__ void max_pool2d_forward_##SUFFIX(const T* x, T* y, int* window_argmax, POOL_SHAPE,   \
                                                           POOL_WINDOW, long long DH, long long DW) {          \
        max_pool2d_forward<T>(x, y, window_argmax, N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW);       \
    }                                                                                                          \
    extern "C" __global__ void max_pool2d_backward_##SUFFIX(const T* gy, const int* window_argmax, T* gx,      \
                                                            POOL_SHAPE, POOL_WINDOW, long long DH,             \
                                                            long long DW) {                                    \
        max_pool2d_backward<T>(gy, window_argmax, gx, N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW);    \
    }                                                                                                          \
    extern "C" __global__ void avg_pool2d_forward_##SUFFIX(const T* x, T* y, POOL_SHAPE, POOL_WINDOW,          \
                                                           long long count_include_pad, T divisor_override) {  \
        avg_pool2d_forward<T>(x, y, N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, count_include_pad,            \
                              divisor_override);                                                               \
    }                                                                                                          \
    extern "C" __global__ void avg_pool2d_backward_##SUFFIX(const T* gy, T* gx, POOL_SHAPE, POOL_WINDOW,       \
                                                            long long count_include_pad, T divisor_override) { \
        avg_pool2d_backward<T>(gy, gx, N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, count_include_pad,         \
                               divisor_override);                                                              \
    }                                                                                                          \
    extern "C" __global__ void adaptive_avg_pool2d_forward_##SUFFIX(const T* x, T* y, POOL_SHAPE) {            \
        adaptive_avg_pool2d_forward<T>(x, y, N, C, H, W, OH, OW);                                              \
    }                                                                                                          \
    extern "C" __global__ void adaptive_avg_pool2d_backward_##SUFFIX(const T* gy, T* gx, POOL_SHAPE) {         \
        adaptive_avg_pool2d_backward<T>(gy, gx, N, C, H, W, OH, OW);                                           \
    }

DEFINE_POOLING_KERNELS(float, f32)
DEFINE_POOLING_KERNELS(double, f64)
