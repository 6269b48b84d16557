// Direct depthwise convolution: the GPU twins of minicnn/backend/cpu/depthwise.py.
//
// Each channel c is convolved with its own KH×KW filter weight[c, 0] (weight has
// shape (C, 1, KH, KW)).  im2col would copy every input KH·KW times to feed a
// matmul whose inner dimension is only KH·KW, so MobileNet's workhorse gets a
// direct kernel instead:
//
//   y[n, c, oh, ow] = Σ_ij weight[c, 0, i, j] · x[n, c, oh*SH - PH + i*DH, ow*SW - PW + j*DW]
//                     (terms outside x are zero padding)
//
// kernel                             one thread (block) per     mirrors (depthwise.py)
// depthwise_conv2d_forward           output (n,c,oh,ow)         depthwise_conv2d_forward
// depthwise_conv2d_backward_input    input  (n,c,h,w)           depthwise_conv2d_backward → grad_x
// depthwise_conv2d_backward_weight   BLOCK per (c,i,j)          depthwise_conv2d_backward → grad_weight
//
// backward_input is a GATHER, as col2im is: every input pixel finds the output
// pixels whose windows covered it and sums gy·weight itself, in the NumPy
// kernel's order (i, then j).  No atomics, the same result on every run.
// backward_weight: one block per weight entry (c, i, j); its threads stride over
// the N·OH·OW products gy·x, then a tree reduction in shared memory adds the
// per-thread partial sums.  Also deterministic: no atomics.
//
// Launch (minicnn/backend/cuda/launch.py):
//   forward, backward_input: 1-D, block = 256, grid = min(ceil(total / 256), 65535*4)
//     (total = N*C*OH*OW resp. N*C*H*W), no dynamic shared memory, grid-stride loop.
//   backward_weight: block = 256 threads (any power of two up to 256 works),
//     grid = C*KH*KW blocks, static shared memory 256 values (1 KiB / 2 KiB).
// Shapes and flat indices are 64-bit.
//
// Arguments: pointers, then N, C, H, W, OH, OW, then KH, KW, SH, SW, PH, PW, DH, DW
// (all long long).

#define DEPTHWISE_SHAPE long long N, long long C, long long H, long long W, long long OH, long long OW
#define DEPTHWISE_WINDOW \
    long long KH, long long KW, long long SH, long long SW, long long PH, long long PW, long long DH, long long DW
#define DEPTHWISE_WEIGHT_THREADS 256  // the most threads backward_weight's shared reduction holds

template <typename T>
__device__ void depthwise_forward(const T* __restrict__ x, const T* __restrict__ weight, T* __restrict__ y,
                                  DEPTHWISE_SHAPE, DEPTHWISE_WINDOW) {
    const long long total = N * C * OH * OW;
    for (long long index = blockIdx.x * (long long)blockDim.x + threadIdx.x; index < total;
         index += (long long)blockDim.x * gridDim.x) {
        long long rest = index;  // unravel (n, c, oh, ow)
        const long long ow = rest % OW;
        rest /= OW;
        const long long oh = rest % OH;
        rest /= OH;
        const long long c = rest % C;
        const long long n = rest / C;
        const T* x_plane = x + (n * C + c) * H * W;
        const T* filter = weight + c * KH * KW;
        T sum = T(0);
        for (long long i = 0; i < KH; ++i) {
            const long long h = oh * SH - PH + i * DH;
            if (h < 0 || h >= H) continue;
            for (long long j = 0; j < KW; ++j) {
                const long long w = ow * SW - PW + j * DW;
                if (w < 0 || w >= W) continue;
                sum += x_plane[h * W + w] * filter[i * KW + j];
            }
        }
        y[index] = sum;
    }
}

template <typename T>
__device__ void depthwise_backward_input(const T* __restrict__ gy, const T* __restrict__ weight, T* __restrict__ gx,
                                         DEPTHWISE_SHAPE, DEPTHWISE_WINDOW) {
    const long long total = N * C * H * W;
    for (long long index = blockIdx.x * (long long)blockDim.x + threadIdx.x; index < total;
         index += (long long)blockDim.x * gridDim.x) {
        long long rest = index;  // unravel (n, c, h, w)
        const long long w = rest % W;
        rest /= W;
        const long long h = rest % H;
        rest /= H;
        const long long c = rest % C;
        const long long n = rest / C;
        const T* gy_plane = gy + (n * C + c) * OH * OW;
        const T* filter = weight + c * KH * KW;
        T sum = T(0);
        for (long long i = 0; i < KH; ++i) {
            // Output row oh reads padded row oh*SH + i*DH; this pixel is padded row h + PH.
            const long long row = h + PH - i * DH;
            if (row < 0 || row % SH != 0 || row / SH >= OH) continue;
            const long long oh = row / SH;
            for (long long j = 0; j < KW; ++j) {
                const long long col = w + PW - j * DW;
                if (col < 0 || col % SW != 0 || col / SW >= OW) continue;
                sum += gy_plane[oh * OW + col / SW] * filter[i * KW + j];
            }
        }
        gx[index] = sum;
    }
}

template <typename T>
__device__ void depthwise_backward_weight(const T* __restrict__ gy, const T* __restrict__ x, T* __restrict__ gw,
                                          DEPTHWISE_SHAPE, DEPTHWISE_WINDOW) {
    __shared__ T partial[DEPTHWISE_WEIGHT_THREADS];
    const long long per_channel = N * OH * OW;
    for (long long entry = blockIdx.x; entry < C * KH * KW; entry += gridDim.x) {
        const long long j = entry % KW;
        const long long i = (entry / KW) % KH;
        const long long c = entry / (KH * KW);
        // 1. each thread sums a strided share of gy[n, c, oh, ow] * x[n, c, h, w]
        T sum = T(0);
        for (long long k = threadIdx.x; k < per_channel; k += blockDim.x) {
            const long long ow = k % OW;
            const long long oh = (k / OW) % OH;
            const long long n = k / (OW * OH);
            const long long h = oh * SH - PH + i * DH;
            const long long w = ow * SW - PW + j * DW;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            sum += gy[((n * C + c) * OH + oh) * OW + ow] * x[((n * C + c) * H + h) * W + w];
        }
        // 2. tree reduction of the block's partial sums in shared memory
        partial[threadIdx.x] = sum;
        __syncthreads();
        for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
            if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0) gw[entry] = partial[0];
        __syncthreads();  // partial[0] is read before the next entry overwrites it
    }
}

// --- extern "C" entry points: <kernel>_f32 and <kernel>_f64 --------------------
#define MINICNN_DEPTHWISE_KERNELS(T, SUFFIX)                                                                     \
    extern "C" __global__ void depthwise_conv2d_forward_##SUFFIX(const T* __restrict__ x,                       \
                                                                 const T* __restrict__ weight, T* __restrict__ y, \
                                                                 DEPTHWISE_SHAPE, DEPTHWISE_WINDOW) {             \
        depthwise_forward<T>(x, weight, y, N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW);                  \
    }                                                                                                            \
    extern "C" __global__ void depthwise_conv2d_backward_input_##SUFFIX(                                         \
        const T* __restrict__ gy, const T* __restrict__ weight, T* __restrict__ gx, DEPTHWISE_SHAPE,             \
        DEPTHWISE_WINDOW) {                                                                                      \
        depthwise_backward_input<T>(gy, weight, gx, N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW);         \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(DEPTHWISE_WEIGHT_THREADS)                                       \
        depthwise_conv2d_backward_weight_##SUFFIX(const T* __restrict__ gy, const T* __restrict__ x,             \
                                                  T* __restrict__ gw, DEPTHWISE_SHAPE, DEPTHWISE_WINDOW) {       \
        depthwise_backward_weight<T>(gy, x, gw, N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW);             \
    }

MINICNN_DEPTHWISE_KERNELS(float, f32)
MINICNN_DEPTHWISE_KERNELS(double, f64)
