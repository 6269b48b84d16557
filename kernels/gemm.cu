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
// Why registers next (gemm_blocked, the kernel `use_teaching_gemm` runs): in the
// tiled kernel every multiply-add needs two reads of shared memory, and shared
// memory delivers one value per lane per cycle, so the FMA units wait on it (the
// first GPU run: 8 TFLOP/s against cuBLAS's 51 on an H200).  gemm_blocked gives each
// thread an 8×8 patch of C held in 64 registers: per step along k it reads 8
// values of A's column and 8 of B's row from shared memory and does 8·8 = 64
// multiply-adds with them, 4 per read instead of 1/2.  A block of 256 threads
// computes a 128×128 tile of C and stages 8-deep slices of A and B in shared memory.
//
// kernel        one thread per          launch (minicnn/backend/cuda/launch.py, LAUNCH[...])
// gemm          C entry (m, n)          block = (16, 16), grid = (ceil(N/16), ceil(M/16), batch),
//                                       static shared memory 2·16·16 values (2 KiB float, 4 KiB double)
// gemm_blocked  8×8 patch of C          block = 256, grid = (ceil(N/128), ceil(M/128), batch),
//                                       static shared memory 8·(132 + 128) values (8.1 KiB float)
//
// The caller refuses what the grid cannot hold: ceil(M/16) and batch ≤ 65535.
// Sizes and flat indices are 64-bit.  Arguments: A, B, C, then M, N, K (long long).

// --- 1. shared-memory tiles -----------------------------------------------------
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

// --- 2. register blocking ------------------------------------------------------
#define BLOCKED_TILE_M 128   // must agree with LAUNCH["gemm_blocked"] in launch.py
#define BLOCKED_TILE_N 128
#define BLOCKED_TILE_K 8
#define BLOCKED_THREADS 256  // (128 / 8 rows) × (128 / 8 columns) threads, one 8×8 patch each
#define PATCH 8              // a thread's patch of C: PATCH rows × PATCH columns
#define A_ROW_PAD 4          // see the loads of A below

// Thread t owns rows first_row .. first_row + 7 (contiguous) and columns
// first_col + 16·j (16 apart) of the block's tile.  Spreading the columns puts 16
// neighbouring threads on 16 neighbouring addresses, both when they read B's row
// from shared memory (no bank conflicts) and when they write C (coalesced); the 8
// rows a warp's threads read from A's slice are the same for 16 threads at a time,
// which shared memory serves as a broadcast.
template <typename T>
__device__ void gemm_register_blocked(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C,
                                      long long M, long long N, long long K) {
    // A's slice is stored transposed, slice_a[k][m] = A[m0 + m, k0 + k], so a
    // thread's 8 rows at one k sit side by side.  Its rows are padded by 4: the
    // loads below write slice_a[t % 8][t / 8], and a row length of 132 words puts
    // those 32 writes of a warp in 32 different banks (128 would put them in 4).
    __shared__ __align__(16) T slice_a[BLOCKED_TILE_K][BLOCKED_TILE_M + A_ROW_PAD];
    __shared__ __align__(16) T slice_b[BLOCKED_TILE_K][BLOCKED_TILE_N];  // B[k0 + k, n0 + n]
    const long long batch = blockIdx.z;
    A += batch * M * K;
    B += batch * K * N;
    C += batch * M * N;
    const long long m0 = (long long)blockIdx.y * BLOCKED_TILE_M;
    const long long n0 = (long long)blockIdx.x * BLOCKED_TILE_N;
    const int t = threadIdx.x;
    const int first_row = (t / (BLOCKED_TILE_N / PATCH)) * PATCH;
    const int first_col = t % (BLOCKED_TILE_N / PATCH);
    T sum[PATCH][PATCH];
    for (int i = 0; i < PATCH; ++i)
        for (int j = 0; j < PATCH; ++j) sum[i][j] = T(0);
    T a_column[PATCH], b_row[PATCH];
    for (long long k0 = 0; k0 < K; k0 += BLOCKED_TILE_K) {
        // 128·8 values of each slice, 4 per thread; zeros past the edges of A and B.
        for (int load = t; load < BLOCKED_TILE_M * BLOCKED_TILE_K; load += BLOCKED_THREADS) {
            const int m = load / BLOCKED_TILE_K, k = load % BLOCKED_TILE_K;
            slice_a[k][m] = (m0 + m < M && k0 + k < K) ? A[(m0 + m) * K + k0 + k] : T(0);
        }
        for (int load = t; load < BLOCKED_TILE_K * BLOCKED_TILE_N; load += BLOCKED_THREADS) {
            const int k = load / BLOCKED_TILE_N, n = load % BLOCKED_TILE_N;
            slice_b[k][n] = (k0 + k < K && n0 + n < N) ? B[(k0 + k) * N + n0 + n] : T(0);
        }
        __syncthreads();
        for (int k = 0; k < BLOCKED_TILE_K; ++k) {
            for (int i = 0; i < PATCH; ++i) a_column[i] = slice_a[k][first_row + i];
            for (int j = 0; j < PATCH; ++j) b_row[j] = slice_b[k][first_col + j * (BLOCKED_TILE_N / PATCH)];
            // The outer product of a column of A and a row of B: 64 multiply-adds, 16 reads.
            for (int i = 0; i < PATCH; ++i)
                for (int j = 0; j < PATCH; ++j) sum[i][j] += a_column[i] * b_row[j];
        }
        __syncthreads();  // nobody overwrites a slice another thread still reads
    }
    for (int i = 0; i < PATCH; ++i) {
        const long long row = m0 + first_row + i;
        for (int j = 0; j < PATCH; ++j) {
            const long long col = n0 + first_col + j * (BLOCKED_TILE_N / PATCH);
            if (row < M && col < N) C[row * N + col] = sum[i][j];
        }
    }
}

// --- extern "C" entry points: gemm_f32 / gemm_blocked_f32 (SGEMM) and the f64 ones
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

extern "C" __global__ void __launch_bounds__(BLOCKED_THREADS)
    gemm_blocked_f32(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C, long long M,
                     long long N, long long K) {
    gemm_register_blocked<float>(A, B, C, M, N, K);
}

extern "C" __global__ void __launch_bounds__(BLOCKED_THREADS)
    gemm_blocked_f64(const double* __restrict__ A, const double* __restrict__ B, double* __restrict__ C,
                     long long M, long long N, long long K) {
    gemm_register_blocked<double>(A, B, C, M, N, K);
}
