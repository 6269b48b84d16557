// Dropout masks from a counter-based generator (Philox4x32-10); the GPU twin of
// minicnn/backend/cpu/random.py, and bit-identical to it.
//
// Philox (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011)
// turns a 128-bit counter and a 64-bit key into 128 random bits with ten rounds
// of 32x32 -> 64-bit multiplies and xors.  It has no state: element i of a mask
// uses counter = offset + i, so every thread computes its own element, in any
// order, on any device, and gets the bits the CPU gets.
//
// kernel               one thread per   computes
// dropout_mask_f32/f64 mask element     counter = (low, high 32 bits of offset + i, 0, 0), key = (low, high 32
//                                       bits of seed); bits = first output word; u = (bits >> 8) * 2^-24;
//                                       mask[i] = u >= p ? scale : 0, scale = 1 / (1 - p) rounded to T
//                                       (random.py's dropout_mask / uniform_from_counter)
// philox4x32_u32       counter          the raw generator on caller-given counters and keys: the four output
//                                       words, for the Random123 known-answer tests (random.py's philox4x32)
//
// The keep test is done in integers: with k = bits >> 8, u = k * 2^-24 >= p holds exactly when
// k >= keep_threshold = ceil(p * 2^24), which the host computes once (p * 2^24 is exact in double).
// No float rounding can make the GPU's mask differ from the CPU's.
//
// dropout_mask_<T>(T* mask, long long n, unsigned long long seed, unsigned long long offset,
//                  unsigned int keep_threshold, T scale)
// philox4x32_u32(const unsigned int* counters /* (n, 4) */, const unsigned int* keys /* (n, 2) */,
//                unsigned int* out /* (n, 4) */, long long n)
//
// Launch (minicnn/backend/cuda/launch.py, LAUNCH["<kernel>"]): 1-D, block = 256,
// grid = min(ceil(n / 256), 65535 * 4), no shared memory; grid-stride loop.

#define GRID_STRIDE_LOOP(i, total)                                                  \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total); \
         i += (long long)blockDim.x * gridDim.x)

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u  // key schedule: golden ratio
#define PHILOX_W1 0xBB67AE85u  // key schedule: sqrt(3) - 1

struct Philox4x32 {
    unsigned int word[4];
};

// Ten rounds; the key is bumped between rounds (Random123's philox4x32_10).
__device__ __forceinline__ Philox4x32 philox4x32_10(Philox4x32 counter, unsigned int key0, unsigned int key1) {
    for (int round = 0; round < 10; ++round) {
        // 32 x 32 -> 64-bit products, split into high and low words (what __umulhi gives).
        const unsigned long long product0 = (unsigned long long)PHILOX_M0 * counter.word[0];
        const unsigned long long product1 = (unsigned long long)PHILOX_M1 * counter.word[2];
        Philox4x32 next;
        next.word[0] = (unsigned int)(product1 >> 32) ^ counter.word[1] ^ key0;
        next.word[1] = (unsigned int)product1;
        next.word[2] = (unsigned int)(product0 >> 32) ^ counter.word[3] ^ key1;
        next.word[3] = (unsigned int)product0;
        counter = next;
        key0 += PHILOX_W0;  // unsigned: wraps mod 2^32
        key1 += PHILOX_W1;
    }
    return counter;
}

template <typename T>
__device__ void dropout_mask(T* mask, long long n, unsigned long long seed, unsigned long long offset,
                             unsigned int keep_threshold, T scale) {
    const unsigned int key0 = (unsigned int)seed, key1 = (unsigned int)(seed >> 32);
    GRID_STRIDE_LOOP(i, n) {
        const unsigned long long count = offset + (unsigned long long)i;  // wraps mod 2^64, as in NumPy uint64
        Philox4x32 counter;
        counter.word[0] = (unsigned int)count;
        counter.word[1] = (unsigned int)(count >> 32);
        counter.word[2] = 0u;
        counter.word[3] = 0u;
        const unsigned int bits = philox4x32_10(counter, key0, key1).word[0];
        mask[i] = (bits >> 8) >= keep_threshold ? scale : T(0);
    }
}

extern "C" __global__ void dropout_mask_f32(float* mask, long long n, unsigned long long seed,
                                            unsigned long long offset, unsigned int keep_threshold, float scale) {
    dropout_mask<float>(mask, n, seed, offset, keep_threshold, scale);
}

extern "C" __global__ void dropout_mask_f64(double* mask, long long n, unsigned long long seed,
                                            unsigned long long offset, unsigned int keep_threshold, double scale) {
    dropout_mask<double>(mask, n, seed, offset, keep_threshold, scale);
}

extern "C" __global__ void philox4x32_u32(const unsigned int* counters, const unsigned int* keys, unsigned int* out,
                                          long long n) {
    GRID_STRIDE_LOOP(i, n) {
        Philox4x32 counter;
        for (int w = 0; w < 4; ++w) counter.word[w] = counters[4 * i + w];
        const Philox4x32 result = philox4x32_10(counter, keys[2 * i], keys[2 * i + 1]);
        for (int w = 0; w < 4; ++w) out[4 * i + w] = result.word[w];
    }
}
