// im2col and col2im: the GPU twins of minicnn/backend/cpu/im2col.py.
//
// A convolution is a matrix product once every receptive field is a column.
// The column buffer has the NumPy kernel's layout (C, KH, KW, N, OH, OW):
//
//   cols[c, i, j, n, oh, ow] = x[n, c, oh*SH - PH + i*DH, ow*SW - PW + j*DW]
//                              or pad_value where that position is outside x
//
// (pad_value is 0 for convolution, -inf for max-pool; with ceil_mode the last
// windows may overhang the bottom/right padding, and the overhang reads
// pad_value too.)  The caller computes OH, OW with conv_output_size.
//
// kernel        one thread per                 mirrors (im2col.py)
// im2col        column entry (c,i,j,n,oh,ow)   im2col(x, ..., pad_value)
// col2im        input pixel (n,c,h,w)          col2im(cols, x_shape, ...)
//
// col2im is a GATHER: every input pixel finds the few (i, j, oh, ow) whose window
// position lands on it and sums those column entries itself.  No two threads
// write one address, so there are no atomics and the result is the same on every
// run; the entries are added in the NumPy kernel's order (i, then j), so in
// float64 the sums agree with NumPy's bit for bit.
//
// Launch (minicnn/backend/cuda/launch.py, LAUNCH["im2col"], LAUNCH["col2im"]):
// 1-D, block = 256 threads, grid = min(ceil(total / 256), 65535*4) blocks where
// total = C*KH*KW*N*OH*OW (im2col) or N*C*H*W (col2im); no shared memory.  The
// grid-stride loop covers what the grid does not.  Sizes and flat indices are
// 64-bit: the column buffer passes 2^31 entries long before GPU memory runs out.
//
// Arguments: pointers, then the shapes N, C, H, W, OH, OW, then the kernel
// geometry KH, KW, SH, SW, PH, PW, DH, DW (all long long, like pooling.cu), then
// pad_value (im2col only).

#define IM2COL_SHAPE long long N, long long C, long long H, long long W, long long OH, long long OW
#define IM2COL_WINDOW \
    long long KH, long long KW, long long SH, long long SW, long long PH, long long PW, long long DH, long long DW

template <typename T>
__device__ void im2col_body(const T* __restrict__ x, T* __restrict__ cols, IM2COL_SHAPE, IM2COL_WINDOW,
                            T pad_value) {
    const long long total = C * KH * KW * N * OH * OW;
    for (long long index = blockIdx.x * (long long)blockDim.x + threadIdx.x; index < total;
         index += (long long)blockDim.x * gridDim.x) {
        long long rest = index;  // unravel (c, i, j, n, oh, ow), last axis fastest
        const long long ow = rest % OW;
        rest /= OW;
        const long long oh = rest % OH;
        rest /= OH;
        const long long n = rest % N;
        rest /= N;
        const long long j = rest % KW;
        rest /= KW;
        const long long i = rest % KH;
        const long long c = rest / KH;
        const long long h = oh * SH - PH + i * DH;
        const long long w = ow * SW - PW + j * DW;
        const bool inside = h >= 0 && h < H && w >= 0 && w < W;
        cols[index] = inside ? x[((n * C + c) * H + h) * W + w] : pad_value;
    }
}

template <typename T>
__device__ void col2im_body(const T* __restrict__ cols, T* __restrict__ x, IM2COL_SHAPE,
                            IM2COL_WINDOW) {
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
        T sum = T(0);
        for (long long i = 0; i < KH; ++i) {
            // Window row oh reads padded row oh*SH + i*DH: this pixel is padded row h + PH.
            const long long row = h + PH - i * DH;
            if (row < 0 || row % SH != 0) continue;
            const long long oh = row / SH;
            if (oh >= OH) continue;
            for (long long j = 0; j < KW; ++j) {
                const long long col = w + PW - j * DW;
                if (col < 0 || col % SW != 0) continue;
                const long long ow = col / SW;
                if (ow >= OW) continue;
                sum += cols[((((c * KH + i) * KW + j) * N + n) * OH + oh) * OW + ow];
            }
        }
        x[index] = sum;
    }
}

// --- extern "C" entry points: <kernel>_f32 and <kernel>_f64 --------------------

#define MINICNN_IM2COL_KERNELS(T, SUFFIX)                                                                      \
    extern "C" __global__ void im2col_##SUFFIX(const T* __restrict__ x, T* __restrict__ cols, IM2COL_SHAPE,     \
                                               IM2COL_WINDOW, T pad_value) {                                    \
        im2col_body<T>(x, cols, N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, pad_value);                 \
    }                                                                                                           \
    extern "C" __global__ void col2im_##SUFFIX(const T* __restrict__ cols, T* __restrict__ x, IM2COL_SHAPE,     \
                                               IM2COL_WINDOW) {                                                 \
        col2im_body<T>(cols, x, N, C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW);                            \
    }

MINICNN_IM2COL_KERNELS(float, f32)
MINICNN_IM2COL_KERNELS(double, f64)
