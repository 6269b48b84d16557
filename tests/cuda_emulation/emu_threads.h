// emu_threads.h: the OS-thread scheduler of cuda_emu.h (the default).
//
// Every CUDA thread of a block is a std::thread; __syncthreads is a std::barrier
// across the block, and the threads move on to the next block together after an
// end-of-block barrier. Provides what cuda_emu.h needs: emu::state, t_warp/t_lane,
// launch(), block_barrier(), warp_barrier(), dynamic_shared().
#pragma once

namespace emu {

struct BlockDone {
    void operator()() noexcept;
};

struct LaunchState {
    unsigned int nthreads = 0;
    long long nblocks = 0;
    long long current_block = 0;
    size_t shared_bytes = 0;
    unsigned char* dynamic_shared = nullptr;
    std::unique_ptr<std::barrier<>> sync;                      // __syncthreads
    std::vector<std::unique_ptr<std::barrier<>>> warp_sync;    // shuffles, __syncwarp
    std::vector<unsigned long long> warp_slots;                // 32 slots per warp
    std::unique_ptr<std::barrier<BlockDone>> block_done;       // between blocks

    unsigned int lanes_in_warp(unsigned int warp) const {
        return std::min<unsigned int>(32u, nthreads - 32u * warp);
    }
    void reset_block_barriers() {
        sync = std::make_unique<std::barrier<>>(nthreads);
        const unsigned int nwarps = (nthreads + 31) / 32;
        warp_sync.clear();
        for (unsigned int w = 0; w < nwarps; ++w)
            warp_sync.push_back(std::make_unique<std::barrier<>>(lanes_in_warp(w)));
        // A block must not see what the previous block left in dynamic shared
        // memory: fill it with 0xFF bytes (NaN as float/double, -1 as int).
        if (dynamic_shared) std::memset(dynamic_shared, 0xFF, shared_bytes);
    }
};

inline LaunchState* state = nullptr;
inline std::mutex launch_mutex;  // one launch at a time per compiled file
inline thread_local unsigned int t_linear = 0, t_warp = 0, t_lane = 0;

inline void BlockDone::operator()() noexcept {
    ++state->current_block;
    state->reset_block_barriers();
}

inline unsigned char* dynamic_shared() { return state->dynamic_shared; }

// Run `kernel` on a grid×block launch. Returns 0, or a nonzero code for a bad configuration.
inline int launch(const unsigned int* dims, unsigned long long shared_bytes, const std::function<void()>& kernel) {
    LaunchShape shape;
    if (const int refused = check_launch(dims, shared_bytes, shape)) return refused;
    const dim3 grid = shape.grid, block = shape.block;
    const unsigned long long nthreads = shape.nthreads;
    const long long nblocks = shape.nblocks;

    std::lock_guard<std::mutex> guard(launch_mutex);
    LaunchState launch_state;
    launch_state.nthreads = static_cast<unsigned int>(nthreads);
    launch_state.nblocks = nblocks;
    launch_state.shared_bytes = shared_bytes;
    std::vector<unsigned long long> shared_storage((shared_bytes + 7) / 8 + 32);
    launch_state.dynamic_shared = shared_bytes ? reinterpret_cast<unsigned char*>(shared_storage.data()) : nullptr;
    launch_state.warp_slots.assign(((nthreads + 31) / 32) * 32, 0);
    launch_state.block_done = std::make_unique<std::barrier<BlockDone>>(nthreads);
    state = &launch_state;
    blockDim = block;
    gridDim = grid;
    launch_state.reset_block_barriers();

    std::vector<std::thread> threads;
    threads.reserve(nthreads);
    for (unsigned int tid = 0; tid < nthreads; ++tid) {
        threads.emplace_back([tid, block, grid, &kernel]() {
            threadIdx = {tid % block.x, (tid / block.x) % block.y, tid / (block.x * block.y)};
            t_linear = tid;
            t_warp = tid / 32;
            t_lane = tid % 32;
            for (;;) {
                const long long b = state->current_block;  // published by the end-of-block barrier
                if (b >= state->nblocks) break;
                blockIdx = {static_cast<unsigned int>(b % grid.x), static_cast<unsigned int>((b / grid.x) % grid.y),
                            static_cast<unsigned int>(b / (1ll * grid.x * grid.y))};
                kernel();
                state->sync->arrive_and_drop();
                state->warp_sync[t_warp]->arrive_and_drop();
                state->block_done->arrive_and_wait();
            }
        });
    }
    for (auto& t : threads) t.join();
    state = nullptr;
    return 0;
}

// Kernel signature as a string Python can check arguments against:
// comma-separated codes, "*" for a pointer, "c" for a const pointee.
inline void block_barrier() { state->sync->arrive_and_wait(); }
inline void warp_barrier() { state->warp_sync[t_warp]->arrive_and_wait(); }

}  // namespace emu
