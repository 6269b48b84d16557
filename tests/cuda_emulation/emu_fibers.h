// emu_fibers.h: the fiber scheduler of cuda_emu.h (compiled with -DEMU_FIBERS).
//
// Every CUDA thread of a block is a fiber (ucontext, its own stack) on the OS thread
// that called launch(). A scheduler resumes them in thread order, each running until
// its next barrier or its end, round after round; a round in which no fiber arrives
// at a barrier or exits is a deadlock, and launch() returns 4 instead of hanging.
// Provides what cuda_emu.h needs: emu::state, t_warp/t_lane, launch(),
// block_barrier(), warp_barrier(), dynamic_shared().
#pragma once

namespace emu {

// A barrier between fibers: arrive_and_wait parks the caller until `expected`
// fibers have arrived; a fiber that finishes the kernel drops out (lowers `expected`).
struct FiberBarrier {
    unsigned int expected = 0, arrived = 0;
    unsigned long long generation = 0;
    void reset(unsigned int count) { expected = count, arrived = 0, ++generation; }
    void release_if_complete() {
        if (expected > 0 && arrived == expected) arrived = 0, ++generation;
    }
    void arrive_and_wait();
    void arrive_and_drop();
};
struct Fiber {
    ucontext_t context;
    bool done = false;
};

constexpr size_t FIBER_STACK_BYTES = 128 * 1024;

// The stacks of up to 1024 fibers, reserved once per process (pages are only
// touched as deep as a kernel's frames go).
inline char* fiber_stacks() {
    static const std::unique_ptr<char[]> stacks(new char[1024 * FIBER_STACK_BYTES]);
    return stacks.get();
}

struct LaunchState {
    unsigned int nthreads = 0;
    size_t shared_bytes = 0;
    unsigned char* dynamic_shared = nullptr;
    FiberBarrier sync;                       // __syncthreads
    std::vector<FiberBarrier> warp_sync;     // shuffles, __syncwarp
    std::vector<unsigned long long> warp_slots;  // 32 slots per warp
    std::vector<Fiber> fibers;
    ucontext_t scheduler;
    unsigned int current = 0;                // the fiber running now
    unsigned long long progress = 0;         // arrivals and exits: a round without any is a deadlock
    const std::function<void()>* kernel = nullptr;

    unsigned int lanes_in_warp(unsigned int warp) const {
        return std::min<unsigned int>(32u, nthreads - 32u * warp);
    }
    void reset_block_barriers() {
        sync.reset(nthreads);
        const unsigned int nwarps = (nthreads + 31) / 32;
        warp_sync.assign(nwarps, FiberBarrier{});
        for (unsigned int w = 0; w < nwarps; ++w) warp_sync[w].reset(lanes_in_warp(w));
        if (dynamic_shared) std::memset(dynamic_shared, 0xFF, shared_bytes);
    }
};

inline LaunchState* state = nullptr;
inline std::mutex launch_mutex;  // one launch at a time per compiled file
inline unsigned int t_linear = 0, t_warp = 0, t_lane = 0;

// Park the running fiber until its barrier's generation moves on (the scheduler resumes it to look).
inline void FiberBarrier::arrive_and_wait() {
    const unsigned long long waiting_for = generation;
    ++state->progress;
    ++arrived;
    release_if_complete();
    Fiber& self = state->fibers[state->current];
    while (generation == waiting_for) swapcontext(&self.context, &state->scheduler);
}

inline void FiberBarrier::arrive_and_drop() {
    ++state->progress;
    --expected;
    release_if_complete();
}

inline unsigned char* dynamic_shared() { return state->dynamic_shared; }

inline void fiber_main() {
    (*state->kernel)();
    state->sync.arrive_and_drop();  // an exited thread no longer holds back the block's barriers
    state->warp_sync[t_warp].arrive_and_drop();
    state->fibers[state->current].done = true;
}  // returns to the scheduler through uc_link

// Run one block: every CUDA thread is a fiber on its own stack; the scheduler resumes
// them in order, round after round, until all have finished. Returns false on a deadlock
// (every live thread waits at a barrier that can no longer complete).
inline bool run_block(LaunchState& launch_state, const dim3& block) {
    launch_state.reset_block_barriers();
    for (unsigned int tid = 0; tid < launch_state.nthreads; ++tid) {
        Fiber& fiber = launch_state.fibers[tid];
        fiber.done = false;
        getcontext(&fiber.context);
        fiber.context.uc_stack.ss_sp = fiber_stacks() + tid * FIBER_STACK_BYTES;
        fiber.context.uc_stack.ss_size = FIBER_STACK_BYTES;
        fiber.context.uc_link = &launch_state.scheduler;
        makecontext(&fiber.context, fiber_main, 0);
    }
    for (unsigned int live = launch_state.nthreads; live > 0;) {
        live = 0;
        const unsigned long long progress_before = launch_state.progress;
        for (unsigned int tid = 0; tid < launch_state.nthreads; ++tid) {
            Fiber& fiber = launch_state.fibers[tid];
            if (fiber.done) continue;
            launch_state.current = tid;
            threadIdx = {tid % block.x, (tid / block.x) % block.y, tid / (block.x * block.y)};
            t_linear = tid, t_warp = tid / 32, t_lane = tid % 32;
            swapcontext(&launch_state.scheduler, &fiber.context);  // runs it to its next barrier, or to its end
            if (!fiber.done) ++live;
        }
        if (live > 0 && launch_state.progress == progress_before) return false;
    }
    return true;
}

inline int launch(const unsigned int* dims, unsigned long long shared_bytes, const std::function<void()>& kernel) {
    LaunchShape shape;
    if (const int refused = check_launch(dims, shared_bytes, shape)) return refused;
    const dim3 grid = shape.grid, block = shape.block;
    const unsigned long long nthreads = shape.nthreads;
    const long long nblocks = shape.nblocks;

    std::lock_guard<std::mutex> guard(launch_mutex);
    LaunchState launch_state;
    launch_state.nthreads = static_cast<unsigned int>(nthreads);
    launch_state.shared_bytes = shared_bytes;
    std::vector<unsigned long long> shared_storage((shared_bytes + 7) / 8 + 32);
    launch_state.dynamic_shared = shared_bytes ? reinterpret_cast<unsigned char*>(shared_storage.data()) : nullptr;
    launch_state.warp_slots.assign(((nthreads + 31) / 32) * 32, 0);
    launch_state.fibers.resize(nthreads);
    launch_state.kernel = &kernel;
    state = &launch_state;
    blockDim = block;
    gridDim = grid;
    int status = 0;
    for (long long b = 0; b < nblocks && status == 0; ++b) {
        blockIdx = {static_cast<unsigned int>(b % grid.x), static_cast<unsigned int>((b / grid.x) % grid.y),
                    static_cast<unsigned int>(b / (1ll * grid.x * grid.y))};
        if (!run_block(launch_state, block)) status = 4;
    }
    state = nullptr;
    return status;
}

inline void block_barrier() { state->sync.arrive_and_wait(); }
inline void warp_barrier() { state->warp_sync[t_warp].arrive_and_wait(); }

}  // namespace emu
