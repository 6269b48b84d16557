// Softmax, log-softmax and fused softmax-cross-entropy: the CUDA twins of
// minicnn/backend/cpu/loss.py.
//
// Every kernel sees its input as (outer, C, inner), contiguous, and works along
// the middle (class) axis: a "row" is the C values x[(o*C + c)*inner + j] for one
// (o, j), and there are rows = outer*inner of them. softmax along axis a of any
// array is outer = prod(shape[:a]), C = shape[a], inner = prod(shape[a+1:]);
// cross-entropy's logits (N, C, *rest) are outer = N, inner = prod(rest), and its
// per-element arrays (target, losses, ...) are (N, *rest) = rows values in row order.
//
// Launch (all kernels): one warp per row, several rows per block. block = a
// multiple of 32 threads (launch.py uses 128 = 4 rows), grid = ceil(rows / warps
// per block) (a grid-stride loop covers any rows beyond), no shared memory: the
// row's max and sums are combined across the warp's lanes with a butterfly of
// __shfl_xor_sync, after which every lane holds the result. Every warp of a block
// runs the same number of iterations (a warp past the last row idles through them
// with no values) so every lane takes part in every shuffle.
//
// Every kernel subtracts the row maximum before exponentiating, so logits of any
// magnitude (1e4 included) stay finite: softmax(x) = softmax(x - max x).
//
// Kernels (each as <name>_f32 and <name>_f64, one template for both):
//   softmax_forward(x, y, outer, C, inner)           y = exp(x - max) / sum exp(x - max)
//   softmax_backward(gy, y, gx, outer, C, inner)     gx = y * (gy - sum gy*y)
//   log_softmax_forward(x, y, outer, C, inner)       y = (x - max) - log sum exp(x - max)
//   log_softmax_backward(gy, y, gx, outer, C, inner) gx = gy - exp(y) * sum gy
//   cross_entropy_forward(logits, target, weight, log_probs, losses, target_weights,
//                         N, C, inner, ignore_index, label_smoothing)
//       mirrors cross_entropy_forward; with lp = log_softmax(logits), eps = label_smoothing,
//       class weights w (all 1 when weight is null):
//       loss = (1 - eps)*(-w[t]*lp[t]) + eps/C*(-sum_c w_c*lp_c), target_weights = w[t];
//       both 0 where t == ignore_index. A target outside 0..C-1 (the Python layer
//       refuses those first) gets a NaN loss rather than a read out of bounds.
//   cross_entropy_backward(grad_losses, log_probs, target, weight, grad_logits,
//                          N, C, inner, ignore_index, label_smoothing)
//       mirrors cross_entropy_backward, p = exp(lp), g = grad_losses (0 where ignored):
//       d/d logits_c = (1 - eps)*w[t]*g*(p_c - [c = t]) + eps/C*g*(p_c*sum w - w_c).
// C >= 1 (every row reads its class 0; the Python layer refuses an empty class axis).
// target is int64 (long long); weight, when not null, is (C,) in T; label_smoothing
// arrives as double and is rounded to T as the NumPy kernel rounds its Python floats.

#define FULL_WARP_MASK 0xffffffffu

__device__ inline float softmax_exp(float value) { return expf(value); }
__device__ inline double softmax_exp(double value) { return exp(value); }
__device__ inline float softmax_log(float value) { return logf(value); }
__device__ inline double softmax_log(double value) { return log(value); }

// Butterfly reductions: after log2(32) = 5 exchanges every lane holds the result.
template <typename T>
__device__ T warp_sum(T value) {
    for (int offset = warpSize / 2; offset > 0; offset /= 2)
        value += __shfl_xor_sync(FULL_WARP_MASK, value, offset);
    return value;
}

// A NaN in a row needs no special care here: it makes the row's sum of exponentials
// NaN, so the whole row comes out NaN, as in NumPy.
template <typename T>
__device__ T warp_max(T value) {
    for (int offset = warpSize / 2; offset > 0; offset /= 2) {
        const T other = __shfl_xor_sync(FULL_WARP_MASK, value, offset);
        value = other > value ? other : value;
    }
    return value;
}

// NaN as a value of T, for results that have no meaning (a target out of range).
template <typename T>
__device__ T not_a_number() {
    return T(0) / T(0);
}

// The row a warp works on and where its values are; `active` is false for a warp
// past the last row, which loops over no classes but still joins the shuffles.
struct SoftmaxRow {
    long long row;     // row number, the index into per-row arrays such as target
    long long base;    // index of class 0 of the row
    long long stride;  // distance between consecutive classes (= inner)
    bool active;
};

// Warp w of the block takes row first + w; `first` is the block's position in the
// grid-stride loop over rows (the same for all its threads).
__device__ inline SoftmaxRow warp_row(long long first, long long rows, long long classes, long long inner) {
    SoftmaxRow r;
    r.row = first + threadIdx.x / warpSize;
    r.active = r.row < rows;
    const long long o = r.row / inner;
    r.base = o * classes * inner + (r.row - o * inner);
    r.stride = inner;
    return r;
}

// Max of the row, in every lane. Each lane starts from class 0, so lanes that own no
// class (C < 32) cannot change the result. A row of no classes (softmax over an axis of
// length 0) has no class 0 to read: its array may be empty, a null pointer on the GPU.
template <typename T>
__device__ T row_max(const T* x, const SoftmaxRow& r, long long classes, int lane) {
    T value = r.active && classes > 0 ? x[r.base] : T(0);
    for (long long c = lane; r.active && c < classes; c += warpSize) {
        const T v = x[r.base + c * r.stride];
        value = v > value ? v : value;
    }
    return warp_max(value);
}

// sum exp(x - max) over the row, in every lane.
template <typename T>
__device__ T row_sum_exp(const T* x, T max, const SoftmaxRow& r, long long classes, int lane) {
    T sum = T(0);
    for (long long c = lane; r.active && c < classes; c += warpSize)
        sum += softmax_exp(x[r.base + c * r.stride] - max);
    return warp_sum(sum);
}

template <typename T>
__device__ void softmax_forward_impl(const T* x, T* y, long long outer, long long classes, long long inner) {
    const long long rows = outer * inner;
    const int lane = threadIdx.x % warpSize;
    const long long warps_per_block = blockDim.x / warpSize;
    for (long long first = blockIdx.x * warps_per_block; first < rows;
         first += (long long)gridDim.x * warps_per_block) {
        const SoftmaxRow r = warp_row(first, rows, classes, inner);
        const T max = row_max(x, r, classes, lane);
        const T sum = row_sum_exp(x, max, r, classes, lane);
        for (long long c = lane; r.active && c < classes; c += warpSize) {
            const long long index = r.base + c * r.stride;
            y[index] = softmax_exp(x[index] - max) / sum;
        }
    }
}

template <typename T>
__device__ void log_softmax_forward_impl(const T* x, T* y, long long outer, long long classes,
                                         long long inner) {
    const long long rows = outer * inner;
    const int lane = threadIdx.x % warpSize;
    const long long warps_per_block = blockDim.x / warpSize;
    for (long long first = blockIdx.x * warps_per_block; first < rows;
         first += (long long)gridDim.x * warps_per_block) {
        const SoftmaxRow r = warp_row(first, rows, classes, inner);
        const T max = row_max(x, r, classes, lane);
        const T log_sum = softmax_log(row_sum_exp(x, max, r, classes, lane));
        for (long long c = lane; r.active && c < classes; c += warpSize) {
            const long long index = r.base + c * r.stride;
            y[index] = (x[index] - max) - log_sum;
        }
    }
}

template <typename T>
__device__ void softmax_backward_impl(const T* gy, const T* y, T* gx, long long outer, long long classes,
                                      long long inner) {
    const long long rows = outer * inner;
    const int lane = threadIdx.x % warpSize;
    const long long warps_per_block = blockDim.x / warpSize;
    for (long long first = blockIdx.x * warps_per_block; first < rows;
         first += (long long)gridDim.x * warps_per_block) {
        const SoftmaxRow r = warp_row(first, rows, classes, inner);
        T dot = T(0);
        for (long long c = lane; r.active && c < classes; c += warpSize) {
            const long long index = r.base + c * r.stride;
            dot += gy[index] * y[index];
        }
        dot = warp_sum(dot);
        for (long long c = lane; r.active && c < classes; c += warpSize) {
            const long long index = r.base + c * r.stride;
            gx[index] = y[index] * (gy[index] - dot);
        }
    }
}

template <typename T>
__device__ void log_softmax_backward_impl(const T* gy, const T* y, T* gx, long long outer,
                                          long long classes, long long inner) {
    const long long rows = outer * inner;
    const int lane = threadIdx.x % warpSize;
    const long long warps_per_block = blockDim.x / warpSize;
    for (long long first = blockIdx.x * warps_per_block; first < rows;
         first += (long long)gridDim.x * warps_per_block) {
        const SoftmaxRow r = warp_row(first, rows, classes, inner);
        T sum = T(0);
        for (long long c = lane; r.active && c < classes; c += warpSize) sum += gy[r.base + c * r.stride];
        sum = warp_sum(sum);
        for (long long c = lane; r.active && c < classes; c += warpSize) {
            const long long index = r.base + c * r.stride;
            gx[index] = gy[index] - softmax_exp(y[index]) * sum;
        }
    }
}

template <typename T>
__device__ void cross_entropy_forward_impl(const T* logits, const long long* target, const T* weight,
                                           T* log_probs, T* losses, T* target_weights, long long batch,
                                           long long classes, long long inner, long long ignore_index,
                                           double label_smoothing) {
    const long long rows = batch * inner;
    const int lane = threadIdx.x % warpSize;
    const long long warps_per_block = blockDim.x / warpSize;
    for (long long first = blockIdx.x * warps_per_block; first < rows;
         first += (long long)gridDim.x * warps_per_block) {
        const SoftmaxRow r = warp_row(first, rows, classes, inner);
        const T max = row_max(logits, r, classes, lane);
        const T log_sum = softmax_log(row_sum_exp(logits, max, r, classes, lane));
        // Write the log-probabilities, summing w_c*lp_c for the smoothing term on the way.
        T weighted_sum = T(0);
        for (long long c = lane; r.active && c < classes; c += warpSize) {
            const long long index = r.base + c * r.stride;
            const T lp = (logits[index] - max) - log_sum;
            log_probs[index] = lp;
            weighted_sum += weight == nullptr ? lp : lp * weight[c];
        }
        weighted_sum = warp_sum(weighted_sum);
        if (r.active && lane == 0) {
            const long long label = target[r.row];
            const bool ignored = label == ignore_index;
            const long long safe_label = ignored ? 0 : label;
            if (safe_label < 0 || safe_label >= classes) {  // never read out of bounds
                losses[r.row] = not_a_number<T>();
                target_weights[r.row] = not_a_number<T>();
            } else {
                const T kept = ignored ? T(0) : T(1);
                const T picked = (logits[r.base + safe_label * r.stride] - max) - log_sum;
                const T label_weight = weight == nullptr ? kept : weight[safe_label] * kept;
                T loss = picked * label_weight;
                loss *= T(label_smoothing - 1.0);  // -(1 - eps)
                if (label_smoothing > 0.0) loss -= T(label_smoothing / classes) * (weighted_sum * kept);
                losses[r.row] = loss;
                target_weights[r.row] = label_weight;
            }
        }
    }
}

template <typename T>
__device__ void cross_entropy_backward_impl(const T* grad_losses, const T* log_probs, const long long* target,
                                            const T* weight, T* grad_logits, long long batch,
                                            long long classes, long long inner, long long ignore_index,
                                            double label_smoothing) {
    const long long rows = batch * inner;
    const int lane = threadIdx.x % warpSize;
    const long long warps_per_block = blockDim.x / warpSize;
    for (long long first = blockIdx.x * warps_per_block; first < rows;
         first += (long long)gridDim.x * warps_per_block) {
        const SoftmaxRow r = warp_row(first, rows, classes, inner);
        // sum of the class weights (C without weights), for the p_c*sum w term of the smoothing.
        T weight_total = T(classes);
        if (weight != nullptr) {
            T partial = T(0);
            for (long long c = lane; c < classes; c += warpSize) partial += weight[c];
            weight_total = warp_sum(partial);
        }
        if (r.active) {
            const long long label = target[r.row];
            const bool ignored = label == ignore_index;
            const long long safe_label = ignored ? 0 : label;
            const bool valid = safe_label >= 0 && safe_label < classes;
            const T grad = grad_losses[r.row] * (ignored ? T(0) : T(1));
            const T label_weight = weight == nullptr || !valid ? T(1) : weight[safe_label];
            const T nll_grad = grad * label_weight * T(1.0 - label_smoothing);
            const T smooth_grad = grad * T(label_smoothing / classes);
            const T prob_coefficient = nll_grad + smooth_grad * weight_total;
            for (long long c = lane; c < classes; c += warpSize) {
                const long long index = r.base + c * r.stride;
                T g = softmax_exp(log_probs[index]) * prob_coefficient;
                if (c == safe_label) g -= nll_grad;
                if (label_smoothing > 0.0) g -= smooth_grad * (weight == nullptr ? T(1) : weight[c]);
                grad_logits[index] = valid ? g : not_a_number<T>();
            }
        }
    }
}

// --- extern "C" entry points: <op>_f32 and <op>_f64 -----------------------------
#define SOFTMAX_ENTRY_POINTS(T, SUFFIX)                                                                \
    extern "C" __global__ void softmax_forward_##SUFFIX(const T* x, T* y, long long outer,             \
                                                        long long classes, long long inner) {          \
        softmax_forward_impl<T>(x, y, outer, classes, inner);                                          \
    }                                                                                                  \
    extern "C" __global__ void softmax_backward_##SUFFIX(const T* gy, const T* y, T* gx,               \
                                                         long long outer, long long classes,           \
                                                         long long inner) {                            \
        softmax_backward_impl<T>(gy, y, gx, outer, classes, inner);                                    \
    }                                                                                                  \
    extern "C" __global__ void log_softmax_forward_##SUFFIX(const T* x, T* y, long long outer,         \
                                                            long long classes, long long inner) {      \
        log_softmax_forward_impl<T>(x, y, outer, classes, inner);                                      \
    }                                                                                                  \
    extern "C" __global__ void log_softmax_backward_##SUFFIX(const T* gy, const T* y, T* gx,           \
                                                             long long outer, long long classes,       \
                                                             long long inner) {                        \
        log_softmax_backward_impl<T>(gy, y, gx, outer, classes, inner);                                \
    }                                                                                                  \
    extern "C" __global__ void cross_entropy_forward_##SUFFIX(                                         \
        const T* logits, const long long* target, const T* weight, T* log_probs, T* losses,            \
        T* target_weights, long long batch, long long classes, long long inner,                        \
        long long ignore_index, double label_smoothing) {                                              \
        cross_entropy_forward_impl<T>(logits, target, weight, log_probs, losses, target_weights,       \
                                      batch, classes, inner, ignore_index, label_smoothing);           \
    }                                                                                                  \
    extern "C" __global__ void cross_entropy_backward_##SUFFIX(                                        \
        const T* grad_losses, const T* log_probs, const long long* target, const T* weight,            \
        T* grad_logits, long long batch, long long classes, long long inner, long long ignore_index,   \
        double label_smoothing) {                                                                      \
        cross_entropy_backward_impl<T>(grad_losses, log_probs, target, weight, grad_logits, batch,     \
                                       classes, inner, ignore_index, label_smoothing);                 \
    }

SOFTMAX_ENTRY_POINTS(float, f32)
SOFTMAX_ENTRY_POINTS(double, f64)
