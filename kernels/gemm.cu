// A shared-memory tiled matrix product: the teaching kernel next to cuBLAS.
//
//   C[b] = A[b] · B[b]      A (M, K), B (K, N), C (M, N), row-major, contiguous;
//                           b = blockIdx.z runs over a batch of independent products
//                           (grouped convolution multiplies one slab per group).
//
// The GPU backend multiplies with cuBLAS (cupy.matmul) by default; this kernel is
// selected by a switch, and is tested against numpy.matmul (CPU emulation) and
// cuBLAS (on a GPU).  It mirrors no NumPy kernel: the NumPy backend's GEMM is
// numpy.matmul.
//
// Why tiles: the naive kernel (one thread per C entry, reading a row of A and a
// column of B from global memory) reads every input element M or N times from
// slow DRAM.  Here a 16×16 block of threads computes a 16×16 tile of C.  It walks
// along K one 16-wide step at a time: the block's threads first copy a 16×16 tile
// of A and one of B into shared memory (each thread one element of each), wait
// (__syncthreads), then each thread takes its 16 multiply-adds from the fast
// shared copies, and waits again before the tiles are overwritten.  Every global
// element is now read M/16 or N/16 times instead of M or N.  Positions past the
// edge of A or B load zeros, so M, N, K need not be multiples of 16.
//
// kernel       one thread per     launch (minicnn/backend/cuda/launch.py, LAUNCH["gemm"])
// gemm         C entry (m, n)     block = (16, 16), grid = (ceil(N/16), ceil(M/16), batch),
//                                 static shared memory 2·16·16 values (2 KiB float, 4 KiB double)
//
// The caller refuses what the grid cannot hold: ceil(M/16) and batch ≤ 65535.
// Sizes and flat indices are 64-bit.  Arguments: A, B, C, then M, N, K (long long).

#define GEMM_TILE 16  // must equal LAUNCH["gemm"]["block"] in launch.py

template <typename T>
__device__ void gemm_tiled(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C, long long M,
                           long long N, long long K) {
    __shared__ T tile_a[GEMM_TILE][GEMM_TILE];  // A[row, k0 + tx]
    __shared__ T tile_b[GEMM_TILE][GEMM_TILE];  // B[k0 + ty, col]
    const long long batch = blockIdx.z;
    A += batch * M * K;
    B += batch * K * N;
    C += batch * M * N;
    const int tx = threadIdx.x, ty = threadIdx.y;
    const long long row = (long long)blockIdx.y * GEMM_TILE + ty;
    const long long col = (long long)blockIdx.x * GEMM_TILE + tx;
    T sum = T(0);
    for (long long k0 = 0; k0 < K; k0 += GEMM_TILE) {
        // Every thread loads (zero past the edges), even those whose C entry is
        // outside C: they still feed the tile the other threads read.
        tile_a[ty][tx] = (row < M && k0 + tx < K) ? A[row * K + k0 + tx] : T(0);
        tile_b[ty][tx] = (k0 + ty < K && col < N) ? B[(k0 + ty) * N + col] : T(0);
        __syncthreads();
        for (int k = 0; k < GEMM_TILE; ++k) sum += tile_a[ty][k] * tile_b[k][tx];
        __syncthreads();  // nobody overwrites a tile another thread still reads
    }
    if (row < M && col < N) C[row * N + col] = sum;
}

// --- extern "C" entry points: gemm_f32 (the classic SGEMM) and gemm_f64 ---------
extern "C" __global__ void __launch_bounds__(GEMM_TILE * GEMM_TILE)
    gemm_f32(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C, long long M,
             long long N, long long K) {
    gemm_tiled<float>(A, B, C, M, N, K);
}

extern "C" __global__ void __launch_bounds__(GEMM_TILE * GEMM_TILE)
    gemm_f64(const double* __restrict__ A, const double* __restrict__ B, double* __restrict__ C, long long M,
             long long N, long long K) {
    gemm_tiled<double>(A, B, C, M, N, K);
}
