// cuda_emu.h: run unmodified CUDA C kernels on the CPU (test code only).
//
// emulator.py compiles a kernels/*.cu file with
//     g++ -O1 -std=c++20 -pthread -shared -fPIC -fno-gnu-unique [-DEMU_FIBERS] -include cuda_emu.h
// after one textual rewrite (`extern __shared__ T name[];` becomes a pointer to
// the launch's dynamic shared-memory buffer).  This header maps the CUDA
// language onto C++20:
//
//   * every CUDA thread of a block is a std::thread (the default), or, compiled
//     with -DEMU_FIBERS, a fiber (ucontext) on the calling OS thread that a
//     scheduler resumes in thread order, each running to its next barrier or
//     its end: the same kernels, a fixed schedule, far fewer wake-ups;
//   * `threadIdx` and `blockIdx` are thread_local (globals the scheduler sets,
//     with fibers); `blockDim` and `gridDim` are globals fixed per launch;
//   * blocks run strictly one after another (the block's threads are reused for
//     the next block), so `#define __shared__ static` gives every block its own
//     shared arrays: only one block is alive at a time;
//   * `__syncthreads()` is a barrier across the block's threads (std::barrier, or
//     the fibers' own); a thread that returns from the kernel drops out of it (as
//     an exited GPU thread does); with fibers, a round in which no thread reaches
//     a barrier or exits is a deadlock, and the launch reports it;
//   * warp shuffles/votes go through a per-warp exchange buffer and a per-warp
//     barrier (all live lanes of the warp must take part, as with a full mask);
//   * atomics are std::atomic_ref operations.
//
// What it cannot catch is listed in README.md next to this file.
#pragma once

#include <math.h>
#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// ---------------------------------------------------------------- keywords
#define __global__
#define __device__
#define __host__
#define __constant__
#define __shared__ static
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))  // as CUDA defines it: allowed anywhere among the decl-specifiers
// __restrict__ is understood by g++ as it is.

// ---------------------------------------------------------------- built-in variables
struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

// With OS threads each CUDA thread has its own copy (thread_local); with fibers all
// run on one OS thread and the scheduler sets these before each switch.
#if defined(EMU_FIBERS)
#define EMU_PER_THREAD
#else
#define EMU_PER_THREAD thread_local
#endif
inline EMU_PER_THREAD uint3 threadIdx{0, 0, 0};
inline EMU_PER_THREAD uint3 blockIdx{0, 0, 0};
inline dim3 blockDim;
inline dim3 gridDim;
constexpr int warpSize = 32;

namespace emu {

// A launch's geometry, refused (nonzero code) where a GPU would refuse it:
// 1 to 1024 threads a block, a non-empty grid, at most 227 KiB of shared memory.
struct LaunchShape {
    dim3 grid, block;
    unsigned long long nthreads = 0;
    long long nblocks = 0;
};

inline int check_launch(const unsigned int* dims, unsigned long long shared_bytes, LaunchShape& shape) {
    shape.grid = dim3(dims[0], dims[1], dims[2]);
    shape.block = dim3(dims[3], dims[4], dims[5]);
    shape.nthreads = 1ull * shape.block.x * shape.block.y * shape.block.z;
    shape.nblocks = 1ll * shape.grid.x * shape.grid.y * shape.grid.z;
    if (shape.nthreads == 0 || shape.nthreads > 1024) return 1;
    if (shape.nblocks <= 0) return 2;
    if (shared_bytes > 227ull * 1024) return 3;
    return 0;
}

}  // namespace emu

// The scheduler: how CUDA threads become CPU threads of execution.
#if defined(EMU_FIBERS)
#include "emu_fibers.h"
#else
#include "emu_threads.h"
#endif

namespace emu {

template <class T>
std::string type_code() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_pointer_v<U>) {
        using P = std::remove_pointer_t<U>;
        return std::string("*") + (std::is_const_v<P> ? "c" : "") + type_code<std::remove_cv_t<P>>();
    } else if constexpr (std::is_same_v<U, void>) return "v";
    else if constexpr (std::is_same_v<U, float>) return "f";
    else if constexpr (std::is_same_v<U, double>) return "d";
    else if constexpr (std::is_same_v<U, bool>) return "?";
    else if constexpr (std::is_same_v<U, char>) return "c";
    else if constexpr (std::is_same_v<U, signed char>) return "b";
    else if constexpr (std::is_same_v<U, unsigned char>) return "B";
    else if constexpr (std::is_same_v<U, short>) return "h";
    else if constexpr (std::is_same_v<U, unsigned short>) return "H";
    else if constexpr (std::is_same_v<U, int>) return "i";
    else if constexpr (std::is_same_v<U, unsigned int>) return "I";
    else if constexpr (std::is_same_v<U, long>) return "l";
    else if constexpr (std::is_same_v<U, unsigned long>) return "L";
    else if constexpr (std::is_same_v<U, long long>) return "q";
    else if constexpr (std::is_same_v<U, unsigned long long>) return "Q";
    else return "x";  // unsupported (struct by value...): Python refuses to call it
}

template <class... A>
const char* signature(void (*)(A...)) {
    static const std::string text = [] {
        std::string s;
        ((s += type_code<A>() + ","), ...);
        if (!s.empty()) s.pop_back();
        return s;
    }();
    return text.c_str();
}

template <class... A, size_t... I>
void call_impl(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}

template <class... A>
void call(void (*kernel)(A...), void** args) {
    call_impl(kernel, args, std::index_sequence_for<A...>{});
}

// Warp exchange: every live lane publishes `value`, then reads lane `src` (or keeps its own).
template <class T>
T warp_exchange(T value, int src, bool valid) {
    static_assert(sizeof(T) <= sizeof(unsigned long long), "warp shuffle of a type wider than 8 bytes");
    unsigned long long* slots = &state->warp_slots[t_warp * 32];
    std::memcpy(&slots[t_lane], &value, sizeof(T));
    warp_barrier();
    T result = value;
    if (valid && src >= 0 && static_cast<unsigned int>(src) < state->lanes_in_warp(t_warp))
        std::memcpy(&result, &slots[src], sizeof(T));
    warp_barrier();  // nobody overwrites a slot before all have read
    return result;
}

}  // namespace emu

// ---------------------------------------------------------------- synchronisation
inline void __syncthreads() { emu::block_barrier(); }
inline void __syncwarp(unsigned int = 0xffffffffu) { emu::warp_barrier(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline unsigned int __activemask() { return 0xffffffffu; }

template <class T>
T __shfl_sync(unsigned int, T value, int src_lane, int width = warpSize) {
    const int lane = static_cast<int>(emu::t_lane);
    return emu::warp_exchange(value, (lane / width) * width + ((src_lane % width + width) % width), true);
}
template <class T>
T __shfl_down_sync(unsigned int, T value, unsigned int delta, int width = warpSize) {
    const int lane = static_cast<int>(emu::t_lane);
    return emu::warp_exchange(value, lane + static_cast<int>(delta), lane % width + static_cast<int>(delta) < width);
}
template <class T>
T __shfl_up_sync(unsigned int, T value, unsigned int delta, int width = warpSize) {
    const int lane = static_cast<int>(emu::t_lane);
    return emu::warp_exchange(value, lane - static_cast<int>(delta), lane % width >= static_cast<int>(delta));
}
template <class T>
T __shfl_xor_sync(unsigned int, T value, int lane_mask, int width = warpSize) {
    const int lane = static_cast<int>(emu::t_lane);
    const int src = lane ^ lane_mask;
    return emu::warp_exchange(value, src, src / width == lane / width);
}
inline unsigned int __ballot_sync(unsigned int, int predicate) {
    unsigned int ballot = 0;
    for (int l = 0; l < 32; ++l) {
        const int bit = emu::warp_exchange(predicate ? 1 : 0, l, true);
        if (bit && static_cast<unsigned int>(l) < emu::state->lanes_in_warp(emu::t_warp)) ballot |= 1u << l;
    }
    return ballot;
}
inline int __any_sync(unsigned int mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned int mask, int predicate) {
    const unsigned int lanes = emu::state->lanes_in_warp(emu::t_warp);
    const unsigned int full = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
    return __ballot_sync(mask, predicate) == full;
}

// ---------------------------------------------------------------- atomics
template <class T>
T atomicAdd(T* address, std::type_identity_t<T> value) {
    std::atomic_ref<T> ref(*address);
    T old = ref.load();
    while (!ref.compare_exchange_weak(old, static_cast<T>(old + value))) {
    }
    return old;
}
template <class T>
T atomicSub(T* address, std::type_identity_t<T> value) { return atomicAdd(address, static_cast<T>(-value)); }
template <class T>
T atomicMax(T* address, std::type_identity_t<T> value) {
    std::atomic_ref<T> ref(*address);
    T old = ref.load();
    while (old < value && !ref.compare_exchange_weak(old, value)) {
    }
    return old;
}
template <class T>
T atomicMin(T* address, std::type_identity_t<T> value) {
    std::atomic_ref<T> ref(*address);
    T old = ref.load();
    while (value < old && !ref.compare_exchange_weak(old, value)) {
    }
    return old;
}
template <class T>
T atomicExch(T* address, std::type_identity_t<T> value) { return std::atomic_ref<T>(*address).exchange(value); }
template <class T>
T atomicCAS(T* address, std::type_identity_t<T> compare, std::type_identity_t<T> value) {
    std::atomic_ref<T>(*address).compare_exchange_strong(compare, value);
    return compare;  // the old value, whether or not the swap happened
}

// ---------------------------------------------------------------- math and intrinsics
// expf, logf, fmaxf, tanhf, sqrtf, exp, log, fmax, fabs, ... come from <math.h>.
// The CPU does not fuse a*b+c into an FMA here (plain x86-64 code), nvcc does by default.
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) {
    using T = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<T>) return std::fmin(T(a), T(b));
    else return T(b) < T(a) ? T(b) : T(a);
}
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) {
    using T = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<T>) return std::fmax(T(a), T(b));
    else return T(a) < T(b) ? T(b) : T(a);
}
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __int_as_float(int v) { return std::bit_cast<float>(v); }
inline int __float_as_int(float v) { return std::bit_cast<int>(v); }
inline float __uint_as_float(unsigned int v) { return std::bit_cast<float>(v); }
inline unsigned int __float_as_uint(float v) { return std::bit_cast<unsigned int>(v); }
inline double __longlong_as_double(long long v) { return std::bit_cast<double>(v); }
inline long long __double_as_longlong(double v) { return std::bit_cast<long long>(v); }
inline float __uint2float_rn(unsigned int v) { return static_cast<float>(v); }
inline float __int2float_rn(int v) { return static_cast<float>(v); }
inline double __uint2double_rn(unsigned int v) { return static_cast<double>(v); }
inline int __float2int_rn(float v) { return static_cast<int>(nearbyintf(v)); }
inline int __float2int_rz(float v) { return static_cast<int>(v); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return static_cast<unsigned int>((1ull * a * b) >> 32);
}
inline int __mulhi(int a, int b) { return static_cast<int>((1ll * a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline long long __mul64hi(long long a, long long b) {
    return static_cast<long long>((static_cast<__int128>(a) * b) >> 64);
}
inline int __popc(unsigned int v) { return std::popcount(v); }
inline int __popcll(unsigned long long v) { return std::popcount(v); }
inline int __clz(int v) { return std::countl_zero(static_cast<unsigned int>(v)); }
inline int __clzll(long long v) { return std::countl_zero(static_cast<unsigned long long>(v)); }
inline int __ffs(int v) { return v ? std::countr_zero(static_cast<unsigned int>(v)) + 1 : 0; }
inline unsigned int __brev(unsigned int v) {
    unsigned int r = 0;
    for (int i = 0; i < 32; ++i) r |= ((v >> i) & 1u) << (31 - i);
    return r;
}
template <class T>
T __ldg(const T* p) { return *p; }
